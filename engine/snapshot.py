"""The published campaign version a play is planned from: immutable, read from Redis, cached briefly."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import redis

from .clock import parse_instant
from .errors import NotFoundError
from .game import Game, games
from .keys import CampaignKeys


@dataclass(frozen=True)
class CampaignSnapshot:
    campaign_id: int
    version: int
    name: str
    game: str
    timezone: str
    starts_at: datetime | None
    ends_at: datetime | None
    budget_fen: int | None
    per_user: int | None
    per_user_per_day: int | None
    rollout_percent: int
    config: Mapping[str, Any]
    definition: Mapping[str, Any]
    plugin: Game = field(compare=False, repr=False)

    def to_json(self) -> str:
        return json.dumps({"campaign_id": self.campaign_id, "version": self.version,
                           "definition": self.definition}, sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_definition(cls, campaign_id: int, version: int, definition: Mapping[str, Any]) -> CampaignSnapshot:
        """Build from a definition already validated at publish (the game re-loads its config)."""
        game = games.get(definition["game"])
        limits = definition.get("limits") or {}
        return cls(
            campaign_id=campaign_id,
            version=version,
            name=definition["name"],
            game=definition["game"],
            timezone=definition.get("timezone") or "Asia/Shanghai",
            starts_at=_instant(definition.get("starts_at")),
            ends_at=_instant(definition.get("ends_at")),
            budget_fen=definition.get("budget_fen"),
            per_user=limits.get("per_user"),
            per_user_per_day=limits.get("per_user_per_day"),
            rollout_percent=definition.get("rollout_percent", 100),
            config=game.config_schema().load(definition["config"]),
            definition=definition,
            plugin=game(),
        )

    @classmethod
    def from_json(cls, text: str) -> CampaignSnapshot:
        data = json.loads(text)
        return cls.from_definition(data["campaign_id"], data["version"], data["definition"])


def _instant(value: str | None) -> datetime | None:
    return parse_instant(value) if value else None


class SnapshotCache:
    """Per-process cache of live snapshots, re-read from Redis after ``ttl_seconds``.

    A play plans from one snapshot, so it sees one consistent version; a new
    version reaches every process within the TTL.
    """

    def __init__(self, client: redis.Redis, *, namespace: str, ttl_seconds: float) -> None:
        self._client = client
        self._namespace = namespace
        self._ttl = ttl_seconds
        self._lock = threading.Lock()
        self._entries: dict[int, tuple[float, str, CampaignSnapshot]] = {}

    def get(self, campaign_id: int) -> CampaignSnapshot:
        now = time.monotonic()
        entry = self._entries.get(campaign_id)
        if entry and now - entry[0] < self._ttl:
            return entry[2]
        text = self._client.get(CampaignKeys(self._namespace, campaign_id).definition)
        if text is None:
            raise NotFoundError("No such campaign.", campaign_id=campaign_id)
        # Unchanged text: keep the parsed snapshot (parsing validates the whole config again).
        snapshot = entry[2] if entry and entry[1] == text else CampaignSnapshot.from_json(text)
        with self._lock:
            self._entries[campaign_id] = (now, text, snapshot)
        return snapshot

    def forget(self, campaign_id: int) -> None:
        with self._lock:
            self._entries.pop(campaign_id, None)
