"""Invariant 7: bad input gets a documented 4xx with a stable code, never a 500, and nothing is applied.

The player's play endpoint (buy and cancel) and the admin API are sent what
a broken or hostile client sends. Every answer is the JSON error envelope
with the code the API documents, and a refused play leaves the campaign's
live state exactly as it was: stock, counters, held orders, the outbox and
the Idempotency-Key records.
"""

from __future__ import annotations

import base64
import copy
import json
import re
import time
from datetime import datetime
from typing import Any

import pytest
from itsdangerous import TimestampSigner, URLSafeTimedSerializer
from sqlalchemy import func, select

from campaigns.models import AdminToken, Campaign
from engine.errors import HuodongError, all_error_types
from tests.support.factories import flash_sale_definition
from tests.support.footprint import is_gate_count
from web import create_app
from web.auth import PlayerTokens, TokenExpiredError

PLAYER = "alice"
ADMIN = "/admin/api/v1/campaigns"
TOO_DEEP = "[" * 20_000 + "]" * 20_000  # well under MAX_CONTENT_LENGTH, far over any parser's recursion limit


def buy_url(campaign_id: int | str) -> str:
    return f"/api/v1/campaigns/{campaign_id}/actions/buy"


def cancel_url(campaign_id: int | str) -> str:
    return f"/api/v1/campaigns/{campaign_id}/actions/cancel"


def error_of(response: Any, status: int, code: str) -> dict[str, Any]:
    """The error body of a response, after checking its status, code and envelope."""
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/json"
    error = response.json["error"]
    assert set(error) == {"code", "message", "details"}
    assert error["code"] == code
    assert isinstance(error["message"], str) and error["message"]
    assert isinstance(error["details"], dict)
    return error


def field_messages(error: dict[str, Any], path: str) -> list[str]:
    """The messages of one field in a VALIDATION_ERROR, by dotted path (list positions are keys too)."""
    node: Any = error["details"]["fields"]
    for part in path.split("."):
        assert part in node, f"{path} not named in {error['details']['fields']}"
        node = node[part]
    assert isinstance(node, list) and node and all(isinstance(m, str) for m in node), node
    return node


def footprint(container: Any, campaign_id: int) -> tuple[Any, ...]:
    """Everything a play could change: live stats, the player's counters and every key of the campaign (but what
    the fraud gate counts of every attempt, tests/support/footprint.py)."""
    keys = container.live_state.keys(campaign_id)
    names = sorted(name for name in container.redis.scan_iter(match=keys.all_keys_pattern(), count=1000)
                   if not is_gate_count(name))
    return (container.live_state.stats(campaign_id), container.redis.hgetall(keys.user(PLAYER)), names)


@pytest.fixture
def sale(factory: Any, container: Any) -> int:
    """A live priced flash sale in which the player already holds one order (so counters are not empty)."""
    campaign_id = factory.campaign(stock=5, price_fen=990, per_user=3)
    factory.play(campaign_id, PLAYER)
    return campaign_id


@pytest.fixture
def held_order(factory: Any, sale: int) -> str:
    return factory.play(sale, PLAYER).outcome["order"]["id"]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# -- the play endpoint: bodies ------------------------------------------------------------------

def as_json(text: str | bytes) -> dict[str, Any]:
    return {"data": text, "content_type": "application/json"}


