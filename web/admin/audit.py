"""The audit log: who did what, when, with the state before and after."""

from __future__ import annotations

from typing import Any

from campaigns import audit
from campaigns.models import AdminRole

from ..auth import require_admin
from ..requestctx import db
from . import blp
from .schemas import AuditQuery, AuditSchema


@blp.route("/audit", methods=["GET"])
@require_admin(AdminRole.VIEWER)
@blp.arguments(AuditQuery, location="query")
@blp.response(200, AuditSchema(many=True))
def audit_log(query: dict[str, Any]) -> Any:
    """The audit log, newest first: who did what, when, with the state before and after."""
    return audit.entries(db(), **query)
