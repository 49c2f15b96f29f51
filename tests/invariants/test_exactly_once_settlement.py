"""Invariant 4: every acknowledged win ends as exactly one reward, also when processes die mid-way."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select, update

from campaigns.models import Grant, GrantStatus, PointsEntry
from engine.clock import SystemClock
from rewards.settlement import ISSUE_BATCH

from ..support import crash_adapter  # noqa: F401  (registers points_crash here too)
from ..support.factories import flash_sale_definition
from ..support.services import child_env

ROOT = Path(__file__).resolve().parents[2]


def _crash_campaign(factory, crash: str, victim: str, stock: int = 5) -> int:
    definition = flash_sale_definition(stock=stock)
    definition["config"]["skus"][0]["reward"] = {"type": "points_crash", "amount": 10, "crash": crash,
                                                 "victim": victim, "cost_fen": 10}
    return factory.campaign(definition)


def _env(settings) -> dict[str, str]:
    return child_env(settings, HUODONG_PLUGINS="tests.support.crash_adapter")


def _run_worker(settings, timeout: float = 60) -> int:
    """A real forking RQ worker (``huodong worker --burst``) in its own process group."""
    process = subprocess.run(
        [sys.executable, "-m", "web.cli", "worker", "--burst",
         "--name", f"{settings.redis_namespace}-{uuid.uuid4().hex}"],
        cwd=ROOT, env=_env(settings), timeout=timeout, start_new_session=True, capture_output=True)
    return process.returncode


def _recover_abandoned_jobs(container) -> None:
    """What housekeeping does once the dead worker's heartbeat lapses; run now, not in a minute."""
    container.settlement().recover_abandoned_jobs(as_of=(SystemClock().now() + timedelta(minutes=10)).timestamp())


def _counts(db_session) -> tuple[int, int, int]:
    db_session.rollback()  # a fresh snapshot: other processes have written since
    grants = db_session.scalar(select(func.count()).select_from(Grant))
    issued = db_session.scalar(select(func.count()).select_from(Grant).where(Grant.status == GrantStatus.ISSUED))
    ledger = db_session.scalar(select(func.count()).select_from(PointsEntry))
    return grants, issued, ledger


@pytest.mark.parametrize("crash", ["before_issue", "after_issue"])
def test_a_worker_killed_mid_job_still_issues_every_grant_exactly_once(
        crash, factory, settings, container, settle, db_session):
    campaign_id = _crash_campaign(factory, crash, "worker")
    for i in range(3):
        factory.play(campaign_id, f"w{i}")
    settle(worker=False)  # rows written, jobs enqueued

    assert _run_worker(settings) == -signal.SIGKILL  # died in its first job
    assert _counts(db_session)[1] == 0
    # One batch carried all three: the provider may already have every one of them.
    assert _counts(db_session)[2] == (3 if crash == "after_issue" else 0)

    for _ in range(3):  # each grant kills one worker, once
        _recover_abandoned_jobs(container)
        _run_worker(settings)
    _recover_abandoned_jobs(container)
    assert _run_worker(settings) == 0

    assert _counts(db_session) == (3, 3, 3)
    assert len(set(db_session.scalars(select(PointsEntry.grant_id)))) == 3
    assert sorted(g.attempts for g in db_session.scalars(select(Grant))) == [2, 2, 2]


@pytest.mark.parametrize("crash", ["before_issue", "after_issue"])
def test_a_work_horse_killed_mid_job_is_retried_by_its_worker(crash, factory, settings, settle, db_session):
    campaign_id = _crash_campaign(factory, crash, "horse")
    for i in range(3):
        factory.play(campaign_id, f"h{i}")
    settle(worker=False)

    assert _run_worker(settings) == 0  # each horse died once; the worker retried its job

    assert _counts(db_session) == (3, 3, 3)
    assert sorted(g.attempts for g in db_session.scalars(select(Grant))) == [2, 2, 2]


def test_a_settlement_process_killed_after_writing_rows_is_taken_over_by_another(
        factory, settings, container, settle, db_session, redis):
    campaign_id = factory.campaign(stock=10)
    for i in range(4):
        factory.play(campaign_id, f"s{i}")

    doomed = subprocess.run([sys.executable, "-m", "tests.support.crashing_settlement"], cwd=ROOT,
                            env=_env(settings), timeout=60, capture_output=True)
    assert doomed.returncode == -signal.SIGKILL
    assert _counts(db_session) == (4, 0, 0)  # rows committed, nothing enqueued, nothing acknowledged
    group = f"{settings.redis_namespace}:settlement"
    outbox = container.live_state.keys(campaign_id).outbox
    assert redis.xpending(outbox, group)["pending"] == 4

    heir = container.settlement(consumer="heir", claim_idle_ms=0)
    assert heir.step(block_ms=10).entries == 4
    assert redis.xpending(outbox, group)["pending"] == 0
    settle()
    assert _counts(db_session) == (4, 4, 4)


