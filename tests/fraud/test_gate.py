"""The fraud gate on the hot path: each rule refuses with its stable code and reason, shadow mode only
records, a refused play costs the player nothing, and the shared-state checks hold under racing threads."""

from __future__ import annotations

import secrets
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from sqlalchemy import select

from campaigns.models import AuditEntry, ClaimRecord
from tests.support.factories import flash_sale_definition
from tests.web.test_bad_input import error_of

ADMIN = "/admin/api/v1"


def sale(policy_name: str, *, stock: int = 100, per_user: int | None = None) -> dict[str, Any]:
    definition = flash_sale_definition(stock=stock, per_user=per_user)
    definition["fraud"] = {"policy": policy_name}
    return definition


class Player:
    """A player on their phone: logs in from a device, then plays with fresh timestamps and nonces."""

    def __init__(self, client, user_id: str, device: str | None = None, ip: str = "10.1.2.3", days: int = 30) -> None:
        self.client, self.user_id, self.ip = client, user_id, ip
        self.device = device or f"phone-{user_id}"
        login = client.post("/api/v1/auth/dev", json={"user_id": user_id, "registered_days_ago": days},
                            headers={"X-Device-Id": self.device})
        self.token = login.json["token"]

    def buy(self, campaign_id: int, **headers: str) -> Any:
        return self.play(campaign_id, "buy", {"sku": "C50", "quantity": 1}, **headers)

    def play(self, campaign_id: int, action: str, body: dict[str, Any], **headers: str) -> Any:
        sent = {"Authorization": f"Bearer {self.token}", "Idempotency-Key": str(uuid.uuid4()),
                "X-Device-Id": self.device, "X-Request-Timestamp": str(int(time.time() * 1000)),
                "X-Request-Nonce": secrets.token_hex(12), **headers}
        return self.client.post(f"/api/v1/campaigns/{campaign_id}/actions/{action}", json=body, headers=sent,
                                environ_base={"REMOTE_ADDR": self.ip})


def test_a_replayed_nonce_a_stale_timestamp_and_missing_headers_are_refused(factory, client, policy):
    campaign = factory.campaign(sale(policy(replay={"mode": "enforce", "window_seconds": 60})))
    player = Player(client, "replayer")
    first = player.buy(campaign, **{"X-Request-Nonce": "n-0123456789abcdef"})
    assert first.status_code == 200
    again = player.buy(campaign, **{"X-Request-Nonce": "n-0123456789abcdef"})  # a new key, the old nonce
    assert error_of(again, 409, "REPLAY_REJECTED")["details"]["reason"] == "nonce_seen"
    old = str(int(time.time() * 1000) - 120_000)
    assert error_of(player.buy(campaign, **{"X-Request-Timestamp": old}), 409,
                    "REPLAY_REJECTED")["details"]["reason"] == "stale"
    bare = client.post(f"/api/v1/campaigns/{campaign}/actions/buy", json={"sku": "C50", "quantity": 1},
                       headers={"Authorization": f"Bearer {player.token}", "Idempotency-Key": "k-bare",
                                "X-Request-Timestamp": "", "X-Request-Nonce": ""})
    assert error_of(bare, 409, "REPLAY_REJECTED")["details"]["reason"] == "missing"


def test_a_nonce_is_spent_only_by_an_admitted_play(factory, client, policy, container):
    # The check sets the nonce (one command); a play refused after it takes the nonce back.
    name = policy(replay={"mode": "enforce"}, devices={"mode": "enforce", "max_users_per_device": 1})
    campaign = factory.campaign(sale(name, per_user=1))
    player = Player(client, "spender")
    assert player.buy(campaign, **{"X-Request-Nonce": "nonce-admitted-0001"}).status_code == 200
    for _ in range(2):  # refused by the claim (the player's limit), after the gate passed it: not spent
        refused = player.buy(campaign, **{"X-Request-Nonce": "nonce-refused-00001"})
        assert error_of(refused, 409, "LIMIT_REACHED")["details"]["scope"] == "per_user"
    second = Player(client, "second-account", device=player.device)
    for _ in range(2):  # refused by a gate check after the nonce's: not spent either
        assert error_of(second.buy(campaign, **{"X-Request-Nonce": "nonce-refused-00002"}), 403,
                        "RISK_DENIED")["details"]["reason"] == "device:users_per_device"
    nonces = container.live_state.keys(campaign).fraud("nonce", "*")
    assert sorted(key.rsplit(":", 1)[1] for key in container.redis.scan_iter(match=nonces)) == \
        ["nonce-admitted-0001"]
    again = player.buy(campaign, **{"X-Request-Nonce": "nonce-admitted-0001"})
    assert error_of(again, 409, "REPLAY_REJECTED")["details"]["reason"] == "nonce_seen"