BAD_BUY_BODIES = [
    # (request body, status, code, field named in details.fields)
    pytest.param(as_json('{"sku": "C50", '), 400, "MALFORMED_REQUEST", None, id="malformed-json"),
    pytest.param(as_json(b'{"sku": "C\xff50"}'), 400, "MALFORMED_REQUEST", None, id="not-utf8"),
    pytest.param({"json": ["C50", 1]}, 400, "MALFORMED_REQUEST", None, id="json-array"),
    pytest.param({"json": "C50"}, 400, "MALFORMED_REQUEST", None, id="json-string"),
    pytest.param(as_json("null"), 400, "MALFORMED_REQUEST", None, id="json-null"),
    pytest.param(as_json(TOO_DEEP), 400, "MALFORMED_REQUEST", None, id="nested-too-deep"),
    pytest.param(as_json('{"sku": "C50", "x": ' + "[" * 40 + "]" * 40 + "}"), 400, "MALFORMED_REQUEST", None,
                 id="nested-over-max-depth"),
    pytest.param(as_json('{"sku": "C50", "quantity": NaN}'), 400, "MALFORMED_REQUEST", None, id="nan"),
    pytest.param(as_json('{"sku": "C50", "quantity": Infinity}'), 400, "MALFORMED_REQUEST", None, id="infinity"),
    pytest.param(as_json('{"sku": "C50\\u0000"}'), 400, "MALFORMED_REQUEST", None, id="nul-character"),
    pytest.param(as_json('{"sku": "C50", "\\ud800": 1}'), 400, "MALFORMED_REQUEST", None, id="lone-surrogate"),
    pytest.param({"data": '{"sku": "C50"}', "content_type": "text/plain"}, 415, "UNSUPPORTED_MEDIA_TYPE", None,
                 id="text-plain"),
    pytest.param({"data": {"sku": "C50", "quantity": "1"}}, 415, "UNSUPPORTED_MEDIA_TYPE", None, id="form-encoded"),
    pytest.param(as_json('{"sku": "C50", "pad": "' + "x" * (64 * 1024) + '"}'), 413, "PAYLOAD_TOO_LARGE", None,
                 id="over-max-content-length"),
    pytest.param({"json": {}}, 422, "VALIDATION_ERROR", "sku", id="no-sku"),
    pytest.param({}, 422, "VALIDATION_ERROR", "sku", id="no-body"),
    pytest.param({"json": {"sku": 5}}, 422, "VALIDATION_ERROR", "sku", id="sku-number"),
    pytest.param({"json": {"sku": None}}, 422, "VALIDATION_ERROR", "sku", id="sku-null"),
    pytest.param({"json": {"sku": ["C50"]}}, 422, "VALIDATION_ERROR", "sku", id="sku-list"),
    pytest.param({"json": {"sku": "券"}}, 422, "VALIDATION_ERROR", "sku", id="sku-not-a-code"),
    pytest.param({"json": {"sku": "C" * 33}}, 422, "VALIDATION_ERROR", "sku", id="sku-too-long"),
    pytest.param({"json": {"sku": "C50", "quantity": "1"}}, 422, "VALIDATION_ERROR", "quantity", id="quantity-string"),
    pytest.param({"json": {"sku": "C50", "quantity": 1.5}}, 422, "VALIDATION_ERROR", "quantity", id="quantity-float"),
    pytest.param({"json": {"sku": "C50", "quantity": 1.0}}, 422, "VALIDATION_ERROR", "quantity",
                 id="quantity-whole-float"),
    pytest.param({"json": {"sku": "C50", "quantity": True}}, 422, "VALIDATION_ERROR", "quantity", id="quantity-true"),
    pytest.param({"json": {"sku": "C50", "quantity": None}}, 422, "VALIDATION_ERROR", "quantity", id="quantity-null"),
    pytest.param({"json": {"sku": "C50", "quantity": 0}}, 422, "VALIDATION_ERROR", "quantity", id="quantity-zero"),
    pytest.param({"json": {"sku": "C50", "quantity": -1}}, 422, "VALIDATION_ERROR", "quantity",
                 id="quantity-negative"),
    pytest.param({"json": {"sku": "C50", "quantity": 100}}, 422, "VALIDATION_ERROR", "quantity",
                 id="quantity-over-max"),
    pytest.param({"json": {"sku": "C50", "quantity": 10**30}}, 422, "VALIDATION_ERROR", "quantity",
                 id="quantity-huge"),
    pytest.param({"json": {"sku": "C50", "price_fen": 0}}, 422, "VALIDATION_ERROR", "price_fen",
                 id="unknown-field-price"),
    pytest.param({"json": {"sku": "C50", "user_id": "bob"}}, 422, "VALIDATION_ERROR", "user_id",
                 id="unknown-field-user"),
    pytest.param({"json": {"sku": "C50", "order_id": "O" + "0" * 24}}, 422, "VALIDATION_ERROR", "order_id",
                 id="cancel-field-on-buy"),
]


@pytest.mark.parametrize(("body", "status", "code", "field"), BAD_BUY_BODIES)
def test_a_bad_buy_body_is_refused_with_its_code_and_takes_nothing(client, factory, container, sale, body,
                                                                     status, code, field):
    before = footprint(container, sale)

    error = error_of(client.post(buy_url(sale), headers=factory.headers(PLAYER), **body), status, code)

    if field:
        field_messages(error, field)
    assert footprint(container, sale) == before


