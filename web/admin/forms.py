"""What the editor's forms need from the API: the JSON Schemas they are built from, and a check of a draft
without saving it (errors beside their fields, the rules players would see as the marketer types)."""

from __future__ import annotations

from typing import Any

from campaigns.json_schemas import definition_schema, policy_schema, reward_schemas
from campaigns.models import AdminRole
from engine.errors import NotFoundError
from engine.game import games

from ..api.schemas import ErrorSchema
from ..auth import require_admin
from ..jsonio import json_body
from ..requestctx import container, db
from . import blp
from .campaigns import DEFINITION_BODY
from .schemas import CampaignCheckSchema, FormSchema

GAME = "<string:game>"


@blp.route(f"/forms/campaign/{GAME}", methods=["GET"])
@require_admin(AdminRole.VIEWER)
@blp.response(200, FormSchema)
@blp.alt_response(404, schema=ErrorSchema)
def campaign_form(game: str) -> dict[str, Any]:
    """The JSON Schema of a campaign of this game (its config in place, the fraud policies that exist) and
    each reward type's params: the editor builds its form from these."""
    if game not in games:
        raise NotFoundError(f"No game named {game!r}.")
    policies = [p["name"] for p in container().fraud_policy_service(db()).list()]
    return {"schema": definition_schema(game, policies), "rewards": reward_schemas()}


@blp.route("/forms/fraud-policy", methods=["GET"])
@require_admin(AdminRole.VIEWER)
@blp.response(200, FormSchema)
def fraud_policy_form() -> dict[str, Any]:
    """The JSON Schema of a fraud policy: the policy editor builds its form from it."""
    return {"schema": policy_schema(), "rewards": {}}


@blp.route("/campaigns/check", methods=["POST"])
@require_admin(AdminRole.VIEWER)
@blp.doc(requestBody=DEFINITION_BODY)
@blp.response(200, CampaignCheckSchema)
@blp.alt_response(422, schema=ErrorSchema)
def check_campaign() -> dict[str, Any]:
    """Check a definition as saving it would, without saving: 422 with the errors by field, or its canonical
    form and the rules players would be shown (e.g. each prize's probability)."""
    return container().campaign_service(db()).check(json_body())
