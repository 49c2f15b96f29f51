"""Every Redis key Huodong uses is built here.

A campaign's keys all carry the hash tag ``{c:<id>}`` so that one Lua script
touches one Redis Cluster slot. A campaign spread over K shards (engine/shards.py)
has K such key groups: the home group ``{c:<id>}`` and one more group per shard
with a tag of its own, each holding its players' state and a slice of the stock
and budget. The namespace prefix lets deployments and test runs share a server
without seeing each other.
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass


@dataclass(frozen=True)
class CampaignKeys:
    namespace: str
    campaign_id: int
    # The key group's hash tag: '' is the campaign's home group, ``c:<id>`` (engine.shards.home_tag).
    tag: str = ""

    @functools.cached_property  # a play builds some twenty keys of one campaign
    def _base(self) -> str:
        return f"{self.namespace}:{{{self.tag or home_tag(self.campaign_id)}}}"

    @functools.cached_property
    def fraud_prefix(self) -> str:
        """What every key of the fraud gate starts with (``fraud`` adds the parts)."""
        return f"{self._base}:fraud:"

    @property
    def meta(self) -> str:
        """Hash: status, version, starts_ms, ends_ms, budget_fen, spent_fen; in a sharded campaign budget_fen
        is this group's slice (budget_base its share of the version's budget), and the home group's ``shards``
        field lists every group's tag."""
        return f"{self._base}:meta"

    @property
    def definition(self) -> str:
        """String: the live version's snapshot JSON (what plays are planned from)."""
        return f"{self._base}:def"

    @property
    def stock_total(self) -> str:
        """Hash: item -> total stock of the live version."""
        return f"{self._base}:stock:total"

    @property
    def stock_base(self) -> str:
        """Hash, in a sharded campaign only: item -> this group's share of the live version's stock (what a
        publish changes by the difference of the next version's share, so stock moved in by transfers stays)."""
        return f"{self._base}:stock:base"

    @property
    def transfers_out(self) -> str:
        """Hash: transfer id -> the stock or budget this group gave another and not yet known received (JSON)."""
        return f"{self._base}:xfer:out"

    @property
    def transfers_in(self) -> str:
        """Hash: transfer id -> amount, of every transfer this group received (so a retried one counts once)."""
        return f"{self._base}:xfer:in"

    @property
    def stock_taken(self) -> str:
        """Hash: item -> units taken so far (held or sold); never reset by a publish."""
        return f"{self._base}:stock:taken"

    @property
    def holds(self) -> str:
        """Sorted set: held order id scored by its payment deadline (ms)."""
        return f"{self._base}:holds"

    @property
    def outbox(self) -> str:
        """Stream: claims and releases waiting for settlement."""
        return f"{self._base}:outbox"

    def user(self, user_id: str) -> str:
        """Hash: one player's state: the engine's counters (all, d:<day>, i:<item>, seq, variant) and
        the game's own fields."""
        return f"{self._base}:u:{user_id}"

    def order(self, order_id: str) -> str:
        """Hash: one order (user, status, items, deadline, ...)."""
        return f"{self._base}:o:{order_id}"

    def idempotency(self, user_id: str, idempotency_key: str) -> str:
        """String: the stored answer to one player's Idempotency-Key (hashed, so any key is safe)."""
        digest = hashlib.sha256(idempotency_key.encode()).hexdigest()[:32]
        return f"{self._base}:idem:{user_id}:{digest}"

    def game(self, name: str) -> str:
        """A game's state key by its logical name: ``user:<id>`` is that player's hash, anything else
        a hash or bitmap of the game (``packet:<id>``, ``cal:<user>:<yyyymm>``, ...)."""
        kind, _, rest = name.partition(":")
        if kind == "user" and rest:
            return self.user(rest)
        return f"{self._base}:g:{name}"

    def fraud(self, *parts: str) -> str:
        """The fraud gate's state (engine/fraud/gate.py): nonces, rate-limit windows, a device's players..."""
        return self.fraud_prefix + ":".join(parts)

    @functools.cached_property  # this and the log: on every screened play
    def fraud_stats(self) -> str:
        """Hash: refusals per gate rule (label -> count), and shadow hits ('shadow:' + label -> count)."""
        return self.fraud("stats")

    @functools.cached_property
    def fraud_log(self) -> str:
        """Stream, capped at about FRAUD_LOG_LENGTH: the latest refused plays (rule, user, device, ip)."""
        return self.fraud("log")

    @property
    def samples(self) -> str:
        """Stream, one entry a minute (its id is the minute), capped at about SAMPLES_LENGTH: stock left per
        item and the budget spent, for the burn-down chart."""
        return f"{self._base}:samples"

    def all_keys_pattern(self) -> str:
        return f"{self._base}:*"


def home_tag(campaign_id: int) -> str:
    """The hash tag of a campaign's home key group: its definition, samples and the first shard."""
    return f"c:{campaign_id}"


@dataclass(frozen=True)
class GlobalKeys:
    namespace: str

    @property
    def campaigns(self) -> str:
        """Set: ids of campaigns with live state in Redis (for the settlement loop and sweeps)."""
        return f"{self.namespace}:campaigns"

    @property
    def outbox_group(self) -> str:
        """The consumer group name settlement reads outboxes with."""
        return f"{self.namespace}:settlement"

    @property
    def fraud_policies(self) -> str:
        """Hash: fraud policy name -> its JSON document (a mirror of SQL's fraud_policies for the hot path)."""
        return f"{self.namespace}:fraud:policies"

    def refusals(self, campaign_id: int) -> str:
        """Hash: a campaign's refused plays per error code (SOLD_OUT -> count), tallied by each process about
        once a second; outside the campaign's own keys (no hash tag), which only its plays change."""
        return f"{self.namespace}:refusals:{campaign_id}"

    @property
    def paying(self) -> str:
        """Hash: order id -> campaign id, for the orders an Alipay trade was made for (a payment notification
        names only the order). One key outside every campaign's slot, read and written one field at a time."""
        return f"{self.namespace}:paying"

    @property
    def settled(self) -> str:
        """Hash: grants settled so far by ``<reward type>:<status>`` -> count (issued, dead, failed, unknown),
        added to by every issuance batch; /metrics reports it as a counter."""
        return f"{self.namespace}:settled"

    def reconciliation(self, day: str) -> str:
        """String with a week's TTL: set once the day's reconciliation job was enqueued."""
        return f"{self.namespace}:reconciliation:{day}"

    def queue(self, name: str) -> str:
        """An RQ queue name inside this namespace."""
        return f"{self.namespace}:{name}"
