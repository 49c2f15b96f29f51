"""Forecast a draft before publishing it: the game's Monte Carlo under a behaviour model, summarised."""

from __future__ import annotations

import math
from typing import Any

import marshmallow
import numpy as np

from engine.clock import parse_instant
from engine.errors import ValidationError
from engine.game import games
from engine.simulation import BehaviourSchema, summarize

DEFAULT_DAYS = 7


def simulate(definition: dict[str, Any], body: Any) -> dict[str, Any]:
    """``definition`` is a validated campaign definition (the draft); ``body`` the behaviour model."""
    try:
        behaviour = BehaviourSchema().load(body if body is not None else {})
    except marshmallow.ValidationError as exc:
        raise ValidationError("The behaviour model is not valid.", fields=exc.normalized_messages()) from None
    game = games.get(definition["game"])
    config = game.config_schema().load(definition["config"])
    days = behaviour["days"] or schedule_days(definition)
    rng = np.random.default_rng(behaviour["seed"])
    forecast = game().forecast(config, behaviour, days, rng)
    return {"game": definition["game"], "days": days,
            **summarize(forecast, definition.get("budget_fen"), behaviour)}


def schedule_days(definition: dict[str, Any]) -> int:
    """The campaign's length in whole days (started days count), or a week when it has no end."""
    if not definition.get("starts_at") or not definition.get("ends_at"):
        return DEFAULT_DAYS
    seconds = (parse_instant(definition["ends_at"]) - parse_instant(definition["starts_at"])).total_seconds()
    return max(1, min(366, math.ceil(seconds / 86400)))
