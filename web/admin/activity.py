"""What the admin page reads besides campaigns: recent activity (live charts), the audit log, audience checks."""

from __future__ import annotations

from typing import Any

from marshmallow import RAISE, Schema, fields, validate

from campaigns import audit
from campaigns.activity import per_minute
from campaigns.attributes import attribute_types
from campaigns.models import AdminRole
from engine.audience import problems

from ..api import CAMPAIGN_ID
from ..api.schemas import ErrorSchema
from ..auth import require_admin
from ..requestctx import container, db
from . import blp


class ActivityQuery(Schema):
    class Meta:
        unknown = RAISE

    minutes = fields.Integer(load_default=60, validate=validate.Range(min=1, max=24 * 60))


class MinuteSchema(Schema):
    at = fields.AwareDateTime(required=True)
    plays = fields.Integer(required=True)
    wins = fields.Integer(required=True)
    cost_fen = fields.Integer(required=True)


class ActivitySchema(Schema):
    minutes = fields.List(fields.Nested(MinuteSchema), required=True,
                          metadata={"description": "oldest first, from the settled rows"})
    live = fields.Dict(required=True, metadata={"description": "budget, spent and stock now (Redis)"})
    fraud = fields.Dict(required=True, metadata={"description": "blocked, shadow and held counts per rule"})


class AuditQuery(Schema):
    class Meta:
        unknown = RAISE

    subject_type = fields.String(validate=validate.Length(max=40))
    subject_id = fields.String(validate=validate.Length(max=64))
    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=200))


class AuditSchema(Schema):
    id = fields.Integer(required=True)
    at = fields.AwareDateTime(required=True)
    actor = fields.String(required=True)
    action = fields.String(required=True)
    subject_type = fields.String(required=True)
    subject_id = fields.String(required=True)
    details = fields.Dict(required=True, metadata={"description": "before, after and the rest"})


@blp.route(f"/campaigns/{CAMPAIGN_ID}/activity", methods=["GET"])
@require_admin(AdminRole.VIEWER)
@blp.arguments(ActivityQuery, location="query")
@blp.response(200, ActivitySchema)
@blp.alt_response(404, schema=ErrorSchema)
def campaign_activity(query: dict[str, Any], campaign_id: int) -> dict[str, Any]:
    """Plays, wins and cost per minute, with the live budget and stock and the fraud gate's counts."""
    c = container()
    c.campaign_service(db()).get(campaign_id)
    stats = c.live_state.stats(campaign_id)
    return {"minutes": per_minute(db(), campaign_id, now=c.clock.now(), minutes=query["minutes"]),
            "live": {"status": stats.status, "budget_fen": stats.budget_fen, "spent_fen": stats.spent_fen,
                     "stock": stats.stock},
            "fraud": c.live_state.fraud_stats(campaign_id)}


@blp.route("/audit", methods=["GET"])
@require_admin(AdminRole.VIEWER)
@blp.arguments(AuditQuery, location="query")
@blp.response(200, AuditSchema(many=True))
def audit_log(query: dict[str, Any]) -> Any:
    """The audit log, newest first: who did what, when, with the state before and after."""
    return audit.entries(db(), **query)


class AudienceCheckRequest(Schema):
    class Meta:
        unknown = RAISE

    expression = fields.String(required=True, validate=validate.Length(max=2000))


class RuleProblemSchema(Schema):
    line = fields.Integer(required=True)
    column = fields.Integer(required=True)
    message = fields.String(required=True)


class AudienceCheckSchema(Schema):
    ok = fields.Boolean(required=True)
    problems = fields.List(fields.Nested(RuleProblemSchema), required=True)


@blp.route("/audience/check", methods=["POST"])
@require_admin(AdminRole.VIEWER)
@blp.arguments(AudienceCheckRequest)
@blp.response(200, AudienceCheckSchema)
def check_audience(body: dict[str, Any]) -> dict[str, Any]:
    """Check an audience rule as it is typed: every problem at its line and column, against the players'
    imported attributes (the same check as saving a campaign)."""
    found = problems(body["expression"], attribute_types(db())) if body["expression"].strip() else []
    return {"ok": not found, "problems": [p.__dict__ for p in found]}
