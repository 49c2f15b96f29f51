"""What players see of campaigns: the public rules of the live version and their own state."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from engine.clock import iso
from engine.errors import NotFoundError
from engine.snapshot import CampaignSnapshot, SnapshotCache

from .history import live_campaign_ids
from .live import LiveState


def summary(snapshot: CampaignSnapshot) -> dict[str, Any]:
    return {"id": snapshot.campaign_id, "name": snapshot.name, "game": snapshot.game,
            "version": snapshot.version, "starts_at": iso(snapshot.starts_at), "ends_at": iso(snapshot.ends_at)}


def live_campaigns(session: Session, snapshots: SnapshotCache) -> list[dict[str, Any]]:
    views = []
    for campaign_id in live_campaign_ids(session):
        try:
            views.append(summary(snapshots.get(campaign_id)))
        except NotFoundError:  # published in SQL but its live state is not loaded (yet)
            continue
    return views


def campaign_view(snapshots: SnapshotCache, live: LiveState, campaign_id: int, user_id: str) -> dict[str, Any]:
    snapshot = snapshots.get(campaign_id)
    status, stock_left, counters = live.player_view(campaign_id, user_id)
    game = snapshot.plugin
    return {
        **summary(snapshot),
        "status": status,
        "timezone": snapshot.timezone,
        "limits": {"per_user": snapshot.per_user, "per_user_per_day": snapshot.per_user_per_day},
        "rules": game.public_view(snapshot.config),
        "me": game.player_state(snapshot.config, stock_left, counters),
    }
