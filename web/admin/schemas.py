"""Response schemas of the admin API (the request body of a campaign is CampaignDefinitionSchema)."""

from __future__ import annotations

from marshmallow import RAISE, Schema, fields, validate

from campaigns.models import AdminRole, GrantStatus

from ..api.schemas import GrantSchema


class LiveStatsSchema(Schema):
    status = fields.String(allow_none=True)
    version = fields.Integer(allow_none=True)
    budget_fen = fields.Integer(allow_none=True)
    spent_fen = fields.Integer()
    stock = fields.Dict(metadata={"description": "item -> {total, taken, left}"})
    held_orders = fields.Integer()
    outbox_entries = fields.Integer()


class CampaignAdminSchema(Schema):
    id = fields.Integer(required=True)
    name = fields.String(required=True)
    game = fields.String(required=True)
    status = fields.String(required=True, metadata={"description": "draft, live, paused or ended"})
    live_version = fields.Integer(allow_none=True)
    draft = fields.Dict(required=True, metadata={"description": "The current draft definition."})
    created_by = fields.String()
    created_at = fields.AwareDateTime()
    updated_at = fields.AwareDateTime()
    live = fields.Nested(LiveStatsSchema, allow_none=True)


class VersionSchema(Schema):
    version = fields.Integer(required=True)
    content_hash = fields.String(required=True)
    commitment = fields.String(allow_none=True, metadata={"description": "sha256 of the version's draw secret."})
    published_by = fields.String(required=True)
    published_at = fields.AwareDateTime(required=True)
    definition = fields.Dict(required=True)
    diff = fields.List(fields.Dict(), required=True, metadata={"description": "RFC 6902 patch from the previous."})


class ChangeSchema(Schema):
    op = fields.String(required=True, metadata={"description": "add, remove or replace"})
    path = fields.String(required=True, metadata={"description": "JSON pointer into the definition"})
    value = fields.Raw(metadata={"description": "the new value (add, replace)"})


class ForecastSchema(Schema):
    game = fields.String(required=True)
    days = fields.Integer(required=True)
    runs = fields.Integer(required=True)
    behaviour = fields.Dict(required=True)
    cost_fen = fields.Dict(required=True, metadata={"description": "mean, p50, p95, p99, max over the runs."})
    cost_histogram = fields.Dict(required=True, metadata={"description": "edges_fen (n + 1) and runs (n): how many "
                                                                         "runs cost within each bin."})
    budget_fen = fields.Integer(allow_none=True)
    over_budget_share = fields.Float(allow_none=True, metadata={"description": "Share of runs costing more "
                                                                               "than the budget."})
    expected_wins = fields.Dict(required=True, metadata={"description": "Prize -> mean wins per run."})
    stockout_day = fields.Dict(required=True, metadata={"description": "Prize -> {share_of_runs, median_day}."})
    expected_plays = fields.Float()
    notes = fields.List(fields.String(), required=True)


class AdminGrantSchema(GrantSchema):
    """The player's view of a grant plus what settlement knows of it."""

    version = fields.Integer(required=True)
    claim_id = fields.String(required=True)
    user_id = fields.String(required=True)
    reward_type = fields.String(required=True)
    cost_fen = fields.Integer(required=True)
    status = fields.String(required=True, metadata={
        "description": "pending, issued, failed (will retry), unknown (asked again before a resend), dead, held "
                       "(its play waits in the review queue) or rejected (by a reviewer)"})
    attempts = fields.Integer(required=True)
    last_error = fields.String(allow_none=True)
    updated_at = fields.AwareDateTime(required=True)


class GrantQuery(Schema):
    class Meta:
        unknown = RAISE

    status = fields.String(validate=validate.OneOf([s.value for s in GrantStatus]))
    campaign_id = fields.Integer(validate=validate.Range(min=0, max=2**31 - 1))
    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=200))


class AttributeImportSchema(Schema):
    rows = fields.Integer(required=True)
    attributes = fields.Dict(required=True, metadata={"description": "Imported attribute -> type."})
    new_players = fields.Integer(required=True)


class AttributeSchema(Schema):
    name = fields.String(required=True)
    type = fields.String(required=True)


class CouponPoolSchema(Schema):
    pool = fields.String(required=True)
    total = fields.Integer(required=True)
    assigned = fields.Integer(required=True)
    available = fields.Integer(required=True)


class CouponUploadSchema(CouponPoolSchema):
    added = fields.Integer(required=True)
    duplicates = fields.Integer(required=True)


class CompensationRequest(Schema):
    class Meta:
        unknown = RAISE

    campaign_id = fields.Integer(required=True, strict=True, validate=validate.Range(min=1, max=2**31 - 1))
    user_id = fields.String(required=True, validate=validate.Regexp(r"^[A-Za-z0-9_.-]{1,64}$"))
    reward = fields.Dict(required=True, metadata={"description": "{type, ...the type's fields, cost_fen}"})
    reason = fields.String(required=True, validate=validate.Length(min=3, max=500))


