"""release.lua and load_state.lua / set_status.lua: every reply code, and races on release."""

from __future__ import annotations

import threading
from datetime import timedelta

from engine.clock import SystemClock, to_ms
from engine.keys import CampaignKeys
from engine.snapshot import CampaignSnapshot


def _held(factory, container, user="o1", stock=5):
    campaign_id = factory.campaign(stock=stock, price_fen=100, window=60)
    order_id = factory.play(campaign_id, user).outcome["order"]["id"]
    return campaign_id, order_id, CampaignKeys(container.settings.redis_namespace, campaign_id)


def _cancel(container, keys, order_id, user, key="k", fingerprint="f" * 64):
    return container.scripts.release(keys, order_id=order_id, owner_id=user, reason="cancelled",
                                     now_ms=to_ms(SystemClock().now()), idempotency_key=key,
                                     fingerprint=fingerprint, idempotency_ttl=60, answer='{"ok":1}')


def test_cancel_replies_ok_then_replays_for_the_same_key_and_refuses_another_request(factory, container):
    _, order_id, keys = _held(factory, container)
    assert _cancel(container, keys, order_id, "o1").code == "OK"
    assert (_cancel(container, keys, order_id, "o1").code, _cancel(container, keys, order_id, "o1").body) == \
        ("REPLAY", '{"ok":1}')
    assert _cancel(container, keys, order_id, "o1", fingerprint="0" * 64).code == "REUSED"
    reply = _cancel(container, keys, order_id, "o1", key="other")
    assert (reply.code, reply.body) == ("NOT_HELD", "cancelled")


def test_release_of_an_unknown_or_foreign_order_is_not_found(factory, container):
    _, order_id, keys = _held(factory, container)
    assert _cancel(container, keys, "O" + "0" * 24, "o1").code == "NOT_FOUND"
    assert _cancel(container, keys, order_id, "intruder").code == "NOT_FOUND"


def test_expiring_before_the_deadline_is_not_due(factory, container):
    _, order_id, keys = _held(factory, container)
    early = container.scripts.release(keys, order_id=order_id, owner_id="o1", reason="expired",
                                      now_ms=to_ms(SystemClock().now()))
    assert early.code == "NOT_DUE"


def test_fifty_threads_releasing_one_order_release_it_once(factory, container, redis):
    _, order_id, keys = _held(factory, container)
    late = to_ms(SystemClock().now() + timedelta(minutes=5))
    codes = []
    start = threading.Barrier(50)

    def release(i: int) -> None:
        start.wait()
        if i % 2:
            reply = container.scripts.release(keys, order_id=order_id, owner_id="o1", reason="expired", now_ms=late)
        else:
            reply = _cancel(container, keys, order_id, "o1", key=f"k{i}")
        codes.append(reply.code)

    threads = [threading.Thread(target=release, args=(i,)) for i in range(50)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(codes) == ["NOT_HELD"] * 49 + ["OK"]
    assert redis.hget(keys.stock_taken, "sku:C50") == "0"
    assert redis.hget(keys.user("o1"), "all") == "0"


def test_loading_the_same_version_twice_changes_nothing_and_an_older_one_is_stale(factory, container, redis):
    campaign_id = factory.campaign(stock=5)
    factory.play(campaign_id, "a")
    keys = CampaignKeys(container.settings.redis_namespace, campaign_id)
    before = {k: redis.hgetall(k) for k in (keys.meta, keys.stock_total, keys.stock_taken)}
    snapshot = container.snapshots.get(campaign_id)
    container.live_state.load(snapshot, "live")
    assert {k: redis.hgetall(k) for k in (keys.meta, keys.stock_total, keys.stock_taken)} == before
    older = CampaignSnapshot.from_definition(campaign_id, 0, snapshot.definition)
    reply = container.scripts.load_state(keys, version=0, status="paused", starts_ms=None, ends_ms=None,
                                         budget_fen=None, snapshot=older.to_json(), group="g", stock={})
    assert (reply.code, reply.body) == ("STALE", "1")
    assert redis.hget(keys.meta, "status") == "live"


def test_an_item_dropped_from_a_new_version_keeps_its_sales_and_sells_no_more(factory, container, redis):
    campaign_id = factory.campaign(stock=5)
    factory.play(campaign_id, "a")
    keys = CampaignKeys(container.settings.redis_namespace, campaign_id)
    reply = container.scripts.load_state(keys, version=2, status="live", starts_ms=None, ends_ms=None,
                                         budget_fen=None, snapshot="{}", group="g", stock={"sku:NEW": 3})
    assert reply.code == "OK"
    assert redis.hgetall(keys.stock_total) == {"sku:C50": "0", "sku:NEW": "3"}
    assert redis.hget(keys.stock_taken, "sku:C50") == "1"


def test_set_status_needs_a_loaded_campaign(factory, container):
    assert container.scripts.set_status(CampaignKeys(container.settings.redis_namespace, 999), "paused").code == \
        "MISSING"
    campaign_id = factory.campaign()
    reply = container.scripts.set_status(CampaignKeys(container.settings.redis_namespace, campaign_id), "paused")
    assert (reply.code, reply.body) == ("OK", "paused")
