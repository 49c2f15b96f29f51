"""Gray release (灰度): a stable bucket per player; raising the percentage keeps everyone already in."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.eligibility import BUCKETS, in_rollout, rollout_bucket
from engine.errors import NotEligibleError
from engine.keys import CampaignKeys

from ..support.factories import flash_sale_definition

PLAYERS = [f"user{i}" for i in range(20_000)]


def _with_percent(snapshot, percent):
    return dataclasses.replace(snapshot, rollout_percent=percent)


@given(campaign_id=st.integers(min_value=1, max_value=2**31 - 1), user_id=st.text(min_size=1, max_size=64),
       low=st.integers(0, 100), high=st.integers(0, 100))
def test_raising_the_percentage_never_lets_anyone_out(campaign_id, user_id, low, high):
    low, high = sorted((low, high))
    bucket = rollout_bucket(campaign_id, user_id)
    assert 0 <= bucket < BUCKETS
    in_at_low = bucket < low * BUCKETS // 100
    in_at_high = bucket < high * BUCKETS // 100
    assert not in_at_low or in_at_high


@pytest.mark.parametrize("percent", [0, 1, 10, 50, 99, 100])
def test_the_share_let_in_is_the_percentage(factory, container, percent):
    snapshot = _with_percent(container.snapshots.get(factory.campaign()), percent)
    share = sum(in_rollout(snapshot, user) for user in PLAYERS) / len(PLAYERS)
    assert abs(share - percent / 100) < 0.015


def test_a_player_outside_the_rollout_is_refused_with_the_reason_and_nothing_applied(factory, container, redis):
    campaign_id = factory.campaign(flash_sale_definition(stock=5) | {"rollout_percent": 10})
    snapshot = container.snapshots.get(campaign_id)
    outside = next(u for u in PLAYERS if not in_rollout(snapshot, u))
    inside = next(u for u in PLAYERS if in_rollout(snapshot, u))
    with pytest.raises(NotEligibleError) as refused:
        factory.play(campaign_id, outside)
    assert refused.value.details == {"reason": "rollout"}
    assert redis.exists(CampaignKeys(container.settings.redis_namespace, campaign_id).user(outside)) == 0
    factory.play(campaign_id, inside)


def test_players_see_only_the_gray_campaigns_they_are_in(client, factory, container):
    campaign_id = factory.campaign(flash_sale_definition(stock=5) | {"rollout_percent": 30})
    snapshot = container.snapshots.get(campaign_id)
    outside = next(u for u in PLAYERS if not in_rollout(snapshot, u))
    inside = next(u for u in PLAYERS if in_rollout(snapshot, u))
    listed = client.get("/api/v1/campaigns", headers=factory.headers(outside)).json
    assert listed == []
    assert [c["id"] for c in client.get("/api/v1/campaigns", headers=factory.headers(inside)).json] == [campaign_id]
    view = client.get(f"/api/v1/campaigns/{campaign_id}", headers=factory.headers(outside)).json
    assert view["eligibility"] == {"eligible": False, "code": "NOT_ELIGIBLE", "reason": "rollout"}
    play = client.post(f"/api/v1/campaigns/{campaign_id}/actions/buy", json={"sku": "C50"},
                       headers=factory.headers(outside))
    assert play.status_code == 403
    assert play.json["error"] == {"code": "NOT_ELIGIBLE", "message": play.json["error"]["message"],
                                  "details": {"reason": "rollout"}}


def test_raising_a_live_campaigns_rollout_keeps_its_players_in(factory, container):
    definition = flash_sale_definition(stock=100) | {"rollout_percent": 20}
    campaign_id = factory.campaign(definition)
    before = {u for u in PLAYERS[:2000] if in_rollout(container.snapshots.get(campaign_id), u)}
    with container.session_factory() as session:
        service = container.campaign_service(session)
        service.update(campaign_id, definition | {"rollout_percent": 60}, actor="m")
        service.publish(campaign_id, actor="m")
    container.snapshots.forget(campaign_id)
    after = {u for u in PLAYERS[:2000] if in_rollout(container.snapshots.get(campaign_id), u)}
    assert before < after
