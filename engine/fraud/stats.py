"""What the fraud gate did, minute by minute: plays screened, refused and what shadow rules would refuse.

Per campaign and per policy, a hash a minute (kept two hours) counts ``plays`` (every play the gate screened),
``refused:<rule>``, ``shadow:<rule>`` and ``shadow_any`` (plays at least one shadow rule would have refused).
The counts ride the process's tally (engine/refusals.py: once a second, nothing on the hot path). The campaign
page shows the last hour's shares per rule, so a policy can be tried in shadow on live traffic before it is
enforced; the publish confirmation warns when the draft's policy would have refused more than
``WARN_SHARE`` of the plays in its last hour.
"""

from __future__ import annotations

import functools
from typing import Any

import redis

from ..keys import CampaignKeys, GlobalKeys
from ..refusals import RefusalTally
from .risk import MINUTE_MS, minute_of

KEEP_SECONDS = 2 * 3600
HOUR_MINUTES = 60
WARN_SHARE = 0.01


@functools.lru_cache(maxsize=1024)  # every screened play of a minute counts under the same two keys
def minute_keys(keys: CampaignKeys, policy: str, minute: int) -> tuple[str, str]:
    """The campaign's and its policy's stats hashes of a minute."""
    return campaign_minute_key(keys, minute), policy_minute_key(keys.namespace, policy, minute)


def policy_minute_key(namespace: str, policy: str, minute: int) -> str:
    return f"{_policy_minutes(namespace)}{policy}:{minute}"


def _policy_minutes(namespace: str) -> str:
    return f"{GlobalKeys(namespace).fraud_policies}:minute:"


def campaign_minute_key(keys: CampaignKeys, minute: int) -> str:
    return keys.fraud("minute", str(minute))


class GateStats:
    def __init__(self, tally: RefusalTally) -> None:
        self._tally = tally

    def record(self, keys: CampaignKeys, policy: str, now_ms: int, *, refused: str | None = None,
               shadow: list[str] | None = None, screened: bool = False) -> None:
        """Count what the gate did with one play: ``screened`` once per play, then its refusal or its shadow
        hits."""
        minute = minute_of(now_ms)
        fields = (["plays"] if screened else []) + ([f"refused:{refused}"] if refused else [])
        if shadow:
            fields += [f"shadow:{label}" for label in dict.fromkeys(shadow)] + ["shadow_any"]
        self._tally.count_each([(key, field) for key in minute_keys(keys, policy, minute)
                                for field in fields], ttl_seconds=KEEP_SECONDS)


def last_hour(client: redis.Redis, keys_of: Any, now_ms: int) -> dict[str, Any]:
    """The last hour's counts (``keys_of(minute)`` names a minute's hashes: one, or one per group of a
    sharded campaign) and each rule's share of the plays:
    {plays, would_refuse (shadow_any), share, rules: {rule: {refused, would_refuse, share}}}."""
    first = minute_of(now_ms) - HOUR_MINUTES + 1
    with client.pipeline(transaction=False) as pipe:
        for minute in range(first, first + HOUR_MINUTES):
            for key in keys_of(minute):
                pipe.hgetall(key)
        hashes = pipe.execute()
    totals: dict[str, int] = {}
    for counts in hashes:
        for field, n in counts.items():
            field = field.decode() if isinstance(field, bytes) else field
            totals[field] = totals.get(field, 0) + int(n)
    plays = totals.pop("plays", 0)
    would = totals.pop("shadow_any", 0)
    rules: dict[str, dict[str, Any]] = {}
    for field, n in sorted(totals.items()):
        kind, _, rule = field.partition(":")
        entry = rules.setdefault(rule, {"refused": 0, "would_refuse": 0})
        entry["refused" if kind == "refused" else "would_refuse"] += n
    for entry in rules.values():
        entry["share"] = round((entry["refused"] + entry["would_refuse"]) / plays, 4) if plays else 0.0
    return {"minutes": HOUR_MINUTES, "plays": plays, "would_refuse": would,
            "share": round(would / plays, 4) if plays else 0.0, "rules": rules, "since_ms": first * MINUTE_MS}
