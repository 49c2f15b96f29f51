"""``screen()`` reads a policy through its compiled rules (engine/fraud/policy.py GateRules, made once per
policy): the checks it hands the claim script, and the refusals it raises itself, follow the document."""

from __future__ import annotations

import pytest

from engine.fraud.features import RequestFeatures
from engine.fraud.gate import ReplayRejectedError, RiskDeniedError, screen
from engine.fraud.members import KnownMembers
from engine.fraud.policy import DEFAULT_POLICY, CompiledPolicy
from engine.keys import CampaignKeys

NOW = 1_800_000_000_000
KEYS = CampaignKeys("hdtest", 7)
PREFIX = KEYS.fraud_prefix


def play(document: dict, **features) -> list[tuple[str, str, str]]:
    """(kind, key, rule) of the checks a play of ``p1`` leaves to the claim script under ``document``."""
    features = {"device_id": "d1", "ip": "10.0.0.1", "timestamp_ms": NOW, "nonce": "n" * 16, **features}
    screening = screen(CompiledPolicy.compile("p", document), KEYS, "p1", "buy", RequestFeatures(**features), NOW)
    return [(check.kind, check.key, check.rule) for check in screening.checks]


def test_the_default_policy_checks_the_windows_the_nonce_and_the_device_sets_in_that_order():
    assert play(DEFAULT_POLICY) == [
        ("window", f"{PREFIX}rate:user_burst:p1:{NOW // 10_000}", "rate:user_burst"),
        ("window", f"{PREFIX}rate:device_minute:d1:{NOW // 60_000}", "rate:device_minute"),
        ("nonce", f"{PREFIX}nonce:p1:{'n' * 16}", "replay:nonce"),
        ("distinct", KEYS.fraud("device_users", "d1"), "device:users_per_device"),
        ("distinct", KEYS.fraud("user_devices", "p1"), "device:devices_per_user"),
    ]


def test_a_play_without_a_device_makes_no_set_check_of_a_device():
    document = {"devices": {"require_device": False, "max_users_per_ip": 50}}
    checks = play(document, device_id=None)
    assert [rule for kind, _, rule in checks if kind == "distinct"] == ["device:users_per_ip"]
    assert all("None" not in key for _, key, _ in checks)


def test_a_set_without_a_limit_is_not_checked_and_a_known_member_is_left_out():
    document = {"devices": {"max_devices_per_user": None}}
    assert [rule for kind, _, rule in play(document) if kind == "distinct"] == ["device:users_per_device"]
    known = KnownMembers()
    known.remember([(KEYS.fraud("device_users", "d1"), "p1")], NOW)
    screening = screen(CompiledPolicy.compile("p", document), KEYS, "p1", "buy",
                       RequestFeatures(device_id="d1", timestamp_ms=NOW, nonce="n" * 16), NOW, known=known)
    assert [check.kind for check in screening.checks if check.kind == "distinct"] == []
    assert screening.on_device


def test_lists_and_replay_refuse_in_python_and_shadow_only_notes():
    denied = {"lists": {"deny": {"devices": ["d1"]}}}
    with pytest.raises(RiskDeniedError) as refused:
        play(denied)
    assert refused.value.details["rule"] == "deny_list:device"
    allowed = {"lists": {"allow": {"users": ["p1"]}}}
    assert play(allowed) == []  # an allowed player skips every rule
    assert play({**allowed, "lists": {**allowed["lists"], "mode": "off"}})  # unless the lists are off
    with pytest.raises(ReplayRejectedError):
        play(DEFAULT_POLICY, timestamp_ms=NOW - 301_000)
    shadow = screen(CompiledPolicy.compile("p", {"replay": {"mode": "shadow"}}), KEYS, "p1", "buy",
                    RequestFeatures(device_id="d1", timestamp_ms=NOW - 301_000, nonce="n" * 16), NOW)
    assert shadow.shadow == ["replay:stale"]
