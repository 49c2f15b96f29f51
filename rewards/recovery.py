"""Settle the claims a Redis crash lost: the claim journal against SQL.

Every claim the engine admitted has a journal line (engine/journal.py), written
before the player was answered. Settlement writes a claim's rows from its
outbox entry; a claim whose entry Redis lost before settlement read it has a
journal line and no SQL row. ``recover_day`` writes those rows from the journal
line (the very outbox event, through settlement's own idempotent writers) and
enqueues their grants. Writing a claim the outbox still carries is harmless:
rows are written with ON CONFLICT DO NOTHING and a grant's job id is its id.

What the journal cannot give back is Redis's own state of those claims (stock
taken, a player's count, the Idempotency-Key's answer): after such a loss the
stock counters are higher than the claims in SQL say. ``appendfsync always``
is the setting that never needs this.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import sessionmaker

from campaigns.models import ClaimRecord
from engine.clock import to_ms
from engine.journal import ClaimJournal, StreamJournal

from .rows import OutboxRows
from .settlement import Settlement

CHUNK = 500


@dataclass
class RecoveryReport:
    day: date
    journaled: int = 0
    recovered: list[str] = field(default_factory=list)  # claim ids SQL lacked (written unless write=False)
    grants_enqueued: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"day": self.day.isoformat(), "journaled": self.journaled, "recovered": self.recovered,
                "grants_enqueued": len(self.grants_enqueued)}


def recover_day(session_factory: sessionmaker, settlement: Settlement, journal: ClaimJournal | StreamJournal,
                day: date, *,
                admitted_before: datetime, now: datetime, write: bool = True) -> RecoveryReport:
    """Write and settle the claims journaled on ``day`` (admitted before ``admitted_before``, so that claims
    settlement is about to write anyway are left to it) that SQL does not have; ``write=False`` only finds
    them."""
    cutoff = to_ms(admitted_before)
    events = [e for e in journal.events(day) if e.get("type") == "claim" and e["at_ms"] < cutoff]
    report = RecoveryReport(day, journaled=len(events))
    known: set[str] = set()
    with session_factory() as session:
        for start in range(0, len(events), CHUNK):
            chunk = [e["claim_id"] for e in events[start:start + CHUNK]]
            known.update(session.scalars(select(ClaimRecord.id).where(ClaimRecord.id.in_(chunk))))
    lost = [e for e in events if e["claim_id"] not in known]
    report.recovered = [e["claim_id"] for e in lost]
    if not lost or not write:
        return report
    rows = OutboxRows(now)
    for event in lost:
        rows.claim(event)
    with session_factory() as session, session.begin():
        rows.write(session)
    report.grants_enqueued = rows.to_issue
    settlement.issue(rows.to_issue)
    return report
