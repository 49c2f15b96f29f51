"""Audience rules checked as they are typed (the editor), the same check as saving a campaign."""

from __future__ import annotations

from typing import Any

from campaigns.attributes import attribute_types
from campaigns.models import AdminRole
from engine.audience import problems

from ..auth import require_admin
from ..requestctx import db
from . import blp
from .schemas import AudienceCheckRequest, AudienceCheckSchema


@blp.route("/audience/check", methods=["POST"])
@require_admin(AdminRole.VIEWER)
@blp.arguments(AudienceCheckRequest)
@blp.response(200, AudienceCheckSchema)
def check_audience(body: dict[str, Any]) -> dict[str, Any]:
    """Check an audience rule as it is typed: every problem at its line and column, against the players'
    imported attributes (the same check as saving a campaign)."""
    found = problems(body["expression"], attribute_types(db())) if body["expression"].strip() else []
    return {"ok": not found, "problems": found}
