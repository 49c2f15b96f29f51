"""What the admin page's live charts read: refusals by reason (tallied in memory, flushed about once a second,
exact under many threads) and the stock and spend sampled once a minute (once, however many settlement
processes sample it)."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
import redis

from campaigns.services import CampaignService
from engine.clock import FrozenClock, SystemClock
from engine.errors import HuodongError
from engine.refusals import RefusalTally
from tests.support.factories import flash_sale_definition


def test_every_refused_play_is_counted_by_its_reason_across_threads(container, factory, client, admin_token):
    campaign_id = factory.campaign(flash_sale_definition(stock=5, per_user=1))
    refused: list[str] = []
    lock = threading.Lock()

    def player(index: int) -> None:
        for attempt in range(2):  # the second buy of each player is over their limit (or sold out)
            try:
                factory.play(campaign_id, f"u{index}", payload={"sku": "C50", "quantity": 1}, key=f"k{index}-{attempt}")
            except HuodongError as error:
                with lock:
                    refused.append(error.code)

    threads = [threading.Thread(target=player, args=(i,)) for i in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    container.play_service.refusals.flush()
    answer = client.get(f"/admin/api/v1/campaigns/{campaign_id}/activity",
                        headers={"Authorization": f"Bearer {admin_token('viewer')}"})
    assert answer.status_code == 200, answer.json
    expected = {code: refused.count(code) for code in set(refused)}
    assert answer.json["refusals"] == expected
    assert sum(expected.values()) == 32 - 5 and "SOLD_OUT" in expected


def test_counts_wait_for_the_next_flush_and_survive_a_redis_error(container):
    now = [0.0]
    tally = RefusalTally(container.redis, namespace=container.settings.redis_namespace, seconds=lambda: now[0])
    tally.add(7, "SOLD_OUT")
    assert container.live_state.refusal_stats(7) == {}  # under a second: still in memory
    now[0] = 1.5
    tally.add(7, "SOLD_OUT")
    assert container.live_state.refusal_stats(7) == {"SOLD_OUT": 2}

    broken = RefusalTally(redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2),  # nothing listens
                          namespace=container.settings.redis_namespace, seconds=lambda: now[0])
    broken.add(7, "LIMIT_REACHED")
    broken.flush()  # Redis away: kept, not lost
    broken._client = container.redis
    broken.flush()
    assert container.live_state.refusal_stats(7) == {"SOLD_OUT": 2, "LIMIT_REACHED": 1}


def test_stock_and_spend_are_sampled_once_a_minute(container, factory, client, admin_token):
    campaign_id = factory.campaign(flash_sale_definition(stock=5, reward_cost_fen=100, budget_fen=10_000))
    clock = FrozenClock(SystemClock().now().replace(second=10))
    with container.session_factory() as session:
        service = CampaignService(session, live=container.live_state, clock=clock)
        assert service.sample_live() >= 1
        assert service.sample_live() == 0  # this minute is recorded: a second settlement process adds nothing
        factory.play(campaign_id, "u1", payload={"sku": "C50", "quantity": 1})
        clock.advance(minutes=1)
        assert service.sample_live() >= 1
    samples = container.live_state.samples(campaign_id, clock.now() - timedelta(minutes=5))
    assert [s["stock"] for s in samples] == [{"sku:C50": 5}, {"sku:C50": 4}]
    assert [s["spent_fen"] for s in samples] == [0, 100]
    assert samples[1]["at"] - samples[0]["at"] == timedelta(minutes=1)


@pytest.mark.parametrize("minutes", ["0", "100000", "x"])
def test_bad_windows_are_refused(client, factory, admin_token, minutes):
    campaign_id = factory.campaign()
    answer = client.get(f"/admin/api/v1/campaigns/{campaign_id}/activity?minutes={minutes}",
                        headers={"Authorization": f"Bearer {admin_token('viewer')}"})
    assert answer.status_code == 422 and answer.json["error"]["code"] == "VALIDATION_ERROR"
