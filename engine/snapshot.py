"""The published campaign version a play is planned from: immutable, read from Redis, cached briefly."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import redis

from .audience import Audience
from .clock import business_day, parse_instant
from .errors import NotFoundError
from .fraud.policy import policy_of
from .game import Game, games
from .keys import CampaignKeys
from .variants import Variant, merged_config


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
    # The version's fairness secret: seeds every draw; revealed only once the campaign has ended.
    secret: str = field(default="", repr=False)
    variants: tuple[Variant, ...] = ()
    audience: Audience | None = field(default=None, compare=False)
    # The hash tags of the campaign's key groups when it is sharded (engine/shards.py); () = the home group only.
    shard_tags: tuple[str, ...] = ()

    @property
    def fraud_policy(self) -> str:
        """The name of the fraud policy the campaign plays under."""
        return policy_of(self.definition)

    @property
    def expects_new_users(self) -> bool:
        """An acquisition campaign: new accounts are its customers, and the risk score does not hold youth
        against them."""
        return bool((self.definition.get("fraud") or {}).get("expects_new_users"))

    @property
    def shard_count(self) -> int:
        """How many key groups the campaign's players are spread over (its definition's ``shards``)."""
        return int(self.definition.get("shards", 1))

    @property
    def needs_state(self) -> bool:
        """Plays read state before planning: the game is stateful, or a variant must be kept sticky."""
        return self.plugin.stateful or bool(self.variants)

    @property
    def starts_on(self) -> date | None:
        """The campaign's first business day in its zone."""
        return business_day(self.starts_at, self.timezone) if self.starts_at else None

    def stock(self) -> dict[str, int]:
        """Every stocked item of the base config and of each variant (the stock is shared by all variants)."""
        stock = self.plugin.stock(self.config)
        for variant in self.variants:
            for item, total in self.plugin.stock(variant.config).items():
                stock.setdefault(item, total)
        return stock

    def config_for(self, variant: str | None) -> Mapping[str, Any]:
        for candidate in self.variants:
            if candidate.name == variant:
                return candidate.config
        return self.config

    def to_json(self) -> str:
        groups = {"shards": list(self.shard_tags)} if len(self.shard_tags) > 1 else {}
        return json.dumps({"campaign_id": self.campaign_id, "version": self.version, "secret": self.secret,
                           "definition": self.definition, **groups}, sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_definition(cls, campaign_id: int, version: int, definition: Mapping[str, Any], *, secret: str = "",
                        shard_tags: tuple[str, ...] = ()) -> CampaignSnapshot:
        """Build from a definition already validated at publish (the game re-loads its config)."""
        game = games.get(definition["game"])
        limits = definition.get("limits") or {}
        schema = game.config_schema()
        variants = tuple(
            Variant(v["name"], v["weight"], schema.load(merged_config(definition["config"], v.get("config") or {})))
            for v in definition.get("variants") or ()
        )
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
            config=schema.load(definition["config"]),
            definition=definition,
            plugin=game(),
            secret=secret,
            variants=variants,
            audience=Audience(definition["audience"]) if definition.get("audience") else None,
            shard_tags=tuple(shard_tags) if len(shard_tags) > 1 else (),
        )

    @classmethod
    def from_json(cls, text: str) -> CampaignSnapshot:
        data = json.loads(text)
        return cls.from_definition(data["campaign_id"], data["version"], data["definition"],
                                   secret=data.get("secret", ""), shard_tags=tuple(data.get("shards", ())))


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

    def get(self, campaign_id: int, *, fresh: bool = False) -> CampaignSnapshot:
        now = time.monotonic()
        entry = self._entries.get(campaign_id)
        if entry and now - entry[0] < self._ttl and not fresh:
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
