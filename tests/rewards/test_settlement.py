"""Settlement details: ordering, trimming, and the points adapter's idempotency."""

from __future__ import annotations

import json
from datetime import timedelta

from sqlalchemy import func, select

from campaigns.models import Grant, Order, PointsEntry
from engine.clock import SystemClock
from rewards.points import PointsAdapter, balance


def test_a_release_that_arrives_before_its_claim_still_ends_released(factory, container, db_session, redis):
    campaign_id = factory.campaign(stock=2, price_fen=100)
    order_id = factory.play(campaign_id, "ann").outcome["order"]["id"]
    factory.play(campaign_id, "ann", action="cancel", payload={"order_id": order_id})
    outbox = container.live_state.keys(campaign_id).outbox
    claim_entry, release_entry = redis.xrange(outbox)
    redis.delete(outbox)  # redeliver them in the wrong order, as a takeover can
    redis.xadd(outbox, release_entry[1])
    redis.xadd(outbox, claim_entry[1])
    redis.xgroup_create(outbox, f"{container.settings.redis_namespace}:settlement", id="0")
    settlement = container.settlement(consumer="t")
    while settlement.step(block_ms=10).entries:
        pass
    assert db_session.get(Order, order_id).status == "cancelled"


def test_acknowledged_entries_are_trimmed_and_unsettled_ones_kept(factory, container, redis):
    campaign_id = factory.campaign(stock=10)
    for i in range(3):
        factory.play(campaign_id, f"t{i}")
    settlement = container.settlement(consumer="trimmer")
    while settlement.step(block_ms=10).entries:
        pass
    factory.play(campaign_id, "late")  # not yet read by settlement
    assert settlement.trim() == 3
    outbox = container.live_state.keys(campaign_id).outbox
    assert [json.loads(f["e"])["user_id"] for _id, f in redis.xrange(outbox)] == ["late"]


def test_the_points_adapter_adds_one_ledger_entry_per_grant_however_often_it_runs(
        factory, container, settle, db_session):
    campaign_id = factory.campaign(stock=10)
    factory.play(campaign_id, "pat")
    settle(worker=False)
    grant = db_session.scalar(select(Grant))
    adapter = PointsAdapter(container.adapter_context)
    ids = {adapter.issue(grant) for _ in range(5)}
    assert len(ids) == 1 and adapter.query(grant) in ids
    db_session.rollback()
    assert db_session.scalar(select(func.count()).select_from(PointsEntry)) == 1
    assert balance(db_session, "pat", SystemClock().now()) == 50


def test_expired_points_leave_the_balance(factory, container, settle, db_session):
    from tests.support.factories import flash_sale_definition

    definition = flash_sale_definition(stock=10)
    definition["config"]["skus"][0]["reward"]["expires_in_days"] = 30
    campaign_id = factory.campaign(definition)
    factory.play(campaign_id, "eve")
    settle()
    now = SystemClock().now()
    assert balance(db_session, "eve", now) == 50
    assert balance(db_session, "eve", now + timedelta(days=31)) == 0


def test_an_unreadable_outbox_entry_is_dropped_and_does_not_block_the_stream(factory, container, redis, db_session):
    campaign_id = factory.campaign(stock=10)
    outbox = container.live_state.keys(campaign_id).outbox
    redis.xadd(outbox, {"e": "{not json"})
    redis.xadd(outbox, {"other": "field"})
    factory.play(campaign_id, "after-the-junk")
    settlement = container.settlement(consumer="t")
    while settlement.step(block_ms=10).entries:
        pass
    assert db_session.scalar(select(func.count()).select_from(Grant)) == 1
    assert redis.xpending(outbox, f"{container.settings.redis_namespace}:settlement")["pending"] == 0


def test_retry_delays_are_spread_so_failed_grants_do_not_return_together():
    from rewards.settlement import jittered

    spreads = [jittered([10, 60, 300]) for _ in range(200)]
    assert all(8 <= a <= 12 and 48 <= b <= 72 and 240 <= c <= 360 for a, b, c in spreads)
    assert len({tuple(s) for s in spreads}) > 50 and jittered([0, 0]) == [0, 0]
