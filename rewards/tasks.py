"""RQ jobs of settlement. Arguments are ids; collaborators come from the worker's context."""

from __future__ import annotations

import logging
from datetime import date

from rq import Queue, get_current_job
from sqlalchemy import update

from campaigns import audit
from campaigns.models import Grant, GrantStatus
from engine.connections import connect
from engine.reward_types import reward_types

from .base import AdapterContext, OutcomeUnknownError, PermanentIssueError
from .context import worker_context
from .reconcile import daily_reconciliation
from .settlement import Settlement

log = logging.getLogger(__name__)


def issue_grant(grant_id: str) -> str | None:
    """Issue one grant through its adapter, exactly once; answers the provider's id.

    Safe to run any number of times: an issued grant is left alone, and
    adapters are idempotent by grant id, so a job killed after the provider
    issued and before the row was marked simply finds the same external id.
    """
    context: AdapterContext = worker_context()
    now = context.clock.now()
    with context.session_factory() as session, session.begin():
        grant = session.get(Grant, grant_id, with_for_update=True)
        if grant is None:
            log.warning("grant %s not found", grant_id)
            return None
        if grant.status == GrantStatus.ISSUED:
            return grant.external_id
        if grant.status in (GrantStatus.HELD, GrantStatus.REJECTED):  # the review queue decides, not a job
            log.warning("grant %s is %s: not issued", grant_id, grant.status)
            return None
        grant.attempts += 1
        grant.updated_at = now
        session.flush()
        session.expunge(grant)  # the adapter reads it after this transaction commits
    adapter = reward_types.get(grant.reward_type)(context)
    try:
        external_id = adapter.issue(grant)
    except PermanentIssueError as exc:
        _mark(grant_id, GrantStatus.DEAD, error=str(exc), context=context)
        return None
    except Exception as exc:  # RetryableIssueError and anything unexpected: RQ retries, then dead letter
        job = get_current_job()
        last_try = job is None or not job.retries_left
        waiting = GrantStatus.UNKNOWN if isinstance(exc, OutcomeUnknownError) else GrantStatus.FAILED
        _mark(grant_id, GrantStatus.DEAD if last_try else waiting, error=repr(exc), context=context)
        raise
    _mark(grant_id, GrantStatus.ISSUED, external_id=external_id, context=context)
    return external_id


def _mark(grant_id: str, status: GrantStatus, *, context: AdapterContext, error: str | None = None,
          external_id: str | None = None) -> None:
    now = context.clock.now()
    values: dict[str, object] = {"status": status, "updated_at": now}
    if error is not None:
        values["last_error"] = error[:2000]
    if status == GrantStatus.ISSUED:
        values.update(external_id=external_id, issued_at=now, last_error=None)
    with context.session_factory() as session, session.begin():
        # An issued grant never goes back to failed (a late duplicate run).
        session.execute(update(Grant).where(Grant.id == grant_id, Grant.status != GrantStatus.ISSUED)
                        .values(**values))


def reconcile_day(day: str) -> dict[str, object]:
    """The daily reconciliation (scheduled by settlement's housekeeping): claims the journal has and SQL
    lacks are written and settled, then every grant of the day is checked with its provider and those the
    provider has but the rows do not say are marked issued. The report goes to the audit log."""
    context: AdapterContext = worker_context()
    job = get_current_job()
    queue = Queue(job.origin, connection=job.connection, serializer=job.serializer)
    settlement = Settlement.configured(context.settings, client=connect(context.settings), queue=queue,
                                       session_factory=context.session_factory, clock=context.clock)
    report = daily_reconciliation(context, settlement, date.fromisoformat(day))
    with context.session_factory() as session, session.begin():
        audit.record(session, at=context.clock.now(), actor="reconciliation", action="reconcile.day",
                     subject_type="day", subject_id=day, **report)
    return report
