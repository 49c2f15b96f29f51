"""What happened on a campaign lately: the admin page's live charts."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from campaigns.activity import by_variant, per_minute
from campaigns.models import AdminRole
from engine.clock import to_ms
from rewards.lag import campaign_lag

from ..api import CAMPAIGN_ID
from ..api.schemas import ErrorSchema
from ..auth import require_admin
from ..requestctx import container, db
from . import blp
from .schemas import ActivityQuery, ActivitySchema


@blp.route(f"/campaigns/{CAMPAIGN_ID}/activity", methods=["GET"])
@require_admin(AdminRole.VIEWER)
@blp.arguments(ActivityQuery, location="query")
@blp.response(200, ActivitySchema)
@blp.alt_response(404, schema=ErrorSchema)
def campaign_activity(query: dict[str, Any], campaign_id: int) -> dict[str, Any]:
    """Plays, wins and cost per minute, the stock and spend a minute (burn-down), refusals by reason, the A/B
    variants compared, the live budget and stock, the fraud gate's counts and what was won and not yet issued."""
    c = container()
    c.campaign_service(db()).get(campaign_id)
    stats = c.live_state.stats(campaign_id)
    now = c.clock.now()
    return {"minutes": per_minute(db(), campaign_id, now=now, minutes=query["minutes"]),
            "samples": c.live_state.samples(campaign_id, now - timedelta(minutes=query["minutes"])),
            "refusals": c.live_state.refusal_stats(campaign_id),
            "variants": by_variant(db(), campaign_id),
            "live": {"status": stats.status, "budget_fen": stats.budget_fen, "spent_fen": stats.spent_fen,
                     "stock": stats.stock},
            "fraud": {**c.live_state.fraud_stats(campaign_id),
                      "last_hour": c.live_state.gate_last_hour(campaign_id, to_ms(now))},
            "settlement": campaign_lag(db(), c.redis, c.settings.redis_namespace, campaign_id, now)}
