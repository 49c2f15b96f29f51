"""The contract between the engine and a game plugin.

A game declares its config schema and its actions; for each action the
engine hands ``plan`` plain data and gets back a ``Claim`` (or a
``Release``) to apply atomically. ``plan`` is pure: no Flask, no Redis, no
SQL, no clock reads, no global randomness (use ``ctx.rng``).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from functools import cached_property
from typing import Any, ClassVar

import marshmallow
import numpy as np

from .claims import Claim, Release
from .errors import UnknownGameError
from .registry import Registry
from .shards import shard_of
from .simulation import Forecast, SimulationNotSupportedError
from .state import GameState, Read


@dataclass(frozen=True)
class PlayContext:
    campaign_id: int
    version: int
    user_id: str
    claim_id: str
    now: datetime
    day: date
    # Seeds the play's randomness: HMAC(version secret, player, seq) for a stateful game, so every draw
    # can be re-derived from the revealed secret and the recorded sequence number.
    seed: int
    # What a stateful game plans from (see ``Game.reads``); empty for a stateless one.
    state: GameState | None = None
    variant: str | None = None
    # The campaign's first business day in its zone (None: it has no start), e.g. the earliest make-up day.
    starts_on: date | None = None
    # How many key groups the campaign's players are spread over (engine/shards.py).
    groups: int = 1

    def reaches(self, user_id: str) -> bool:
        """Whether ``user_id``'s state is in this player's key group, so one claim can read and change both;
        when not, the other player's half of an action is a ``Carry``."""
        return self.groups == 1 or shard_of(user_id, self.groups) == shard_of(self.user_id, self.groups)

    @cached_property
    def rng(self) -> np.random.Generator:
        """Built on first use: a Generator costs more than a whole flash-sale plan, which never draws."""
        return np.random.default_rng(self.seed)


class Game(ABC):
    """A game type. Subclasses set ``config_schema`` and ``actions`` and implement ``plan``.

    - ``config_schema``: validates the ``config`` of a campaign definition at
      publish; its loaded result is what ``plan`` receives.
    - ``actions``: action name -> marshmallow schema of that action's JSON body.
    - ``stock(config)``: item -> total units, loaded into Redis at publish.
    - ``public_view(config)``: what players may see of the config.
    - ``stateful``: plans from state read before the plan (``reads``); its plays are numbered per
      player (``seq``) and a claim whose state changed meanwhile is planned again.
    - ``shardable``: a campaign may spread its players over several key groups (``"shards"``,
      engine/shards.py): every key its plays touch is the player's own (their hash, their bitmaps) or the
      game reaches other players' state through ``Carry`` (``PlayContext.reaches``).
    """

    name: ClassVar[str]
    config_schema: ClassVar[type[marshmallow.Schema]]
    actions: ClassVar[Mapping[str, type[marshmallow.Schema]]]
    stateful: ClassVar[bool] = False
    shardable: ClassVar[bool] = False

    def reads(self, config: Mapping[str, Any], action: str, request: Mapping[str, Any], ctx: PlayContext
              ) -> Sequence[Read]:
        """Keys besides the player's own hash and the stock that ``plan`` needs for this action."""
        return ()

    def view_reads(self, config: Mapping[str, Any], ctx: ViewContext) -> Sequence[Read]:
        """Keys besides the player's own hash and the stock that ``player_state`` needs."""
        return ()

    @abstractmethod
    def plan(self, config: Mapping[str, Any], action: str, request: Mapping[str, Any], ctx: PlayContext
             ) -> Claim | Release:
        """Turn one validated action into what it takes and wins. Raise a HuodongError to refuse."""

    @abstractmethod
    def stock(self, config: Mapping[str, Any]) -> dict[str, int]:
        """Every stocked item of this config and its total units."""

    @abstractmethod
    def rewards(self, config: Mapping[str, Any]) -> list[Mapping[str, Any]]:
        """Every reward this config can pay out (validated against the reward types at publish)."""

    def public_view(self, config: Mapping[str, Any]) -> dict[str, Any]:
        return dict(config)

    def player_state(self, config: Mapping[str, Any], state: GameState, ctx: ViewContext) -> dict[str, Any]:
        """What this player needs to render the game, from the state read with ``view_reads``."""
        return {"stock_left": dict(state.stock_left)}

    def carry(self, config: Mapping[str, Any], payload: Mapping[str, Any], ctx: PlayContext) -> Claim:
        """Plan the second half of an action of another player (a ``Carry`` of one of this game's claims) on
        the state of the player it reaches (``ctx.user_id``), read with ``reads(config, CARRY, payload, ctx)``.
        Only games whose plans make carries need it."""
        raise NotImplementedError(f"{self.name} makes no carries")

    def finale_reads(self, config: Mapping[str, Any]) -> Sequence[Read]:
        """Keys the finale plans from (read as the finale's own player, ``FINALE_PLAYER``)."""
        return ()

    def finale(self, config: Mapping[str, Any], ctx: PlayContext) -> Claim | None:
        """The one payout when the campaign ends (e.g. the card pool split among completers); None = nothing.

        Runs once per campaign, after it has ended, through the same claim script as a play
        (budget, outbox, exactly-once settlement); ``ctx.state`` holds ``finale_reads``.
        """
        return None

    def forecast(self, config: Mapping[str, Any], behaviour: Mapping[str, Any], days: int,
                 rng: np.random.Generator) -> Forecast:
        """A Monte Carlo of this config (see engine.simulation), from the tables ``plan`` draws from."""
        raise SimulationNotSupportedError(game=self.name)

    def demo_definitions(self, starts_at: str, ends_at: str) -> list[dict[str, Any]]:
        """Campaign definitions ``huodong seed`` publishes for the demo."""
        return []


@dataclass(frozen=True)
class ViewContext:
    campaign_id: int
    user_id: str
    now: datetime
    day: date
    variant: str | None = None
    starts_on: date | None = None


games: Registry[type[Game]] = Registry("game", UnknownGameError)