def test_a_sku_the_campaign_does_not_sell_is_unknown_sku(client, factory, container, sale):
    before = footprint(container, sale)

    error = error_of(client.post(buy_url(sale), json={"sku": "NOPE"}, headers=factory.headers(PLAYER)),
                     422, "UNKNOWN_SKU")

    assert error["details"] == {"sku": "NOPE"}
    assert footprint(container, sale) == before


def test_a_refused_body_does_not_burn_its_idempotency_key(client, factory, container, sale):
    headers = factory.headers(PLAYER)
    error_of(client.post(buy_url(sale), json={"sku": "C50", "quantity": "2"}, headers=headers),
             422, "VALIDATION_ERROR")

    retried = client.post(buy_url(sale), json={"sku": "C50", "quantity": 2}, headers=headers)

    assert retried.status_code == 200, retried.json
    assert "Idempotent-Replayed" not in retried.headers
    assert container.live_state.stats(sale).stock["sku:C50"]["taken"] == 3


# -- the play endpoint: cancel ------------------------------------------------------------------

BAD_CANCEL_BODIES = [
    pytest.param({}, 422, "VALIDATION_ERROR", "order_id", id="no-order-id"),
    pytest.param({"order_id": 5}, 422, "VALIDATION_ERROR", "order_id", id="order-id-number"),
    pytest.param({"order_id": "O123"}, 422, "VALIDATION_ERROR", "order_id", id="order-id-malformed"),
    pytest.param({"order_id": "G" + "0" * 24}, 422, "VALIDATION_ERROR", "order_id", id="grant-id-as-order"),
    pytest.param({"order_id": "O" + "0" * 24, "reason": "x"}, 422, "VALIDATION_ERROR", "reason",
                 id="unknown-field"),
    pytest.param({"order_id": "O" + "0" * 24}, 404, "NOT_FOUND", None, id="no-such-order"),
]


@pytest.mark.parametrize(("body", "status", "code", "field"), BAD_CANCEL_BODIES)
def test_a_bad_cancel_is_refused_and_releases_nothing(client, factory, container, sale, held_order, body, status,
                                                      code, field):
    before = footprint(container, sale)

    error = error_of(client.post(cancel_url(sale), json=body, headers=factory.headers(PLAYER)), status, code)

    if field:
        field_messages(error, field)
    assert footprint(container, sale) == before


def test_a_player_cannot_cancel_another_players_order(client, factory, container, sale, held_order):
    before = footprint(container, sale)

    error_of(client.post(cancel_url(sale), json={"order_id": held_order}, headers=factory.headers("mallory")),
             404, "NOT_FOUND")

    assert footprint(container, sale) == before
    order = container.redis.hgetall(container.live_state.keys(sale).order(held_order))
    assert order["user"] == PLAYER and order["status"] == "held"
    mine = client.post(cancel_url(sale), json={"order_id": held_order}, headers=factory.headers(PLAYER))
    assert mine.status_code == 200 and mine.json["outcome"]["order"]["status"] == "cancelled"


def test_cancelling_an_order_twice_is_order_not_held(client, factory, container, sale, held_order):
    assert client.post(cancel_url(sale), json={"order_id": held_order},
                       headers=factory.headers(PLAYER)).status_code == 200
    before = footprint(container, sale)

    error = error_of(client.post(cancel_url(sale), json={"order_id": held_order}, headers=factory.headers(PLAYER)),
                     409, "ORDER_NOT_HELD")

    assert error["details"] == {"status": "cancelled"}
    assert footprint(container, sale) == before


# -- the play endpoint: headers, tokens, paths, methods -----------------------------------------

@pytest.mark.parametrize(("key", "status", "code"), [
    pytest.param(None, 400, "IDEMPOTENCY_KEY_REQUIRED", id="missing"),
    pytest.param("", 400, "IDEMPOTENCY_KEY_REQUIRED", id="empty"),
    pytest.param("k" * 256, 422, "VALIDATION_ERROR", id="too-long"),
    pytest.param("café-1", 422, "VALIDATION_ERROR", id="not-ascii"),
    pytest.param("key\twith-tab", 422, "VALIDATION_ERROR", id="not-printable"),
])
def test_a_bad_idempotency_key_is_refused_before_anything_is_taken(client, factory, container, sale, key, status,
                                                                    code):
    headers = factory.headers(PLAYER)
    if key is None:
        del headers["Idempotency-Key"]
    else:
        headers["Idempotency-Key"] = key
    before = footprint(container, sale)

    error = error_of(client.post(buy_url(sale), json={"sku": "C50"}, headers=headers), status, code)

    if status == 422:
        assert error["details"] == {"field": "Idempotency-Key"}
    assert footprint(container, sale) == before


