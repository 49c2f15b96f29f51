"""The game state a play is planned from, read from Redis in one pipelined round trip.

A stateful game (check-in streaks, chances, cards, red packets) plans from
what the player and the campaign hold now. The engine reads it here, the
game plans from it, and the claim's guards (the player's sequence number and
the ops' bounds) make the claim fail as STALE if it changed meanwhile, so the
plan is redone on fresh state instead of acting on an old one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import redis

from .clock import iso
from .idempotency import is_attempt_mark
from .keys import CampaignKeys

BITMAP_BITS = 32


@dataclass(frozen=True)
class Read:
    """A key a plan needs: a hash (every field) or a bitmap (its first 32 bits, e.g. a month's calendar)."""

    key: str
    kind: str = "hash"


@dataclass(frozen=True)
class GameState:
    user_id: str
    stock_left: Mapping[str, int] = field(default_factory=dict)
    hashes: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    bitmaps: Mapping[str, int] = field(default_factory=dict)
    # The player's attributes (engine.attributes), e.g. the ``points`` balance a play may spend.
    attributes: Mapping[str, Any] = field(default_factory=dict)

    @property
    def player(self) -> Mapping[str, str]:
        """The player's own hash: the engine's counters and the game's per-player fields."""
        return self.hash(f"user:{self.user_id}")

    def hash(self, key: str) -> Mapping[str, str]:
        return self.hashes.get(key, {})

    def number(self, key: str, name: str, default: int = 0) -> int:
        value = self.hash(key).get(name)
        return default if value is None else int(value)

    def mine(self, name: str, default: int = 0) -> int:
        """An integer field of the player's own hash."""
        return self.number(f"user:{self.user_id}", name, default)

    def bit(self, key: str, index: int) -> bool:
        """Bit ``index`` (0 = first, as SETBIT numbers them) of a bitmap read with ``Read(key, "bits")``."""
        return bool(self.bitmaps.get(key, 0) >> (BITMAP_BITS - 1 - index) & 1)

    @property
    def seq(self) -> int:
        """How many stateful plays this player has made in the campaign: numbers their draws."""
        return self.mine("seq")

    def to_dict(self) -> dict[str, Any]:
        return {"user_id": self.user_id, "stock_left": dict(self.stock_left),
                "hashes": {k: dict(v) for k, v in self.hashes.items()}, "bitmaps": dict(self.bitmaps),
                "attributes": {k: iso(v) if isinstance(v, datetime) else v
                               for k, v in self.attributes.items() if _plain(v) or isinstance(v, datetime)}}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> GameState:
        return cls(user_id=data["user_id"], stock_left=data.get("stock_left", {}),
                   hashes=data.get("hashes", {}), bitmaps=data.get("bitmaps", {}),
                   attributes=data.get("attributes", {}))


@dataclass(frozen=True)
class StateRead:
    """What one pipelined read answers: the game state, the campaign status and the stored idempotent answer."""

    state: GameState
    status: str | None
    stored_answer: str | None
    # The raw attribute hash, when the caller asked for it (``attributes_key``).
    attributes: Mapping[Any, Any] | None = None
    # The reply of the script call queued before the reads (``first``), raw.
    first: Any = None


def read_state(client: redis.Redis, keys: CampaignKeys, user_id: str, reads: Sequence[Read],
               idempotency_key: str | None = None, attributes_key: str | None = None, *,
               with_status: bool = False, first: Any = None) -> StateRead:
    """One round trip: stock, the player's hash, the game's reads and, for a play, the key's record and (unless
    the caller has them cached) the player's attributes; the campaign's status only for a view (a play's claim
    script checks it anyway). ``client`` decodes responses (``Container.redis``). ``first``: a script call
    (``scripts.PipelinedCall``, the play's attempt count) queued before the reads, its reply in ``first``."""
    own = f"user:{user_id}"
    wanted = [r for r in reads if r.key != own]
    with client.pipeline(transaction=False) as pipe:
        if first is not None:
            first.queue(pipe)
        if with_status:
            pipe.hget(keys.meta, "status")
        pipe.hgetall(keys.stock_total)
        pipe.hgetall(keys.stock_taken)
        pipe.hgetall(keys.user(user_id))
        for read in wanted:
            if read.kind == "bits":
                pipe.bitfield(keys.game(read.key)).get(f"u{BITMAP_BITS}", 0).execute()
            else:
                pipe.hgetall(keys.game(read.key))
        if idempotency_key is not None:
            pipe.get(keys.idempotency(user_id, idempotency_key))
        if attributes_key is not None:
            pipe.hgetall(attributes_key)
        replies = pipe.execute()
    attributes = replies.pop() if attributes_key is not None else None
    stored = replies.pop() if idempotency_key is not None else None
    if stored is not None and is_attempt_mark(stored):  # no answer: attempts.lua counted the play a moment ago
        stored = None
    first_reply = replies.pop(0) if first is not None else None
    status = replies.pop(0) if with_status else None
    total, taken, player = replies[:3]
    hashes: dict[str, Mapping[str, str]] = {own: player}
    bitmaps: dict[str, int] = {}
    for read, reply in zip(wanted, replies[3:], strict=True):
        if read.kind == "bits":
            bitmaps[read.key] = int(reply[0] or 0)
        else:
            hashes[read.key] = reply
    stock_left = {item: max(0, int(t) - int(taken.get(item, 0))) for item, t in total.items()}
    return StateRead(GameState(user_id, stock_left, hashes, bitmaps), status, stored, attributes, first_reply)


def _plain(value: Any) -> bool:
    return isinstance(value, (str, int, float, bool, list)) or value is None
