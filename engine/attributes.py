"""Player attributes the audience rules read, from Redis with a short per-process cache.

Attributes are written by the admin import (campaigns.attributes) to SQL,
the record, and to Redis: one hash per player (attribute -> JSON value) and
one catalogue hash (attribute -> type). A play reads them here; the cache
keeps a flash-sale peak from reading them once per tap.
"""

from __future__ import annotations

import json
import threading
import time
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import redis

from .audience import BUILTIN_ATTRIBUTES
from .clock import parse_instant


@dataclass(frozen=True)
class AttributeKeys:
    namespace: str

    @property
    def catalogue(self) -> str:
        """Hash: attribute name -> type, for imported attributes (built-ins are in engine.audience)."""
        return f"{self.namespace}:attr-types"

    def player(self, user_id: str) -> str:
        """Hash: attribute name -> JSON value of one player."""
        return f"{self.namespace}:attrs:{user_id}"


def decode(kind: str, raw: str) -> Any:
    value = json.loads(raw)
    if kind == "timestamp" and isinstance(value, str):
        return parse_instant(value)
    return value


class AttributeStore:
    """``client`` decodes responses (``Container.redis``)."""

    def __init__(self, client: redis.Redis, *, namespace: str, ttl_seconds: float = 5.0,
                 max_players: int = 100_000) -> None:
        self._client = client
        self._keys = AttributeKeys(namespace)
        self._ttl = ttl_seconds
        self._max = max_players
        self._lock = threading.Lock()
        self._players: OrderedDict[str, tuple[float, dict[str, Any]]] = OrderedDict()
        self._types: tuple[float, dict[str, str]] | None = None

    def types(self) -> dict[str, str]:
        """Every attribute a rule may name, with its type."""
        cached = self._types
        if cached and time.monotonic() - cached[0] < self._ttl:
            return cached[1]
        imported = self._client.hgetall(self._keys.catalogue)
        types = {**imported, **BUILTIN_ATTRIBUTES}
        self._types = (time.monotonic(), types)
        return types

    def of(self, user_id: str) -> dict[str, Any]:
        cached = self.cached(user_id)
        if cached is not None:
            return cached
        return self.remember(user_id, self._client.hgetall(self._keys.player(user_id)))

    def key(self, user_id: str) -> str:
        return self._keys.player(user_id)

    def cached(self, user_id: str) -> dict[str, Any] | None:
        """The player's attributes if this process read them in the last ``ttl_seconds``."""
        entry = self._players.get(user_id)
        if entry and time.monotonic() - entry[0] < self._ttl:
            return entry[1]
        return None

    def remember(self, user_id: str, raw: Mapping[str, str]) -> dict[str, Any]:
        """Decode a player's attribute hash as read from Redis (here or in a caller's pipeline) and cache it."""
        types = self.types()
        values = {name: decode(types[name], text) for name, text in raw.items() if name in types}
        with self._lock:
            self._players[user_id] = (time.monotonic(), values)
            self._players.move_to_end(user_id)
            while len(self._players) > self._max:
                self._players.popitem(last=False)
        return values

    def forget(self) -> None:
        with self._lock:
            self._players.clear()
            self._types = None

    def write(self, rows: Mapping[str, Mapping[str, str]], catalogue: Mapping[str, str]) -> None:
        """Store JSON-encoded values per player and the types of imported attributes, in one pipeline."""
        with self._client.pipeline(transaction=False) as pipe:
            if catalogue:
                pipe.hset(self._keys.catalogue, mapping=dict(catalogue))
            for user_id, values in rows.items():
                if values:
                    pipe.hset(self._keys.player(user_id), mapping=dict(values))
            pipe.execute()
        self.forget()
