"""claim.lua: every reply, typed (engine/claim_call.py), the retried-EVALSHA case, and a race on the script itself."""

from __future__ import annotations

import json
import threading
import uuid
from datetime import timedelta

import pytest

from engine import errors
from engine.claim_call import Admitted, ClaimItem, ClaimRequest, Refused, Short
from engine.claims import Claim, GrantSpec, Take
from engine.clock import FrozenClock, SystemClock, to_ms
from engine.keys import CampaignKeys
from engine.runtime import PlayService

from ..support.factories import flash_sale_definition


def _claim(container, campaign_id, *, user="u1", key=None, quantity=1, now_ms=None, limit=None, per_user=None,
           per_day=None, cost=0, fingerprint="f" * 64, order_id="O1", hold=0):
    keys = CampaignKeys(container.settings.redis_namespace, campaign_id)
    return container.scripts.claim(keys, ClaimRequest(
        fingerprint=fingerprint, now=now_ms or to_ms(SystemClock().now()), idempotency_ttl=3600, day="20261111",
        per_user=per_user, per_user_per_day=per_day, units=quantity, cost=cost, answer='{"outcome":{},"grants":[]}',
        event='{"type":"test"}', hold_deadline=hold, state_ttl=3600, order_id=order_id, user_id=user, seq=None,
        variant=None, mode="play", ops=(), items=(ClaimItem("sku:C50", quantity, limit),),
    ), idempotency_key=key or str(uuid.uuid4()))


def code(outcome) -> str:
    """The outcome as a word: OK, REPLAY, or the refusal's error code."""
    if isinstance(outcome, Admitted):
        return "REPLAY" if outcome.replayed else "OK"
    return outcome.error.code


def test_an_admitted_claim_takes_stock_counts_the_player_and_appends_to_the_outbox(container, factory, redis):
    campaign_id = factory.campaign(stock=3)
    reply = _claim(container, campaign_id, quantity=2, cost=7)
    keys = CampaignKeys(container.settings.redis_namespace, campaign_id)
    assert isinstance(reply, Admitted) and not reply.replayed and reply.noted == ""
    assert reply.answer_json == '{"outcome":{},"grants":[]}'
    assert json.loads(reply.state_json) == {"remaining": {"sku:C50": 1}, "used": {"all": 2, "today": 2}}
    assert redis.hget(keys.stock_taken, "sku:C50") == "2"
    assert redis.hgetall(keys.user("u1")) == {"all": "2", "d:20261111": "2", "i:sku:C50": "2"}
    assert redis.hget(keys.meta, "spent_fen") == "7"
    assert redis.xlen(keys.outbox) == 1


def test_running_the_same_claim_twice_replays_the_answer_and_applies_nothing_twice(container, factory, redis):
    """What happens when redis-py retries an EVALSHA whose reply was lost."""
    campaign_id = factory.campaign(stock=3)
    first = _claim(container, campaign_id, key="retry-me")
    second = _claim(container, campaign_id, key="retry-me")
    keys = CampaignKeys(container.settings.redis_namespace, campaign_id)
    assert (code(first), code(second)) == ("OK", "REPLAY")
    assert (first.answer_json, first.state_json) == (second.answer_json, second.state_json)
    assert redis.hget(keys.stock_taken, "sku:C50") == "1"
    assert redis.xlen(keys.outbox) == 1


def test_the_same_key_with_another_request_is_refused_as_reused(container, factory):
    campaign_id = factory.campaign(stock=3)
    _claim(container, campaign_id, key="k")
    assert code(_claim(container, campaign_id, key="k", fingerprint="0" * 64)) == "IDEMPOTENCY_KEY_REUSED"


def test_keys_are_scoped_by_player(container, factory):
    campaign_id = factory.campaign(stock=3)
    assert code(_claim(container, campaign_id, key="k", user="a")) == "OK"
    assert code(_claim(container, campaign_id, key="k", user="b")) == "OK"


@pytest.mark.parametrize("action", ["pause", "end"])
def test_a_paused_or_ended_campaign_admits_nothing(container, factory, action):
    campaign_id = factory.campaign(stock=3)
    with container.session_factory() as session:
        container.campaign_service(session).transition(campaign_id, action, actor="test")
    reply = _claim(container, campaign_id)
    assert isinstance(reply, Refused) and isinstance(reply.error, errors.CampaignNotLiveError)
    assert reply.error.details["reason"] == ("paused" if action == "pause" else "ended")


