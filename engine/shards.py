"""One campaign over K key groups (``"shards": K``): which group holds a player, and where the groups live.

Every key of a play is in its player's group, so a play is still one script in
one slot, and no key is touched by every play of the campaign: K groups on K
Redis primaries carry K times one core's claims. Group 0 is the campaign's home
group (``{c:<id>}``: its definition, burn-down samples and the map of groups);
each group also holds its players, their idempotency keys, held orders, outbox,
fraud-gate state and a slice of the stock and the budget (engine/slices.py moves
slices between groups).

A player's group is a stable hash of their id, never stored. The tags of the
groups are chosen once, at the first publish, and kept in the home group's meta
(``shards``) and in every snapshot; on a cluster each tag is picked so its slot
is served by another primary (see ``place``).
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from .connections import on_cluster
from .keys import CampaignKeys, home_tag

MAX_SHARDS = 1024  # a million claims a second is some 200 primaries (docs/capacity.md)


def shard_of(user_id: str, count: int) -> int:
    """The player's group among ``count``: CRC-32 of the id, the same in every process and every release."""
    return zlib.crc32(user_id.encode()) % count if count > 1 else 0


@dataclass(frozen=True)
class Shards:
    """The key groups of one campaign: ``tags[0]`` is the home group."""

    namespace: str
    campaign_id: int
    tags: tuple[str, ...] = ()
    _keys: dict[int, CampaignKeys] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        if not self.tags:
            object.__setattr__(self, "tags", (home_tag(self.campaign_id),))

    def __len__(self) -> int:
        return len(self.tags)

    @property
    def sharded(self) -> bool:
        return len(self.tags) > 1

    def index_of(self, user_id: str) -> int:
        return shard_of(user_id, len(self.tags))

    def keys(self, index: int) -> CampaignKeys:
        """The keys of group ``index`` (kept: a play builds some twenty keys of its group)."""
        found = self._keys.get(index)
        if found is None:
            found = self._keys[index] = CampaignKeys(self.namespace, self.campaign_id,
                                                     self.tags[index] if index else "")
        return found

    def for_user(self, user_id: str) -> CampaignKeys:
        return self.keys(self.index_of(user_id))

    @cached_property
    def home(self) -> CampaignKeys:
        return self.keys(0)

    def __iter__(self) -> Iterator[CampaignKeys]:
        return (self.keys(i) for i in range(len(self.tags)))

    def encode(self) -> str:
        """The home meta's ``shards`` field."""
        return " ".join(self.tags)

    @classmethod
    def decode(cls, namespace: str, campaign_id: int, text: str | None) -> Shards:
        return cls(namespace, campaign_id, tuple(text.split()) if text else ())


def place(client: Any, campaign_id: int, count: int) -> tuple[str, ...]:
    """Tags for ``count`` groups of a campaign: on a cluster, group i's slot is served by the i-th primary after
    the home group's (in name order), so K groups land on K distinct primaries when there are K. A reshard that
    later moves a slot moves that group with it (its keys share the slot): the placement is then the operator's
    (``redis-cli --cluster reshard`` moves whole slots, so a group is never split)."""
    home = home_tag(campaign_id)
    if count <= 1:
        return (home,)
    if not on_cluster(client):
        return (home, *(f"{home}:{i}" for i in range(1, count)))
    primaries = sorted(node.name for node in client.get_primaries())
    first = primaries.index(_primary_of(client, home))
    tags = [home]
    for i in range(1, count):
        target = primaries[(first + i) % len(primaries)]
        tags.append(next(tag for tag in (f"{home}:{i}.{n}" for n in range(100_000))
                         if _primary_of(client, tag) == target))
    return tuple(tags)


def _primary_of(client: Any, tag: str) -> str:
    return client.get_node_from_key(f"{{{tag}}}").name


def slices(total: int, count: int) -> list[int]:
    """``total`` split over ``count`` groups as evenly as integers allow (the first ones get the remainder)."""
    return [total // count + (1 if i < total % count else 0) for i in range(count)]



class ShardDirectory:
    """Each campaign's groups as its home meta lists them (written at every publish), kept once read: the
    groups of a campaign never change. Settlement, sweeps and admin views find every group through it."""

    def __init__(self, client: Any, namespace: str) -> None:
        self._client = client
        self._namespace = namespace
        self._known: dict[int, Shards] = {}

    def get(self, campaign_id: int) -> Shards:
        found = self._known.get(campaign_id)
        if found is None:
            text = self._client.hget(CampaignKeys(self._namespace, campaign_id).meta, "shards")
            found = Shards.decode(self._namespace, campaign_id, text)
            if text:  # published since groups were listed: final
                self._known[campaign_id] = found
        return found

    def forget(self) -> None:
        """Drop what was read (tests, whose campaign ids start again at 1)."""
        self._known.clear()
