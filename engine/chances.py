"""Chances (抽奖次数 / 抽卡次数): the play currency lottery, cards and check-in make-up share.

A player's chances are free ones (``free_per_day``, counted per business day
in ``fd:<YYYYMMDD>``) and earned ones (tasks, bought with points; balance in
``ch``), both fields of the player's own hash. Spending takes free chances
first, is all-or-nothing, and its ops are bounded, so two plays racing for
the last chance cannot both have it.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from marshmallow import RAISE, Schema, fields, validate

from .claims import GrantSpec, Op
from .errors import ConflictError
from .state import GameState

EARNED = "ch"
POINTS_SPENT = "pts"


class NoChancesError(ConflictError):
    code = "NO_CHANCES"
    default_message = "Not enough chances for this play."


class NotEnoughPointsError(ConflictError):
    code = "NOT_ENOUGH_POINTS"
    default_message = "Not enough points."


class ChancesSchema(Schema):
    """The config fragment of a game with chances."""

    class Meta:
        unknown = RAISE

    free_per_day = fields.Integer(strict=True, load_default=1, validate=validate.Range(min=0, max=100))
    points_per_chance = fields.Integer(strict=True, allow_none=True, load_default=None,
                                       validate=validate.Range(min=1, max=1_000_000),
                                       metadata={"description": "Points one bought chance costs; null = not sold."})
    max_bought_per_day = fields.Integer(strict=True, load_default=10, validate=validate.Range(min=1, max=1000))


def me(state: GameState) -> str:
    return f"user:{state.user_id}"


def free_field(day: date) -> str:
    return f"fd:{day:%Y%m%d}"


def available(state: GameState, day: date, free_per_day: int) -> dict[str, int]:
    free = max(0, free_per_day - state.mine(free_field(day)))
    earned = state.mine(EARNED)
    return {"free": free, "earned": earned, "total": free + earned}


def spend(state: GameState, day: date, count: int, free_per_day: int) -> tuple[Op, ...]:
    """Ops taking ``count`` chances, free ones first; raises NoChancesError if the player has fewer."""
    have = available(state, day, free_per_day)
    if count > have["total"]:
        raise NoChancesError(needed=count, available=have["total"])
    free = min(count, have["free"])
    ops = []
    if free:
        ops.append(Op.incr(me(state), free_field(day), free, high=free_per_day))
    if count - free:
        ops.append(Op.incr(me(state), EARNED, -(count - free), low=0))
    return tuple(ops)


def earn(state: GameState, count: int) -> Op:
    return Op.incr(me(state), EARNED, count)


def daily_capped(key: str, name: str, day: date, by: int, cap: int, refuse: str) -> Op:
    """Count ``by`` against a per-business-day cap of ``name`` in hash ``key``."""
    return Op.incr(key, f"{name}:{day:%Y%m%d}", by, high=cap, refuse=refuse)


def daily_count(state: GameState, key: str, name: str, day: date) -> int:
    return state.number(key, f"{name}:{day:%Y%m%d}")


def spend_points(state: GameState, points: int) -> tuple[Op, GrantSpec]:
    """Pay ``points`` from the player's balance (their ``points`` attribute less what they spent here).

    Answers the bounded op and the debit grant that writes the ledger entry.
    """
    balance = int(state.attributes.get("points") or 0)
    spent = state.mine(POINTS_SPENT)
    if spent + points > balance:
        raise NotEnoughPointsError(needed=points, available=max(0, balance - spent))
    op = Op.incr(me(state), POINTS_SPENT, points, high=balance)
    return op, GrantSpec(reward={"type": "points_debit", "amount": points}, cost_fen=0)


def chances_view(state: GameState, day: date, config: dict[str, Any]) -> dict[str, Any]:
    return {**available(state, day, config["free_per_day"]),
            "points_per_chance": config.get("points_per_chance")}
