"""Membership points: an append-only SQL ledger; a grant adds exactly one entry (unique by grant id)."""

from __future__ import annotations

from datetime import datetime, timedelta

from marshmallow import RAISE, Schema, fields, validate
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from campaigns.db import insert_for
from campaigns.models import Grant, PointsEntry
from engine.reward_types import reward_types

from .base import RewardAdapter


class PointsParams(Schema):
    class Meta:
        unknown = RAISE

    amount = fields.Integer(required=True, strict=True, validate=validate.Range(min=1, max=100_000_000))
    expires_in_days = fields.Integer(strict=True, allow_none=True, load_default=None,
                                     validate=validate.Range(min=1, max=3650))


@reward_types.register("points")
class PointsAdapter(RewardAdapter):
    type_name = "points"
    params_schema = PointsParams

    sign = 1

    def issue(self, grant: Grant) -> str:
        now = self.context.clock.now()
        days = grant.reward.get("expires_in_days")
        with self.context.session_factory() as session, session.begin():
            statement = insert_for(session, PointsEntry).values(
                user_id=grant.user_id, delta=self.sign * grant.reward["amount"],
                reason=f"campaign {grant.campaign_id}",
                grant_id=grant.id, created_at=now, expires_at=now + timedelta(days=days) if days else None,
            ).on_conflict_do_nothing(index_elements=["grant_id"])
            session.execute(statement)
            entry_id = session.scalar(select(PointsEntry.id).where(PointsEntry.grant_id == grant.id))
        return f"points:{entry_id}"

    def query(self, grant: Grant) -> str | None:
        with self.context.session_factory() as session:
            entry_id = session.scalar(select(PointsEntry.id).where(PointsEntry.grant_id == grant.id))
        return f"points:{entry_id}" if entry_id else None


class PointsDebitParams(Schema):
    class Meta:
        unknown = RAISE

    amount = fields.Integer(required=True, strict=True, validate=validate.Range(min=1, max=100_000_000))


@reward_types.register("points_debit")
class PointsDebitAdapter(PointsAdapter):
    """Points a player paid in a game (a make-up day, bought chances): one negative ledger entry."""

    type_name = "points_debit"
    params_schema = PointsDebitParams
    sign = -1
    configurable = False  # made by engine.chances.spend_points; no config pays them out


def balance(session: Session, user_id: str, at: datetime) -> int:
    """Points a player holds at ``at``: the sum of entries not yet expired."""
    live = (PointsEntry.expires_at.is_(None)) | (PointsEntry.expires_at > at)
    return int(session.scalar(select(func.coalesce(func.sum(PointsEntry.delta), 0))
                              .where(PointsEntry.user_id == user_id, live)) or 0)


def entries(session: Session, user_id: str, *, limit: int = 50) -> list[PointsEntry]:
    return list(session.scalars(select(PointsEntry).where(PointsEntry.user_id == user_id)
                                .order_by(PointsEntry.id.desc()).limit(min(limit, 100))))
