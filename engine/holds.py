"""Releasing held orders whose payment deadline passed: the scheduled side of release.lua."""

from __future__ import annotations

from datetime import datetime

import redis

from . import scripts as codes
from .clock import to_ms
from .keys import CampaignKeys, GlobalKeys
from .scripts import Scripts
from .shards import ShardDirectory


class HoldSweeper:
    """Finds due holds in each campaign's deadline index and releases each one exactly once.

    Safe to run from several processes at once: release.lua moves an order out
    of 'held' once, and a second sweeper gets NOT_HELD for it.
    """

    def __init__(self, client: redis.Redis, *, scripts: Scripts, namespace: str,
                 groups: ShardDirectory | None = None) -> None:
        self._client = client
        self._scripts = scripts
        self._namespace = namespace
        self._groups = groups or ShardDirectory(client, namespace)

    def sweep(self, now: datetime, *, limit: int = 500) -> list[str]:
        released: list[str] = []
        for campaign_id in sorted(int(i) for i in self._client.smembers(GlobalKeys(self._namespace).campaigns)):
            released += self.sweep_campaign(campaign_id, now, limit=limit)
        return released

    def sweep_campaign(self, campaign_id: int, now: datetime, *, limit: int = 500) -> list[str]:
        """Release the due holds of every key group of the campaign (one, unless it is sharded)."""
        return [order_id for keys in self._groups.get(campaign_id) for order_id in self._sweep(keys, now, limit)]

    def _sweep(self, keys: CampaignKeys, now: datetime, limit: int) -> list[str]:
        now_ms = to_ms(now)
        released = []
        for order_id in self._client.zrangebyscore(keys.holds, "-inf", now_ms, start=0, num=limit):
            owner = self._client.hget(keys.order(order_id), "user")
            if owner is None:  # the order hash expired with the campaign's state
                self._client.zrem(keys.holds, order_id)
                continue
            reply = self._scripts.release(keys, order_id=order_id, owner_id=owner, reason="expired", now_ms=now_ms)
            if reply.code == codes.OK:
                released.append(order_id)
        return released
