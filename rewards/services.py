"""The settlement view for people: grants by status (dead letters included), a manual retry, compensations."""

from __future__ import annotations

from typing import Any

import marshmallow
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from campaigns import audit
from campaigns.models import Campaign, Grant, GrantStatus
from engine.claims import public_reward
from engine.clock import Clock, to_ms
from engine.errors import ConflictError, NotFoundError, ValidationError
from engine.reward_types import RewardField
from engine.runtime import grant_id, new_claim_id

from .settlement import GrantBusyError, Settlement

MAX_PAGE = 200
# What a person may put back in line: not an issued grant, nor one the review queue holds or rejected.
RETRYABLE = (GrantStatus.PENDING, GrantStatus.FAILED, GrantStatus.UNKNOWN, GrantStatus.DEAD)


class GrantAlreadyIssuedError(ConflictError):
    code = "GRANT_ALREADY_ISSUED"
    default_message = "The grant is issued; there is nothing to retry."


class GrantUnderReviewError(ConflictError):
    code = "GRANT_UNDER_REVIEW"
    default_message = "The grant's play was held by the fraud gate: approve or reject it in the review queue."


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

    def compensate(self, *, campaign_id: int, user_id: str, reward: Any, reason: str, actor: str) -> Grant:
        """A grant a person gives to make good (a lost prize, a complaint): settled like any other, audited with
        its reason. It is not a play, so it is not counted in the campaign's live budget."""
        campaign = self._session.get(Campaign, campaign_id)
        if campaign is None:
            raise NotFoundError("No such campaign.", campaign_id=campaign_id)
        try:
            loaded = RewardField().deserialize(reward)
        except marshmallow.ValidationError as exc:
            raise ValidationError("The reward is not valid.", fields={"reward": exc.normalized_messages()}) from None
        now = self._clock.now()
        claim = new_claim_id(to_ms(now))
        grant = Grant(id=grant_id(claim, 0), claim_id=claim, campaign_id=campaign_id,
                      version=campaign.live_version or 0, user_id=user_id, reward_type=loaded["type"],
                      reward=public_reward(loaded), cost_fen=loaded["cost_fen"],
                      status=GrantStatus.PENDING, attempts=0, created_at=now, updated_at=now)
        self._session.add(grant)
        audit.record(self._session, at=now, actor=actor, action="grant.compensation", subject_type="grant",
                     subject_id=grant.id, campaign_id=campaign_id, user_id=user_id, reward=grant.reward,
                     cost_fen=grant.cost_fen, reason=reason)
        self._session.commit()
        self._settlement.issue([grant.id])
        return grant

    def retry(self, grant_id: str, *, actor: str) -> Grant:
        """Put a grant that was not issued back in line: pending again, with a fresh job and fresh retries."""
        grant = self.get(grant_id)
        if grant.status == GrantStatus.ISSUED:
            raise GrantAlreadyIssuedError()
        if grant.status in (GrantStatus.HELD, GrantStatus.REJECTED):
            raise GrantUnderReviewError(status=grant.status)
        if grant.status != GrantStatus.DEAD and self._settlement.in_line(grant):
            raise GrantBusyError("The grant's batch is still queued, scheduled or running.", batch_id=grant.batch_id)
        now = self._clock.now()
        # Pending first, then the job: a worker that finishes at once must not be overwritten by this update.
        self._session.execute(update(Grant).where(Grant.id == grant_id, Grant.status.in_(RETRYABLE))
                              .values(status=GrantStatus.PENDING, updated_at=now))
        audit.record(self._session, at=now, actor=actor, action="grant.retry", subject_type="grant",
                     subject_id=grant_id, previous_status=grant.status, last_error=grant.last_error)
        self._session.commit()
        self._settlement.retry(grant_id)
        self._session.refresh(grant)
        return grant
