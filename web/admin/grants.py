"""The settlement view: grants by status (dead letters included), a manual retry, compensation grants."""

from __future__ import annotations

from typing import Any

from flask import g

from campaigns.models import AdminRole

from ..api.schemas import ErrorSchema
from ..auth import require_admin
from ..requestctx import container, db
from . import blp
from .schemas import AdminGrantSchema, CompensationRequest, GrantQuery

GRANT_ID = "<string(length=27):grant_id>"


@blp.route("/grants", methods=["GET"])
@require_admin(AdminRole.VIEWER)
@blp.arguments(GrantQuery, location="query")
@blp.response(200, AdminGrantSchema(many=True))
def list_grants(query: dict[str, Any]) -> Any:
    """Grants, newest first; `?status=dead` lists the dead letters waiting for a person."""
    return container().grant_service(db()).list(**query)


@blp.route("/grants/compensations", methods=["POST"])
@require_admin(AdminRole.MARKETER)
@blp.arguments(CompensationRequest)
@blp.response(201, AdminGrantSchema)
@blp.alt_response(404, schema=ErrorSchema)
@blp.alt_response(422, schema=ErrorSchema)
def compensate(body: dict[str, Any]) -> Any:
    """Give a player a grant to make good, with a reason (audited); it is settled like any other grant."""
    return container().grant_service(db()).compensate(**body, actor=g.actor)


@blp.route(f"/grants/{GRANT_ID}/retry", methods=["POST"])
@require_admin(AdminRole.MARKETER)
@blp.response(200, AdminGrantSchema)
@blp.alt_response(404, schema=ErrorSchema)
@blp.alt_response(409, schema=ErrorSchema, description="GRANT_ALREADY_ISSUED or GRANT_BUSY")
def retry_grant(grant_id: str) -> Any:
    """Retry a grant that was not issued (dead or failed): pending again, with a fresh job and retries."""
    return container().grant_service(db()).retry(grant_id, actor=g.actor)
