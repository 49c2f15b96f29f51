"""Campaign management: create, read, update, publish, pause, resume, end, versions."""

from __future__ import annotations

from typing import Any

from flask import g
from marshmallow import RAISE, Schema, fields, validate

from campaigns.forecasts import simulate
from campaigns.models import AdminRole, Campaign
from campaigns.schemas import CampaignDefinitionSchema
from campaigns.services import CampaignService, validated
from engine.simulation import BehaviourSchema

from ..api import CAMPAIGN_ID
from ..api.schemas import ErrorSchema
from ..auth import require_admin
from ..jsonio import json_body
from ..requestctx import container, db
from . import blp
from .schemas import CampaignAdminSchema, ChangeSchema, ForecastSchema, VersionSchema

DEFINITION_BODY = {"required": True, "content": {"application/json": {"schema": CampaignDefinitionSchema}}}


def _service() -> CampaignService:
    return container().campaign_service(db())


def _view(campaign: Campaign, *, with_live: bool = True) -> dict[str, Any]:
    view = {column: getattr(campaign, column) for column in
            ("id", "name", "game", "status", "live_version", "draft", "created_by", "created_at", "updated_at")}
    view["live"] = _service().live_stats(campaign.id) if with_live else None
    return view


@blp.route("/campaigns", methods=["POST"])
@require_admin(AdminRole.MARKETER)
@blp.doc(requestBody=DEFINITION_BODY)
@blp.response(201, CampaignAdminSchema)
@blp.alt_response(422, schema=ErrorSchema)
def create_campaign() -> dict[str, Any]:
    """Create a draft from a campaign definition."""
    return _view(_service().create(json_body(), actor=g.actor), with_live=False)


@blp.route("/campaigns", methods=["GET"])
@require_admin(AdminRole.VIEWER)
@blp.response(200, CampaignAdminSchema(many=True))
def list_campaigns() -> list[dict[str, Any]]:
    """Every campaign (without live stats; read one for those)."""
    return [_view(c, with_live=False) for c in _service().list()]


@blp.route(f"/campaigns/{CAMPAIGN_ID}", methods=["GET"])
@require_admin(AdminRole.VIEWER)
@blp.response(200, CampaignAdminSchema)
@blp.alt_response(404, schema=ErrorSchema)
def get_campaign(campaign_id: int) -> dict[str, Any]:
    """One campaign, its draft, and live stock, budget used and status."""
    return _view(_service().get(campaign_id))


@blp.route(f"/campaigns/{CAMPAIGN_ID}", methods=["PUT"])
@require_admin(AdminRole.MARKETER)
@blp.doc(requestBody=DEFINITION_BODY)
@blp.response(200, CampaignAdminSchema)
@blp.alt_response(422, schema=ErrorSchema)
def update_campaign(campaign_id: int) -> dict[str, Any]:
    """Replace the draft. A live campaign plays its published version until the draft is published."""
    return _view(_service().update(campaign_id, json_body(), actor=g.actor))


@blp.route(f"/campaigns/{CAMPAIGN_ID}/publish", methods=["POST"])
@require_admin(AdminRole.PUBLISHER)
@blp.response(200, VersionSchema)
@blp.alt_response(409, schema=ErrorSchema)
@blp.alt_response(422, schema=ErrorSchema)
def publish_campaign(campaign_id: int) -> dict[str, Any]:
    """Validate the draft, write an immutable version and load its live state. Same content, same version."""
    version = _service().publish(campaign_id, actor=g.actor)
    return {**_version_fields(version), "diff": []}


@blp.route(f"/campaigns/{CAMPAIGN_ID}/simulate", methods=["POST"])
@require_admin(AdminRole.MARKETER)
@blp.doc(requestBody={"required": False, "content": {"application/json": {"schema": BehaviourSchema}}})
@blp.response(200, ForecastSchema)
@blp.alt_response(422, schema=ErrorSchema)
def simulate_campaign(campaign_id: int) -> dict[str, Any]:
    """Monte Carlo forecast of the draft: cost p50/p95/p99 against the budget, stock-out days, expected wins."""
    campaign = _service().get(campaign_id)
    return simulate(validated(campaign.draft), json_body())


