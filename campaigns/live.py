"""A campaign's live state in Redis: loaded at publish, switched by the lifecycle, read for views."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import redis

from engine import scripts as codes
from engine.clock import from_ms, to_ms
from engine.errors import ConflictError
from engine.fraud import stats as gate_stats
from engine.keys import CampaignKeys, GlobalKeys
from engine.scripts import Scripts
from engine.snapshot import CampaignSnapshot
from engine.state import GameState, Read, read_state

SAMPLES_LENGTH = 60 * 24 * 7  # a week of minutes


@dataclass(frozen=True)
class LiveStats:
    status: str | None
    version: int | None
    budget_fen: int | None
    spent_fen: int
    stock: dict[str, dict[str, int]]
    held_orders: int
    outbox_entries: int

    def to_dict(self) -> dict[str, Any]:
        return self.__dict__.copy()


class LiveState:
    def __init__(self, client: redis.Redis, *, scripts: Scripts, namespace: str) -> None:
        self._client = client
        self._scripts = scripts
        self._namespace = namespace

    def keys(self, campaign_id: int) -> CampaignKeys:
        return CampaignKeys(self._namespace, campaign_id)

    def load(self, snapshot: CampaignSnapshot, status: str) -> None:
        """Make this version the live one (idempotent; stock already taken stays taken)."""
        reply = self._scripts.load_state(
            self.keys(snapshot.campaign_id),
            version=snapshot.version,
            status=status,
            starts_ms=to_ms(snapshot.starts_at) if snapshot.starts_at else None,
            ends_ms=to_ms(snapshot.ends_at) if snapshot.ends_at else None,
            budget_fen=snapshot.budget_fen,
            snapshot=snapshot.to_json(),
            group=GlobalKeys(self._namespace).outbox_group,
            stock=snapshot.stock(),
        )
        if reply.code not in (codes.OK, codes.STALE):
            raise ConflictError(f"Could not load live state ({reply.code}).")
        self._client.sadd(GlobalKeys(self._namespace).campaigns, snapshot.campaign_id)

    def set_status(self, campaign_id: int, status: str) -> None:
        reply = self._scripts.set_status(self.keys(campaign_id), status)
        if reply.code == codes.MISSING:
            raise ConflictError("The campaign was never published.")

    def stats(self, campaign_id: int) -> LiveStats:
        keys = self.keys(campaign_id)
        with self._client.pipeline(transaction=False) as pipe:
            pipe.hgetall(keys.meta)
            pipe.hgetall(keys.stock_total)
            pipe.hgetall(keys.stock_taken)
            pipe.zcard(keys.holds)
            pipe.xlen(keys.outbox)
            meta, total, taken, holds, outbox = pipe.execute()
        stock = {
            item: {"total": int(t), "taken": int(taken.get(item, 0)),
                   "left": max(0, int(t) - int(taken.get(item, 0)))}
            for item, t in total.items()
        }
        return LiveStats(
            status=meta.get("status"),
            version=int(meta["version"]) if meta.get("version") else None,
            budget_fen=int(meta["budget_fen"]) if meta.get("budget_fen") else None,
            spent_fen=int(meta.get("spent_fen") or 0),
            stock=stock,
            held_orders=holds,
            outbox_entries=outbox,
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
        for field, n in self._client.hgetall(self.keys(campaign_id).fraud_stats).items():
            kind, _, rule = field.partition(":")
            if kind in ("shadow", "held"):
                counts[kind][rule] = int(n)
            elif kind == "challenge":
                counts["challenges"][rule] = int(n)
            else:
                counts["blocked"][field] = int(n)
        return counts

    def gate_last_hour(self, campaign_id: int, now_ms: int) -> dict[str, Any]:
        """The last hour of the gate on this campaign: plays, and per rule what it refused or would have."""
        keys = self.keys(campaign_id)
        return gate_stats.last_hour(self._client, lambda minute: gate_stats.campaign_minute_key(keys, minute), now_ms)

    def fraud_log(self, campaign_id: int, count: int = 50) -> list[dict[str, Any]]:
        """The latest refused plays, newest first: when, which rule, who, from which device and IP."""
        return [{"at": from_ms(int(entry_id.partition("-")[0])), **fields}
                for entry_id, fields in self._client.xrevrange(self.keys(campaign_id).fraud_log, count=count)]

    def player_view(self, campaign_id: int, user_id: str, reads: Sequence[Read] = ()) -> tuple[str | None, GameState]:
        """Status, stock left, this player's hash and the game's reads, in one round trip."""
        read = read_state(self._client, self.keys(campaign_id), user_id, reads, with_status=True)
        return read.status, read.state