class FraudPolicyViewSchema(Schema):
    name = fields.String(required=True)
    policy = fields.Dict(required=True, metadata={"description": "the policy document (see PUT)"})
    built_in = fields.Boolean(required=True, metadata={"description": "the default no one has saved yet"})
    updated_by = fields.String(allow_none=True)
    updated_at = fields.DateTime(allow_none=True)


class FraudRefusalSchema(Schema):
    at = fields.DateTime(required=True)
    rule = fields.String(required=True)
    user = fields.String(required=True)
    device = fields.String(required=True, metadata={"description": "'' when the request named none"})
    ip = fields.String(required=True)
    reasons = fields.String(metadata={"description": "the risk score's signals or the ring's, comma-separated"})


class RuleHourSchema(Schema):
    refused = fields.Integer(required=True, metadata={"description": "plays the rule refused"})
    would_refuse = fields.Integer(required=True, metadata={"description": "plays the rule, in shadow mode, "
                                                                          "would have refused"})
    share = fields.Float(required=True, metadata={"description": "both, over the plays screened"})


class GateHourSchema(Schema):
    """The fraud gate's last hour (counted by each process, a second behind)."""

    minutes = fields.Integer(required=True)
    since_ms = fields.Integer(required=True)
    plays = fields.Integer(required=True, metadata={"description": "plays the gate screened"})
    would_refuse = fields.Integer(required=True, metadata={"description": "admitted plays at least one shadow "
                                                                          "rule would have refused"})
    share = fields.Float(required=True, metadata={"description": "would_refuse over plays"})
    rules = fields.Dict(keys=fields.String(), values=fields.Nested(RuleHourSchema), required=True)


class PolicyHourSchema(GateHourSchema):
    policy = fields.String(required=True)


class CampaignFraudSchema(Schema):
    policy = fields.String(required=True)
    blocked = fields.Dict(keys=fields.String(), values=fields.Integer(),
                          metadata={"description": "refused plays per rule"})
    shadow = fields.Dict(keys=fields.String(), values=fields.Integer(),
                         metadata={"description": "admitted plays a shadow-mode rule would have refused, per rule"})
    held = fields.Dict(keys=fields.String(), values=fields.Integer(),
                       metadata={"description": "plays held for review, per ring signal"})
    recent = fields.List(fields.Nested(FraudRefusalSchema), required=True,
                         metadata={"description": "the latest refused plays, newest first (up to 50)"})
    challenges = fields.Dict(keys=fields.String(), values=fields.Integer(),
                             metadata={"description": "answers to challenges: passed, failed, unavailable_open, "
                                                      "unavailable_closed"})
    last_hour = fields.Nested(GateHourSchema, required=True)


class ReviewGrantSchema(Schema):
    """A held play's grant, as the reviewer weighs it."""

    id = fields.String(required=True)
    user_id = fields.String(required=True)
    reward = fields.Dict(required=True)
    cost_fen = fields.Integer(required=True)
    status = fields.String(required=True)


class ReviewItemSchema(Schema):
    claim_id = fields.String(required=True)
    campaign_id = fields.Integer(required=True)
    user_id = fields.String(required=True)
    action = fields.String(required=True)
    created_at = fields.AwareDateTime(required=True)
    review = fields.String(required=True, metadata={"description": "held, approved or rejected"})
    reasons = fields.List(fields.String(), required=True, metadata={"description": "the signals that held it"})
    risk = fields.Dict(allow_none=True, metadata={"description": "{score, reasons} of the play's risk score"})
    ring = fields.Dict(allow_none=True, metadata={"description": "{role, tree, owner, device, ip}"})
    decision = fields.Dict(allow_none=True, metadata={"description": "{decision, by, at, note} once decided"})
    outcome = fields.Dict(required=True)
    grants = fields.List(fields.Nested(ReviewGrantSchema), required=True)


class ReviewDetailSchema(ReviewItemSchema):
    graph = fields.Dict(required=True, metadata={
        "description": "the referral tree around the play: tree, owner, nodes (user_id, roles, devices, ips, "
                       "held), edges (from the assister to the owner) and shared (devices, ips) used by more than "
                       "one of its players"})


class ReviewQuery(Schema):
    class Meta:
        unknown = RAISE

    status = fields.String(load_default="held", validate=validate.OneOf(("held", "approved", "rejected")))
    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=200))


class ReviewDecisionRequest(Schema):
    class Meta:
        unknown = RAISE

    note = fields.String(load_default="", validate=validate.Length(max=500))


class ActivityQuery(Schema):
    class Meta:
        unknown = RAISE

    minutes = fields.Integer(load_default=60, validate=validate.Range(min=1, max=24 * 60))


