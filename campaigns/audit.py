"""The audit log: who changed what, written in the same transaction as the change."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from .models import AuditEntry


def record(session: Session, *, at: datetime, actor: str, action: str, subject_type: str, subject_id: Any,
           **details: Any) -> None:
    session.add(AuditEntry(at=at, actor=actor, action=action, subject_type=subject_type,
                           subject_id=str(subject_id), details=details))
