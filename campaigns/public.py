"""What players see of campaigns: the public rules of the live version and their own state."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from engine.clock import iso
from engine.eligibility import check_eligible, in_rollout
from engine.errors import HuodongError, NotFoundError
from engine.snapshot import CampaignSnapshot, SnapshotCache

from .history import live_campaign_ids
from .live import LiveState


def summary(snapshot: CampaignSnapshot) -> dict[str, Any]:
    return {"id": snapshot.campaign_id, "name": snapshot.name, "game": snapshot.game,
            "version": snapshot.version, "starts_at": iso(snapshot.starts_at), "ends_at": iso(snapshot.ends_at)}


def live_campaigns(session: Session, snapshots: SnapshotCache, user_id: str) -> list[dict[str, Any]]:
    """Live campaigns this player may see: a gray release shows only to the players let in."""
    views = []
    for campaign_id in live_campaign_ids(session):
        try:
            snapshot = snapshots.get(campaign_id)
        except NotFoundError:  # published in SQL but its live state is not loaded (yet)
            continue
        if in_rollout(snapshot, user_id):
            views.append(summary(snapshot))
    return views


def eligibility(snapshot: CampaignSnapshot, user_id: str, now: datetime) -> dict[str, Any]:
    """Whether this player may play now, and if not the reason code a play would be refused with."""
    try:
        check_eligible(snapshot, user_id, now)
    except HuodongError as refused:
        return {"eligible": False, "code": refused.code, "reason": refused.details.get("reason")}
    return {"eligible": True, "code": None, "reason": None}


def campaign_view(snapshots: SnapshotCache, live: LiveState, campaign_id: int, user_id: str, now: datetime
                  ) -> dict[str, Any]:
    snapshot = snapshots.get(campaign_id)
    status, stock_left, counters = live.player_view(campaign_id, user_id)
    game = snapshot.plugin
    return {
        **summary(snapshot),
        "status": status,
        "timezone": snapshot.timezone,
        "limits": {"per_user": snapshot.per_user, "per_user_per_day": snapshot.per_user_per_day},
        "eligibility": eligibility(snapshot, user_id, now),
        "rules": game.public_view(snapshot.config),
        "me": game.player_state(snapshot.config, stock_left, counters),
    }
