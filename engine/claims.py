"""The values a game's plan hands to the engine, and what the engine answers.

A game turns a player's action into one of these; the engine, not the game,
makes it happen atomically (claim.lua / release.lua).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any


@dataclass(frozen=True)
class Take:
    """Units of one stocked item (``"sku:C50"``) that the claim takes."""

    item: str
    quantity: int
    per_user_limit: int | None = None


def public_reward(reward: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """A configured reward (``{"type", ...params, "cost_fen"}``) as players see it and grants carry it."""
    return {k: v for k, v in reward.items() if k != "cost_fen"} if reward else None


@dataclass(frozen=True)
class GrantSpec:
    """A reward the claim wins: ``reward`` is ``{"type": <adapter>, ...}``; ``cost_fen`` counts against the budget."""

    reward: Mapping[str, Any]
    cost_fen: int
    # Whom it pays: None = the player who played; a campaign's finale pays each winner by id.
    user_id: str | None = None

    @classmethod
    def of(cls, reward: Mapping[str, Any]) -> GrantSpec:
        """Winning a configured reward: its params as the grant, its ``cost_fen`` against the budget."""
        return cls(reward=public_reward(reward), cost_fen=reward["cost_fen"])


@dataclass(frozen=True)
class OrderLine:
    sku: str
    name: str
    quantity: int
    unit_price_fen: int


@dataclass(frozen=True)
class OrderSpec:
    """An order the claim creates: confirmed at once (nothing to pay) or held until paid."""

    lines: tuple[OrderLine, ...]
    amount_fen: int
    hold_seconds: int = 0
    # Rewards paid out once the order is paid (a held order); empty for a confirmed one.
    rewards_on_payment: tuple[GrantSpec, ...] = ()

    @property
    def held(self) -> bool:
        return self.amount_fen > 0


@dataclass(frozen=True)
class Op:
    """One guarded change to game state in the campaign's slot, checked and applied by claim.lua.

    ``key`` is a logical key: ``user:<id>`` is that player's hash (the one the
    engine keeps their counters in), anything else a game hash or bitmap of
    the campaign. Every guard of a claim is checked before any op is applied,
    in order, seeing the ops before it; a guard that fails refuses the whole
    claim with its ``refuse`` label, which the claim's ``refusals`` maps to the
    error the player gets. The label ``STALE`` means "the state the plan read
    has changed": the engine reads again and plans again.

    kinds:
    - ``incr``: add ``value`` to an integer field; refused if the result leaves [low, high].
    - ``put``: set a field to ``value``.
    - ``expect``: refused unless the field equals ``value``; ``absent``: refused if the field exists.
    - ``delete``: remove a field.
    - ``setbit``: set bit ``value`` of a bitmap; refused if it was set already.
    """

    kind: str
    key: str
    field: str = ""
    value: int | str | None = 0
    low: int | None = None
    high: int | None = None
    refuse: str = "STALE"

    @classmethod
    def incr(cls, key: str, field: str, by: int, *, low: int | None = None, high: int | None = None,
             refuse: str = "STALE") -> Op:
        return cls("incr", key, field, by, low, high, refuse)

    @classmethod
    def put(cls, key: str, field: str, value: int | str) -> Op:
        return cls("put", key, field, value)

    @classmethod
    def expect(cls, key: str, field: str, value: int | str | None, *, refuse: str = "STALE") -> Op:
        """``value`` None expects the field to be absent."""
        if value is None:
            return cls("absent", key, field, None, refuse=refuse)
        return cls("expect", key, field, value, refuse=refuse)

    @classmethod
    def delete(cls, key: str, field: str) -> Op:
        return cls("delete", key, field, None)

    @classmethod
    def setbit(cls, key: str, bit: int, *, refuse: str = "STALE") -> Op:
        return cls("setbit", key, "", bit, refuse=refuse)

    def to_wire(self, key_index: int) -> list[Any]:
        """The op as claim.lua reads it, its key replaced by that key's index in KEYS."""
        value = "" if self.value is None else str(self.value)
        return [self.kind, key_index, self.field, value, _opt(self.low), _opt(self.high), self.refuse]


def _opt(value: int | None) -> str:
    return "" if value is None else str(int(value))


@dataclass(frozen=True)
class Relation:
    """A play on something another player owns, for the fraud gate's referral-ring checks: ``tree`` is the
    shared thing (a red packet's id), ``owner`` its player, ``role`` what the play does to it: ``open``,
    ``assist`` or ``cashout``."""

    role: str
    tree: str
    owner: str


# The action a carried half is recorded under (never a player's: the API takes only a game's own actions).
CARRY = "carry"


@dataclass(frozen=True)
class Carry:
    """The second half of an action on two players whose state lives in different key groups of a sharded
    campaign (a card given to a player of another group): once the claim is admitted, the engine plans
    ``Game.carry(config, payload, ctx)`` on ``user_id``'s state in their group and applies it, exactly once;
    the outbox entry carries it too, so settlement finishes it if the process dies first."""

    user_id: str
    payload: Mapping[str, Any]


@dataclass(frozen=True)
class Claim:
    """Everything one play takes and wins; admitted whole or not at all.

    ``ops`` change game state (chances, streaks, cards, packets) with their
    guards; ``refusals`` maps each op's refuse label to the error raised when
    that guard fails. ``units`` count against the campaign's per-user limits.
    ``carries`` are changes to other players' state in other key groups, made after this claim (see Carry).
    """

    takes: tuple[Take, ...]
    units: int
    grants: tuple[GrantSpec, ...] = ()
    order: OrderSpec | None = None
    outcome: Mapping[str, Any] = field(default_factory=dict)
    ops: tuple[Op, ...] = ()
    refusals: Mapping[str, Exception] = field(default_factory=dict)
    relation: Relation | None = None
    carries: tuple[Carry, ...] = ()

    @property
    def cost_fen(self) -> int:
        won = sum(g.cost_fen for g in self.grants)
        reserved = sum(g.cost_fen for g in self.order.rewards_on_payment) if self.order else 0
        return won + reserved


@dataclass(frozen=True)
class Release:
    """Give a held order back (the player cancels it)."""

    order_id: str
    outcome: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class GrantView:
    id: str
    reward: Mapping[str, Any]
    status: str = "pending"


@dataclass(frozen=True)
class PlayResult:
    """The answer to a play, exactly as stored under its Idempotency-Key.

    Kept as the JSON text the claim script stored and returned (``answer_json``
    with ``outcome`` and ``grants``; ``state_json``), so the web layer answers
    it without decoding and encoding it again; in-process callers read the
    parsed fields.
    """

    answer_json: str
    state_json: str = "{}"
    replayed: bool = False

    @cached_property
    def _answer(self) -> dict[str, Any]:
        return json.loads(self.answer_json)

    @property
    def outcome(self) -> dict[str, Any]:
        return self._answer["outcome"]

    @property
    def grants(self) -> list[dict[str, Any]]:
        return self._answer["grants"]

    @cached_property
    def state(self) -> dict[str, Any]:
        return json.loads(self.state_json)

    def to_dict(self) -> dict[str, Any]:
        return {"outcome": self.outcome, "grants": self.grants, "state": self.state}

    def to_json(self) -> str:
        """``{"outcome", "grants", "state"}`` spliced from the stored texts (the answer is a JSON object)."""
        return f'{self.answer_json[:-1]},"state":{self.state_json}}}'
