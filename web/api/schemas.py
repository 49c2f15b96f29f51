"""Request and response schemas of the player API (they also make its OpenAPI document)."""

from __future__ import annotations

from marshmallow import RAISE, Schema, fields, validate

PLAYER_ID = validate.Regexp(r"^[A-Za-z0-9_.-]{1,64}$", error="1 to 64 letters, digits, _, . or -.")


class StrictSchema(Schema):
    class Meta:
        unknown = RAISE


class ErrorBodySchema(Schema):
    code = fields.String(required=True, metadata={"example": "SOLD_OUT"})
    message = fields.String(required=True)
    details = fields.Dict(required=True)


class ErrorSchema(Schema):
    error = fields.Nested(ErrorBodySchema, required=True)


class DevLoginRequest(StrictSchema):
    user_id = fields.String(required=True, validate=PLAYER_ID)
    registered_days_ago = fields.Integer(
        strict=True, load_default=0, validate=validate.Range(min=0, max=3650),
        metadata={"description": "a player seen for the first time is registered this many days ago (demo and "
                                 "tests: an established account, not a new one)"})


class AlipayLoginRequest(StrictSchema):
    auth_code = fields.String(required=True, validate=validate.Length(min=1, max=128),
                              metadata={"description": "The code my.getAuthCode gave the mini-program."})


class TokenResponse(Schema):
    token = fields.String(required=True)
    user_id = fields.String(required=True)
    expires_at = fields.String(required=True, metadata={"format": "date-time"})


class GrantStubSchema(Schema):
    id = fields.String(required=True)
    reward = fields.Dict(required=True)
    status = fields.String(required=True)


class PlayResponse(Schema):
    outcome = fields.Dict(required=True, metadata={"description": "What happened; claim_id and version included."})
    grants = fields.List(fields.Nested(GrantStubSchema), required=True)
    state = fields.Dict(required=True, metadata={"description": "Stock left of what was taken; the player's use."})


class GrantSchema(Schema):
    id = fields.String(required=True)
    campaign_id = fields.Integer(required=True)
    reward = fields.Dict(required=True)
    status = fields.String(required=True)
    external_id = fields.String(allow_none=True)
    created_at = fields.AwareDateTime(required=True)
    issued_at = fields.AwareDateTime(allow_none=True)


class OrderSchema(Schema):
    id = fields.String(required=True)
    campaign_id = fields.Integer(required=True)
    status = fields.String(required=True)
    amount_fen = fields.Integer(required=True)
    lines = fields.List(fields.Dict(), required=True)
    deadline_at = fields.AwareDateTime(allow_none=True)
    created_at = fields.AwareDateTime(required=True)


class PointsEntrySchema(Schema):
    delta = fields.Integer(required=True)
    reason = fields.String(required=True)
    grant_id = fields.String(allow_none=True)
    created_at = fields.AwareDateTime(required=True)
    expires_at = fields.AwareDateTime(allow_none=True)


class TierSchema(Schema):
    name = fields.String(required=True)
    source = fields.String(required=True, metadata={"description": "points (the balance reaches it) or reward"})
    expires_at = fields.String(allow_none=True)


class PointsSchema(Schema):
    balance = fields.Integer(required=True)
    tier = fields.Nested(TierSchema, allow_none=True, metadata={"description": "Membership tier; null = none."})
    entries = fields.List(fields.Nested(PointsEntrySchema), required=True)


class ListQuery(StrictSchema):
    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=100))


class CampaignSummarySchema(Schema):
    id = fields.Integer(required=True)
    name = fields.String(required=True)
    game = fields.String(required=True)
    version = fields.Integer(required=True)
    starts_at = fields.String(allow_none=True)
    ends_at = fields.String(allow_none=True)


class CampaignViewSchema(CampaignSummarySchema):
    status = fields.String(allow_none=True)
    timezone = fields.String(required=True)
    limits = fields.Dict(required=True)
    eligibility = fields.Dict(required=True, metadata={
        "description": "{eligible, code, reason}: whether a play would be let in now, and if not why "
                       "(CAMPAIGN_NOT_LIVE not_started/ended, NOT_ELIGIBLE audience/rollout)."})
    variant = fields.String(allow_none=True, metadata={"description": "This player's A/B variant (null: none)."})
    rules = fields.Dict(required=True, metadata={"description": "The game's public config (SKUs, prizes...)."})
    me = fields.Dict(required=True, metadata={"description": "This player's state in the campaign."})


class FairnessVersionSchema(Schema):
    version = fields.Integer(required=True)
    published_at = fields.String(required=True)
    commitment = fields.String(allow_none=True, metadata={"description": "sha256 of the secret, hex."})
    secret = fields.String(allow_none=True, metadata={"description": "Revealed once the campaign has ended."})


class FairnessSchema(Schema):
    campaign_id = fields.Integer(required=True)
    status = fields.String(required=True)
    revealed = fields.Boolean(required=True)
    scheme = fields.String(required=True, metadata={"description": "How seeds and draws derive from the secret."})
    versions = fields.List(fields.Nested(FairnessVersionSchema), required=True)


class PayRequest(StrictSchema):
    order_id = fields.String(required=True, validate=validate.Regexp(r"^O[0-9a-f]{24}$", error="Not an order id."))


class PaymentSchema(Schema):
    order_id = fields.String(required=True)
    trade_no = fields.String(required=True, metadata={"description": "What my.tradePay takes."})
    amount_fen = fields.Integer(required=True)
    pay_before = fields.String(required=True)


class OrderStatusSchema(Schema):
    order_id = fields.String(required=True)
    status = fields.String(required=True, metadata={"description": "held, paid, cancelled, expired, confirmed"})
    pay_before = fields.String(allow_none=True)
