"""Stock and budget slices of a sharded campaign, and moving them between its groups.

Each group of a sharded campaign (engine/shards.py) sells from its own slice,
so a play needs no key outside its player's group. A group that runs dry takes
from the group with the most left: transfer_out.lua takes the amount from the
donor and logs it in flight, transfer_in.lua adds it to the recipient exactly
once, then the log entry goes. A crash between the two leaves the entry, which
``finish_pending`` (settlement's housekeeping) completes. So at every moment

    the campaign's stock = the groups' allotments + what the logs hold in flight

and the campaign sells out only when every group is dry.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from . import scripts as codes
from .claim_call import BUDGET
from .claims import PlayResult
from .connections import REDIS_ERRORS
from .keys import CampaignKeys
from .scripts import Scripts
from .shards import Shards

# A group found dry everywhere is not asked again by this process for this long (a sold-out sale's flood of
# refusals would otherwise read every group on each play).
DRY_SECONDS = 0.5
# A transfer still logged after this long was left half done by a crashed process (housekeeping's sweep), or,
# when the campaign is dry but for what is in flight, by a process that met an outage (a refill finishes it).
STUCK_MS = 5_000
IN_FLIGHT_MS = 1_000
RECEIPTS_TTL = 90 * 86400


def allotment(keys: CampaignKeys, resource: str) -> tuple[str, str]:
    """(key, field) of a group's allotment of the resource."""
    return (keys.meta, "budget_fen") if resource == BUDGET else (keys.stock_total, resource)


def used(keys: CampaignKeys, resource: str) -> tuple[str, str]:
    return (keys.meta, "spent_fen") if resource == BUDGET else (keys.stock_taken, resource)


@dataclass(frozen=True)
class Balance:
    """One resource over a campaign's groups: each group's allotment and what it used of it."""

    allotted: tuple[int, ...]
    used: tuple[int, ...]

    @property
    def free(self) -> list[int]:
        return [a - u for a, u in zip(self.allotted, self.used, strict=True)]


