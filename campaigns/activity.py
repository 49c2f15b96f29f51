"""What happened on a campaign lately, from the settled rows: plays, wins and cost per minute, plays today.

Read from SQL (claims and grants as settlement wrote them), so it lags the
live counters by the settlement's delay; bucketed here, not in SQL, so it is
the same on SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from .models import ClaimRecord, Grant

MAX_ROWS = 50_000


def per_minute(session: Session, campaign_id: int, *, now: datetime, minutes: int) -> list[dict[str, Any]]:
    """One bucket per minute of the last ``minutes``, oldest first: plays, wins (plays with a grant) and the
    grants' cost."""
    start = (now - timedelta(minutes=minutes - 1)).replace(second=0, microsecond=0)
    plays: Counter[datetime] = Counter()
    for (at,) in session.execute(select(ClaimRecord.created_at).where(
            ClaimRecord.campaign_id == campaign_id, ClaimRecord.created_at >= start).limit(MAX_ROWS)):
        plays[at.replace(second=0, microsecond=0)] += 1
    wins: Counter[datetime] = Counter()
    cost: Counter[datetime] = Counter()
    won_claims: set[str] = set()
    for at, claim_id, cost_fen in session.execute(select(Grant.created_at, Grant.claim_id, Grant.cost_fen).where(
            Grant.campaign_id == campaign_id, Grant.created_at >= start).limit(MAX_ROWS)):
        minute = at.replace(second=0, microsecond=0)
        cost[minute] += cost_fen
        if claim_id not in won_claims:
            won_claims.add(claim_id)
            wins[minute] += 1
    buckets = (start + timedelta(minutes=i) for i in range(minutes))
    return [{"at": m, "plays": plays[m], "wins": wins[m], "cost_fen": cost[m]} for m in buckets]


def by_variant(session: Session, campaign_id: int) -> list[dict[str, Any]]:
    """The A/B comparison since the start: per variant (None: the campaign has none), its players, plays, plays
    that won something and what they cost."""
    plays = {variant: (players, count) for variant, players, count in session.execute(
        select(ClaimRecord.variant, func.count(func.distinct(ClaimRecord.user_id)), func.count())
        .where(ClaimRecord.campaign_id == campaign_id).group_by(ClaimRecord.variant))}
    won = {variant: (wins, cost) for variant, wins, cost in session.execute(
        select(ClaimRecord.variant, func.count(func.distinct(Grant.claim_id)),
               func.coalesce(func.sum(Grant.cost_fen), 0))
        .join(Grant, Grant.claim_id == ClaimRecord.id)
        .where(ClaimRecord.campaign_id == campaign_id).group_by(ClaimRecord.variant))}
    results = []
    for variant, (players, count) in sorted(plays.items(), key=lambda item: item[0] or ""):
        wins, cost = won.get(variant, (0, 0))
        results.append({"variant": variant, "players": players, "plays": count, "wins": wins, "cost_fen": int(cost)})
    return results


def plays_since(session: Session, since: datetime) -> dict[int, int]:
    """Plays per campaign since ``since`` (the campaign list's "plays today")."""
    rows = session.execute(select(ClaimRecord.campaign_id, func.count()).where(ClaimRecord.created_at >= since)
                           .group_by(ClaimRecord.campaign_id))
    return {campaign_id: count for campaign_id, count in rows}
