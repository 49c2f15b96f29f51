"""Forecast before publish: a numpy Monte Carlo of a draft under a simple behaviour model.

The engine owns the behaviour model and the summary; each game answers its
``forecast`` from the same probability tables its live ``plan`` draws from
(vectorised: per run and day, counts are drawn as Poisson/multinomial
variates instead of one draw at a time).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from marshmallow import RAISE, Schema, fields, validate

from .errors import ValidationError


class SimulationNotSupportedError(ValidationError):
    code = "SIMULATION_NOT_SUPPORTED"
    default_message = "This game has no forecast."


class BehaviourSchema(Schema):
    """How the simulated players behave."""

    class Meta:
        unknown = RAISE

    players = fields.Integer(strict=True, load_default=10_000, validate=validate.Range(min=1, max=100_000_000),
                             metadata={"description": "Players who know about the campaign."})
    days = fields.Integer(strict=True, allow_none=True, load_default=None, validate=validate.Range(min=1, max=366),
                          metadata={"description": "Days simulated; null = the campaign's schedule (else 7)."})
    participation_rate = fields.Float(load_default=0.3, validate=validate.Range(min=0, max=1),
                                      metadata={"description": "Share of players who play on a given day."})
    plays_per_day = fields.Float(load_default=1.0, validate=validate.Range(min=0, max=100),
                                 metadata={"description": "Mean plays (draws, check-ins, packets) of a player "
                                                          "on a day they play."})
    referral_fanout = fields.Float(load_default=3.0, validate=validate.Range(min=0, max=100),
                                   metadata={"description": "Mean friends who assist one red packet."})
    runs = fields.Integer(strict=True, load_default=200, validate=validate.Range(min=1, max=2000),
                          metadata={"description": "Monte Carlo runs (the cost distribution's sample size)."})
    seed = fields.Integer(strict=True, allow_none=True, load_default=None,
                          validate=validate.Range(min=0, max=2**63 - 1),
                          metadata={"description": "The same seed, the same forecast; null = a fresh one."})


@dataclass
class Forecast:
    """One game's simulation: a total cost per run, and per prize its wins and stock-out day per run."""

    cost_fen: np.ndarray
    wins: Mapping[str, np.ndarray] = field(default_factory=dict)
    # Per prize, the 1-based day it ran out in each run (0 = it did not).
    stockout_day: Mapping[str, np.ndarray] = field(default_factory=dict)
    plays: np.ndarray | None = None
    notes: list[str] = field(default_factory=list)


HISTOGRAM_BINS = 20


def summarize(forecast: Forecast, budget_fen: int | None, behaviour: Mapping[str, Any]) -> dict[str, Any]:
    cost = np.asarray(forecast.cost_fen, dtype=np.int64)
    p50, p95, p99 = (int(v) for v in np.percentile(cost, [50, 95, 99], method="higher"))
    summary: dict[str, Any] = {
        "behaviour": dict(behaviour),
        "runs": int(cost.size),
        "cost_fen": {"mean": float(cost.mean()), "p50": p50, "p95": p95, "p99": p99, "max": int(cost.max())},
        "cost_histogram": _histogram(cost),
        "budget_fen": budget_fen,
        "over_budget_share": float((cost > budget_fen).mean()) if budget_fen is not None else None,
        "expected_wins": {name: float(np.mean(w)) for name, w in forecast.wins.items()},
        "stockout_day": {name: _stockout(days) for name, days in forecast.stockout_day.items()},
        "notes": forecast.notes,
    }
    if forecast.plays is not None:
        summary["expected_plays"] = float(np.mean(forecast.plays))
    return summary


def _histogram(cost: np.ndarray, bins: int = HISTOGRAM_BINS) -> dict[str, list[int]]:
    """How the runs' costs spread: ``runs[i]`` runs cost from ``edges_fen[i]`` up to ``edges_fen[i + 1]``
    (the last bin includes its upper edge). One bin when every run cost the same."""
    low, high = int(cost.min()), int(cost.max())
    if low == high:
        return {"edges_fen": [low, high], "runs": [int(cost.size)]}
    counts, edges = np.histogram(cost, bins=min(bins, high - low), range=(low, high))
    return {"edges_fen": [int(round(e)) for e in edges], "runs": [int(c) for c in counts]}


def _stockout(days: np.ndarray) -> dict[str, Any]:
    days = np.asarray(days)
    out = days[days > 0]
    share = float(out.size / days.size) if days.size else 0.0
    return {"share_of_runs": share, "median_day": int(np.median(out)) if out.size else None}


def daily_players(rng: np.random.Generator, behaviour: Mapping[str, Any], runs: int, days: int) -> np.ndarray:
    """Players playing each day of each run: shape (runs, days)."""
    return rng.binomial(behaviour["players"], behaviour["participation_rate"], size=(runs, days))
