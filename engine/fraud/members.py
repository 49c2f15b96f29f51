"""What this process remembers of the device rules' sets: the members its admitted plays joined there.

A distinct check passes a member of its set whatever the set's size (a player already on a device plays on),
so a play of a pair this process saw admitted a moment ago needs no look at the set: the claim script gets
neither its key nor its check, and the risk score neither reads the device's players for a shared device nor
adds the player to its IP range's players again. The memory is short (MEMORY_MS from the admission that taught
it, not renewed by the plays it spares), so a set Redis lost or let expire gets its members back within it.
Every process learns from its own plays.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable

MEMORY_MS = 600_000
# Pairs kept at most (expired ones are dropped when it is full, and all of them if none had expired).
MAX_PAIRS = 200_000


class KnownMembers:
    def __init__(self) -> None:
        self._until: dict[tuple[str, str], int] = {}
        self._lock = threading.Lock()

    def knows(self, key: str, member: str, now_ms: int) -> bool:
        """Whether an admitted play of this process made (or found) ``member`` a member of the set at ``key``
        less than MEMORY_MS ago."""
        return self._until.get((key, member), 0) > now_ms

    def remember(self, pairs: Iterable[tuple[str, str]], now_ms: int) -> None:
        """(set key, member) pairs an admitted play joined."""
        with self._lock:
            if len(self._until) >= MAX_PAIRS:
                self._until = {pair: until for pair, until in self._until.items() if until > now_ms}
                if len(self._until) >= MAX_PAIRS:
                    self._until.clear()
            for pair in pairs:
                if self._until.get(pair, 0) <= now_ms:
                    self._until[pair] = now_ms + MEMORY_MS

    def forget(self) -> None:
        with self._lock:
            self._until.clear()
