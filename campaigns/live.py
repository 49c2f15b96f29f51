"""A campaign's live state in Redis: loaded at publish, switched by the lifecycle, read for views."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

import redis

from engine import scripts as codes
from engine.clock import from_ms, to_ms
from engine.errors import ConflictError
from engine.fraud import stats as gate_stats
from engine.keys import CampaignKeys, GlobalKeys
from engine.scripts import Scripts
from engine.shards import ShardDirectory, Shards, place, slices
from engine.slices import BUDGET, SliceMover, StockView
from engine.snapshot import CampaignSnapshot
from engine.state import GameState, Read, read_state

SAMPLES_LENGTH = 60 * 24 * 7  # a week of minutes


def _id_key(stream_id: str) -> tuple[int, ...]:
    return tuple(int(part) for part in stream_id.split("-"))


@dataclass(frozen=True)
class LiveStats:
    status: str | None
    version: int | None
    budget_fen: int | None
    spent_fen: int
    stock: dict[str, dict[str, int]]
    held_orders: int
    outbox_entries: int
    shards: int = 1

    def to_dict(self) -> dict[str, Any]:
        return self.__dict__.copy()


class LiveState:
    """A campaign's live state over all its key groups (one, unless it is sharded): loading, status, and the
    figures marketers and players see, summed over the groups."""

    def __init__(self, client: redis.Redis, *, scripts: Scripts, namespace: str,
                 directory: ShardDirectory | None = None, mover: SliceMover | None = None) -> None:
        self._client = client
        self._scripts = scripts
        self._namespace = namespace
        self.directory = directory or ShardDirectory(client, namespace)
        self.mover = mover or SliceMover(scripts)
        self.stock_view = StockView(client)

    def keys(self, campaign_id: int) -> CampaignKeys:
        """The home group's keys (definition, samples; the only group of an unsharded campaign)."""
        return CampaignKeys(self._namespace, campaign_id)

    def shards(self, campaign_id: int) -> Shards:
        return self.directory.get(campaign_id)

    def placed(self, campaign_id: int, count: int) -> tuple[str, ...]:
        """The groups' tags: those the campaign was first published with, or new ones placed now."""
        known = self.shards(campaign_id)
        if len(known) == count and (count == 1 or self._client.hexists(known.home.meta, "shards")):
            return known.tags
        return place(self._client, campaign_id, count)

    def load(self, snapshot: CampaignSnapshot, status: str) -> None:
        """Make this version the live one in every group (idempotent; stock already taken stays taken). A
        sharded campaign's stock and budget are split over its groups, then debts settled (a group that sold
        more than its new share takes the difference from the others)."""
        shards = Shards(self._namespace, snapshot.campaign_id, snapshot.shard_tags)
        count = len(shards)
        stock = snapshot.stock()
        shares = {item: slices(total, count) for item, total in stock.items()}
        budgets = slices(snapshot.budget_fen, count) if snapshot.budget_fen is not None else None
        self._client.hset(shards.home.meta, "shards", shards.encode())
        for index, keys in enumerate(shards):
            reply = self._scripts.load_state(
                keys,
                version=snapshot.version,
                status=status,
                starts_ms=to_ms(snapshot.starts_at) if snapshot.starts_at else None,
                ends_ms=to_ms(snapshot.ends_at) if snapshot.ends_at else None,
                budget_fen=budgets[index] if budgets is not None else None,
                snapshot=snapshot.to_json() if index == 0 else "",
                group=GlobalKeys(self._namespace).outbox_group,
                stock={item: share[index] for item, share in shares.items()},
                slice_of_shards=shards.sharded,
            )
            if reply.code not in (codes.OK, codes.STALE):
                raise ConflictError(f"Could not load live state ({reply.code}).")
        if shards.sharded:
            self.mover.settle_debts(shards, [*stock, *([BUDGET] if budgets is not None else [])])
        self._client.sadd(GlobalKeys(self._namespace).campaigns, snapshot.campaign_id)

    def finish_transfers(self, now_ms: int) -> int:
        """Complete the slice transfers of every sharded campaign that a crashed process left half done
        (settlement's housekeeping); answers how many."""
        finished = 0
        for campaign_id in sorted(int(i) for i in self._client.smembers(GlobalKeys(self._namespace).campaigns)):
            shards = self.shards(campaign_id)
            if shards.sharded:
                finished += self.mover.finish_pending(shards, now_ms=now_ms)
        return finished

    def set_status(self, campaign_id: int, status: str) -> None:
        for keys in self.shards(campaign_id):
            reply = self._scripts.set_status(keys, status)
            if reply.code == codes.MISSING:
                raise ConflictError("The campaign was never published.")

    def stats(self, campaign_id: int) -> LiveStats:
        shards = self.shards(campaign_id)
        with self._client.pipeline(transaction=False) as pipe:
            for keys in shards:
                pipe.hgetall(keys.meta)
                pipe.hgetall(keys.stock_total)
                pipe.hgetall(keys.stock_taken)
                pipe.zcard(keys.holds)
                pipe.xlen(keys.outbox)
            replies = pipe.execute()
        groups = [replies[i:i + 5] for i in range(0, len(replies), 5)]
        flying = self.mover.in_flight(shards) if shards.sharded else {}
        meta = groups[0][0]
        total: dict[str, int] = {}
        taken: dict[str, int] = {}
        for _, group_total, group_taken, _, _ in groups:
            for item, n in group_total.items():
                total[item] = total.get(item, 0) + int(n)
            for item, n in group_taken.items():
                taken[item] = taken.get(item, 0) + int(n)
        stock = {}
        for item, t in total.items():
            t += flying.get(item, 0)
            stock[item] = {"total": t, "taken": taken.get(item, 0), "left": max(0, t - taken.get(item, 0))}
        budgets = [g[0].get("budget_fen") for g in groups]
        return LiveStats(
            status=meta.get("status"),
            version=int(meta["version"]) if meta.get("version") else None,
            budget_fen=sum(int(b) for b in budgets) + flying.get(BUDGET, 0) if all(budgets) else None,
            spent_fen=sum(int(g[0].get("spent_fen") or 0) for g in groups),
            stock=stock,
            held_orders=sum(g[3] for g in groups),
            outbox_entries=sum(g[4] for g in groups),
            shards=len(shards),
        )

    def refusal_stats(self, campaign_id: int) -> dict[str, int]:
        """Refused plays per error code (lagging by up to a second: see engine.refusals)."""
        counts = self._client.hgetall(GlobalKeys(self._namespace).refusals(campaign_id))
        return {code: int(n) for code, n in counts.items()}

    def sample(self, campaign_id: int, now: datetime) -> bool:
        """Record this minute's stock left per item and budget spent, once however many settlement processes
        ask: the entry's id is the minute, and Redis refuses an id not above the last one."""
        stats = self.stats(campaign_id)
        minute_ms = to_ms(now) // 60_000 * 60_000
        fields = {"spent_fen": stats.spent_fen,
                  "stock": json.dumps({item: s["left"] for item, s in stats.stock.items()}, separators=(",", ":"))}
        try:
            self._client.xadd(self.keys(campaign_id).samples, fields, id=f"{minute_ms}-0", maxlen=SAMPLES_LENGTH,
                              approximate=True)
        except redis.ResponseError:  # this minute (or a later one) is recorded already
            return False
        return True

    def samples(self, campaign_id: int, since: datetime) -> list[dict[str, Any]]:
        """The minutes recorded since ``since``, oldest first: at, spent_fen, stock (item -> left)."""
        entries = self._client.xrange(self.keys(campaign_id).samples, min=f"{to_ms(since)}-0")
        return [{"at": from_ms(int(entry_id.partition("-")[0])), "spent_fen": int(fields["spent_fen"]),
                 "stock": json.loads(fields["stock"])} for entry_id, fields in entries]

    def fraud_stats(self, campaign_id: int) -> dict[str, dict[str, int]]:
        """The fraud gate's counts: ``blocked`` (refused plays per rule), ``shadow`` (admitted plays a
        shadow-mode rule would have refused, per rule), ``held`` (plays held for review, per ring signal) and
        ``challenges`` (answers to challenges: passed, failed, unavailable_open, unavailable_closed)."""
        counts: dict[str, dict[str, int]] = {"blocked": {}, "shadow": {}, "held": {}, "challenges": {}}
        with self._client.pipeline(transaction=False) as pipe:
            for keys in self.shards(campaign_id):
                pipe.hgetall(keys.fraud_stats)
            groups = pipe.execute()
        for group in groups:
            for field, n in group.items():
                kind, _, rule = field.partition(":")
                if kind == "challenge":
                    kind = "challenges"
                elif kind not in ("shadow", "held"):
                    kind, rule = "blocked", field
                counts[kind][rule] = counts[kind].get(rule, 0) + int(n)
        return counts

    def gate_last_hour(self, campaign_id: int, now_ms: int) -> dict[str, Any]:
        """The last hour of the gate on this campaign: plays, and per rule what it refused or would have."""
        shards = self.shards(campaign_id)
        return gate_stats.last_hour(
            self._client, lambda minute: [gate_stats.campaign_minute_key(keys, minute) for keys in shards], now_ms)

    def fraud_log(self, campaign_id: int, count: int = 50) -> list[dict[str, Any]]:
        """The latest refused plays, newest first: when, which rule, who, from which device and IP."""
        with self._client.pipeline(transaction=False) as pipe:
            for keys in self.shards(campaign_id):
                pipe.xrevrange(keys.fraud_log, count=count)
            groups = pipe.execute()
        latest = sorted((entry for group in groups for entry in group), key=lambda e: _id_key(e[0]), reverse=True)
        return [{"at": from_ms(int(entry_id.partition("-")[0])), **fields} for entry_id, fields in latest[:count]]

    def player_view(self, campaign_id: int, user_id: str, reads: Sequence[Read] = ()) -> tuple[str | None, GameState]:
        """Status, stock left, this player's hash and the game's reads, in one round trip (in a sharded
        campaign the stock left is the campaign's: the other groups' as read at most a second ago)."""
        shards = self.shards(campaign_id)
        group = shards.index_of(user_id)
        read = read_state(self._client, shards.keys(group), user_id, reads, with_status=True)
        if not shards.sharded:
            return read.status, read.state
        return read.status, replace(read.state, stock_left=self.stock_view.left(shards, group, read.state.stock_left))
