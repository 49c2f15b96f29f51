"""The registry of reward types (adapters), kept in the engine so campaigns can validate rewards.

The adapters themselves and their contract live in ``rewards/base.py``; each
registers its class here under its type name. A reward in a campaign
definition is ``{"type": <name>, ...the adapter's params, "cost_fen"}``.
"""

from __future__ import annotations

from typing import Any

import marshmallow
from marshmallow import fields

from .errors import UnknownRewardTypeError
from .registry import Registry

reward_types: Registry[Any] = Registry("reward type", UnknownRewardTypeError)


def configurable_types() -> list[str]:
    """Reward types a marketer may put in a config (not the ones only the engine makes, like points_debit)."""
    return [name for name in reward_types if getattr(reward_types.get(name), "configurable", True)]


class RewardField(fields.Field):
    """A reward in a game's config: ``{"type", ...params, "cost_fen"}``, checked by the type's own schema.

    Deserializes to a plain dict with the type's params normalised and
    ``cost_fen`` (fen the budget counts, required, >= 0) kept alongside.
    """

    default_error_messages = {"invalid": "A reward is an object with a type and cost_fen."}

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.make_error("invalid")
        params = dict(value)
        type_name = params.pop("type", None)
        cost_fen = params.pop("cost_fen", None)
        errors: dict[str, Any] = {}
        configurable = configurable_types()
        if type_name not in configurable:
            errors["type"] = [f"Must be one of: {', '.join(configurable)}."]
        if isinstance(cost_fen, bool) or not isinstance(cost_fen, int) or cost_fen < 0:
            errors["cost_fen"] = ["A whole number of fen, 0 or more."]
        if errors:
            raise marshmallow.ValidationError(errors)
        try:
            loaded = reward_types.get(type_name).params_schema().load(params)
        except marshmallow.ValidationError as exc:
            raise marshmallow.ValidationError(exc.normalized_messages()) from None
        return {"type": type_name, **loaded, "cost_fen": cost_fen}

    def _serialize(self, value: Any, attr: str | None, obj: Any, **kwargs: Any) -> Any:
        return value
