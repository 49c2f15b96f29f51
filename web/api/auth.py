"""Player login."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from flask import current_app, request

from campaigns.models import Player
from campaigns.players import find_or_create, find_or_create_alipay
from engine.errors import NotFoundError

from ..features import device_of
from ..requestctx import container, db
from . import blp
from .schemas import AlipayLoginRequest, DevLoginRequest, ErrorSchema, TokenResponse


@blp.route("/auth/dev", methods=["POST"])
@blp.arguments(DevLoginRequest)
@blp.response(200, TokenResponse)
@blp.alt_response(404, schema=ErrorSchema, description="Dev login is off (HUODONG_DEV_LOGIN is not 1).")
def dev_login(body: dict[str, Any]) -> dict[str, Any]:
    """A player token without Alipay, for the demo and tests."""
    settings = container().settings
    if not settings.dev_login:
        raise NotFoundError("Not found.")
    return _token_for(find_or_create(db(), body["user_id"], clock=container().clock,
                                     age=timedelta(days=body["registered_days_ago"])))


@blp.route("/auth/alipay", methods=["POST"])
@blp.arguments(AlipayLoginRequest)
@blp.response(200, TokenResponse)
@blp.alt_response(401, schema=ErrorSchema, description="AUTH_CODE_INVALID: used, expired or unknown.")
@blp.alt_response(503, schema=ErrorSchema, description="ALIPAY_UNAVAILABLE or ALIPAY_NOT_CONFIGURED.")
def alipay_login(body: dict[str, Any]) -> dict[str, Any]:
    """Exchange a mini-program auth code (alipay.system.oauth.token) for a player token."""
    c = container()
    user = c.alipay.user_for_auth_code(body["auth_code"])
    return _token_for(find_or_create_alipay(db(), user.user_id, clock=c.clock))


def _token_for(player: Player) -> dict[str, Any]:
    """The player's token, bound to the device the login came from (X-Device-Id), if it named one."""
    token = current_app.extensions["huodong.player_tokens"].issue(
        player.id, container().clock.now(), device=device_of(request), registered_at=player.created_at)
    return {"token": token.token, "user_id": token.user_id, "expires_at": token.expires_at.isoformat()}
