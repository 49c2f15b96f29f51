"""Held orders: released exactly once at the deadline, however the release races."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import select

from campaigns.models import Order
from engine.clock import SystemClock, to_ms
from engine.errors import HuodongError, NotFoundError
from engine.holds import HoldSweeper
from engine.keys import CampaignKeys


def _outbox_releases(redis, keys: CampaignKeys) -> int:
    return sum('"order.released"' in fields["e"] for _id, fields in redis.xrange(keys.outbox))


def test_an_unpaid_order_is_released_at_its_deadline_and_not_before(factory, container, redis, settle, db_session):
    campaign_id = factory.campaign(stock=1, price_fen=500, per_user=1, window=60)
    order_id = factory.play(campaign_id, "amy").outcome["order"]["id"]
    sweeper = container.hold_sweeper
    now = SystemClock().now()

    assert sweeper.sweep(now + timedelta(seconds=30)) == []
    assert sweeper.sweep(now + timedelta(seconds=61)) == [order_id]

    stats = container.live_state.stats(campaign_id)
    assert stats.stock["sku:C50"]["taken"] == 0 and stats.held_orders == 0
    keys = CampaignKeys(container.settings.redis_namespace, campaign_id)
    assert redis.hgetall(keys.user("amy")).get("all") == "0"  # the quota came back
    factory.play(campaign_id, "amy")  # so amy may buy again
    settle(worker=False)
    assert db_session.get(Order, order_id).status == "expired"


def test_two_sweepers_running_at_once_release_each_order_once(factory, container, redis):
    campaign_id = factory.campaign(stock=40, price_fen=500, window=60)
    for i in range(40):
        factory.play(campaign_id, f"u{i}")
    later = SystemClock().now() + timedelta(minutes=2)
    sweepers = [HoldSweeper(redis, scripts=container.scripts, namespace=container.settings.redis_namespace)
                for _ in range(6)]
    released: list[list[str]] = []
    start = threading.Barrier(len(sweepers))

    def sweep(sweeper: HoldSweeper) -> None:
        start.wait()
        released.append(sweeper.sweep_campaign(campaign_id, later))

    threads = [threading.Thread(target=sweep, args=(s,)) for s in sweepers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    flat = [order for batch in released for order in batch]
    assert len(flat) == len(set(flat)) == 40
    keys = CampaignKeys(container.settings.redis_namespace, campaign_id)
    assert redis.hget(keys.stock_taken, "sku:C50") == "0"
    assert _outbox_releases(redis, keys) == 40


def test_running_the_release_again_for_an_expired_order_changes_nothing(factory, container, redis):
    campaign_id = factory.campaign(stock=2, price_fen=500, window=60)
    order_id = factory.play(campaign_id, "bo").outcome["order"]["id"]
    keys = CampaignKeys(container.settings.redis_namespace, campaign_id)
    late = to_ms(SystemClock().now() + timedelta(minutes=5))
    first = container.scripts.release(keys, order_id=order_id, owner_id="bo", reason="expired", now_ms=late)
    second = container.scripts.release(keys, order_id=order_id, owner_id="bo", reason="expired", now_ms=late)
    assert (first.code, second.code, second.body) == ("OK", "NOT_HELD", "expired")
    assert redis.hget(keys.stock_taken, "sku:C50") == "0"
    assert _outbox_releases(redis, keys) == 1


def test_a_cancel_racing_the_expiry_releases_once(factory, container, redis, settle, db_session):
    campaign_id = factory.campaign(stock=30, price_fen=500, window=60)
    orders = [factory.play(campaign_id, f"r{i}").outcome["order"]["id"] for i in range(30)]
    later = SystemClock().now() + timedelta(minutes=2)
    cancelled: list[str] = []
    start = threading.Barrier(2)

    def cancel_all() -> None:
        start.wait()
        for i, order_id in enumerate(orders):
            try:
                factory.play(campaign_id, f"r{i}", action="cancel", payload={"order_id": order_id})
                cancelled.append(order_id)
            except HuodongError as exc:
                assert exc.code == "ORDER_NOT_HELD"

    def expire_all() -> None:
        start.wait()
        container.hold_sweeper.sweep_campaign(campaign_id, later)

    threads = [threading.Thread(target=cancel_all), threading.Thread(target=expire_all)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    keys = CampaignKeys(container.settings.redis_namespace, campaign_id)
    assert redis.hget(keys.stock_taken, "sku:C50") == "0"
    assert _outbox_releases(redis, keys) == 30
    settle(worker=False)
    statuses = {o.id: o.status for o in db_session.scalars(select(Order))}
    assert {order_id for order_id, status in statuses.items() if status == "cancelled"} == set(cancelled)
    assert set(statuses.values()) <= {"cancelled", "expired"}


def test_another_players_order_cannot_be_cancelled(factory, container):
    campaign_id = factory.campaign(stock=1, price_fen=500)
    order_id = factory.play(campaign_id, "owner").outcome["order"]["id"]
    with pytest.raises(NotFoundError):
        factory.play(campaign_id, "thief", action="cancel", payload={"order_id": order_id})
    assert container.live_state.stats(campaign_id).held_orders == 1