def test_before_the_start_and_after_the_end_nothing_is_admitted(container, factory):
    now = SystemClock().now()
    campaign_id = factory.campaign(flash_sale_definition(starts_in=timedelta(hours=1), ends_in=timedelta(hours=2)))
    assert _claim(container, campaign_id, now_ms=to_ms(now)).error.details["reason"] == "not_started"
    assert _claim(container, campaign_id, now_ms=to_ms(now + timedelta(hours=3))).error.details["reason"] == "ended"
    assert code(_claim(container, campaign_id, now_ms=to_ms(now + timedelta(hours=1, minutes=1)))) == "OK"


def test_each_limit_refuses_with_its_scope(container, factory):
    campaign_id = factory.campaign(stock=100)
    assert code(_claim(container, campaign_id, quantity=2, per_user=2)) == "OK"
    assert _claim(container, campaign_id, per_user=2).error.details["scope"] == "per_user"
    assert code(_claim(container, campaign_id, user="v", quantity=2, per_day=2)) == "OK"
    assert _claim(container, campaign_id, user="v", per_day=2).error.details["scope"] == "per_user_per_day"
    assert code(_claim(container, campaign_id, user="w", quantity=3, limit=3)) == "OK"
    reply = _claim(container, campaign_id, user="w", limit=3)
    assert isinstance(reply.error, errors.LimitReachedError) and reply.error.details["scope"] == "item:sku:C50"


def test_a_claim_larger_than_the_stock_left_is_sold_out_and_takes_nothing(container, factory, redis):
    campaign_id = factory.campaign(stock=2)
    reply = _claim(container, campaign_id, quantity=3)
    keys = CampaignKeys(container.settings.redis_namespace, campaign_id)
    assert isinstance(reply, Short) and reply.resource == "sku:C50" and isinstance(reply.error, errors.SoldOutError)
    assert redis.hget(keys.stock_taken, "sku:C50") is None
    assert redis.exists(keys.user("u1")) == 0
    assert redis.xlen(keys.outbox) == 0


def test_a_claim_that_would_pass_the_budget_is_refused(container, factory, redis):
    campaign_id = factory.campaign(stock=10, budget_fen=250)
    assert code(_claim(container, campaign_id, cost=200)) == "OK"
    refused = _claim(container, campaign_id, cost=51)
    assert isinstance(refused, Short) and refused.resource == "budget" and code(refused) == "BUDGET_EXHAUSTED"
    assert code(_claim(container, campaign_id, cost=50)) == "OK"
    assert redis.hget(CampaignKeys(container.settings.redis_namespace, campaign_id).meta, "spent_fen") == "250"


def test_a_held_order_is_indexed_by_its_deadline(container, factory, redis):
    campaign_id = factory.campaign(stock=2, price_fen=100)
    keys = CampaignKeys(container.settings.redis_namespace, campaign_id)
    assert code(_claim(container, campaign_id, order_id="Oheld", hold=123456)) == "OK"
    assert redis.zscore(keys.holds, "Oheld") == 123456
    assert redis.hget(keys.order("Oheld"), "status") == "held"


def test_forty_threads_on_the_script_never_take_more_than_the_stock(container, factory, redis):
    campaign_id = factory.campaign(stock=25)
    codes: list[str] = []
    lock = threading.Lock()

    def grab(user: str) -> None:
        for _ in range(5):
            outcome = code(_claim(container, campaign_id, user=user))
            with lock:
                codes.append(outcome)

    threads = [threading.Thread(target=grab, args=(f"t{i}",)) for i in range(40)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    keys = CampaignKeys(container.settings.redis_namespace, campaign_id)
    assert codes.count("OK") == 25
    assert codes.count("SOLD_OUT") == 200 - 25
    assert redis.hget(keys.stock_taken, "sku:C50") == "25"
    assert redis.xlen(keys.outbox) == 25


def test_play_maps_each_refusal_to_its_error(container, factory):
    campaign_id = factory.campaign(stock=1, per_user=1)
    factory.play(campaign_id, "p1")
    with pytest.raises(errors.SoldOutError):
        factory.play(campaign_id, "p2")
    with pytest.raises(errors.LimitReachedError):
        factory.play(campaign_id, "p1")


def test_a_snapshot_that_says_ended_refuses_before_reaching_redis(container, factory):
    campaign_id = factory.campaign(stock=1)
    late = FrozenClock(SystemClock().now() + timedelta(days=2))
    service = PlayService(scripts=container.scripts, snapshots=container.snapshots, clock=late,
                          namespace=container.settings.redis_namespace, idempotency_ttl=60)
    from engine.runtime import PlayRequest

    with pytest.raises(errors.CampaignNotLiveError) as refused:
        service.play(PlayRequest(campaign_id, "x", "buy", {"sku": "C50"}, "k"))
    assert refused.value.details["reason"] == "ended"


def test_claim_values_sum_their_costs():
    claim = Claim(takes=(Take("a", 1),), units=1, grants=(GrantSpec({"type": "points"}, 5),) * 2)
    assert claim.cost_fen == 10
