"""Invariant 5: one Idempotency-Key, one effect, one answer; another body is refused."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import func, select

from campaigns.models import Grant
from engine.errors import IdempotencyKeyReusedError

from ..support.racers import race, tally


def test_the_same_key_twice_gives_the_identical_answer_and_one_effect(client, factory, settle, db_session, container):
    campaign_id = factory.campaign(stock=5)
    headers = factory.headers("alice", key="buy-once")
    first = client.post(f"/api/v1/campaigns/{campaign_id}/actions/buy", json={"sku": "C50"}, headers=headers)
    second = client.post(f"/api/v1/campaigns/{campaign_id}/actions/buy", json={"quantity": 1, "sku": "C50"},
                         headers=headers)
    assert first.status_code == second.status_code == 200
    assert first.json == second.json
    assert second.headers["Idempotent-Replayed"] == "true"
    assert container.live_state.stats(campaign_id).stock["sku:C50"]["taken"] == 1
    settle(worker=False)
    assert db_session.scalar(select(func.count()).select_from(Grant)) == 1


def test_the_same_key_from_twenty_threads_at_once_has_one_effect(factory, container, settle, db_session):
    campaign_id = factory.campaign(stock=100)
    answers = []
    lock = threading.Lock()
    start = threading.Barrier(20)

    def play() -> None:
        start.wait()
        result = factory.play(campaign_id, "bob", key="tap-tap-tap")
        with lock:
            answers.append((result.to_dict(), result.replayed))

    threads = [threading.Thread(target=play) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len({repr(answer) for answer, _ in answers}) == 1
    assert [replayed for _, replayed in answers].count(False) == 1
    assert container.live_state.stats(campaign_id).stock["sku:C50"]["taken"] == 1
    settle(worker=False)
    assert db_session.scalar(select(func.count()).select_from(Grant)) == 1


def test_the_same_key_from_many_processes_has_one_effect(settings, factory, container):
    campaign_id = factory.campaign(stock=100)
    plays = [("carol", {"sku": "C50", "quantity": 1}, "one-key") for _ in range(64)]
    outcomes = race(settings, campaign_id, plays, processes=4, threads=8)
    assert tally(outcomes) == {"OK": 1, "REPLAY": 63}
    assert container.live_state.stats(campaign_id).stock["sku:C50"]["taken"] == 1


def test_the_same_key_with_another_body_is_422_and_changes_nothing(client, factory, container):
    campaign_id = factory.campaign(stock=5)
    headers = factory.headers("dave", key="k-1")
    assert client.post(f"/api/v1/campaigns/{campaign_id}/actions/buy", json={"sku": "C50"},
                       headers=headers).status_code == 200
    reused = client.post(f"/api/v1/campaigns/{campaign_id}/actions/buy", json={"sku": "C50", "quantity": 2},
                         headers=headers)
    assert reused.status_code == 422
    assert reused.json["error"]["code"] == "IDEMPOTENCY_KEY_REUSED"
    assert container.live_state.stats(campaign_id).stock["sku:C50"]["taken"] == 1


def test_a_missing_key_is_400_and_changes_nothing(client, factory, container):
    campaign_id = factory.campaign(stock=5)
    headers = factory.headers("erin")
    del headers["Idempotency-Key"]
    response = client.post(f"/api/v1/campaigns/{campaign_id}/actions/buy", json={"sku": "C50"}, headers=headers)
    assert response.status_code == 400
    assert response.json["error"]["code"] == "IDEMPOTENCY_KEY_REQUIRED"
    assert container.live_state.stats(campaign_id).stock["sku:C50"]["taken"] == 0


def test_a_refused_play_stores_nothing_so_its_key_can_be_retried(factory, container):
    """Only admitted claims are stored: a key refused as SOLD_OUT succeeds once stock comes back."""
    campaign_id = factory.campaign(stock=1, price_fen=100)
    held = factory.play(campaign_id, "frank")
    from engine.errors import SoldOutError

    with pytest.raises(SoldOutError):
        factory.play(campaign_id, "gina", key="gina-1")
    factory.play(campaign_id, "frank", action="cancel", payload={"order_id": held.outcome["order"]["id"]})
    assert factory.play(campaign_id, "gina", key="gina-1").outcome["order"]["status"] == "held"


def test_cancel_is_idempotent_too(factory):
    campaign_id = factory.campaign(stock=1, price_fen=100)
    order_id = factory.play(campaign_id, "hank").outcome["order"]["id"]
    first = factory.play(campaign_id, "hank", action="cancel", payload={"order_id": order_id}, key="c")
    again = factory.play(campaign_id, "hank", action="cancel", payload={"order_id": order_id}, key="c")
    assert first.to_dict() == again.to_dict() and again.replayed
    with pytest.raises(IdempotencyKeyReusedError):
        factory.play(campaign_id, "hank", action="cancel", payload={"order_id": "O" + "0" * 24}, key="c")