def test_the_same_request_retried_with_its_key_is_answered_not_refused_as_a_replay(factory, client, policy):
    campaign = factory.campaign(sale(policy(replay={"mode": "enforce"})))
    player = Player(client, "retrier")
    fixed = {"Idempotency-Key": "same-key", "X-Request-Nonce": "nonce-retried-1234"}
    first, second = player.buy(campaign, **fixed), player.buy(campaign, **fixed)
    assert first.status_code == second.status_code == 200 and first.json == second.json
    assert second.headers["Idempotent-Replayed"] == "true"


def test_deny_lists_match_users_devices_and_ip_ranges(factory, client, policy):
    name = policy(lists={"deny": {"users": ["banned"], "devices": ["farm-1"], "ips": ["203.0.113.0/24"]}})
    campaign = factory.campaign(sale(name))
    assert error_of(Player(client, "banned").buy(campaign), 403, "RISK_DENIED")["details"]["reason"] == \
        "deny_list:user"
    assert error_of(Player(client, "f1", device="farm-1").buy(campaign), 403,
                    "RISK_DENIED")["details"]["reason"] == "deny_list:device"
    assert error_of(Player(client, "r1", ip="203.0.113.77").buy(campaign), 403,
                    "RISK_DENIED")["details"]["reason"] == "deny_list:ip"
    assert Player(client, "honest", ip="198.51.100.7").buy(campaign).status_code == 200


def test_an_allowed_device_skips_every_other_rule(factory, client, policy):
    name = policy(lists={"allow": {"devices": ["store-test-phone"]}, "deny": {"users": ["tester"]}},
                  rate_limits=[{"name": "one", "scope": "user", "limit": 1, "window_seconds": 60}])
    campaign = factory.campaign(sale(name))
    tester = Player(client, "tester", device="store-test-phone")
    assert [tester.buy(campaign).status_code for _ in range(3)] == [200, 200, 200]


def test_a_stolen_token_used_from_another_device_is_refused(factory, client, policy):
    campaign = factory.campaign(sale(policy(devices={"mode": "enforce", "bind_token_to_device": True})))
    victim = Player(client, "victim", device="victims-phone")
    refused = victim.buy(campaign, **{"X-Device-Id": "thiefs-phone"})
    assert error_of(refused, 403, "RISK_DENIED")["details"]["reason"] == "device:token_mismatch"
    assert victim.buy(campaign).status_code == 200


def test_one_device_carries_at_most_its_share_of_accounts(factory, client, policy):
    campaign = factory.campaign(sale(policy(devices={"mode": "enforce", "max_users_per_device": 3})))
    farm = [Player(client, f"farmed{i}", device="one-phone") for i in range(5)]
    answers = [p.buy(campaign) for p in farm]
    assert [a.status_code for a in answers] == [200, 200, 200, 403, 403]
    assert answers[3].json["error"]["details"]["reason"] == "device:users_per_device"
    assert farm[0].buy(campaign).status_code == 200  # a player already on the device plays on


def test_a_rate_limit_admits_exactly_its_limit_when_one_player_races_itself(factory, client, policy):
    name = policy(rate_limits=[{"name": "burst", "scope": "user", "limit": 5, "window_seconds": 60}])
    campaign = factory.campaign(sale(name, stock=1000))
    player = Player(client, "hammer")
    with ThreadPoolExecutor(8) as pool:
        codes = list(pool.map(lambda _: player.buy(campaign).status_code, range(40)))
    assert codes.count(200) == 5 and codes.count(429) == 35


def test_a_refused_play_costs_the_player_no_quota_and_changes_nothing(factory, client, policy, db_session,
                                                                       container):
    name = policy(rate_limits=[{"name": "slow", "scope": "device", "limit": 1, "window_seconds": 60}])
    campaign = factory.campaign(sale(name, stock=10, per_user=1))
    first_phone = Player(client, "careful", device="phone-a")
    busy = Player(client, "other", device="phone-b")
    assert busy.buy(campaign).status_code == 200
    refused = Player(client, "careful", device="phone-b").buy(campaign)  # the device is over its limit
    assert error_of(refused, 429, "RATE_LIMITED")["details"]["reason"] == "slow"
    assert container.live_state.stats(campaign).stock["sku:C50"]["taken"] == 1
    assert first_phone.buy(campaign).status_code == 200  # its one play per user was not spent by the refusal


