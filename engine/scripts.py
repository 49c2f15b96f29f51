"""The Lua scripts, loaded once per Redis client and called by SHA, each behind a typed wrapper.

Callers never see KEYS, ARGV or raw return codes: each wrapper takes named
arguments and answers a ``ScriptReply`` whose code a caller matches against
the constants here. The shared prelude in ``scripts/lib`` is prepended to the
scripts that use it.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any

import redis

from .claim_call import ClaimOutcome, ClaimRequest, _text, outcome_of
from .claims import Relation
from .connections import ReplicaAckError, on_cluster
from .fraud.gate import FRAUD_LOG_LENGTH, GateCheck, RiskPart, Screening, ScriptPart
from .keys import CampaignKeys

# Each script's preludes (scripts/lib), in the order they are loaded: a part uses only what those before it
# define (tests/engine/test_script_parts.py checks it).
SCRIPT_PARTS: dict[str, tuple[str, ...]] = {
    "claim": ("request", "idempotency", "risk", "ring", "gate", "admission", "ops", "outbox"),
    "attempts": ("idempotency", "risk", "ring", "gate"),
    "release": ("idempotency",),
}


def _source(name: str, *preludes: str) -> str:
    folder = resources.files("engine") / "scripts"
    parts = [(folder / "lib" / f"{p}.lua").read_text() for p in preludes]
    parts.append((folder / f"{name}.lua").read_text())
    return "\n".join(parts)


@dataclass(frozen=True)
class ScriptReply:
    code: str
    body: str

    @classmethod
    def parse(cls, raw: Any) -> ScriptReply:
        code, body = raw
        return cls(_text(code), _text(body))


def _opt(value: int | None) -> str:
    return "" if value is None else str(int(value))


@dataclass(frozen=True)
class PipelinedCall:
    """A script call to queue in someone else's pipeline: EVALSHA by the SHA this client loaded (a pipeline
    that ran redis-py's Script would first ask SCRIPT EXISTS, a round trip of its own). A Redis that lost
    its scripts answers NOSCRIPT: ``reload`` and run the pipeline again."""

    script: Any
    keys: list[str]
    args: list[Any]

    def queue(self, pipe: Any) -> None:
        # As a plain command: redis-py's cluster pipeline refuses its evalsha() but routes this by its first key.
        pipe.execute_command("EVALSHA", self.script.sha, len(self.keys), *self.keys, *self.args)

    def reload(self) -> None:
        self.script.sha = _text(self.script.registered_client.script_load(self.script.script))


@dataclass(frozen=True)
class Confirmation:
    """What confirm.lua made of a payment: the order is paid (now or before), or it was released (cancelled or
    expired, named here) before the payment came and the payment must be refunded; neither for no such order."""

    paid: bool
    released_as: str | None


class Scripts:
    """All of Huodong's scripts registered on one client (redis-py's Script: EVALSHA, loading on NOSCRIPT)."""

    def __init__(self, client: redis.Redis, *, replica_acks: int = 0, replica_wait_ms: int = 200) -> None:
        self.client = client
        # Settings redis_replica_acks and redis_replica_wait_ms: see ``_durably``.
        self._replica_acks = replica_acks
        self._replica_wait_ms = replica_wait_ms
        self._claim = client.register_script(_source("claim", *SCRIPT_PARTS["claim"]))
        self._release = client.register_script(_source("release", *SCRIPT_PARTS["release"]))
        self._load_state = client.register_script(_source("load_state"))
        self._set_status = client.register_script(_source("set_status"))
        self._confirm = client.register_script(_source("confirm"))
        self._give_back = client.register_script(_source("give_back"))
        self._attempts = client.register_script(_source("attempts", *SCRIPT_PARTS["attempts"]))
        self._transfer_out = client.register_script(_source("transfer_out"))
        self._transfer_in = client.register_script(_source("transfer_in"))

    def preload(self) -> None:
        """SCRIPT LOAD every script now, so the first play pays no NOSCRIPT round trip."""
        for script in (self._claim, self._release, self._load_state, self._set_status, self._confirm,
                       self._give_back, self._attempts, self._transfer_out, self._transfer_in):
            script.sha = _text(self.client.script_load(script.script))

    @property
    def claim_sha(self) -> str:
        return self._claim.sha

    def claim(self, keys: CampaignKeys, request: ClaimRequest, *, idempotency_key: str,
              gate: Screening | None = None, relation: Relation | None = None, held_answer: str = ""
              ) -> ClaimOutcome:
        """claim.lua for one request: its keys (the group's, the ops', the gate's), the request document and the
        gate's arguments; the reply typed (engine/claim_call.py)."""
        user_id = request.user_id
        script_keys = [
            keys.meta, keys.stock_total, keys.stock_taken, keys.user(user_id),
            keys.idempotency(user_id, idempotency_key), keys.outbox, keys.holds, keys.order(request.order_id),
        ]
        index = {keys.user(user_id): 4}
        wire_ops = []
        for op in request.ops:
            real = keys.game(op.key)
            if real not in index:
                script_keys.append(real)
                index[real] = len(script_keys)
            wire_ops.append(op.to_wire(index[real]))
        ring = gate.ring(keys, user_id, relation) if gate is not None else None
        checks = gate.claim_checks() if gate is not None else []
        screened = gate is not None and bool(checks or gate.shadow or gate.risk or ring)
        argv = request.encode(wire_ops, screened=screened)
        if screened:
            argv += _gate_args(keys, gate, checks, script_keys, risk=gate.risk, ring=ring,
                               held_answer=(held_answer or request.answer) if ring is not None else "")
        return outcome_of(self._durably(self._claim, script_keys, argv))

    def attempts(self, keys: CampaignKeys, gate: Screening, now_ms: int, *, idempotency_key: str, fingerprint: str
                 ) -> PipelinedCall | None:
        """attempts.lua for the play's rate limits, to run first in the pipeline that reads a stateful game's
        state (None when the policy counts none of this play's attempts)."""
        windows = gate.windows()
        if not windows:
            return None
        script_keys = [keys.idempotency(gate.who["user"], idempotency_key)]
        return PipelinedCall(self._attempts, script_keys,
                             [now_ms, fingerprint, *_gate_args(keys, gate, windows, script_keys)])

    def release(
        self,
        keys: CampaignKeys,
        *,
        order_id: str,
        owner_id: str,
        reason: str,
        now_ms: int,
        idempotency_key: str = "",
        fingerprint: str = "",
        idempotency_ttl: int = 0,
        answer: str = "",
    ) -> ScriptReply:
        """Cancel (reason 'cancelled', owner_id = the player asking) or expire (reason 'expired')."""
        cancelling = reason == "cancelled"
        script_keys = [
            keys.order(order_id), keys.stock_taken, keys.user(owner_id), keys.meta, keys.holds, keys.outbox,
            keys.idempotency(owner_id, idempotency_key or f"release:{order_id}"),
        ]
        argv = [reason, now_ms, order_id, owner_id if cancelling else "", fingerprint, idempotency_ttl, answer]
        return ScriptReply.parse(self._release(keys=script_keys, args=argv))

    def load_state(
        self,
        keys: CampaignKeys,
        *,
        version: int,
        status: str,
        starts_ms: int | None,
        ends_ms: int | None,
        budget_fen: int | None,
        snapshot: str,
        group: str,
        stock: dict[str, int],
        slice_of_shards: bool = False,
    ) -> ScriptReply:
        """``slice_of_shards``: ``budget_fen`` and ``stock`` are this group's share of a sharded campaign's."""
        argv: list[Any] = [version, status, _opt(starts_ms), _opt(ends_ms), _opt(budget_fen), snapshot, group,
                           "slice" if slice_of_shards else "set", len(stock)]
        for item, total in stock.items():
            argv += [item, total]
        script_keys = [keys.meta, keys.stock_total, keys.definition, keys.outbox, keys.stock_base]
        return ScriptReply.parse(self._load_state(keys=script_keys, args=argv))

    def confirm(self, keys: CampaignKeys, *, order_id: str, now_ms: int, trade_no: str, event: str) -> Confirmation:
        """A held order was paid: 'paid' once, its rewards to the outbox (see confirm.lua)."""
        reply = ScriptReply.parse(self._confirm(keys=[keys.order(order_id), keys.holds, keys.outbox],
                                                args=[order_id, now_ms, trade_no, event]))
        return Confirmation(paid=reply.code in (OK, REPLAY), released_as=reply.body if reply.code == NOT_HELD else None)

    def give_back(self, keys: CampaignKeys, *, claim_id: str, cost_fen: int, takes: Sequence[Sequence[Any]],
                  marker_seconds: int = 90 * 86400) -> bool:
        """Return a rejected held play's budget and stock, once (see give_back.lua); True when it did now."""
        argv: list[Any] = [cost_fen, marker_seconds, len(takes)]
        for item, quantity in takes:
            argv += [item, quantity]
        return bool(self._give_back(keys=[keys.meta, keys.stock_taken, keys.fraud("given_back", claim_id)],
                                    args=argv))

    def transfer_out(self, keys: CampaignKeys, *, allotment: tuple[str, str], used: tuple[str, str], wanted: int,
                     least: int, transfer_id: str, entry: str) -> ScriptReply:
        """Take up to ``wanted`` (at least ``least``) of a slice from this group, logged in flight (OK, given)."""
        return ScriptReply.parse(self._durably(self._transfer_out, [allotment[0], used[0], keys.transfers_out],
                                               [allotment[1], used[1], wanted, least, transfer_id, entry]))

    def transfer_in(self, keys: CampaignKeys, *, allotment: tuple[str, str], amount: int, transfer_id: str,
                    ttl: int) -> ScriptReply:
        """Add a transfer's amount to this group's slice, once (OK; REPLAY when it had been)."""
        return ScriptReply.parse(self._durably(self._transfer_in, [allotment[0], keys.transfers_in],
                                               [allotment[1], amount, transfer_id, ttl]))

    def _durably(self, script: Any, keys: list[str], args: list[Any]) -> Any:
        """Run a script whose OK must survive a failover (a claim, each half of a slice transfer): with
        ``replica_acks`` set, the EVALSHA and a ``WAIT`` go down one connection of the keys' primary (WAIT counts
        the replicas that have that connection's writes), and an OK fewer replicas have raises ReplicaAckError;
        a refusal is answered whatever the replicas have (it changed no stock)."""
        if not self._replica_acks:
            return script(keys=keys, args=args)
        cluster = on_cluster(self.client)
        node = self.client.get_node_from_key(keys[0]).redis_connection if cluster else self.client
        for attempt in range(2):
            try:
                with node.pipeline(transaction=False) as pipe:
                    pipe.execute_command("EVALSHA", script.sha, len(keys), *keys, *args)
                    pipe.execute_command("WAIT", self._replica_acks, self._replica_wait_ms)
                    raw, acked = pipe.execute()
                break
            except redis.exceptions.NoScriptError:  # this primary lost its scripts, or was just promoted
                if attempt:
                    raise
                script.sha = _text(node.script_load(script.script))
            except redis.RedisError:
                if cluster:  # the node is gone or no longer serves the slot (a failover): learn the new map
                    _refresh_slots(self.client)
                raise
        if _text(raw[0]) == OK and int(acked) < self._replica_acks:
            raise ReplicaAckError(f"{acked} of {self._replica_acks} replicas had the write within "
                                  f"{self._replica_wait_ms} ms")
        return raw

    def set_status(self, keys: CampaignKeys, status: str) -> ScriptReply:
        return ScriptReply.parse(self._set_status(keys=[keys.meta], args=[status]))


def _refresh_slots(client: Any) -> None:
    """Re-read a cluster's slot map (what redis-py does itself when one of its own commands meets MOVED or a
    dead node; a command sent to one node's connection, as ``_durably`` sends, bypasses that)."""
    with contextlib.suppress(redis.RedisError):  # no node answers yet: the next attempt asks again
        client.nodes_manager.initialize()


def _appender(script_keys: list[str]) -> Any:
    """index_of(key): appends the key to KEYS and answers its (1-based) index."""
    def index_of(key: str) -> int:
        script_keys.append(key)
        return len(script_keys)
    return index_of


def _gate_args(keys: CampaignKeys, gate: Screening, checks: Sequence[GateCheck], script_keys: list[str], *,
               risk: RiskPart | None = None, ring: ScriptPart | None = None, held_answer: str = "") -> list[Any]:
    """The gate's arguments as lib/gate.lua's gate_read takes them, with these checks, the risk score's and the
    ring checks' parts when the play has them; their keys are appended to ``script_keys`` in the order
    gate_read expects them (the stats hash, the log, each check's, each window's of the epoch before, the risk
    score's), so no index is sent. Positional: no JSON to encode or decode, and each argument costs both sides,
    so none is sent twice."""
    who = gate.who
    args: list[Any] = [len(script_keys) + 1, FRAUD_LOG_LENGTH, who["user"], who["device"], who["ip"], "",
                       len(gate.shadow), *gate.shadow]
    script_keys += (keys.fraud_stats, keys.fraud_log)
    numbers: list[Any] = []
    labels, previous = [], []
    longest = 0
    for check in checks:  # the windows first, then the nonce, then the distinct checks: screen() orders them
        script_keys.append(check.key)
        labels.append(check.label)
        if check.kind == "window":
            previous.append(check.prev_key)
            numbers += (check.limit, check.ttl_ms)
            longest = max(longest, check.ttl_ms)
        else:
            numbers += check.numbers()
    if previous:
        args[5] = 2 * longest
    nonces = sum(check.kind == "nonce" for check in checks[len(previous):])
    args += (len(previous), nonces, len(checks) - len(previous) - nonces, " ".join(labels), *numbers)
    script_keys += previous
    if risk is not None:
        script_keys += risk.keys
    args += [json.dumps(ring.to_wire(_appender(script_keys)), separators=(",", ":")) if ring is not None else "",
             held_answer]
    args += (1, *risk.args) if risk is not None else (0,)
    return args


# Reply codes, named once for callers to match on.
OK = "OK"
FRAUD = "FRAUD"
REPLAY = "REPLAY"
REUSED = "REUSED"
NOT_LIVE = "NOT_LIVE"
NOT_STARTED = "NOT_STARTED"
ENDED = "ENDED"
LIMIT = "LIMIT"
SOLD_OUT = "SOLD_OUT"
BUDGET = "BUDGET"
NOT_FOUND = "NOT_FOUND"
NOT_HELD = "NOT_HELD"
NOT_DUE = "NOT_DUE"
STALE = "STALE"
MISSING = "MISSING"
REFUSED = "REFUSED"
