"""Grants go out in batches: one job a batch of one reward type, each grant with its own outcome, and a batch
that can no longer run (its job lost, or orphaned in no queue) moved to a new one exactly once."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from rq.job import JobStatus
from sqlalchemy import select, update

from campaigns.models import Grant, GrantStatus, PointsEntry
from rewards.base import PermanentIssueError, RewardAdapter

from ..support import unreliable_adapters  # noqa: F401  (registers points_picky and points_flaky)
from ..support.factories import flash_sale_definition


def _campaign(factory, reward_type: str, stock: int = 20) -> int:
    definition = flash_sale_definition(stock=stock)
    definition["config"]["skus"][0]["reward"] = {"type": reward_type, "amount": 5, "cost_fen": 5}
    return factory.campaign(definition)


def _grants(db_session) -> dict[str, Grant]:
    db_session.rollback()
    return {g.user_id: g for g in db_session.scalars(select(Grant))}


def test_the_grants_of_one_settlement_step_go_out_as_one_batch_of_their_type(factory, container, settle, db_session):
    points = factory.campaign(stock=10)
    tier = factory.campaign(flash_sale_definition(skus=[{
        "sku": "VIP", "name": "Gold", "price_fen": 0, "stock": 10,
        "reward": {"type": "tier", "tier": "gold", "days": 7, "cost_fen": 0}}]))
    for player in ("a", "b", "c"):
        factory.play(points, player)
    factory.play(tier, "d", payload={"sku": "VIP", "quantity": 1})
    settle(worker=False)
    grants = _grants(db_session)
    assert len({grants[p].batch_id for p in "abc"}) == 1 and grants["d"].batch_id != grants["a"].batch_id
    assert sorted(container.settle_queue.job_ids) == sorted({g.batch_id for g in grants.values()})
    settle()
    assert {g.status for g in _grants(db_session).values()} == {GrantStatus.ISSUED}


def test_one_refusal_in_a_batch_is_a_dead_letter_and_the_others_are_issued(factory, settle, db_session):
    campaign_id = _campaign(factory, "points_picky")
    for player in ("ok-1", "no-1", "ok-2"):
        factory.play(campaign_id, player)
    settle()
    grants = _grants(db_session)
    assert (grants["no-1"].status, grants["no-1"].last_error) == (GrantStatus.DEAD, "this player cannot hold points")
    assert [grants[p].status for p in ("ok-1", "ok-2")] == [GrantStatus.ISSUED, GrantStatus.ISSUED]
    assert all(g.attempts == 1 for g in grants.values())


def test_a_batch_runs_again_for_the_grants_that_failed_and_only_for_them(factory, settle, db_session):
    campaign_id = _campaign(factory, "points_flaky")
    for player in ("steady-1", "flaky-1", "steady-2"):
        factory.play(campaign_id, player)
    settle()  # the test settings retry at once
    grants = _grants(db_session)
    assert {p: (g.status, g.attempts) for p, g in grants.items()} == {
        "steady-1": (GrantStatus.ISSUED, 1), "flaky-1": (GrantStatus.ISSUED, 2), "steady-2": (GrantStatus.ISSUED, 1)}
    assert len(set(db_session.scalars(select(PointsEntry.grant_id)))) == 3


def test_settlement_lingers_so_that_claims_arriving_together_settle_together(factory, container):
    campaign_id = factory.campaign(stock=10)
    factory.play(campaign_id, "first")
    late = threading.Timer(0.05, lambda: [factory.play(campaign_id, f"next-{i}") for i in range(5)])
    late.start()
    report = container.settlement(linger_ms=400).step(block_ms=1000)
    late.join()
    assert report.entries == 6 and container.settle_queue.count == 1


@pytest.mark.parametrize("status", [JobStatus.QUEUED, JobStatus.SCHEDULED, JobStatus.STARTED])
def test_a_batch_whose_job_sits_in_no_queue_or_registry_runs_again_exactly_once(
        status, factory, container, settle, db_session):
    """What a Redis restart can leave: the job's hash says queued (or scheduled, or started) and no worker will
    ever see it. Racing housekeepers move its grants to one new batch; the orphan is deleted."""
    campaign_id = factory.campaign(stock=10)
    for player in ("o1", "o2", "o3"):
        factory.play(campaign_id, player)
    settle(worker=False)
    orphan = db_session.scalar(select(Grant.batch_id))
    container.rq_redis.lrem(container.settle_queue.key, 0, orphan)
    job = container.settlement().job(orphan)
    job.set_status(status)
    assert container.settlement().requeue_stalled(timedelta(minutes=5)) == []  # too fresh to be stalled
    with container.session_factory() as session, session.begin():
        session.execute(update(Grant).values(updated_at=container.clock.now() - timedelta(hours=1)))

    with ThreadPoolExecutor(6) as pool:
        moved = list(pool.map(lambda _: container.settlement().requeue_stalled(timedelta(minutes=5)), range(6)))
    assert sorted(g for found in moved for g in found) == sorted(g.id for g in _grants(db_session).values())
    assert container.settlement().job(orphan) is None
    assert container.settle_queue.count == 1
    settle()
    grants = _grants(db_session)
    assert {(g.status, g.attempts) for g in grants.values()} == {(GrantStatus.ISSUED, 1)}


def test_a_queued_batch_waiting_its_turn_is_left_alone(factory, container, settle, db_session):
    campaign_id = factory.campaign(stock=10)
    factory.play(campaign_id, "patient")
    settle(worker=False)
    batch_id = db_session.scalar(select(Grant.batch_id))
    assert container.settlement().requeue_stalled(timedelta(0)) == []
    assert container.settle_queue.job_ids == [batch_id]


def test_an_old_batch_finds_nothing_of_the_grants_moved_away_from_it(factory, container, settle, db_session):
    from engine import jobs
    from rewards.tasks import issue_batch

    campaign_id = factory.campaign(stock=10)
    factory.play(campaign_id, "moved")
    settle(worker=False)
    grant = next(iter(_grants(db_session).values()))
    new_batch = container.settlement().retry(grant.id)
    jobs.install(container.adapter_context)
    assert issue_batch(grant.batch_id) == {}  # the old job, run late: nothing of its own any more
    assert issue_batch(new_batch) == {"issued": 1}
    assert issue_batch(new_batch) == {}  # settled: a second run does nothing


class _SlowAdapter(RewardAdapter):
    type_name = "slow"
    params_schema = None
    concurrency = 4

    def issue(self, grant):
        time.sleep(0.2)
        if grant.id == "g3":
            raise PermanentIssueError("no")
        return f"slow:{grant.id}"

    def query(self, grant):
        return None


def test_a_network_adapter_issues_a_batch_concurrently_and_each_grant_gets_its_own_answer(container):
    grants = [Grant(id=f"g{i}", user_id="u", reward={}) for i in range(8)]
    started = time.monotonic()
    answers = _SlowAdapter(container.adapter_context).issue_many(grants)
    assert time.monotonic() - started < 0.7  # 8 calls of 0.2 s, 4 at a time
    assert isinstance(answers.pop("g3"), PermanentIssueError)
    assert answers == {f"g{i}": f"slow:g{i}" for i in range(8) if i != 3}
