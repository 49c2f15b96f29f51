"""The demo campaigns ``huodong seed`` creates and publishes."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from engine.clock import iso
from engine.game import games


def demo_definitions(now: datetime) -> list[dict[str, Any]]:
    """Every registered game's demo campaigns, running from a minute ago for 30 days.

    The flash sale comes first: its coupon grab is campaign 1, which the demo's printed example plays.
    """
    starts, ends = iso(now - timedelta(minutes=1)), iso(now + timedelta(days=30))
    order = sorted(games, key=lambda name: (name != "flash_sale", name))
    return [definition for name in order for definition in games.get(name)().demo_definitions(starts, ends)]
