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

from .base import PermanentIssueError, RewardAdapter
from .points import balance

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
        names = [name for name, _ in ladder(self.context.settings.tier_ladder)]
        if grant.reward["tier"] not in names:
            raise PermanentIssueError(f"tier {grant.reward['tier']!r} is not on the ladder ({', '.join(names)})")
        now = self.context.clock.now()
        with self.context.session_factory() as session, session.begin():
            session.execute(insert_for(session, TierGrant).values(
                grant_id=grant.id, user_id=grant.user_id, tier=grant.reward["tier"], starts_at=now,
                expires_at=now + timedelta(days=grant.reward["days"]),
            ).on_conflict_do_nothing(index_elements=["grant_id"]))
            given = session.scalar(select(TierGrant).where(TierGrant.grant_id == grant.id))
        return f"tier:{given.tier}:{iso(given.expires_at)}"

    def query(self, grant: Grant) -> str | None:
        with self.context.session_factory() as session:
            given = session.scalar(select(TierGrant).where(TierGrant.grant_id == grant.id))
        return f"tier:{given.tier}:{iso(given.expires_at)}" if given else None


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
