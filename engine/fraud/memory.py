"""A process's short memory of what Redis told it, each entry until a time (engine/fraud/blocks.py,
engine/fraud/members.py): capped, so a flood of distinct entries cannot grow it. When it is full the expired
entries are dropped; if none had expired, a new entry is not kept (the memory only spares Redis work: Redis
still decides without it)."""

from __future__ import annotations

import threading
from collections.abc import Hashable, Iterable


class ExpiringMemory:
    def __init__(self, capacity: int) -> None:
        self._capacity = capacity
        self._until: dict[Hashable, int] = {}
        self._lock = threading.Lock()

    def __bool__(self) -> bool:
        return bool(self._until)

    def until(self, key: Hashable, now_ms: int) -> int | None:
        """Until when ``key`` is remembered, None when it is not (any more)."""
        until = self._until.get(key)
        if until is not None and until <= now_ms:
            self._until.pop(key, None)
            return None
        return until

    def keep(self, keys: Iterable[Hashable], now_ms: int, until_ms: int, *, renew: bool = True) -> None:
        """Remember ``keys`` until ``until_ms``; with ``renew`` off, one remembered now keeps its time."""
        with self._lock:
            if len(self._until) >= self._capacity:
                self._until = {k: until for k, until in self._until.items() if until > now_ms}
            for key in keys:
                if len(self._until) >= self._capacity:
                    break
                if renew or self._until.get(key, 0) <= now_ms:
                    self._until[key] = until_ms

    def forget(self) -> None:
        with self._lock:
            self._until.clear()