class SliceMover:
    def __init__(self, scripts: Scripts) -> None:
        self._scripts = scripts
        self._client = scripts.client
        self._dry: dict[tuple[int, str], float] = {}
        self._lock = threading.Lock()
        # Transfers this process took and could not give (the recipient's primary was away): given first by the
        # next refill, so a failover strands no slice longer than it lasts (finish_pending covers a crash).
        self._unfinished: list[tuple[Shards, int, str, int, str, int]] = []

    def forget(self) -> None:
        with self._lock:
            self._dry.clear()

    def balance(self, shards: Shards, resource: str) -> Balance:
        """Every group's allotment and use of the resource, in one pipelined round trip (what is in flight
        between two groups is in neither: ``in_flight``)."""
        with self._client.pipeline(transaction=False) as pipe:
            for keys in shards:
                pipe.hget(*allotment(keys, resource))
                pipe.hget(*used(keys, resource))
            replies = pipe.execute()
        return Balance(tuple(_int(v) for v in replies[0::2]), tuple(_int(v) for v in replies[1::2]))

    def refill(self, shards: Shards, index: int, resource: str, wanted: int) -> int:
        """Group ``index`` needs ``wanted`` more of the resource than it has: move some from the group with the
        most left (half of that, at least ``wanted``). Answers what was moved, or 0 when no group has any to
        give (the campaign is sold out, or out of budget)."""
        if not shards.sharded or self._known_dry(shards.campaign_id, resource):
            return 0
        self._give_unfinished()
        free = self.balance(shards, resource).free
        if free[index] >= wanted:
            return wanted  # another play refilled it meanwhile
        donor = max((i for i in range(len(free)) if i != index), key=lambda i: free[i])
        if free[donor] <= 0:
            # Dry everywhere, unless some is in flight: a transfer left half done a while ago (its process died,
            # or met a failover) is finished here, and the play tries again.
            if self.in_flight(shards).get(resource):
                return self.finish_pending(shards, now_ms=int(time.time() * 1000), stuck_ms=IN_FLIGHT_MS)
            with self._lock:
                self._dry[(shards.campaign_id, resource)] = time.monotonic() + DRY_SECONDS
            return 0
        amount = max(wanted - max(free[index], 0), (free[donor] + 1) // 2)
        return self.move(shards, donor, index, resource, amount, least=1)

    def move(self, shards: Shards, donor: int, recipient: int, resource: str, amount: int, *, least: int) -> int:
        """Move up to ``amount`` from one group to another; answers what moved."""
        transfer_id = f"{int(time.time() * 1000):x}{secrets.token_hex(4)}"
        entry = json.dumps({"to": recipient, "resource": resource, "at_ms": int(time.time() * 1000)})
        taken = self._scripts.transfer_out(shards.keys(donor), allotment=allotment(shards.keys(donor), resource),
                                           used=used(shards.keys(donor), resource), wanted=amount, least=least,
                                           transfer_id=transfer_id, entry=entry)
        if taken.code != codes.OK:
            return 0
        given = int(taken.body)
        try:
            self._give(shards, donor, transfer_id, recipient, resource, given)
        except REDIS_ERRORS:
            with self._lock:
                self._unfinished.append((shards, donor, transfer_id, recipient, resource, given))
            raise
        return given

    def _give_unfinished(self) -> None:
        with self._lock:
            pending, self._unfinished = self._unfinished, []
        for index, transfer in enumerate(pending):
            try:
                self._give(*transfer)
            except REDIS_ERRORS:
                with self._lock:
                    self._unfinished.extend(pending[index:])
                return

    def _give(self, shards: Shards, donor: int, transfer_id: str, recipient: int, resource: str, amount: int
              ) -> None:
        keys = shards.keys(recipient)
        self._scripts.transfer_in(keys, allotment=allotment(keys, resource), amount=amount,
                                  transfer_id=transfer_id, ttl=RECEIPTS_TTL)
        self._client.hdel(shards.keys(donor).transfers_out, transfer_id)

    def settle_debts(self, shards: Shards, resources: Iterable[str]) -> int:
        """After a publish lowered a resource below what a group already used: cover each group's debt from the
        groups with some left, so no group sells what the campaign no longer has. Answers what moved."""
        moved = 0
        for resource in resources:
            free = self.balance(shards, resource).free
            for needy in (i for i, f in enumerate(free) if f < 0):
                for donor in sorted(range(len(free)), key=lambda i: -free[i]):
                    if free[needy] >= 0 or free[donor] <= 0:
                        break
                    given = self.move(shards, donor, needy, resource, min(free[donor], -free[needy]), least=1)
                    free[donor] -= given
                    free[needy] += given
                    moved += given
        return moved

    def finish_pending(self, shards: Shards, *, now_ms: int, stuck_ms: int = STUCK_MS) -> int:
        """Complete the transfers a crashed process left half done (taken, not yet given); answers how many."""
        finished = 0
        for donor, keys in enumerate(shards):
            for transfer_id, text in self._client.hgetall(keys.transfers_out).items():
                entry = json.loads(text)
                if now_ms - entry["at_ms"] >= stuck_ms:
                    self._give(shards, donor, transfer_id, entry["to"], entry["resource"], entry["amount"])
                    finished += 1
        return finished

    def in_flight(self, shards: Shards) -> dict[str, int]:
        """Per resource, what has left a group and not yet reached the other (normally nothing)."""
        with self._client.pipeline(transaction=False) as pipe:
            for keys in shards:
                pipe.hgetall(keys.transfers_out)
                pipe.hgetall(keys.transfers_in)
            replies = pipe.execute()
        received = set().union(*(set(r) for r in replies[1::2]))
        flying: dict[str, int] = {}
        for log in replies[0::2]:
            for transfer_id, text in log.items():
                if transfer_id not in received:
                    entry = json.loads(text)
                    flying[entry["resource"]] = flying.get(entry["resource"], 0) + entry["amount"]
        return flying

    def _known_dry(self, campaign_id: int, resource: str) -> bool:
        until = self._dry.get((campaign_id, resource))
        return until is not None and time.monotonic() < until


class StockView:
    """The stock left a play answers in a sharded campaign: the campaign's, one number per item. The player's
    group is exact (the claim script's reply); the other groups' free stock is read at most once a second by
    each process, so the figure lags the other groups by up to a second."""

    def __init__(self, client: Any, *, seconds: float = 1.0) -> None:
        self._client = client
        self._seconds = seconds
        self._seen: dict[int, tuple[float, list[dict[str, int]]]] = {}

    def free(self, shards: Shards) -> list[dict[str, int]]:
        """Each group's free units per item, as read at most ``seconds`` ago."""
        seen = self._seen.get(shards.campaign_id)
        if seen is not None and time.monotonic() - seen[0] < self._seconds:
            return seen[1]
        with self._client.pipeline(transaction=False) as pipe:
            for keys in shards:
                pipe.hgetall(keys.stock_total)
                pipe.hgetall(keys.stock_taken)
            replies = pipe.execute()
        groups = [{item: int(n) - int(taken.get(item, 0)) for item, n in total.items()}
                  for total, taken in zip(replies[0::2], replies[1::2], strict=True)]
        self._seen[shards.campaign_id] = (time.monotonic(), groups)
        return groups

    def forget(self) -> None:
        self._seen.clear()

    def left(self, shards: Shards, group: int, own: Mapping[str, int]) -> dict[str, int]:
        """The campaign's stock left per item: ``own`` (group ``group``'s, read just now) plus the other groups'
        free units as read at most a second ago."""
        others = [free for i, free in enumerate(self.free(shards)) if i != group]
        return {item: max(0, left + sum(free.get(item, 0) for free in others)) for item, left in own.items()}

    def campaign_wide(self, shards: Shards, group: int, result: PlayResult) -> PlayResult:
        state = json.loads(result.state_json)
        if not state.get("remaining"):
            return result
        state["remaining"] = self.left(shards, group, state["remaining"])
        return replace(result, state_json=json.dumps(state, separators=(",", ":")))


def _int(value: str | bytes | None) -> int:
    return int(value) if value not in (None, "", b"") else 0
