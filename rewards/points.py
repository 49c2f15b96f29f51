"""Membership points: an append-only SQL ledger; a grant adds exactly one entry (unique by grant id).

A batch of grants is one transaction: one executemany INSERT that skips the
grants already in the ledger (ON CONFLICT on the grant id), then one SELECT of
their entries.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from marshmallow import RAISE, Schema, fields, validate
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from campaigns.db import insert_for
from campaigns.models import Grant, PointsEntry
from engine.reward_types import reward_types

from .base import Issued, RewardAdapter, one_of

CHUNK = 500  # ids per IN (...), well inside SQLite's limit of bound parameters


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
        return one_of(self._ledger([grant]), grant)

    def issue_many(self, grants: list[Grant]) -> Issued:
        return self._ledger(grants)

    def _ledger(self, grants: list[Grant]) -> Issued:
        now = self.context.clock.now()
        entries: dict[str, int] = {}
        with self.context.session_factory() as session, session.begin():
            session.execute(insert_for(session, PointsEntry.__table__).on_conflict_do_nothing(
                index_elements=["grant_id"]), [self._entry(grant, now) for grant in grants])
            for start in range(0, len(grants), CHUNK):
                entries.update(_entries(session, [grant.id for grant in grants[start:start + CHUNK]]))
        return {grant.id: f"points:{entries[grant.id]}" for grant in grants}

    def _entry(self, grant: Grant, now: datetime) -> dict[str, object]:
        days = grant.reward.get("expires_in_days")
        return {"user_id": grant.user_id, "delta": self.sign * grant.reward["amount"],
                "reason": f"campaign {grant.campaign_id}", "grant_id": grant.id, "created_at": now,
                "expires_at": now + timedelta(days=days) if days else None}

    def query(self, grant: Grant) -> str | None:
        with self.context.session_factory() as session:
            entry_id = _entries(session, [grant.id]).get(grant.id)
        return f"points:{entry_id}" if entry_id else None


def _entries(session: Session, grant_ids: list[str]) -> dict[str, int]:
    """Ledger entry id per grant id, for the grants that have one."""
    return dict(session.execute(select(PointsEntry.grant_id, PointsEntry.id)
                                .where(PointsEntry.grant_id.in_(grant_ids))).all())


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