def test_a_redelivered_outbox_entry_writes_nothing_twice(factory, container, settle, db_session, redis):
    campaign_id = factory.campaign(stock=10)
    factory.play(campaign_id, "x")
    settle()
    outbox = container.live_state.keys(campaign_id).outbox
    entry_id, fields = redis.xrange(outbox)[0]
    redis.xadd(outbox, fields)  # the same claim delivered a second time
    settle()
    assert _counts(db_session) == (1, 1, 1)


def test_grants_left_pending_without_a_job_are_enqueued_again(factory, container, settle, db_session):
    campaign_id = factory.campaign(stock=10)
    factory.play(campaign_id, "y")
    settle(worker=False)
    container.settle_queue.empty()  # the job is lost (say Redis lost its last second) while the row is pending
    grant_id = db_session.scalar(select(Grant.id))
    assert container.settlement().requeue_stalled(timedelta(0)) == [grant_id]
    settle()
    assert _counts(db_session) == (1, 1, 1)


def test_a_grant_whose_job_died_on_its_last_try_gets_a_fresh_job(factory, settings, container, settle, db_session):
    campaign_id = _crash_campaign(factory, "before_issue", "worker")
    factory.play(campaign_id, "last-try")
    settle(worker=False)
    grant_id = db_session.scalar(select(Grant.id))
    container.settle_queue.empty()
    container.settlement(retry_intervals=[]).retry(grant_id)  # a batch with no retry left
    assert _run_worker(settings) == -signal.SIGKILL
    _recover_abandoned_jobs(container)  # no retry left: the job fails, the grant is still pending

    assert _counts(db_session) == (1, 0, 0)
    assert container.settlement().requeue_stalled(timedelta(0)) == [grant_id]
    assert _run_worker(settings) == 0
    assert _counts(db_session) == (1, 1, 1)


def test_a_grant_that_used_up_its_attempts_becomes_a_dead_letter_with_the_reason(
        factory, container, settle, db_session):
    campaign_id = factory.campaign(stock=10)
    factory.play(campaign_id, "unlucky")
    settle(worker=False)
    container.settle_queue.empty()
    grant_id = db_session.scalar(select(Grant.id))
    with container.session_factory() as session, session.begin():
        session.execute(update(Grant).values(attempts=20, status=GrantStatus.UNKNOWN, last_error="TimeoutError"))

    assert container.settlement(give_up_after=20).requeue_stalled(timedelta(0)) == []
    db_session.rollback()
    grant = db_session.get(Grant, grant_id)
    assert grant.status == GrantStatus.DEAD
    assert grant.last_error == "gave up after 20 attempts; the last: TimeoutError"


def test_a_grant_whose_job_is_queued_or_scheduled_is_not_enqueued_again(factory, container, settle, db_session):
    campaign_id = factory.campaign(stock=10)
    factory.play(campaign_id, "waiting")
    settle(worker=False)
    assert container.settlement().requeue_stalled(timedelta(0)) == []
    assert container.settle_queue.count == 1


def test_a_retry_no_scheduler_moves_is_released_to_the_queue_once_overdue(factory, container, settle, db_session):
    """The worker whose scheduler held the lock died: its scheduled retries wait; housekeeping moves them."""
    campaign_id = factory.campaign(stock=10)
    factory.play(campaign_id, "forgotten")
    settle(worker=False)
    grant_id, batch_id = db_session.execute(select(Grant.id, Grant.batch_id)).one()
    container.settle_queue.empty()
    job = container.settle_queue.enqueue_in(timedelta(seconds=30), ISSUE_BATCH, batch_id, job_id=batch_id)
    settlement = container.settlement()
    now = time.time()
    assert settlement.release_overdue_retries(timedelta(minutes=1), now=now + 60) == []  # not overdue yet
    assert container.settle_queue.count == 0
    assert settlement.release_overdue_retries(timedelta(minutes=1), now=now + 120) == [job.id]
    assert settlement.release_overdue_retries(timedelta(minutes=1), now=now + 120) == []  # once
    settle()  # a worker without a scheduler issues it
    assert _counts(db_session) == (1, 1, 1)
