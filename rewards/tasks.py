"""RQ jobs of settlement. Arguments are ids; collaborators come from the worker's job context."""

from __future__ import annotations

import logging
from collections import Counter, defaultdict
from datetime import date
from typing import Any

from rq import Queue, get_current_job
from sqlalchemy import bindparam, select, update

from campaigns import audit
from campaigns.models import Grant, GrantStatus
from engine import jobs
from engine.connections import connect
from engine.keys import GlobalKeys
from engine.reward_types import reward_types

from .base import AdapterContext, Issued, OutcomeUnknownError, PermanentIssueError
from .reconcile import daily_reconciliation
from .settlement import UNSETTLED, Settlement

log = logging.getLogger(__name__)


class BatchIncompleteError(Exception):
    """Some grants of the batch were not issued this time: RQ runs the batch again (only those are attempted)."""


def issue_batch(batch_id: str) -> dict[str, int]:
    """Issue the unsettled grants of a batch through their adapter, exactly once; answers counts by status.

    Safe to run any number of times: only grants still unsettled and still in
    this batch are attempted (one that moved to another batch is that batch's
    business), and adapters are idempotent by grant id, so a batch killed after
    the provider issued and before the rows were marked finds the same external
    ids. Each attempt counts on its grant before the provider is called.
    """
    context: AdapterContext = jobs.current()
    grants = _attempt(context, batch_id)
    if not grants:
        return {}
    answers: Issued = {}
    by_type: dict[str, list[Grant]] = defaultdict(list)
    for grant in grants:
        by_type[grant.reward_type].append(grant)
    for reward_type, group in by_type.items():
        try:
            answers.update(reward_types.get(reward_type)(context).issue_many(group))
        except Exception as exc:  # noqa: BLE001  (the whole group failed: each grant carries the reason)
            log.exception("issuing %d %s grants of batch %s failed", len(group), reward_type, batch_id)
            answers.update(dict.fromkeys((g.id for g in group), exc))
    job = get_current_job()
    last_try = job is None or not job.retries_left
    statuses = _mark(context, grants, answers, last_try=last_try)
    _count(context, job, grants, statuses)
    retrying = sum(1 for status in statuses.values() if status in (GrantStatus.FAILED, GrantStatus.UNKNOWN))
    counts = dict(Counter(str(status) for status in statuses.values()))
    dead_now = sum(1 for g in grants if statuses[g.id] == GrantStatus.DEAD and not isinstance(
        answers.get(g.id), PermanentIssueError))
    if retrying or dead_now:
        raise BatchIncompleteError(f"batch {batch_id}: {counts}")
    return counts


def _attempt(context: AdapterContext, batch_id: str) -> list[Grant]:
    """Count one more attempt on each unsettled grant of the batch (the UPDATE locks their rows until the
    transaction ends) and answer them, detached, for the adapters to read."""
    now = context.clock.now()
    mine = (Grant.batch_id == batch_id, Grant.status.in_(UNSETTLED))
    with context.session_factory() as session, session.begin():
        session.execute(update(Grant).where(*mine).values(attempts=Grant.attempts + 1, updated_at=now))
        grants = list(session.scalars(select(Grant).where(*mine).order_by(Grant.id)))
        session.expunge_all()
    return grants


def _mark(context: AdapterContext, grants: list[Grant], answers: Issued, *, last_try: bool) -> dict[str, str]:
    """Every grant's outcome in one transaction: issued with its external id, dead (refused for good, or out of
    retries), or failed / unknown until the batch runs again. An issued grant never goes back (a late run)."""
    now = context.clock.now()
    statuses: dict[str, str] = {}
    rows: list[dict[str, Any]] = []
    for grant in grants:
        answer = answers.get(grant.id, RuntimeError("the adapter gave no answer for this grant"))
        external_id = issued_at = error = None
        if not isinstance(answer, Exception):
            status, external_id, issued_at = GrantStatus.ISSUED, answer, now
        elif isinstance(answer, PermanentIssueError) or last_try:
            status = GrantStatus.DEAD
            error = str(answer) if isinstance(answer, PermanentIssueError) else repr(answer)
        else:  # RetryableIssueError and anything unexpected: the batch runs again, then a dead letter
            status = GrantStatus.UNKNOWN if isinstance(answer, OutcomeUnknownError) else GrantStatus.FAILED
            error = repr(answer)
        statuses[grant.id] = status
        rows.append({"b_id": grant.id, "b_status": status, "b_external_id": external_id, "b_issued_at": issued_at,
                     "b_error": error[:2000] if error else None})
    grants_table = Grant.__table__
    with context.session_factory() as session, session.begin():
        session.execute(
            update(grants_table).where(grants_table.c.id == bindparam("b_id"),
                                       grants_table.c.status != GrantStatus.ISSUED)
            .values(status=bindparam("b_status"), external_id=bindparam("b_external_id"),
                    issued_at=bindparam("b_issued_at"), last_error=bindparam("b_error"), updated_at=now),
            rows)
    return statuses


def _count(context: AdapterContext, job: Any, grants: list[Grant], statuses: dict[str, str]) -> None:
    """Grants settled, by adapter and status, in the engine's Redis (what /metrics reports as grants per second);
    best effort."""
    if job is None:
        return
    tally = Counter(f"{grant.reward_type}:{statuses[grant.id]}" for grant in grants)
    try:
        with engine_redis(context).pipeline(transaction=False) as pipe:
            for field, count in tally.items():
                pipe.hincrby(GlobalKeys(context.settings.redis_namespace).settled, field, count)
            pipe.execute()
    except Exception:  # noqa: BLE001  (a counter must never fail the batch)
        log.warning("could not count batch outcomes", exc_info=True)


def engine_redis(context: AdapterContext) -> Any:
    """The engine's Redis of the worker (its context's), not the job's queue connection."""
    return context.redis if context.redis is not None else connect(context.settings)


def reconcile_day(day: str) -> dict[str, object]:
    """The daily reconciliation (scheduled by settlement's housekeeping): claims the journal has and SQL
    lacks are written and settled, then every grant of the day is checked with its provider and those the
    provider has but the rows do not say are marked issued. The report goes to the audit log."""
    context: AdapterContext = jobs.current()
    job = get_current_job()
    queue = Queue(job.origin, connection=job.connection, serializer=job.serializer)
    settlement = Settlement.configured(context.settings, client=engine_redis(context), queue=queue,
                                       session_factory=context.session_factory, clock=context.clock)
    report = daily_reconciliation(context, settlement, date.fromisoformat(day))
    with context.session_factory() as session, session.begin():
        audit.record(session, at=context.clock.now(), actor="reconciliation", action="reconcile.day",
                     subject_type="day", subject_id=day, **report)
    return report
