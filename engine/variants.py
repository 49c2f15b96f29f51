"""A/B variants: named variants with weights, each overriding part of the game's config.

A player's variant is picked from a stable hash of campaign and player, and
recorded in their state on their first play, so they keep it for the life of
the campaign even if a later version changes the weights.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Variant:
    name: str
    weight: int
    config: Mapping[str, Any]


def merged_config(base: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """``base`` with ``overrides`` applied: objects merge key by key, anything else (lists too) is replaced."""
    merged = dict(base)
    for key, value in overrides.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = merged_config(merged[key], value)
        else:
            merged[key] = value
    return merged


def pick_variant(campaign_id: int, user_id: str, variants: Sequence[Variant]) -> str | None:
    if not variants:
        return None
    total = sum(v.weight for v in variants)
    digest = hashlib.sha256(f"variant:{campaign_id}:{user_id}".encode()).digest()
    point = int.from_bytes(digest[:8], "big") % total
    for variant in variants:
        if point < variant.weight:
            return variant.name
        point -= variant.weight
    raise AssertionError("unreachable: point < total weight")


def player_variant(campaign_id: int, user_id: str, variants: Sequence[Variant], recorded: str | None
                   ) -> str | None:
    """The variant recorded on the player's first play, else the one they would get now."""
    names = {v.name for v in variants}
    if recorded and recorded in names:
        return recorded
    return pick_variant(campaign_id, user_id, variants)
