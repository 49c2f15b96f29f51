"""The campaign definition document (DESIGN.md): what marketers write, export, import and diff.

The game's own ``config`` is checked by the game plugin's schema; every
reward inside it by its reward type's schema. Unknown fields are refused
everywhere, so nothing can be smuggled in.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from marshmallow import RAISE, Schema, ValidationError, fields, post_dump, validate, validates, validates_schema

from engine.audience import BUILTIN_ATTRIBUTES, problems
from engine.clock import iso
from engine.fraud.policy import DEFAULT as DEFAULT_POLICY
from engine.fraud.policy import NAME as POLICY_NAME
from engine.fraud.policy import Bool as StrictBool
from engine.game import games
from engine.shards import MAX_SHARDS
from engine.variants import merged_config

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

    policy = fields.String(validate=POLICY_NAME, load_default=DEFAULT_POLICY,
                           metadata={"description": "a fraud policy saved with the admin API, or default"})
    expects_new_users = StrictBool(
        load_default=False,
        metadata={"description": "the campaign is for bringing in new users (拉新): the risk score does not "
                                 "count an account's youth (new_account, new_accounts_in_range) against it"})


class VariantSchema(Schema):
    class Meta:
        unknown = RAISE
        ordered = True

    name = fields.String(required=True, validate=validate.Regexp(r"^[A-Za-z0-9_-]{1,40}$",
                                                                 error="1 to 40 letters, digits, _ or -."))
    weight = fields.Integer(required=True, strict=True, validate=validate.Range(min=1, max=10_000))
    config = fields.Dict(load_default=dict, metadata={"description": "Overrides of the game's config; objects "
                                                                     "merge key by key, lists are replaced."})


class CampaignDefinitionSchema(Schema):
    class Meta:
        unknown = RAISE
        ordered = True

    def __init__(self, *, attribute_types: Mapping[str, str] | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        # What audience rules may name: the built-ins and every imported attribute.
        self.attribute_types = dict(attribute_types or BUILTIN_ATTRIBUTES)

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
                             metadata={"description": "Audience rule in CEL over user.<attribute>, e.g. "
                                                      "\"user.tier in ['gold'] && user.orders_30d >= 2\"; "
                                                      "null = everyone."})
    rollout_percent = fields.Integer(load_default=100, validate=validate.Range(min=0, max=100),
                                     metadata={"description": "Gray release: the share of players let in, by a "
                                                              "stable bucket per player; raising it keeps "
                                                              "everyone already in."})
    limits = fields.Nested(LimitsSchema, load_default=dict)
    fraud = fields.Nested(FraudSchema, load_default=lambda: FraudSchema().load({}))
    config = fields.Dict(required=True, metadata={"description": "The game's own config (see its schema)."})
    variants = fields.List(fields.Nested(VariantSchema), load_default=list, validate=validate.Length(max=10),
                           metadata={"description": "A/B variants: a player keeps the one they first got."})
    shards = fields.Integer(load_default=1, strict=True, validate=validate.Range(min=1, max=MAX_SHARDS),
                            metadata={"description": "Key groups the campaign's players, stock and budget are "
                                                     "spread over (one Redis primary each on a cluster), for a "
                                                     "peak beyond one Redis core; fixed at the first publish. "
                                                     "Games whose plays touch two players' state (cards, "
                                                     "referral) take 1."})

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
    def _valid_rule(self, value: str | None, **_: Any) -> None:
        if value:
            found = problems(value, self.attribute_types)
            if found:
                raise ValidationError([str(p) for p in found])

    @validates("variants")
    def _distinct_variants(self, value: list[dict[str, Any]], **_: Any) -> None:
        names = [v.get("name") for v in value]
        if len(names) != len(set(names)):
            raise ValidationError("Variant names must be unique.")
        if len(names) == 1:
            raise ValidationError("A/B variants need at least two variants (or none).")

    @validates_schema(skip_on_field_errors=False)
    def _schedule_and_config(self, data: dict[str, Any], **_: Any) -> None:
        starts, ends = data.get("starts_at"), data.get("ends_at")
        if starts and ends and ends <= starts:
            raise ValidationError("ends_at must be after starts_at.", "ends_at")
        game = data.get("game")
        if game in games and data.get("shards", 1) > 1 and not games.get(game).shardable:
            raise ValidationError(f"A {game} campaign cannot be sharded: its plays touch more than one player's "
                                  "state. Use 1.", "shards")
        if game in games and isinstance(data.get("config"), dict):
            schema = games.get(game).config_schema()
            base = data["config"]
            try:
                data["config"] = schema.load(base)
            except ValidationError as exc:
                raise ValidationError({"config": exc.normalized_messages()}) from None
            broken = {}
            for index, variant in enumerate(data.get("variants") or ()):
                try:
                    schema.load(merged_config(base, variant["config"]))
                except ValidationError as exc:
                    broken[index] = {"config": exc.normalized_messages()}
            if broken:
                raise ValidationError({"variants": broken})

    @post_dump
    def _dump_config(self, data: dict[str, Any], **_: Any) -> dict[str, Any]:
        if data.get("shards") == 1:
            del data["shards"]  # the default, left out: definitions from before shards keep their content hash
        if data.get("game") in games:
            data["config"] = games.get(data["game"]).config_schema().dump(data["config"])
        return data


def normalize_definition(document: Any, attribute_types: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Validate a definition and answer its canonical JSON form (what is stored, hashed and diffed)."""
    if not isinstance(document, dict):
        raise ValidationError({"_schema": ["A campaign definition is a JSON object."]})
    schema = CampaignDefinitionSchema(attribute_types=attribute_types)
    loaded = schema.load(document)
    dumped = schema.dump(loaded)
    for instant in ("starts_at", "ends_at"):
        dumped[instant] = iso(loaded[instant])
    return dumped