def test_the_longest_idempotency_key_allowed_is_accepted(client, factory, sale):
    response = client.post(buy_url(sale), json={"sku": "C50"}, headers=factory.headers(PLAYER, key="k" * 255))
    assert response.status_code == 200, response.json


class _SignerLastMonth(TimestampSigner):
    """Signs as if it were 30 days ago, so a token is born expired without anybody sleeping."""

    def get_timestamp(self) -> int:
        return int(time.time()) - 30 * 86400


def _swap_payload(token: str, payload: dict[str, Any]) -> str:
    _, timestamp, signature = token.split(".")
    body = base64.urlsafe_b64encode(json.dumps(payload, separators=(",", ":")).encode()).rstrip(b"=").decode()
    return f"{body}.{timestamp}.{signature}"


@pytest.mark.parametrize("forge", [
    pytest.param(lambda real, settings: None, id="no-header"),
    pytest.param(lambda real, settings: "Bearer", id="bearer-without-token"),
    pytest.param(lambda real, settings: "Bearer    ", id="bearer-blank"),
    pytest.param(lambda real, settings: f"Basic {real}", id="other-scheme"),
    pytest.param(lambda real, settings: real, id="no-scheme"),
    pytest.param(lambda real, settings: "Bearer not.a.token", id="garbage"),
    pytest.param(lambda real, settings: "Bearer é", id="non-ascii"),
    pytest.param(lambda real, settings: "Bearer " + real[:-2], id="truncated"),
    pytest.param(lambda real, settings: "Bearer " + _swap_payload(real, {"u": "bob"}), id="payload-swapped"),
    pytest.param(lambda real, settings: "Bearer " + PlayerTokens("another-secret", 3600).issue(
        PLAYER, datetime.now().astimezone()).token, id="other-secret"),
    pytest.param(lambda real, settings: "Bearer " + URLSafeTimedSerializer(
        settings.secret_key, salt="huodong.player").dumps(["alice"]), id="signed-without-user"),
    pytest.param(lambda real, settings: "Bearer " + URLSafeTimedSerializer(
        settings.secret_key, salt="another.salt").dumps({"u": PLAYER}), id="other-salt"),
])
def test_a_play_without_a_valid_player_token_is_unauthorized(client, factory, container, settings, sale, forge):
    headers = factory.headers(PLAYER)
    real = headers.pop("Authorization").removeprefix("Bearer ")
    authorization = forge(real, settings)
    if authorization is not None:
        headers["Authorization"] = authorization
    before = footprint(container, sale)

    error_of(client.post(buy_url(sale), json={"sku": "C50"}, headers=headers), 401, "UNAUTHORIZED")

    assert footprint(container, sale) == before


def test_an_admin_token_is_not_a_player_token(client, factory, container, sale, admin_token):
    headers = {**factory.headers(PLAYER), **bearer(admin_token("admin"))}
    error_of(client.post(buy_url(sale), json={"sku": "C50"}, headers=headers), 401, "UNAUTHORIZED")


def test_an_expired_player_token_is_token_expired(client, factory, container, settings, sale):
    old = URLSafeTimedSerializer(settings.secret_key, salt="huodong.player", signer=_SignerLastMonth)
    token = old.dumps({"u": PLAYER})
    with pytest.raises(TokenExpiredError):
        PlayerTokens(settings.secret_key, ttl_seconds=1).verify(token)
    assert PlayerTokens(settings.secret_key, ttl_seconds=60 * 86400).verify(token) == PLAYER
    headers = {**factory.headers(PLAYER), **bearer(token)}
    before = footprint(container, sale)

    error_of(client.post(buy_url(sale), json={"sku": "C50"}, headers=headers), 401, "TOKEN_EXPIRED")
    error_of(client.get("/api/v1/me/orders", headers=headers), 401, "TOKEN_EXPIRED")

    assert footprint(container, sale) == before


