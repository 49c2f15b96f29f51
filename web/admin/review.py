"""The review queue: plays the fraud gate held, with their reasons and tree; approve or reject (audited)."""

from __future__ import annotations

from typing import Any

from flask import g

from campaigns.models import AdminRole

from ..api import CAMPAIGN_ID
from ..api.schemas import ErrorSchema
from ..auth import require_admin
from ..requestctx import container, db
from . import blp
from .schemas import ReviewDecisionRequest, ReviewDetailSchema, ReviewItemSchema, ReviewQuery

CLAIM_ID = "<string(minlength=24, maxlength=40):claim_id>"


@blp.route(f"/campaigns/{CAMPAIGN_ID}/review", methods=["GET"])
@require_admin(AdminRole.VIEWER)
@blp.arguments(ReviewQuery, location="query")
@blp.response(200, ReviewItemSchema(many=True))
def review_queue(query: dict[str, Any], campaign_id: int) -> Any:
    """The campaign's held plays, oldest first (``?status=approved`` or ``rejected`` for the decided ones)."""
    return container().review_service(db()).queue(campaign_id, **query)


@blp.route(f"/review/{CLAIM_ID}", methods=["GET"])
@require_admin(AdminRole.VIEWER)
@blp.response(200, ReviewDetailSchema)
@blp.alt_response(404, schema=ErrorSchema)
def review_item(claim_id: str) -> Any:
    """One play with its reasons, its grants and the referral tree around it."""
    return container().review_service(db()).get(claim_id)


def _decision(verb: str, summary: str) -> None:
    """Register POST /review/<claim_id>/<verb> for one decision on a held play."""
    @require_admin(AdminRole.MARKETER)
    @blp.arguments(ReviewDecisionRequest)
    @blp.response(200, ReviewDetailSchema)
    @blp.alt_response(404, schema=ErrorSchema)
    @blp.alt_response(409, schema=ErrorSchema, description="REVIEW_CLOSED: decided already, or never held")
    def view(body: dict[str, Any], claim_id: str) -> Any:
        return getattr(container().review_service(db()), verb)(claim_id, actor=g.actor, **body)

    view.__name__ = f"{verb}_play"
    view.__doc__ = summary
    blp.route(f"/review/{CLAIM_ID}/{verb}", methods=["POST"])(view)


_decision("approve", "Release the play's rewards: its grants are issued like any other.")
_decision("reject", "Never issue the play's rewards; its budget and stock go back to the campaign.")
