"""The values a game's plan hands to the engine, and what the engine answers.

A game turns a player's action into one of these; the engine, not the game,
makes it happen atomically (claim.lua / release.lua).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Take:
    """Units of one stocked item (``"sku:C50"``) that the claim takes."""

    item: str
    quantity: int
    per_user_limit: int | None = None


@dataclass(frozen=True)
class GrantSpec:
    """A reward the claim wins: ``reward`` is ``{"type": <adapter>, ...}``; ``cost_fen`` counts against the budget."""

    reward: Mapping[str, Any]
    cost_fen: int


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
class Claim:
    """Everything one play takes and wins; admitted whole or not at all."""

    takes: tuple[Take, ...]
    units: int
    grants: tuple[GrantSpec, ...] = ()
    order: OrderSpec | None = None
    outcome: Mapping[str, Any] = field(default_factory=dict)

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
    """The answer to a play, exactly as stored under its Idempotency-Key."""

    outcome: Mapping[str, Any]
    grants: tuple[Mapping[str, Any], ...]
    state: Mapping[str, Any]
    replayed: bool = False
    version: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"outcome": dict(self.outcome), "grants": [dict(g) for g in self.grants], "state": dict(self.state)}
