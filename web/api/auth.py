"""Player login."""

from __future__ import annotations

from typing import Any

from flask import current_app

from campaigns.players import find_or_create
from engine.errors import NotFoundError

from ..requestctx import container, db
from . import blp
from .schemas import DevLoginRequest, ErrorSchema, TokenResponse


@blp.route("/auth/dev", methods=["POST"])
@blp.arguments(DevLoginRequest)
@blp.response(200, TokenResponse)
@blp.alt_response(404, schema=ErrorSchema, description="Dev login is off (HUODONG_DEV_LOGIN is not 1).")
def dev_login(body: dict[str, Any]) -> dict[str, Any]:
    """A player token without Alipay, for the demo and tests."""
    settings = container().settings
    if not settings.dev_login:
        raise NotFoundError("Not found.")
    player = find_or_create(db(), body["user_id"], clock=container().clock)
    token = current_app.extensions["huodong.player_tokens"].issue(player.id, container().clock.now())
    return {"token": token.token, "user_id": token.user_id, "expires_at": token.expires_at.isoformat()}
