"""The settlement view for people: grants by status (dead letters included) and a manual retry."""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from campaigns import audit
from campaigns.models import Grant, GrantStatus
from engine.clock import Clock
from engine.errors import ConflictError, NotFoundError

from .settlement import Settlement

MAX_PAGE = 200


class GrantAlreadyIssuedError(ConflictError):
    code = "GRANT_ALREADY_ISSUED"
    default_message = "The grant is issued; there is nothing to retry."


class GrantService:
    def __init__(self, session: Session, *, settlement: Settlement, clock: Clock) -> None:
        self._session = session
        self._settlement = settlement
        self._clock = clock

    def list(self, *, status: str | None = None, campaign_id: int | None = None, limit: int = 50) -> list[Grant]:
        query = select(Grant).order_by(Grant.created_at.desc(), Grant.id.desc()).limit(min(limit, MAX_PAGE))
        if status:
            query = query.where(Grant.status == status)
        if campaign_id is not None:
            query = query.where(Grant.campaign_id == campaign_id)
        return list(self._session.scalars(query))

    def get(self, grant_id: str) -> Grant:
        grant = self._session.get(Grant, grant_id)
        if grant is None:
            raise NotFoundError("No such grant.", grant_id=grant_id)
        return grant

    def retry(self, grant_id: str, *, actor: str) -> Grant:
        """Put a grant that was not issued back in line: pending again, with a fresh job and fresh retries."""
        grant = self.get(grant_id)
        if grant.status == GrantStatus.ISSUED:
            raise GrantAlreadyIssuedError()
        now = self._clock.now()
        # Pending first, then the job: a worker that finishes at once must not be overwritten by this update.
        self._session.execute(update(Grant).where(Grant.id == grant_id, Grant.status != GrantStatus.ISSUED)
                              .values(status=GrantStatus.PENDING, updated_at=now))
        audit.record(self._session, at=now, actor=actor, action="grant.retry", subject_type="grant",
                     subject_id=grant_id, previous_status=grant.status, last_error=grant.last_error)
        self._session.commit()
        self._settlement.retry(grant_id)
        self._session.refresh(grant)
        return grant