@pytest.mark.parametrize(("path", "code"), [
    pytest.param(lambda sale: buy_url(sale + 1000), "NOT_FOUND", id="no-such-campaign"),
    pytest.param(lambda sale: f"/api/v1/campaigns/{sale}/actions/steal", "UNKNOWN_ACTION", id="unknown-action"),
    pytest.param(lambda sale: f"/api/v1/campaigns/{sale}/actions/", "NOT_FOUND", id="no-action"),
    pytest.param(lambda sale: f"/api/v1/campaigns/{sale}/actions/buy/extra", "NOT_FOUND", id="trailing-segment"),
    pytest.param(lambda sale: buy_url("abc"), "NOT_FOUND", id="id-not-a-number"),
    pytest.param(lambda sale: buy_url(-sale), "NOT_FOUND", id="id-negative"),
    pytest.param(lambda sale: buy_url(f"{sale}.0"), "NOT_FOUND", id="id-float"),
    pytest.param(lambda sale: buy_url(2**31), "NOT_FOUND", id="id-over-int32"),
    pytest.param(lambda sale: buy_url(10**30), "NOT_FOUND", id="id-huge"),
])
def test_plays_on_unknown_campaigns_or_actions_are_not_found(client, factory, container, sale, path, code):
    before = footprint(container, sale)

    error_of(client.post(path(sale), json={"sku": "C50"}, headers=factory.headers(PLAYER)), 404, code)

    assert footprint(container, sale) == before


def test_a_draft_campaign_cannot_be_played(client, factory, container):
    with container.session_factory() as session:
        draft = container.campaign_service(session).create(flash_sale_definition(), actor="test").id
    error_of(client.post(buy_url(draft), json={"sku": "C50"}, headers=factory.headers(PLAYER)), 404, "NOT_FOUND")


@pytest.mark.parametrize("method", ["GET", "PUT", "PATCH", "DELETE"])
def test_a_play_with_the_wrong_method_is_method_not_allowed(client, factory, container, sale, method):
    before = footprint(container, sale)

    response = client.open(buy_url(sale), method=method, json={"sku": "C50"}, headers=factory.headers(PLAYER))

    error_of(response, 405, "METHOD_NOT_ALLOWED")
    assert "POST" in response.headers["Allow"]
    assert footprint(container, sale) == before


@pytest.mark.parametrize(("query", "field"), [
    pytest.param("limit=0", "limit", id="limit-zero"),
    pytest.param("limit=101", "limit", id="limit-over-max"),
    pytest.param("limit=ten", "limit", id="limit-not-a-number"),
])
@pytest.mark.parametrize("path", ["/api/v1/me/grants", "/api/v1/me/orders", "/api/v1/me/points"])
def test_a_bad_history_query_is_a_validation_error(client, factory, path, query, field):
    error = error_of(client.get(f"{path}?{query}", headers=factory.headers(PLAYER)), 422, "VALIDATION_ERROR")
    assert field in json.dumps(error["details"])


@pytest.mark.parametrize(("body", "status", "code"), [
    pytest.param({"json": {}}, 422, "VALIDATION_ERROR", id="no-user"),
    pytest.param({"json": {"user_id": ""}}, 422, "VALIDATION_ERROR", id="empty-user"),
    pytest.param({"json": {"user_id": "a" * 65}}, 422, "VALIDATION_ERROR", id="user-too-long"),
    pytest.param({"json": {"user_id": "a b"}}, 422, "VALIDATION_ERROR", id="user-with-space"),
    pytest.param({"json": {"user_id": 7}}, 422, "VALIDATION_ERROR", id="user-number"),
    pytest.param({"json": {"user_id": "a", "admin": True}}, 422, "VALIDATION_ERROR", id="unknown-field"),
    pytest.param(as_json('{"user_id": '), 400, "MALFORMED_REQUEST", id="malformed-json"),
    pytest.param(as_json(TOO_DEEP), 400, "MALFORMED_REQUEST", id="nested-too-deep"),
    pytest.param(as_json('{"user_id": "a", "\\ud800": 1}'), 400, "MALFORMED_REQUEST", id="lone-surrogate"),
    pytest.param({"data": '{"user_id": "a"}', "content_type": "text/plain"}, 415, "UNSUPPORTED_MEDIA_TYPE",
                 id="text-plain"),
])
def test_a_bad_dev_login_is_refused(client, body, status, code):
    error_of(client.post("/api/v1/auth/dev", **body), status, code)


# -- the admin API ------------------------------------------------------------------------------

def _without(key: str):
    def change(d: dict[str, Any]) -> None:
        del d[key]
    return change