class MinuteSchema(Schema):
    at = fields.AwareDateTime(required=True)
    plays = fields.Integer(required=True)
    wins = fields.Integer(required=True)
    cost_fen = fields.Integer(required=True)


class SampleSchema(Schema):
    at = fields.AwareDateTime(required=True)
    spent_fen = fields.Integer(required=True)
    stock = fields.Dict(keys=fields.String(), values=fields.Integer(), required=True)


class VariantResultSchema(Schema):
    variant = fields.String(allow_none=True, required=True, metadata={"description": "null: no variants"})
    players = fields.Integer(required=True)
    plays = fields.Integer(required=True)
    wins = fields.Integer(required=True)
    cost_fen = fields.Integer(required=True)


class SettlementLagSchema(Schema):
    unissued = fields.Integer(required=True, metadata={"description": "grants won and not yet issued"})
    oldest_won_at = fields.AwareDateTime(allow_none=True, required=True,
                                         metadata={"description": "when the oldest of them was won"})
    age_seconds = fields.Float(required=True, metadata={"description": "how long the oldest has waited"})
    outbox_lag_seconds = fields.Float(required=True, metadata={
        "description": "age of the oldest admitted claim not yet written to SQL"})


class ActivitySchema(Schema):
    minutes = fields.List(fields.Nested(MinuteSchema), required=True,
                          metadata={"description": "oldest first, from the settled rows"})
    live = fields.Dict(required=True, metadata={"description": "budget, spent and stock now (Redis)"})
    fraud = fields.Dict(required=True, metadata={"description": "blocked, shadow and held counts per rule"})
    refusals = fields.Dict(keys=fields.String(), values=fields.Integer(), required=True,
                           metadata={"description": "refused plays per error code since the start (lags ~1 s)"})
    variants = fields.List(fields.Nested(VariantResultSchema), required=True,
                           metadata={"description": "per A/B variant since the start, from the settled rows"})
    samples = fields.List(fields.Nested(SampleSchema), required=True,
                          metadata={"description": "one a minute, oldest first: stock left and budget spent"})
    settlement = fields.Nested(SettlementLagSchema, required=True)


class AuditQuery(Schema):
    class Meta:
        unknown = RAISE

    subject_type = fields.String(validate=validate.Length(max=40))
    subject_id = fields.String(validate=validate.Length(max=64))
    actor = fields.String(validate=validate.Length(max=100), metadata={"description": "part of the actor's name"})
    before_id = fields.Integer(validate=validate.Range(min=1, max=2**31 - 1),
                               metadata={"description": "entries older than this one (the next page)"})
    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=200))


class AuditSchema(Schema):
    id = fields.Integer(required=True)
    at = fields.AwareDateTime(required=True)
    actor = fields.String(required=True)
    action = fields.String(required=True)
    subject_type = fields.String(required=True)
    subject_id = fields.String(required=True)
    details = fields.Dict(required=True, metadata={"description": "before, after and the rest"})


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


ROLES = validate.OneOf([str(r) for r in AdminRole])


class AdminTokenSchema(Schema):
    id = fields.Integer(required=True)
    name = fields.String(required=True)
    role = fields.String(required=True)
    created_at = fields.AwareDateTime(required=True)
    revoked_at = fields.AwareDateTime(allow_none=True)


class NewAdminTokenSchema(AdminTokenSchema):
    token = fields.String(required=True, metadata={"description": "The secret: shown in this answer only."})


class NewAdminTokenRequest(Schema):
    class Meta:
        unknown = RAISE

    name = fields.String(required=True, validate=validate.Length(min=1, max=100))
    role = fields.String(required=True, validate=ROLES)


class FormSchema(Schema):
    schema = fields.Dict(required=True, metadata={"description": "JSON Schema of the document the form edits."})
    rewards = fields.Dict(required=True, metadata={"description": "JSON Schema of each reward type's params, "
                                                                  "for the fields marked x-reward."})


class CampaignCheckSchema(Schema):
    definition = fields.Dict(required=True, metadata={"description": "The definition as it would be saved."})
    rules = fields.Dict(required=True, metadata={"description": "The game's public rules from this definition."})



class AdminUserSchema(Schema):
    id = fields.Integer(required=True)
    email = fields.String(required=True)
    name = fields.String(required=True)
    role = fields.String(required=True)
    last_login_at = fields.AwareDateTime(allow_none=True)
    locked = fields.Boolean(required=True)


class NewAdminUserRequest(Schema):
    class Meta:
        unknown = RAISE

    email = fields.String(required=True, validate=validate.Length(min=3, max=254))
    password = fields.String(required=True, load_only=True, validate=validate.Length(max=200))
    role = fields.String(required=True, validate=ROLES)
    name = fields.String(load_default="", validate=validate.Length(max=100))


class RoleRequest(Schema):
    class Meta:
        unknown = RAISE

    role = fields.String(required=True, validate=ROLES)
