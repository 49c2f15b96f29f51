"""The audit log: who changed what, written in the same transaction as the change."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import jsonpatch
from sqlalchemy import select
from sqlalchemy.orm import Session

from .models import AuditEntry

# What entries are about (the audit page filters by these).
SUBJECT_TYPES = ("campaign", "fraud_policy", "claim", "grant", "coupon_pool", "attributes", "admin_user", "admin_token",
                 "order", "day")


def record(session: Session, *, at: datetime, actor: str, action: str, subject_type: str, subject_id: Any,
           **details: Any) -> None:
    session.add(AuditEntry(at=at, actor=actor, action=action, subject_type=subject_type,
                           subject_id=str(subject_id), details=details))


def entries(session: Session, *, subject_type: str | None = None, subject_id: str | None = None,
            actor: str | None = None, before_id: int | None = None, limit: int = 50) -> list[AuditEntry]:
    """The latest entries, newest first: of one kind of subject (or one subject), by actors whose name holds
    ``actor``, older than entry ``before_id`` (the next page) if asked."""
    statement = select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit)
    if subject_type is not None:
        statement = statement.where(AuditEntry.subject_type == subject_type)
    if subject_id is not None:
        statement = statement.where(AuditEntry.subject_id == subject_id)
    if actor:
        statement = statement.where(AuditEntry.actor.icontains(actor, autoescape=True))
    if before_id is not None:
        statement = statement.where(AuditEntry.id < before_id)
    return list(session.scalars(statement))


def changes(entry: AuditEntry) -> list[dict[str, Any]] | None:
    """What an entry changed, as RFC 6902 operations, when it holds a before and an after document."""
    before, after = entry.details.get("before"), entry.details.get("after")
    if not isinstance(after, dict) or not isinstance(before, dict | None):
        return None
    return jsonpatch.make_patch(before or {}, after).patch
