"""Reconciliation: a day's grants against what each provider says it holds.

For every grant created on the day, the grant's adapter is asked (``query``)
what the provider has under that grant id:

- an issued grant the provider has nothing for is *missing*;
- an issued grant whose provider id differs is *mismatched*;
- a grant not marked issued (pending, failed, dead) that the provider has is
  *unmarked*: the reward was given but the row does not say so (a worker died
  between the provider and the row). ``fix=True`` marks those issued.
- points ledger entries of the day whose grant id has no grant row are *extra*.

The webhook cannot ask its receiver and answers its own record: its grants
can only be found unmarked, never missing. The Alipay voucher asks by voucher
id, so an issued voucher can be found missing; a grant never marked issued has
no voucher id to ask by (its retry, under the same out_biz_no, answers a
voucher already sent), so it is never found unmarked.

Before the grants, the claim journal is read against SQL (rewards/recovery.py):
claims a Redis crash lost are found there and, with ``fix``, settled.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import select, update

from campaigns.models import Grant, GrantStatus, PointsEntry
from engine.journal import journal_for
from engine.reward_types import reward_types

from .base import AdapterContext, IssueError
from .recovery import recover_day
from .settlement import Settlement

PAGE = 500
# Claims younger than this are left to settlement, which is about to write them from the outbox anyway.
RECOVERY_GRACE = timedelta(minutes=5)


@dataclass
class ReconcileReport:
    day: date
    checked: int = 0
    matched: int = 0
    missing: list[str] = field(default_factory=list)
    mismatched: list[dict[str, Any]] = field(default_factory=list)
    unmarked: list[dict[str, Any]] = field(default_factory=list)
    extra: list[str] = field(default_factory=list)
    unreachable: list[dict[str, str]] = field(default_factory=list)
    fixed: int = 0

    @property
    def clean(self) -> bool:
        return not (self.missing or self.mismatched or self.unmarked or self.extra or self.unreachable)

    def to_dict(self) -> dict[str, Any]:
        return {"day": self.day.isoformat(), "checked": self.checked, "matched": self.matched,
                "missing": self.missing, "mismatched": self.mismatched, "unmarked": self.unmarked,
                "extra": self.extra, "unreachable": self.unreachable, "fixed": self.fixed, "clean": self.clean}


def reconcile(context: AdapterContext, day: date, *, fix: bool = False) -> ReconcileReport:
    """Compare the grants created on ``day`` (UTC) with their providers."""
    start = datetime.combine(day, time(), tzinfo=UTC)
    end = start + timedelta(days=1)
    report = ReconcileReport(day)
    after = ""
    while True:
        with context.session_factory() as session:
            page = list(session.scalars(select(Grant).where(Grant.created_at >= start, Grant.created_at < end,
                                                            Grant.id > after).order_by(Grant.id).limit(PAGE)))
            session.expunge_all()
        for grant in page:
            _check(context, grant, report, fix)
        if len(page) < PAGE:
            break
        after = page[-1].id
    report.extra = _extra_points(context, start, end)
    return report


def daily_reconciliation(context: AdapterContext, settlement: Settlement, day: date, *, fix: bool = True,
                         grace: timedelta = RECOVERY_GRACE) -> dict[str, Any]:
    """Both checks of a day: the claim journal against SQL (claims a Redis crash lost), then the day's grants
    against their providers. With ``fix`` the lost claims are written and settled and unmarked grants marked."""
    now = context.clock.now()
    recovery = recover_day(context.session_factory, settlement, journal_for(context.settings), day,
                           admitted_before=now - grace, now=now, write=fix)
    report = reconcile(context, day, fix=fix)
    return {"journal": recovery.to_dict(), "grants": report.to_dict(),
            "clean": report.clean and not recovery.recovered}


def _check(context: AdapterContext, grant: Grant, report: ReconcileReport, fix: bool) -> None:
    report.checked += 1
    adapter = reward_types.get(grant.reward_type)(context)
    try:
        held = adapter.query(grant)
    except IssueError as exc:  # the provider could not be asked this time
        report.unreachable.append({"grant_id": grant.id, "error": str(exc)})
        return
    if grant.status == GrantStatus.ISSUED:
        if held is None:
            report.missing.append(grant.id)
        elif held != grant.external_id:
            report.mismatched.append({"grant_id": grant.id, "ours": grant.external_id, "provider": held})
        else:
            report.matched += 1
    elif held is not None:
        report.unmarked.append({"grant_id": grant.id, "status": grant.status, "provider": held})
        if fix:
            _mark_issued(context, grant.id, held)
            report.fixed += 1
    else:
        report.matched += 1  # not issued, and the provider agrees


def _mark_issued(context: AdapterContext, grant_id: str, external_id: str) -> None:
    now = context.clock.now()
    with context.session_factory() as session, session.begin():
        session.execute(update(Grant).where(Grant.id == grant_id, Grant.status != GrantStatus.ISSUED)
                        .values(status=GrantStatus.ISSUED, external_id=external_id, issued_at=now, updated_at=now,
                                last_error="marked issued by reconciliation"))


def _extra_points(context: AdapterContext, start: datetime, end: datetime) -> list[str]:
    with context.session_factory() as session:
        orphans = session.scalars(
            select(PointsEntry.grant_id).where(PointsEntry.created_at >= start, PointsEntry.created_at < end,
                                               PointsEntry.grant_id.is_not(None),
                                               PointsEntry.grant_id.not_in(select(Grant.id))))
        return sorted(orphans)
