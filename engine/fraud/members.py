"""What this process remembers of the device rules' sets: the members its admitted plays joined there.

A distinct check passes a member of its set whatever the set's size (a player already on a device plays on),
so a play of a pair this process saw admitted a moment ago needs no look at the set: the claim script gets
neither its key nor its check, and the risk score neither reads the device's players for a shared device nor
adds the player to its IP range's players again. The memory is short (MEMORY_MS from the admission that taught
it, not renewed by the plays it spares), so a set Redis lost or let expire gets its members back within it.
Every process learns from its own plays.
"""

from __future__ import annotations

from collections.abc import Iterable

from .memory import ExpiringMemory

MEMORY_MS = 600_000
# Pairs kept at most (engine/fraud/memory.py).
MAX_PAIRS = 200_000


class KnownMembers:
    def __init__(self) -> None:
        self._memory = ExpiringMemory(MAX_PAIRS)

    def knows(self, key: str, member: str, now_ms: int) -> bool:
        """Whether an admitted play of this process made (or found) ``member`` a member of the set at ``key``
        less than MEMORY_MS ago."""
        return self._memory.until((key, member), now_ms) is not None

    def remember(self, pairs: Iterable[tuple[str, str]], now_ms: int) -> None:
        """(set key, member) pairs an admitted play joined (a pair remembered already keeps its time)."""
        self._memory.keep(pairs, now_ms, now_ms + MEMORY_MS, renew=False)

    def forget(self) -> None:
        self._memory.forget()
