"""Audience rules over imported attributes, and A/B variants a player keeps."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from campaigns.models import AuditEntry, ClaimRecord, Player
from engine.errors import NotEligibleError
from tests.support.factories import flash_sale_definition
from tests.web.test_bad_input import error_of

ADMIN = "/admin/api/v1"
CSV = (
    "user_id,tier,tags,registered_at,vip_level:int\n"
    "gold-1,gold,vip|new,2025-01-01T00:00:00+08:00,3\n"
    "gold-2,gold,,2025-01-01T00:00:00Z,1\n"
    "silver-1,silver,vip,2026-11-01T00:00:00Z,5\n"
)


def _import(client, token: str, text: str, content_type: str = "text/csv"):
    return client.post(f"{ADMIN}/players/attributes", data=text.encode(),
                       headers={"Authorization": f"Bearer {token}", "Content-Type": content_type})


def test_imported_attributes_decide_who_may_play(client, admin_token, factory, db_session):
    token = admin_token("marketer")
    response = _import(client, token, CSV)
    assert response.status_code == 200, response.json
    assert response.json == {"rows": 3, "new_players": 3, "attributes": {
        "tier": "string", "tags": "list", "registered_at": "timestamp", "vip_level": "int"}}
    catalogue = client.get(f"{ADMIN}/players/attributes", headers={"Authorization": f"Bearer {token}"}).json
    assert {"name": "vip_level", "type": "int"} in catalogue

    definition = flash_sale_definition(stock=10)
    definition["audience"] = "user.tier in ['gold'] && user.vip_level >= 2 && 'vip' in user.tags"
    campaign = factory.campaign(definition)
    assert factory.play(campaign, "gold-1").outcome["quantity"] == 1
    for refused in ("gold-2", "silver-1", "stranger"):
        with pytest.raises(NotEligibleError) as caught:
            factory.play(campaign, refused)
        assert caught.value.details["reason"] == "audience"
    view = client.get(f"/api/v1/campaigns/{campaign}", headers={"Authorization": f"Bearer {factory.token('gold-2')}"})
    assert view.json["eligibility"] == {"eligible": False, "code": "NOT_ELIGIBLE", "reason": "audience"}
    listed = {who: [c["id"] for c in client.get("/api/v1/campaigns", headers={
        "Authorization": f"Bearer {factory.token(who)}"}).json] for who in ("gold-1", "gold-2")}
    assert listed == {"gold-1": [campaign], "gold-2": []}
    assert db_session.get(Player, "gold-1").attributes["registered_at"] == "2024-12-31T16:00:00Z"
    assert db_session.scalar(select(AuditEntry).where(AuditEntry.action == "attributes.import")) is not None


def test_a_rule_naming_an_unknown_attribute_is_refused_with_its_position(client, admin_token):
    token = admin_token("marketer")
    definition = flash_sale_definition()
    definition["audience"] = "user.tier == 'gold' &&\n  user.shoe_size > 40"
    error = error_of(client.post(f"{ADMIN}/campaigns", json=definition,
                                 headers={"Authorization": f"Bearer {token}"}), 422, "VALIDATION_ERROR")
    [message] = error["details"]["fields"]["audience"]
    assert message.startswith("line 2, column 8: Unknown attribute user.shoe_size")

    assert _import(client, token, "user_id,shoe_size:int\nu1,42\n").status_code == 200
    definition["name"] += " again"
    assert client.post(f"{ADMIN}/campaigns", json=definition,
                       headers={"Authorization": f"Bearer {token}"}).status_code == 201


@pytest.mark.parametrize(("text", "content_type", "status", "code"), [
    ("user_id,tier\nu1,gold\n", "application/json", 415, "UNSUPPORTED_MEDIA_TYPE"),
    ("tier,user_id\ngold,u1\n", "text/csv", 422, "VALIDATION_ERROR"),
    ("user_id\nu1\n", "text/csv", 422, "VALIDATION_ERROR"),
    ("user_id,Bad Name\nu1,x\n", "text/csv", 422, "VALIDATION_ERROR"),
    ("user_id,level:decimal\nu1,1\n", "text/csv", 422, "VALIDATION_ERROR"),
    ("user_id,orders_30d:string\nu1,1\n", "text/csv", 422, "VALIDATION_ERROR"),
    ("user_id,tier,tier\nu1,a,b\n", "text/csv", 422, "VALIDATION_ERROR"),
    ("user_id,tier\n", "text/csv", 422, "VALIDATION_ERROR"),
    ("user_id,tier\nu1,gold,extra\n", "text/csv", 422, "VALIDATION_ERROR"),
    ("user_id,tier\nu1,go\rld\n", "text/csv", 422, "VALIDATION_ERROR"),  # a lone CR ends a row (fuzzer: was 500)
    ("user_id,tier\nu1,go\x00ld\n", "text/csv", 422, "VALIDATION_ERROR"),
])
def test_a_bad_import_is_refused_whole(client, admin_token, text, content_type, status, code):
    error_of(_import(client, admin_token("marketer"), text, content_type), status, code)


def test_one_bad_row_imports_nothing(client, admin_token, db_session):
    token = admin_token("marketer")
    text = "user_id,orders_30d,registered_at\nok-1,3,2025-01-01T00:00:00Z\nbad row!,x,2025-01-01\nok-2,4,\n"
    error = error_of(_import(client, token, text), 422, "VALIDATION_ERROR")
    assert set(error["details"]["fields"]["rows"]["3"]) == {"user_id"}
    text = "user_id,orders_30d,registered_at\nok-1,3,2025-01-01T00:00:00Z\nok-3,x,2025-01-01\n"
    error = error_of(_import(client, token, text), 422, "VALIDATION_ERROR")
    assert set(error["details"]["fields"]["rows"]["3"]) == {"orders_30d", "registered_at"}
    assert db_session.get(Player, "ok-1") is None
    assert error_of(_import(client, admin_token("viewer"), "user_id,tier\nu,g\n"), 403, "FORBIDDEN")


def _ab_definition(weight_a: int = 1, weight_b: int = 1) -> dict:
    definition = flash_sale_definition(stock=1000)
    definition["variants"] = [
        {"name": "A", "weight": weight_a},
        {"name": "B", "weight": weight_b, "config": {"payment_window_seconds": 600}},
    ]
    return definition


def test_a_player_keeps_their_variant_and_every_play_records_it(factory, container, client, settle, db_session,
                                                                admin_token):
    campaign = factory.campaign(_ab_definition())
    players = [f"ab-{i}" for i in range(40)]
    first = {p: factory.play(campaign, p).outcome["variant"] for p in players}
    assert set(first.values()) == {"A", "B"}  # 40 players at 1:1 -- both variants are used

    # A new version sends everyone to B from now on; players who already played keep theirs.
    with container.session_factory() as session:
        service = container.campaign_service(session)
        service.update(campaign, _ab_definition(weight_a=1, weight_b=10_000), actor="test")
        service.publish(campaign, actor="test")
    container.snapshots.forget(campaign)
    again = {p: factory.play(campaign, p).outcome["variant"] for p in players}
    assert again == first
    newcomers = {factory.play(campaign, f"new-{i}").outcome["variant"] for i in range(10)}
    assert newcomers == {"B"}

    view = client.get(f"/api/v1/campaigns/{campaign}", headers={"Authorization": f"Bearer {factory.token('ab-0')}"})
    assert view.json["variant"] == first["ab-0"]
    expected_window = 600 if first["ab-0"] == "B" else 900
    assert view.json["rules"]["payment_window_seconds"] == expected_window

    settle()
    db_session.rollback()
    recorded = {r.user_id: r.variant for r in db_session.scalars(select(ClaimRecord)
                                                                 .where(ClaimRecord.campaign_id == campaign))}
    assert all(recorded[p] == first[p] for p in players)

    # The A/B comparison the campaign page charts: each variant's players, plays, wins and their cost.
    results = {r["variant"]: r for r in client.get(f"/admin/api/v1/campaigns/{campaign}/activity", headers={
        "Authorization": f"Bearer {admin_token('viewer')}"}).json["variants"]}
    in_a = sum(1 for p in players if first[p] == "A")
    assert results["A"]["players"] == in_a and results["B"]["players"] == 40 - in_a + 10
    assert results["A"]["plays"] == 2 * in_a and results["B"]["plays"] == 2 * (40 - in_a) + 10
    assert results["A"]["wins"] == results["A"]["plays"] and results["A"]["cost_fen"] == 100 * results["A"]["wins"]


def test_an_item_only_a_variant_offers_has_its_stock(factory, container):
    definition = flash_sale_definition(stock=1000)
    extra = {"sku": "ONLY_B", "name": "B's coupon", "price_fen": 0, "stock": 2,
             "reward": {"type": "points", "amount": 5, "cost_fen": 5}}
    definition["variants"] = [{"name": "A", "weight": 1},
                              {"name": "B", "weight": 1, "config": {"skus": [*definition["config"]["skus"], extra]}}]
    campaign = factory.campaign(definition)
    assert container.live_state.stats(campaign).stock["sku:ONLY_B"] == {"total": 2, "taken": 0, "left": 2}
    in_b = next(p for p in (f"v{i}" for i in range(100))
                if factory.play(campaign, p).outcome["variant"] == "B")
    assert factory.play(campaign, in_b, "buy", {"sku": "ONLY_B", "quantity": 1}).outcome["sku"] == "ONLY_B"
