"""What this process remembers of rate limits Redis refused: a flood is refused here, before any Redis call.

When a rate limit refuses a player (or a device, an IP), the script answers
when its window has room again. Until then this process refuses the same
scope's plays of that campaign on its own, at the cost of a dict lookup:
a client hammering the API costs an HTTP request, not a plan and a claim
script, each time. Those refusals add no attempts to the window, so the
block ends when Redis said it would. Every process learns a block from its
own first refusal.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable

# Blocks kept at most (expired ones are dropped when it is full: a flood of many scopes cannot grow it).
MAX_BLOCKS = 100_000


class Blocks:
    def __init__(self) -> None:
        self._until: dict[tuple[int, str, str], int] = {}
        self._lock = threading.Lock()

    def __bool__(self) -> bool:
        return bool(self._until)

    def block(self, campaign_id: int, label: str, value: str, now_ms: int, retry_ms: int) -> None:
        with self._lock:
            if len(self._until) >= MAX_BLOCKS:
                self._until = {k: until for k, until in self._until.items() if until > now_ms}
            if len(self._until) < MAX_BLOCKS:
                self._until[(campaign_id, label, value)] = now_ms + retry_ms

    def forget(self) -> None:
        with self._lock:
            self._until.clear()

    def blocked(self, campaign_id: int, scopes: Iterable[tuple[str, str]], now_ms: int) -> tuple[str, int] | None:
        """The first (label, ms left) of ``scopes`` (label, value) blocked now, if any."""
        for label, value in scopes:
            until = self._until.get((campaign_id, label, value))
            if until is not None:
                if until > now_ms:
                    return label, until - now_ms
                self._until.pop((campaign_id, label, value), None)
        return None
