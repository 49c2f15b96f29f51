"""tier: a membership tier upgrade for a while, beside the tiers a points balance reaches.

The ladder (``HUODONG_TIER_LADDER``, lowest first, ``name:points``) says which
tier a balance reaches; a ``tier`` reward gives a tier for ``days`` from when it
is issued. A player's tier is the highest of the two; ``/me/points`` shows it,
where it comes from and until when.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from marshmallow import RAISE, Schema, fields, validate
from sqlalchemy import select
from sqlalchemy.orm import Session

from campaigns.db import insert_for
from campaigns.models import Grant, TierGrant
from engine.clock import iso
from engine.reward_types import reward_types

from .base import Issued, PermanentIssueError, RewardAdapter, one_of
from .points import CHUNK, balance

TIER_NAME = re.compile(r"^[a-z][a-z0-9_]{0,31}$")


def ladder(spec: Sequence[str]) -> list[tuple[str, int]]:
    """``("silver:1000", ...)`` as (name, points) pairs, lowest first."""
    steps = []
    for step in spec:
        name, _, points = step.partition(":")
        steps.append((name.strip(), int(points or 0)))
    return steps


class TierParams(Schema):
    class Meta:
        unknown = RAISE

    tier = fields.String(required=True, validate=validate.Regexp(TIER_NAME, error="A tier name of the ladder."))
    days = fields.Integer(strict=True, load_default=30, validate=validate.Range(min=1, max=3650))


@reward_types.register("tier")
class TierAdapter(RewardAdapter):
    type_name = "tier"
    params_schema = TierParams

    def issue(self, grant: Grant) -> str:
        return one_of(self._give([grant]), grant)

    def issue_many(self, grants: list[Grant]) -> Issued:
        return self._give(grants)

    def _give(self, grants: list[Grant]) -> Issued:
        """Every grant of a ladder tier in one transaction (one executemany INSERT)."""
        names = [name for name, _ in ladder(self.context.settings.tier_ladder)]
        answers: Issued = {g.id: PermanentIssueError(f"tier {g.reward['tier']!r} is not on the ladder "
                                                     f"({', '.join(names)})")
                           for g in grants if g.reward["tier"] not in names}
        valid = [g for g in grants if g.id not in answers]
        now = self.context.clock.now()
        if not valid:
            return answers
        with self.context.session_factory() as session, session.begin():
            session.execute(insert_for(session, TierGrant.__table__).on_conflict_do_nothing(
                index_elements=["grant_id"]), [
                {"grant_id": g.id, "user_id": g.user_id, "tier": g.reward["tier"], "starts_at": now,
                 "expires_at": now + timedelta(days=g.reward["days"])} for g in valid])
            for start in range(0, len(valid), CHUNK):
                answers.update(_given(session, [g.id for g in valid[start:start + CHUNK]]))
        return answers

    def query(self, grant: Grant) -> str | None:
        with self.context.session_factory() as session:
            return _given(session, [grant.id]).get(grant.id)


def _given(session: Session, grant_ids: list[str]) -> dict[str, str]:
    """The external id (``tier:<name>:<expiry>``) of each grant that has its tier row."""
    rows = session.scalars(select(TierGrant).where(TierGrant.grant_id.in_(grant_ids)))
    return {given.grant_id: f"tier:{given.tier}:{iso(given.expires_at)}" for given in rows}


def player_tier(session: Session, user_id: str, at: datetime, spec: Sequence[str]) -> dict[str, Any] | None:
    """The player's tier now: the highest the points balance reaches or an unexpired reward gives."""
    steps = ladder(spec)
    rank = {name: index for index, (name, _) in enumerate(steps)}
    points = balance(session, user_id, at)
    best: dict[str, Any] | None = None
    for name, threshold in steps:
        if points >= threshold:
            best = {"name": name, "source": "points", "expires_at": None}
    granted = session.scalars(select(TierGrant).where(TierGrant.user_id == user_id, TierGrant.expires_at > at)
                              .order_by(TierGrant.expires_at.desc())).all()
    for given in granted:
        if given.tier in rank and (best is None or rank[given.tier] > rank[best["name"]]):
            best = {"name": given.tier, "source": "reward", "expires_at": iso(given.expires_at)}
    return best