def _lifecycle(action: str, summary: str) -> None:
    """Register POST /campaigns/<id>/<action> for one lifecycle transition."""
    @require_admin(AdminRole.PUBLISHER)
    @blp.response(200, CampaignAdminSchema)
    @blp.alt_response(409, schema=ErrorSchema)
    def view(campaign_id: int) -> dict[str, Any]:
        return _view(_service().transition(campaign_id, action, actor=g.actor))

    view.__name__ = f"{action}_campaign"
    view.__doc__ = summary
    blp.route(f"/campaigns/{CAMPAIGN_ID}/{action}", methods=["POST"])(view)


_lifecycle("pause", "Pause a live campaign: plays are refused with CAMPAIGN_NOT_LIVE at once.")
_lifecycle("resume", "Resume a paused campaign.")
_lifecycle("end", "End a campaign for good.")


class RolloutRequest(Schema):
    class Meta:
        unknown = RAISE

    percent = fields.Integer(required=True, strict=True, validate=validate.Range(min=0, max=100))


@blp.route(f"/campaigns/{CAMPAIGN_ID}/rollout", methods=["POST"])
@require_admin(AdminRole.PUBLISHER)
@blp.arguments(RolloutRequest)
@blp.response(200, CampaignAdminSchema)
@blp.alt_response(409, schema=ErrorSchema)
def set_rollout(body: dict[str, Any], campaign_id: int) -> dict[str, Any]:
    """Gray release: publish the live version again with another rollout percentage and nothing else (the
    draft's other edits stay unpublished). Raising it keeps every player already let in."""
    service = _service()
    service.set_rollout(campaign_id, body["percent"], actor=g.actor)
    return _view(service.get(campaign_id))


@blp.route(f"/campaigns/{CAMPAIGN_ID}/changes", methods=["GET"])
@require_admin(AdminRole.VIEWER)
@blp.response(200, ChangeSchema(many=True))
@blp.alt_response(404, schema=ErrorSchema)
def pending_changes(campaign_id: int) -> list[dict[str, Any]]:
    """What publishing the draft now would change against the latest version (RFC 6902 operations)."""
    return _service().pending_changes(campaign_id)


@blp.route(f"/campaigns/{CAMPAIGN_ID}/versions", methods=["GET"])
@require_admin(AdminRole.VIEWER)
@blp.response(200, VersionSchema(many=True))
def list_versions(campaign_id: int) -> list[dict[str, Any]]:
    """Every published version with its diff (RFC 6902) from the one before."""
    return [{**_version_fields(v.version), "diff": v.diff} for v in _service().versions(campaign_id)]


class DiffQuery(Schema):
    class Meta:
        unknown = RAISE

    older = fields.Integer(required=True, validate=validate.Range(min=1, max=2**31 - 1), data_key="from")
    newer = fields.Integer(required=True, validate=validate.Range(min=1, max=2**31 - 1), data_key="to")


@blp.route(f"/campaigns/{CAMPAIGN_ID}/versions/diff", methods=["GET"])
@require_admin(AdminRole.VIEWER)
@blp.arguments(DiffQuery, location="query")
@blp.response(200, ChangeSchema(many=True))
@blp.alt_response(404, schema=ErrorSchema)
def diff_versions(query: dict[str, Any], campaign_id: int) -> list[dict[str, Any]]:
    """What changed between any two published versions: ``?from=1&to=3`` (RFC 6902 operations)."""
    return _service().diff(campaign_id, query["older"], query["newer"])


def _version_fields(version: Any) -> dict[str, Any]:
    return {column: getattr(version, column) for column in
            ("version", "content_hash", "commitment", "published_by", "published_at", "definition")}
