"""What players see of campaigns: the public rules of the live version and their own state."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from engine.attributes import AttributeStore
from engine.clock import business_day, iso
from engine.eligibility import check_audience, check_eligible, in_rollout
from engine.errors import HuodongError, NotEligibleError, NotFoundError
from engine.game import ViewContext
from engine.snapshot import CampaignSnapshot, SnapshotCache
from engine.variants import player_variant

from .history import live_campaign_ids
from .live import LiveState


def summary(snapshot: CampaignSnapshot) -> dict[str, Any]:
    return {"id": snapshot.campaign_id, "name": snapshot.name, "game": snapshot.game,
            "version": snapshot.version, "starts_at": iso(snapshot.starts_at), "ends_at": iso(snapshot.ends_at)}


def live_campaigns(session: Session, snapshots: SnapshotCache, user_id: str,
                   attributes: AttributeStore | None = None) -> list[dict[str, Any]]:
    """Live campaigns this player may see: a gray release or an audience rule shows only to the players let in."""
    views = []
    for campaign_id in live_campaign_ids(session):
        try:
            snapshot = snapshots.get(campaign_id)
            check_audience(snapshot, user_id, attributes)
        except (NotFoundError, NotEligibleError):  # not loaded in Redis (yet), or not for this player
            continue
        if in_rollout(snapshot, user_id):
            views.append(summary(snapshot))
    return views


def eligibility(snapshot: CampaignSnapshot, user_id: str, now: datetime, attributes: AttributeStore | None
                ) -> dict[str, Any]:
    """Whether this player may play now, and if not the reason code a play would be refused with."""
    try:
        check_eligible(snapshot, user_id, now, attributes)
    except HuodongError as refused:
        return {"eligible": False, "code": refused.code, "reason": refused.details.get("reason")}
    return {"eligible": True, "code": None, "reason": None}


def campaign_view(snapshots: SnapshotCache, live: LiveState, campaign_id: int, user_id: str, now: datetime,
                  attributes: AttributeStore | None = None) -> dict[str, Any]:
    """The rules of the player's variant and their state, as the game renders them."""
    snapshot = snapshots.get(campaign_id)
    game = snapshot.plugin
    ctx = ViewContext(campaign_id=campaign_id, user_id=user_id, now=now, day=business_day(now, snapshot.timezone),
                      starts_on=snapshot.starts_on)
    status, state = live.player_view(campaign_id, user_id, game.view_reads(snapshot.config, ctx))
    variant = player_variant(campaign_id, user_id, snapshot.variants, state.player.get("variant"))
    config = snapshot.config_for(variant)
    ctx = replace(ctx, variant=variant)
    return {
        **summary(snapshot),
        "status": status,
        "timezone": snapshot.timezone,
        "limits": {"per_user": snapshot.per_user, "per_user_per_day": snapshot.per_user_per_day},
        "eligibility": eligibility(snapshot, user_id, now, attributes),
        "variant": variant,
        "rules": game.public_view(config),
        "me": game.player_state(config, state, ctx),
    }