def test_shadow_rules_refuse_nothing_and_are_recorded_on_the_play(factory, client, policy, settle, db_session,
                                                                  admin):
    name = policy(devices={"mode": "shadow", "max_users_per_device": 1},
                  rate_limits=[{"name": "tight", "scope": "user", "limit": 1, "window_seconds": 60,
                                "mode": "shadow"}])
    campaign = factory.campaign(sale(name))
    players = [Player(client, f"shared{i}", device="shared-phone") for i in range(2)]
    assert [players[0].buy(campaign).status_code, players[1].buy(campaign).status_code,
            players[0].buy(campaign).status_code] == [200, 200, 200]
    settle()
    recorded = {c.user_id: c.fraud for c in db_session.scalars(select(ClaimRecord).order_by(ClaimRecord.id))}
    assert recorded["shared1"] == {"shadow": ["device:users_per_device"]}
    stats = client.get(f"{ADMIN}/campaigns/{campaign}/fraud", headers=admin).json
    assert stats["shadow"] == {"device:users_per_device": 1, "rate:tight": 1} and stats["blocked"] == {}


def test_blocked_attempts_are_counted_per_rule(factory, client, policy, admin):
    campaign = factory.campaign(sale(policy(lists={"deny": {"users": ["bot"]}},
                                            devices={"mode": "enforce", "max_users_per_device": 1})))
    for _ in range(3):
        Player(client, "bot").buy(campaign)
    Player(client, "a", device="d").buy(campaign)
    Player(client, "b", device="d").buy(campaign)
    stats = client.get(f"{ADMIN}/campaigns/{campaign}/fraud", headers=admin).json
    assert stats["policy"] == "strict"
    assert stats["blocked"] == {"deny_list:user": 3, "device:users_per_device": 1}
    # The latest refusals, newest first, with who and where: the gate's (in the claim script) and Python's.
    assert [(r["rule"], r["user"], r["device"]) for r in stats["recent"]] == [
        ("device:users_per_device", "b", "d")] + [("deny_list:user", "bot", "phone-bot")] * 3
    assert all(r["ip"] == "10.1.2.3" and r["at"] for r in stats["recent"])


def test_policies_are_validated_audited_and_a_campaign_must_name_one_that_exists(client, admin, factory,
                                                                                 db_session, container):
    bad = client.put(f"{ADMIN}/fraud-policies/strict", headers=admin, json={
        "rate_limits": [{"name": "x", "scope": "planet", "limit": 0, "window_seconds": 1}],
        "lists": {"deny": {"ips": ["999.1.1.1"]}}})
    fields = error_of(bad, 422, "VALIDATION_ERROR")["details"]["fields"]
    assert set(fields["rate_limits"]["0"]) == {"scope", "limit"} and "ips" in fields["lists"]["deny"]
    assert error_of(client.put(f"{ADMIN}/fraud-policies/Bad Name!", headers=admin, json={}), 422,
                    "VALIDATION_ERROR")
    saved = client.put(f"{ADMIN}/fraud-policies/strict", headers=admin, json={"description": "for money"})
    assert saved.status_code == 200 and saved.json["policy"]["replay"]["mode"] == "enforce"
    listed = client.get(f"{ADMIN}/fraud-policies", headers=admin).json
    assert [p["name"] for p in listed] == ["default", "strict"]
    assert db_session.scalar(select(AuditEntry).where(AuditEntry.action == "fraud_policy.save")).subject_id == \
        "strict"
    viewer = {"Authorization": f"Bearer {admin_token_of(container, 'viewer')}"}
    assert error_of(client.put(f"{ADMIN}/fraud-policies/strict", headers=viewer, json={}), 403, "FORBIDDEN")

    with container.session_factory() as session:
        service = container.campaign_service(session)
        draft = service.create(sale("nowhere"), actor="test")
        with pytest.raises(Exception) as refused:
            service.publish(draft.id, actor="test")
    assert getattr(refused.value, "code", None) == "VALIDATION_ERROR"


def admin_token_of(container, role: str) -> str:
    from campaigns.tokens import AdminTokenService

    with container.session_factory() as session:
        return AdminTokenService(session, clock=container.clock).create(role=role, name=f"t {role}", actor="test")[1]
