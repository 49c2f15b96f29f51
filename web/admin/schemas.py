"""Response schemas of the admin API (the request body of a campaign is CampaignDefinitionSchema)."""

from __future__ import annotations

from marshmallow import Schema, fields


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
    published_by = fields.String(required=True)
    published_at = fields.AwareDateTime(required=True)
    definition = fields.Dict(required=True)
    diff = fields.List(fields.Dict(), required=True, metadata={"description": "RFC 6902 patch from the previous."})
