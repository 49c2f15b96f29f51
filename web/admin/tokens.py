"""Admin API tokens (for merchants' scripts): list, make (the secret is in the answer, once), revoke. Admins
only; audited."""

from __future__ import annotations

from typing import Any

from flask import g

from campaigns.models import AdminRole
from campaigns.tokens import AdminTokenService, view

from ..api.schemas import ErrorSchema
from ..auth import require_admin
from ..requestctx import container, db
from . import blp
from .schemas import AdminTokenSchema, NewAdminTokenRequest, NewAdminTokenSchema


def _service() -> AdminTokenService:
    return AdminTokenService(db(), clock=container().clock)


@blp.route("/tokens", methods=["GET"])
@require_admin(AdminRole.ADMIN)
@blp.response(200, AdminTokenSchema(many=True))
def list_tokens() -> list[dict[str, Any]]:
    """Every admin token, revoked ones too (never their secrets)."""
    return [view(t) for t in _service().list()]


@blp.route("/tokens", methods=["POST"])
@require_admin(AdminRole.ADMIN)
@blp.arguments(NewAdminTokenRequest)
@blp.response(201, NewAdminTokenSchema)
@blp.alt_response(422, schema=ErrorSchema)
def create_token(body: dict[str, Any]) -> dict[str, Any]:
    """Make a token for a script: ``token`` is in this answer only (just its hash is kept)."""
    token, secret = _service().create(role=body["role"], name=body["name"], actor=g.actor)
    return {**view(token), "token": secret}


@blp.route("/tokens/<int(max=2147483647):token_id>/revoke", methods=["POST"])
@require_admin(AdminRole.ADMIN)
@blp.response(200, AdminTokenSchema)
@blp.alt_response(404, schema=ErrorSchema)
def revoke_token(token_id: int) -> dict[str, Any]:
    """Revoke a token: requests with it are refused (401) from now on. Revoking again changes nothing."""
    return view(_service().revoke(token_id, actor=g.actor))
