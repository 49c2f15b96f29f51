"""The player's own grants, orders and points."""

from __future__ import annotations

from typing import Any

from flask import g

from campaigns.history import player_grants, player_orders
from rewards.points import balance, entries
from rewards.tiers import player_tier

from ..auth import require_player
from ..requestctx import container, db
from . import blp
from .schemas import GrantSchema, ListQuery, OrderSchema, PointsSchema


@blp.route("/me/grants", methods=["GET"])
@require_player
@blp.arguments(ListQuery, location="query")
@blp.response(200, GrantSchema(many=True))
def my_grants(query: dict[str, Any]) -> Any:
    """Rewards won, newest first, with their settlement status."""
    return player_grants(db(), g.user_id, limit=query["limit"])


@blp.route("/me/orders", methods=["GET"])
@require_player
@blp.arguments(ListQuery, location="query")
@blp.response(200, OrderSchema(many=True))
def my_orders(query: dict[str, Any]) -> Any:
    """Orders placed, newest first."""
    return player_orders(db(), g.user_id, limit=query["limit"])


@blp.route("/me/points", methods=["GET"])
@require_player
@blp.arguments(ListQuery, location="query")
@blp.response(200, PointsSchema)
def my_points(query: dict[str, Any]) -> Any:
    """Points balance (unexpired), membership tier and the latest ledger entries."""
    session, c = db(), container()
    now = c.clock.now()
    return {"balance": balance(session, g.user_id, now),
            "tier": player_tier(session, g.user_id, now, c.settings.tier_ladder),
            "entries": entries(session, g.user_id, limit=query["limit"])}
