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

from collections.abc import Iterable

from .memory import ExpiringMemory

# Blocks kept at most (engine/fraud/memory.py: a flood of many scopes cannot grow it).
MAX_BLOCKS = 100_000


class Blocks:
    def __init__(self) -> None:
        self._memory = ExpiringMemory(MAX_BLOCKS)

    def __bool__(self) -> bool:
        return bool(self._memory)

    def block(self, campaign_id: int, label: str, value: str, now_ms: int, retry_ms: int) -> None:
        self._memory.keep([(campaign_id, label, value)], now_ms, now_ms + retry_ms)

    def forget(self) -> None:
        self._memory.forget()

    def blocked(self, campaign_id: int, scopes: Iterable[tuple[str, str]], now_ms: int) -> tuple[str, int] | None:
        """The first (label, ms left) of ``scopes`` (label, value) blocked now, if any."""
        for label, value in scopes:
            until = self._memory.until((campaign_id, label, value), now_ms)
            if until is not None:
                return label, until - now_ms
        return None
