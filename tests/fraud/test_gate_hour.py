"""The gate's last hour: the plays screened and, per rule, what it refused or in shadow mode would refuse,
per campaign and per policy; the publish confirmation's warning past 1 %."""

from __future__ import annotations

from campaigns.fraud import FraudPolicyService

from .test_gate import Player, sale

ADMIN = "/admin/api/v1"


def test_a_rule_tried_in_shadow_shows_the_share_of_plays_it_would_refuse(factory, client, policy, admin,
                                                                       container, db_session):
    name = policy(rate_limits=[{"name": "tight", "scope": "user", "limit": 2, "window_seconds": 60,
                                "mode": "shadow"},
                               {"name": "hard", "scope": "device", "limit": 9, "window_seconds": 60}])
    campaign = factory.campaign(sale(name, stock=100))
    player = Player(client, "keen")
    codes = [player.buy(campaign).status_code for _ in range(10)]
    assert codes == [200] * 9 + [429]  # the device limit (9) is enforced; the user one (2) only watched
    container.play_service.refusals.flush()  # each process sends its counts once a second
    hour = client.get(f"{ADMIN}/campaigns/{campaign}/fraud", headers=admin).json["last_hour"]
    assert hour["plays"] == 10 and hour["would_refuse"] == 7 and hour["share"] == 0.7
    assert hour["rules"] == {"rate:tight": {"refused": 0, "would_refuse": 7, "share": 0.7},
                             "rate:hard": {"refused": 1, "would_refuse": 0, "share": 0.1}}
    activity = client.get(f"{ADMIN}/campaigns/{campaign}/activity", headers=admin).json
    assert activity["fraud"]["last_hour"] == hour
    by_policy = client.get(f"{ADMIN}/fraud-policies/{name}/last-hour", headers=admin).json
    assert by_policy == {**hour, "policy": name}
    service = container.fraud_policy_service(db_session)
    assert service.publish_warning(name)["share"] == 0.7


def test_no_warning_when_the_shadow_rules_would_refuse_one_percent_or_less(factory, client, policy, container,
                                                                            db_session):
    name = policy(rate_limits=[{"name": "loose", "scope": "user", "limit": 100, "window_seconds": 60,
                                "mode": "shadow"}])
    campaign = factory.campaign(sale(name, stock=1000))
    for i in range(30):
        assert Player(client, f"p{i}").buy(campaign).status_code == 200
    container.play_service.refusals.flush()
    service: FraudPolicyService = container.fraud_policy_service(db_session)
    assert service.last_hour(name)["plays"] == 30
    assert service.publish_warning(name) is None
    assert service.publish_warning("never-used") is None
