"""Time as a collaborator: code asks a Clock, so tests can hold time still or move it."""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo


class Clock(Protocol):
    def now(self) -> datetime: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class FrozenClock:
    """A clock that only moves when told to (tests, simulations)."""

    def __init__(self, at: datetime) -> None:
        self._at = at
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            return self._at

    def advance(self, **delta: float) -> None:
        with self._lock:
            self._at += timedelta(**delta)


def to_ms(at: datetime) -> int:
    return int(at.timestamp() * 1000)


def from_ms(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


def business_day(at: datetime, timezone: str) -> date:
    """The calendar day in the campaign's zone (Asia/Shanghai by default) that ``at`` falls on."""
    return at.astimezone(ZoneInfo(timezone)).date()


def iso(at: datetime | None) -> str | None:
    """UTC ISO 8601 with a Z, as the API writes instants."""
    if at is None:
        return None
    return at.astimezone(UTC).isoformat().replace("+00:00", "Z")


def parse_instant(text: str) -> datetime:
    """An ISO 8601 instant as written on the wire (``...Z`` or an offset) to an aware datetime."""
    return datetime.fromisoformat(text.replace("Z", "+00:00"))
