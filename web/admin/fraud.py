"""Fraud policies (named, validated, audited) and what the gate did on a campaign."""

from __future__ import annotations

from typing import Any

from flask import g, request

from campaigns.models import AdminRole
from engine.clock import to_ms
from engine.errors import NotFoundError, ValidationError
from engine.fraud.policy import PolicySchema, policy_of

from ..api import CAMPAIGN_ID
from ..api.schemas import ErrorSchema
from ..auth import require_admin
from ..jsonio import json_body
from ..requestctx import container, db
from . import blp
from .schemas import CampaignFraudSchema, FraudPolicyViewSchema, PolicyHourSchema

POLICY_NAME = "<string:name>"


@blp.route("/fraud-policies", methods=["GET"])
@require_admin(AdminRole.VIEWER)
@blp.response(200, FraudPolicyViewSchema(many=True))
def list_policies() -> list[dict[str, Any]]:
    """Every saved policy, and the built-in default (until one named default is saved)."""
    return container().fraud_policy_service(db()).list()


@blp.route(f"/fraud-policies/{POLICY_NAME}", methods=["GET"])
@require_admin(AdminRole.VIEWER)
@blp.response(200, FraudPolicyViewSchema)
@blp.alt_response(404, schema=ErrorSchema)
def get_policy(name: str) -> dict[str, Any]:
    return container().fraud_policy_service(db()).get(name)


@blp.route(f"/fraud-policies/{POLICY_NAME}", methods=["PUT"])
@require_admin(AdminRole.MARKETER)
@blp.doc(requestBody={"required": True, "content": {"application/json": {"schema": PolicySchema}}})
@blp.response(200, FraudPolicyViewSchema)
@blp.alt_response(413, schema=ErrorSchema, description="PAYLOAD_TOO_LARGE: the body is over the size limit.")
@blp.alt_response(422, schema=ErrorSchema)
def save_policy(name: str) -> dict[str, Any]:
    """Create or replace a policy (the whole document). Campaigns naming it play under it within a second."""
    if not request.get_data(cache=True).strip():  # a missing body is not "every rule at its default"
        raise ValidationError("Send the policy as a JSON object ({} for every rule at its default).",
                              fields={"body": ["Missing."]})
    return container().fraud_policy_service(db()).save(name, json_body(), actor=g.actor)


@blp.route(f"/campaigns/{CAMPAIGN_ID}/fraud", methods=["GET"])
@require_admin(AdminRole.VIEWER)
@blp.response(200, CampaignFraudSchema)
@blp.alt_response(404, schema=ErrorSchema)
def campaign_fraud(campaign_id: int) -> dict[str, Any]:
    """The campaign's policy, the plays its rules refused (per rule, and the latest 50 with who and where) and
    what its shadow rules would have refused."""
    c = container()
    campaign = c.campaign_service(db()).get(campaign_id)
    try:
        policy = c.snapshots.get(campaign_id).fraud_policy  # the live version's
    except NotFoundError:  # never published
        policy = policy_of(campaign.draft)
    return {"policy": policy, **c.live_state.fraud_stats(campaign_id), "recent": c.live_state.fraud_log(campaign_id),
            "last_hour": c.live_state.gate_last_hour(campaign_id, to_ms(c.clock.now()))}


@blp.route(f"/fraud-policies/{POLICY_NAME}/last-hour", methods=["GET"])
@require_admin(AdminRole.VIEWER)
@blp.response(200, PolicyHourSchema)
def policy_last_hour(name: str) -> dict[str, Any]:
    """What the policy refused, and its shadow rules would have refused, in the last hour over every campaign
    playing under it: try a policy in shadow on live traffic, then enforce it."""
    return container().fraud_policy_service(db()).last_hour(name)
