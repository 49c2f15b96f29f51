"""The campaign definition document (DESIGN.md): what marketers write, export, import and diff.

The game's own ``config`` is checked by the game plugin's schema; every
reward inside it by its reward type's schema. Unknown fields are refused
everywhere, so nothing can be smuggled in.
"""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from marshmallow import RAISE, Schema, ValidationError, fields, post_dump, validate, validates, validates_schema

from engine.clock import iso
from engine.game import games

NAME_LENGTH = validate.Length(min=1, max=200)


class LimitsSchema(Schema):
    class Meta:
        unknown = RAISE

    per_user = fields.Integer(validate=validate.Range(min=1, max=1_000_000), allow_none=True,
                              metadata={"description": "Units one player may take over the campaign."})
    per_user_per_day = fields.Integer(validate=validate.Range(min=1, max=1_000_000), allow_none=True,
                                      metadata={"description": "Units one player may take per business day."})


class FraudSchema(Schema):
    class Meta:
        unknown = RAISE

    policy = fields.String(validate=validate.OneOf(["default"]), load_default="default")


class CampaignDefinitionSchema(Schema):
    class Meta:
        unknown = RAISE
        ordered = True

    name = fields.String(required=True, validate=NAME_LENGTH)
    game = fields.String(required=True, metadata={"description": "A registered game type, e.g. flash_sale."})
    timezone = fields.String(load_default="Asia/Shanghai", dump_default="Asia/Shanghai",
                             metadata={"description": "IANA zone of the campaign's business days."})
    starts_at = fields.AwareDateTime(allow_none=True, load_default=None, format="iso")
    ends_at = fields.AwareDateTime(allow_none=True, load_default=None, format="iso")
    # Lua counts in doubles: amounts stay far below 2**53 to stay exact.
    budget_fen = fields.Integer(allow_none=True, load_default=None, validate=validate.Range(min=0, max=10**15),
                                metadata={"description": "Cost ceiling of everything granted; null = none."})
    audience = fields.String(allow_none=True, load_default=None,
                             metadata={"description": "Audience rule. Not supported yet: must be null."})
    rollout_percent = fields.Integer(load_default=100, validate=validate.Range(min=0, max=100),
                                     metadata={"description": "Gray release: the share of players let in, by a "
                                                              "stable bucket per player; raising it keeps "
                                                              "everyone already in."})
    limits = fields.Nested(LimitsSchema, load_default=dict)
    fraud = fields.Nested(FraudSchema, load_default=lambda: {"policy": "default"})
    config = fields.Dict(required=True, metadata={"description": "The game's own config (see its schema)."})

    @validates("game")
    def _known_game(self, value: str, **_: Any) -> None:
        if value not in games:
            raise ValidationError(f"Unknown game. Known: {', '.join(games.keys())}.")

    @validates("timezone")
    def _known_zone(self, value: str, **_: Any) -> None:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValidationError("Unknown time zone.") from None

    @validates("audience")
    def _no_audience_yet(self, value: str | None, **_: Any) -> None:
        if value:
            raise ValidationError("Audience rules are not supported yet; leave audience null.")

    @validates_schema(skip_on_field_errors=False)
    def _schedule_and_config(self, data: dict[str, Any], **_: Any) -> None:
        starts, ends = data.get("starts_at"), data.get("ends_at")
        if starts and ends and ends <= starts:
            raise ValidationError("ends_at must be after starts_at.", "ends_at")
        game = data.get("game")
        if game in games and isinstance(data.get("config"), dict):
            try:
                data["config"] = games.get(game).config_schema().load(data["config"])
            except ValidationError as exc:
                raise ValidationError({"config": exc.normalized_messages()}) from None

    @post_dump
    def _dump_config(self, data: dict[str, Any], **_: Any) -> dict[str, Any]:
        if data.get("game") in games:
            data["config"] = games.get(data["game"]).config_schema().dump(data["config"])
        return data


def normalize_definition(document: Any) -> dict[str, Any]:
    """Validate a definition and answer its canonical JSON form (what is stored, hashed and diffed)."""
    if not isinstance(document, dict):
        raise ValidationError({"_schema": ["A campaign definition is a JSON object."]})
    schema = CampaignDefinitionSchema()
    loaded = schema.load(document)
    dumped = schema.dump(loaded)
    for instant in ("starts_at", "ends_at"):
        dumped[instant] = iso(loaded[instant])
    return dumped
