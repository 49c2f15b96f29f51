"""The risk score's population statistics: how many plays a minute is unusual for a device or an IP range.

The claim script counts every screened play per device and per IP range in
per-minute hashes (lib/risk.lua), which ``PopulationStats`` makes. Once a minute each process reads a sample
of the last full minute's counts and numpy turns it into a limit: the median
plus some robust standard deviations (1.4826 x the median absolute
deviation), never below the policy's floor. A device or range above it in
the current sliding minute scores that signal's points. The limits ride into
the claim script with the play: no read on the hot path.
"""

from __future__ import annotations

import functools
import socket
import threading
from dataclasses import dataclass
from typing import Any

import numpy as np
import redis

from ..keys import CampaignKeys

MINUTE_MS = 60_000
# Fewer devices (or ranges) than this in a minute is no population: the floor stands.
MIN_POPULATION = 20
# Counts read per hash to estimate the distribution (HRANDFIELD: a uniform sample, not the whole hash).
SAMPLE = 5_000
MAD_TO_SIGMA = 1.4826
# A minute's count hashes live 3 minutes: through the next minute, which reads them. Each process makes the
# minute's hashes with that lifetime (and a marker field, for a hash cannot be empty) at its first play of the
# minute, so the claim script only counts (lib/risk.lua) and gives no expiry on the hot path; and again every
# REMAKE_MS, so a hash Redis lost in the middle of a minute (a restart), which the script's next count makes
# again without a lifetime, has one again moments later.
KEEP_MS = 180_000
REMAKE_MS = 10_000
MARKER = ""


@dataclass(frozen=True)
class Limits:
    """Plays a minute above which a device's (or an IP range's) rate scores."""

    device: float
    ip_range: float


def robust_limit(counts: np.ndarray, floor: float, deviations: float) -> float:
    """median + deviations * 1.4826 * MAD of the population's counts, and never below the floor."""
    if counts.size < MIN_POPULATION:
        return float(floor)
    median = float(np.median(counts))
    mad = float(np.median(np.abs(counts - median)))
    return max(float(floor), median + deviations * MAD_TO_SIGMA * mad)


def minute_of(now_ms: int) -> int:
    return now_ms // MINUTE_MS


# (family, bits) tried in turn: inet_pton is strict (no leading zeros, no short forms, no zone) and in C.
_FAMILIES = ((socket.AF_INET, 32), (socket.AF_INET6, 128))


@functools.lru_cache(maxsize=65_536)  # a player plays again from the same address: parse it once
def ip_range(ip: str | None, prefix_v4: int, prefix_v6: int) -> str | None:
    """The network an address is counted under (its /24, say); None for no or a malformed address. Most
    addresses are seen once (a new player), so the miss matters: this costs a tenth of ``ipaddress``."""
    if not ip:
        return None
    for family, bits in _FAMILIES:
        try:
            packed = socket.inet_pton(family, ip)
        except (OSError, ValueError):  # ValueError: a NUL in the text
            continue
        prefix = prefix_v4 if bits == 32 else prefix_v6
        host_bits = bits - prefix
        network = (int.from_bytes(packed, "big") >> host_bits << host_bits).to_bytes(bits // 8, "big")
        return f"{socket.inet_ntop(family, network)}/{prefix}"
    return None


@functools.lru_cache(maxsize=1024)  # a campaign's keys for a minute: every screened play of the minute asks
def population_keys(keys: CampaignKeys, minute: int) -> tuple[str, str, str, str]:
    """The per-minute count hashes the risk score reads and writes: devices this minute and the minute
    before, IP ranges this minute and the minute before (lib/risk.lua dc, dp, nc, np)."""
    now, before = str(minute), str(minute - 1)
    return (keys.fraud("pop", "dev", now), keys.fraud("pop", "dev", before), keys.fraud("pop", "net", now),
            keys.fraud("pop", "net", before))


class PopulationStats:
    """Per campaign and minute, the limits of the last full minute's distribution (one read a minute)."""

    def __init__(self, client: redis.Redis) -> None:
        self._client = client
        self._lock = threading.Lock()
        self._limits: dict[tuple[Any, ...], Limits] = {}
        self._made: dict[int, int] = {}  # campaign -> the REMAKE_MS slot its minute hashes were last made in

    def limits(self, keys: CampaignKeys, now_ms: int, risk: dict) -> Limits:
        minute = minute_of(now_ms)
        slot = now_ms // REMAKE_MS
        device, ranges = risk["device_rate"], risk["ip_range_rate"]
        # The policy's thresholds are part of the entry: a saved policy applies from its first play.
        entry = (keys.campaign_id, minute, device["floor_per_minute"], device["deviations"],
                 ranges["floor_per_minute"], ranges["deviations"])
        limits = self._limits.get(entry)
        if limits is not None:
            if self._made.get(keys.campaign_id) != slot:
                with self._client.pipeline(transaction=False) as pipe:
                    self._make(pipe, keys, minute)
                    pipe.execute()
                self._made[keys.campaign_id] = slot
            return limits
        devices_before, ranges_before = population_keys(keys, minute)[1::2]
        with self._client.pipeline(transaction=False) as pipe:
            pipe.hrandfield(devices_before, SAMPLE, withvalues=True)
            pipe.hrandfield(ranges_before, SAMPLE, withvalues=True)
            self._make(pipe, keys, minute)
            devices, networks = pipe.execute()[:2]
        self._made[keys.campaign_id] = slot
        limits = Limits(robust_limit(_counts(devices), device["floor_per_minute"], device["deviations"]),
                        robust_limit(_counts(networks), ranges["floor_per_minute"], ranges["deviations"]))
        with self._lock:
            if len(self._limits) > 1000:  # old minutes
                self._limits = {k: v for k, v in self._limits.items() if k[1] >= minute}
            self._limits[entry] = limits
        return limits

    @staticmethod
    def _make(pipe: Any, keys: CampaignKeys, minute: int) -> None:
        """Queues the making of this minute's count hashes, with their lifetime, before its plays count (the
        caller notes the slot once the pipeline ran: a failed one is tried again)."""
        for key in population_keys(keys, minute)[::2]:  # this minute's devices and ranges
            pipe.hset(key, MARKER, 0)
            pipe.pexpire(key, KEEP_MS)


# A count's value carries the minute before's count above its 32 low bits (lib/risk.lua split_count).
COUNT_BITS = 0xFFFF_FFFF


def _counts(fields_and_values: list | None) -> np.ndarray:
    """HRANDFIELD WITHVALUES answers [field, value, field, value, ...] (the marker is no device or range): the
    counts of the minute."""
    if not fields_and_values:
        return np.empty(0)
    return np.asarray([int(value) & COUNT_BITS
                       for name, value in zip(fields_and_values[::2], fields_and_values[1::2], strict=True)
                       if name not in (MARKER, MARKER.encode())], dtype=np.float64)
