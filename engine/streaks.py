"""Streaks (连签): consecutive business days, and a reward ladder that cycles."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta


def streak_ending(done: Callable[[date], bool], day: date, *, longest: int = 62) -> int:
    """How many consecutive days up to and including ``day`` are done (0 if ``day`` is not), at most ``longest``."""
    count = 0
    while count < longest and done(day - timedelta(days=count)):
        count += 1
    return count


def ladder_step(streak: int, cycle: int) -> int:
    """The 0-based rung of a ladder of ``cycle`` days for the ``streak``-th consecutive day (1-based)."""
    return (streak - 1) % cycle
