"""JSON Schemas of what marketers edit, converted from the marshmallow schemas that validate it.

The admin page builds its forms from these (the campaign definition with the
game's config in place, each reward type's params, the fraud policy), so a
new game or reward type gets its form without touching the page. The server
still validates every save: the schema shapes the form, it does not replace
the check. apispec converts the fields; a reward field becomes
``{"x-reward": true}``, its params given per type by ``reward_schemas``.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from marshmallow import Schema, fields

from engine.fraud.policy import PolicySchema
from engine.game import games
from engine.reward_types import RewardField, configurable_types, reward_types

from .schemas import CampaignDefinitionSchema


@cache
def _converter() -> Any:
    plugin = MarshmallowPlugin(schema_name_resolver=lambda _schema: None)  # None: nested schemas inline
    APISpec("forms", "1", "3.0.3", plugins=[plugin])

    def reward(_converter: Any, field: fields.Field, **_: Any) -> dict[str, Any]:
        return {"type": "object", "x-reward": True} if isinstance(field, RewardField) else {}

    plugin.converter.add_attribute_function(reward)
    return plugin.converter


def to_json_schema(schema: Schema) -> dict[str, Any]:
    return _converter().schema2jsonschema(schema)


def definition_schema(game: str, policies: list[str]) -> dict[str, Any]:
    """The campaign definition of ``game``: its config in place, the fraud policy one of ``policies``."""
    document = to_json_schema(CampaignDefinitionSchema())
    properties = document["properties"]
    properties["game"] = {**properties["game"], "enum": [game], "readOnly": True}
    properties["config"] = {**to_json_schema(games.get(game).config_schema()),
                            "description": properties["config"].get("description", "")}
    properties["fraud"]["properties"]["policy"]["enum"] = policies
    # A variant's config holds only what it overrides: any part of the game's config, checked on save.
    properties["variants"]["items"]["properties"]["config"]["x-overrides"] = "config"
    return document


def reward_schemas() -> dict[str, dict[str, Any]]:
    """Each configurable reward type's params, with the cost every reward carries."""
    cost = {"type": "integer", "minimum": 0, "description": "What the budget counts for one unit (fen)."}
    answer = {}
    for name in configurable_types():
        params = to_json_schema(reward_types.get(name).params_schema())
        answer[name] = {**params, "properties": {**params.get("properties", {}), "cost_fen": cost},
                        "required": [*params.get("required", []), "cost_fen"]}
    return answer


def policy_schema() -> dict[str, Any]:
    return to_json_schema(PolicySchema())
