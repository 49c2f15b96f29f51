"""Campaigns as players see them, and the play endpoint (the hot path)."""

from __future__ import annotations

from typing import Any

from flask import current_app, g, request

from campaigns.fairness import fairness_report
from campaigns.public import campaign_view, live_campaigns
from engine.runtime import PlayRequest

from ..auth import require_player
from ..features import request_features
from ..jsonio import json_body
from ..requestctx import container, db
from . import CAMPAIGN_ID, blp
from .schemas import (
    CampaignSummarySchema,
    CampaignViewSchema,
    ErrorSchema,
    FairnessSchema,
    OrderStatusSchema,
    PaymentSchema,
    PayRequest,
    PlayResponse,
)

PLAY_ERRORS = {
    400: "IDEMPOTENCY_KEY_REQUIRED or MALFORMED_REQUEST",
    401: "UNAUTHORIZED or TOKEN_EXPIRED",
    403: "NOT_ELIGIBLE (details.reason: audience or rollout); RISK_DENIED (details.rule: the fraud rule); "
         "PACKET_NOT_YOURS, CARD_REQUEST_NOT_YOURS",
    404: "NOT_FOUND (campaign or order), UNKNOWN_ACTION, PACKET_NOT_FOUND, CARD_REQUEST_NOT_FOUND",
    409: "REPLAY_REJECTED (details.reason: missing, stale or nonce_seen), SOLD_OUT, LIMIT_REACHED, "
         "BUDGET_EXHAUSTED, CAMPAIGN_NOT_LIVE, ORDER_NOT_HELD, CONFLICT (reason busy: the "
         "player's own plays kept racing), NO_CHANCES, NOT_ENOUGH_POINTS, TASK_TOKEN_INVALID, TASK_TOO_SOON, "
         "TASK_LIMIT_REACHED; checkin: ALREADY_CHECKED_IN, MAKEUP_NOT_OFFERED, MAKEUP_LIMIT_REACHED; lottery: "
         "CHANCES_NOT_SOLD, BOUGHT_CHANCES_LIMIT; cards: CARD_NOT_HELD, CARD_GIFT_LIMIT_REACHED, "
         "CARD_ASK_LIMIT_REACHED, CARD_REQUEST_CLOSED; referral: PACKET_ALREADY_OPEN, PACKET_LIMIT_REACHED, "
         "ALREADY_ASSISTED, ASSIST_LIMIT_REACHED, PACKET_CLOSED, PACKET_FULL, PACKET_EXPIRED, PACKET_NOT_FULL",
    413: "PAYLOAD_TOO_LARGE",
    429: "RATE_LIMITED (details.reason: the rate limit's name; details.retry_after_seconds)",
    503: "SERVICE_UNAVAILABLE (Redis or the database is away: retry with the same Idempotency-Key)",
    415: "UNSUPPORTED_MEDIA_TYPE (a body that is not application/json)",
    422: "VALIDATION_ERROR, IDEMPOTENCY_KEY_REUSED, UNKNOWN_SKU, UNKNOWN_TASK, UNKNOWN_CARD, CARD_SELF_TRANSFER, "
         "SELF_ASSIST, MAKEUP_NOT_PAST, MAKEUP_OUT_OF_WINDOW",
}


@blp.route("/campaigns", methods=["GET"])
@require_player
@blp.response(200, CampaignSummarySchema(many=True))
def list_campaigns() -> list[dict[str, Any]]:
    """Live campaigns."""
    c = container()
    return live_campaigns(db(), c.snapshots, g.user_id, c.attributes)


@blp.route(f"/campaigns/{CAMPAIGN_ID}", methods=["GET"])
@require_player
@blp.response(200, CampaignViewSchema)
@blp.alt_response(404, schema=ErrorSchema)
def get_campaign(campaign_id: int) -> dict[str, Any]:
    """The public rules of a live campaign and this player's state in it."""
    c = container()
    return campaign_view(c.snapshots, c.live_state, campaign_id, g.user_id, c.clock.now(), c.attributes)


@blp.route(f"/campaigns/{CAMPAIGN_ID}/fairness", methods=["GET"])
@require_player
@blp.response(200, FairnessSchema)
@blp.alt_response(404, schema=ErrorSchema)
def get_fairness(campaign_id: int) -> dict[str, Any]:
    """Each version's commitment to its draw secret; the secrets themselves once the campaign has ended."""
    return fairness_report(db(), campaign_id)


@blp.route(f"/campaigns/{CAMPAIGN_ID}/actions/pay", methods=["POST"])
@require_player
@blp.arguments(PayRequest)
@blp.response(200, PaymentSchema)
@blp.alt_response(404, schema=ErrorSchema)
@blp.alt_response(409, schema=ErrorSchema, description="ORDER_NOT_PAYABLE, ALIPAY_ACCOUNT_REQUIRED, PAYMENT_REFUSED")
@blp.alt_response(503, schema=ErrorSchema, description="ALIPAY_UNAVAILABLE or ALIPAY_NOT_CONFIGURED")
def pay(body: dict[str, Any], campaign_id: int) -> dict[str, Any]:
    """Pay a held flash-sale order: creates the Alipay trade (once per order) and answers what my.tradePay needs."""
    return container().payments.pay(campaign_id, body["order_id"], g.user_id)


@blp.route(f"/campaigns/{CAMPAIGN_ID}/orders/<string(length=25):order_id>", methods=["GET"])
@require_player
@blp.response(200, OrderStatusSchema)
@blp.alt_response(404, schema=ErrorSchema)
def get_order(campaign_id: int, order_id: str) -> dict[str, Any]:
    """An order as the mini-program polls it after my.tradePay; a held order with a trade asks Alipay."""
    return container().payments.order_status(campaign_id, order_id, g.user_id)


@blp.route(f"/campaigns/{CAMPAIGN_ID}/actions/<action>", methods=["POST"])
@require_player
@blp.doc(
    parameters=[{"in": "header", "name": "Idempotency-Key", "required": True, "schema": {"type": "string"},
                 "description": "A fresh key per intended action; a retry sends the same key and body."}],
    requestBody={"required": True, "content": {"application/json": {"schema": {"type": "object"}}},
                 "description": "The action's body, per the game. flash_sale: buy {sku, quantity}, cancel "
                                "{order_id}. checkin: checkin {}, makeup {date}. lottery: draw {times: 1|10}, "
                                "buy_chances {count}. cards: draw {}, gift {card, to_user}, ask {card, "
                                "from_user}, accept {request_id}. referral: open {}, assist {share_code}, "
                                "cashout {packet_id}. checkin, lottery and cards: task_start {task}, "
                                "task_complete {task, token}."},
    responses={str(status): {"description": codes, "content": {"application/json": {"schema": ErrorSchema}}}
               for status, codes in PLAY_ERRORS.items()},
)
@blp.response(200, PlayResponse)
def play(campaign_id: int, action: str) -> Any:
    """Play: buy, cancel, draw... Answers the outcome, the grants won (pending settlement) and state."""
    result = container().play_service.play(PlayRequest(
        campaign_id=campaign_id, user_id=g.user_id, action=action, payload=json_body(),
        idempotency_key=request.headers.get("Idempotency-Key"), features=request_features(),
    ))
    response = current_app.response_class(result.to_json(), mimetype="application/json")
    if result.replayed:
        response.headers["Idempotent-Replayed"] = "true"
    return response