def _set(path: str, value: Any):
    def change(d: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node: Any = d
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node[part]
        if isinstance(node, list):
            node[int(last)] = value
        else:
            node[last] = value
    return change


def _duplicate_sku(d: dict[str, Any]) -> None:
    d["config"]["skus"].append(copy.deepcopy(d["config"]["skus"][0]))


def _reward_without_cost(d: dict[str, Any]) -> None:
    del d["config"]["skus"][0]["reward"]["cost_fen"]


INVALID_DEFINITIONS = [
    # (change to a valid definition, the field named in details.fields)
    pytest.param(_without("name"), "name", id="missing-name"),
    pytest.param(_set("name", ""), "name", id="empty-name"),
    pytest.param(_set("name", 5), "name", id="name-number"),
    pytest.param(_without("game"), "game", id="missing-game"),
    pytest.param(_set("game", "bingo"), "game", id="unknown-game"),
    pytest.param(_without("config"), "config", id="missing-config"),
    pytest.param(_set("config", []), "config", id="config-list"),
    pytest.param(_set("starts_at", "2999-01-01T00:00:00Z"), "ends_at", id="ends-before-starts"),
    pytest.param(_set("starts_at", "yesterday"), "starts_at", id="starts-not-a-time"),
    pytest.param(_set("starts_at", "2026-11-11T00:00:00"), "starts_at", id="starts-without-zone"),
    pytest.param(_set("timezone", "Mars/Olympus_Mons"), "timezone", id="unknown-timezone"),
    pytest.param(_set("timezone", "../../etc/passwd"), "timezone", id="timezone-path"),
    pytest.param(_set("budget_fen", -1), "budget_fen", id="negative-budget"),
    pytest.param(_set("budget_fen", "lots"), "budget_fen", id="budget-not-a-number"),
    pytest.param(_set("audience", "user.tier in ['gold'"), "audience", id="audience-syntax-error"),
    pytest.param(_set("audience", "user.shoe_size > 40"), "audience", id="audience-unknown-attribute"),
    pytest.param(_set("audience", "user.tier"), "audience", id="audience-not-a-boolean"),
    pytest.param(_set("variants", [{"name": "A", "weight": 0}, {"name": "B", "weight": 1}]), "variants.0.weight",
                 id="variant-weight-zero"),
    pytest.param(_set("rollout_percent", 101), "rollout_percent", id="rollout-over-100"),
    pytest.param(_set("rollout_percent", -1), "rollout_percent", id="rollout-negative"),
    pytest.param(_set("limits", {"per_user": 0}), "limits.per_user", id="zero-per-user-limit"),
    pytest.param(_set("limits", {"per_hour": 1}), "limits.per_hour", id="unknown-limit"),
    pytest.param(_set("fraud", {"policy": "Not A Name!"}), "fraud.policy", id="bad-fraud-policy-name"),
    pytest.param(_set("status", "live"), "status", id="mass-assign-status"),
    pytest.param(_set("id", 1), "id", id="mass-assign-id"),
    pytest.param(_set("created_by", "someone"), "created_by", id="mass-assign-author"),
    pytest.param(_set("config.skus", []), "config.skus", id="no-skus"),
    pytest.param(_set("config.skus.0.stock", -1), "config.skus.0.stock", id="negative-stock"),
    pytest.param(_set("config.skus.0.stock", "10"), "config.skus.0.stock", id="stock-string"),
    pytest.param(_set("config.skus.0.price_fen", 9.9), "config.skus.0.price_fen", id="price-float"),
    pytest.param(_set("config.skus.0.sku", "C 50"), "config.skus.0.sku", id="sku-code-with-space"),
    pytest.param(_set("config.skus.0.cost", 1), "config.skus.0.cost", id="unknown-sku-field"),
    pytest.param(_set("config.payment_window_seconds", 0), "config.payment_window_seconds", id="no-payment-window"),
    pytest.param(_duplicate_sku, "config.skus", id="duplicate-sku-codes"),
    pytest.param(_set("config.skus.0.reward.type", "lottery_ticket"), "config.skus.0.reward.type",
                 id="unknown-reward-type"),
    pytest.param(_reward_without_cost, "config.skus.0.reward.cost_fen", id="reward-without-cost"),
    pytest.param(_set("config.skus.0.reward.cost_fen", -5), "config.skus.0.reward.cost_fen",
                 id="negative-reward-cost"),
    pytest.param(_set("config.skus.0.reward", "points"), "config.skus.0.reward", id="reward-not-an-object"),
]


@pytest.mark.parametrize(("change", "field"), INVALID_DEFINITIONS)
def test_an_invalid_campaign_definition_is_refused_with_the_failing_field(client, db_session, admin_token, change,
                                                                          field):
    definition = flash_sale_definition()
    change(definition)

    response = client.post(ADMIN, json=definition, headers=bearer(admin_token("marketer")))

    field_messages(error_of(response, 422, "VALIDATION_ERROR"), field)
    assert db_session.scalar(select(func.count()).select_from(Campaign)) == 0


def test_an_invalid_definition_leaves_the_draft_as_it_was(client, admin_token):
    headers = bearer(admin_token("marketer"))
    created = client.post(ADMIN, json=flash_sale_definition(), headers=headers)
    assert created.status_code == 201, created.json
    broken = flash_sale_definition()
    broken["config"]["skus"][0]["stock"] = -1

    error = error_of(client.put(f"{ADMIN}/{created.json['id']}", json=broken, headers=headers),
                     422, "VALIDATION_ERROR")

    field_messages(error, "config.skus.0.stock")
    assert client.get(f"{ADMIN}/{created.json['id']}", headers=headers).json["draft"] == created.json["draft"]


@pytest.mark.parametrize(("body", "status", "code"), [
    pytest.param(as_json('{"name": '), 400, "MALFORMED_REQUEST", id="malformed-json"),
    pytest.param({"json": [flash_sale_definition()]}, 400, "MALFORMED_REQUEST", id="json-array"),
    pytest.param(as_json(TOO_DEEP), 400, "MALFORMED_REQUEST", id="nested-too-deep"),
    pytest.param(as_json(json.dumps({**flash_sale_definition(), "name": "Sale\u0000"})), 400, "MALFORMED_REQUEST",
                 id="nul-character"),
    pytest.param(as_json('{"name": "Sale", "budget_fen": NaN}'), 400, "MALFORMED_REQUEST", id="nan"),
    pytest.param({"data": json.dumps(flash_sale_definition()), "content_type": "text/plain"}, 415,
                 "UNSUPPORTED_MEDIA_TYPE", id="text-plain"),
    pytest.param({}, 422, "VALIDATION_ERROR", id="no-body"),
    pytest.param(as_json('{"name": "' + "x" * (64 * 1024) + '"}'), 413, "PAYLOAD_TOO_LARGE",
                 id="over-max-content-length"),
])
def test_a_definition_that_is_no_json_object_is_refused(client, db_session, admin_token, body, status, code):
    error_of(client.post(ADMIN, headers=bearer(admin_token("marketer")), **body), status, code)
    assert db_session.scalar(select(func.count()).select_from(Campaign)) == 0


def test_a_viewer_may_read_campaigns_but_not_create_them(client, db_session, admin_token):
    headers = bearer(admin_token("viewer"))
    assert client.get(ADMIN, headers=headers).status_code == 200

    error = error_of(client.post(ADMIN, json=flash_sale_definition(), headers=headers), 403, "FORBIDDEN")

    assert error["details"] == {"role": "viewer", "needed": "marketer"}
    assert db_session.scalar(select(func.count()).select_from(Campaign)) == 0


def test_a_viewer_may_not_publish_or_pause(client, factory, admin_token, container):
    campaign_id = factory.campaign()
    headers = bearer(admin_token("viewer"))
    for action in ("publish", "pause", "end"):
        error_of(client.post(f"{ADMIN}/{campaign_id}/{action}", headers=headers), 403, "FORBIDDEN")
    assert container.live_state.stats(campaign_id).status == "live"


@pytest.mark.parametrize("authorization", [
    pytest.param(None, id="no-header"),
    pytest.param("Bearer", id="bearer-without-token"),
    pytest.param("Bearer hda_not-a-real-token", id="unknown-token"),
    pytest.param("player", id="a-player-token"),
    pytest.param("revoked", id="a-revoked-token"),
])
def test_the_admin_api_needs_a_live_admin_token(client, factory, container, admin_token, authorization):
    if authorization == "player":
        authorization = f"Bearer {factory.token(PLAYER)}"
    elif authorization == "revoked":
        token = admin_token("admin")
        with container.session_factory() as session:
            for row in session.scalars(select(AdminToken)):
                row.revoked_at = container.clock.now()
            session.commit()
        authorization = f"Bearer {token}"
    headers = {"Authorization": authorization} if authorization else {}

    error_of(client.post(ADMIN, json=flash_sale_definition(), headers=headers), 401, "UNAUTHORIZED")
    error_of(client.get(ADMIN, headers=headers), 401, "UNAUTHORIZED")


@pytest.mark.parametrize(("path", "method"), [
    pytest.param("{admin}/999/publish", "POST", id="publish"),
    pytest.param("{admin}/999/pause", "POST", id="pause"),
    pytest.param("{admin}/999", "GET", id="read"),
    pytest.param("{admin}/999", "PUT", id="replace"),
    pytest.param("{admin}/999/versions", "GET", id="versions"),
    pytest.param("{admin}/2147483648/publish", "POST", id="id-over-int32"),
    pytest.param("{admin}/9223372036854775808", "GET", id="id-over-int64"),
    pytest.param("{admin}/abc/publish", "POST", id="id-not-a-number"),
    pytest.param("{admin}/-1/publish", "POST", id="id-negative"),
])
def test_an_unknown_campaign_is_not_found_in_the_admin_api(client, admin_token, path, method):
    response = client.open(path.format(admin=ADMIN), method=method, json=flash_sale_definition(),
                           headers=bearer(admin_token("admin")))
    error_of(response, 404, "NOT_FOUND")


def test_pausing_a_draft_is_an_invalid_transition(client, admin_token, db_session):
    headers = bearer(admin_token("publisher"))
    draft = client.post(ADMIN, json=flash_sale_definition(), headers=headers).json

    error = error_of(client.post(f"{ADMIN}/{draft['id']}/pause", headers=headers), 409, "INVALID_TRANSITION")

    assert error["details"] == {"status": "draft", "action": "pause"}
    assert db_session.get(Campaign, draft["id"]).status == "draft"


def test_the_admin_api_answers_a_wrong_method_with_405(client, admin_token):
    response = client.delete(f"{ADMIN}/1", headers=bearer(admin_token("admin")))
    error_of(response, 405, "METHOD_NOT_ALLOWED")
    assert set(response.headers["Allow"].replace(" ", "").split(",")) >= {"GET", "PUT"}


# -- the error catalogue ------------------------------------------------------------------------

def _every_error_type() -> list[type[HuodongError]]:
    import campaigns.errors  # noqa: F401  (each import registers its error types as subclasses)
    import games  # noqa: F401
    import rewards  # noqa: F401
    import web.auth  # noqa: F401
    import web.jsonio  # noqa: F401

    return all_error_types()


def test_every_error_type_has_a_unique_upper_snake_case_code_and_an_error_status():
    types = _every_error_type()
    codes = [t.code for t in types]

    assert len(types) > 20
    assert sorted(c for c in codes if codes.count(c) > 1) == []
    for error_type in types:
        assert re.fullmatch(r"[A-Z]+(_[A-Z0-9]+)*", error_type.code), error_type
        assert 400 <= error_type.http_status < 600, error_type
        assert error_type.__name__.endswith("Error"), error_type
        assert error_type.default_message, error_type


def test_every_error_type_raised_in_a_view_answers_the_envelope_with_its_status_and_code(settings):
    types = {f"{t.__module__}.{t.__qualname__}": t for t in _every_error_type()}
    app = create_app(settings)
    app.config["TESTING"] = True

    @app.route("/raise/<name>", methods=["GET", "POST"])
    def raise_it(name: str) -> Any:
        raise types[name]()

    @app.route("/crash")
    def crash() -> Any:
        raise RuntimeError("the secret is 42")

    client = app.test_client()
    for name, error_type in types.items():
        error = error_of(client.get(f"/raise/{name}"), error_type.http_status, error_type.code)
        assert error["message"] == error_type.default_message
        assert error["details"] == {}
    crashed = error_of(client.get("/crash"), 500, "INTERNAL_ERROR")
    assert "42" not in json.dumps(crashed)




@pytest.mark.parametrize("path", ["/admin/api/v1/audit?actor=a%00b", "/admin/api/v1/audit?subject_id=%00",
                                  "/admin/api/v1/grants?status=pending%00"])
def test_a_nul_in_the_query_string_is_refused_before_it_reaches_sql(client, admin_token, path):
    error_of(client.get(path, headers={"Authorization": f"Bearer {admin_token('viewer')}"}), 400, "MALFORMED_REQUEST")


def test_a_nul_in_a_page_filter_is_refused(client):
    assert client.get("/admin/audit?actor=%00").status_code == 400
    assert client.get("/admin/?q=a%00").status_code == 400
