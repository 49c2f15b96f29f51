"""Counts for the admin page's charts: refused plays per campaign and error code ("refusals by reason"), and
what the fraud gate did per minute (engine/fraud/stats.py).

A count is kept in memory and the counts go to Redis (HINCRBY, a hash field
each; EXPIRE for counts that live a while) in one pipeline at most once a
second per process, so a storm of SOLD_OUT answers costs Redis about nothing.
The price: a process that dies loses up to a second of counts, and the charts
lag by as much. These are figures to watch, not to settle: nothing is paid
from them.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable

import redis
import structlog

from .connections import REDIS_ERRORS
from .keys import GlobalKeys

FLUSH_SECONDS = 1.0
log = structlog.get_logger(__name__)


class RefusalTally:
    def __init__(self, client: redis.Redis, *, namespace: str, seconds: Callable[[], float] = time.monotonic
                 ) -> None:
        self._client = client
        self._keys = GlobalKeys(namespace)
        self._seconds = seconds
        self._counts: Counter[tuple[str, str, int]] = Counter()  # (key, field, lifetime s or 0) -> count
        self._lock = threading.Lock()
        self._flushed_at = seconds()

    def add(self, campaign_id: int, code: str) -> None:
        """A refused play of this campaign, by its error code."""
        self.count(self._keys.refusals(campaign_id), code)

    def count(self, key: str, field: str, n: int = 1, *, ttl_seconds: int = 0) -> None:
        """``n`` more in the hash ``key``'s ``field``; the hash lives ``ttl_seconds`` from its last flush (0: for
        good)."""
        self.count_each(((key, field),), n, ttl_seconds=ttl_seconds)

    def count_each(self, keys_and_fields: Iterable[tuple[str, str]], n: int = 1, *, ttl_seconds: int = 0) -> None:
        """``count`` of each (key, field), under one lock."""
        with self._lock:  # flush swaps the counter under it
            counts = self._counts
            for key, field in keys_and_fields:
                counts[(key, field, ttl_seconds)] += n
            due = self._seconds() - self._flushed_at >= FLUSH_SECONDS
        if due:
            self.flush()

    def flush(self) -> None:
        """Send what was counted; on a Redis error keep it for the next flush."""
        with self._lock:
            counts, self._counts = self._counts, Counter()
            self._flushed_at = self._seconds()
        if not counts:
            return
        try:
            pipe = self._client.pipeline(transaction=False)
            lifetimes = {}
            for (key, field, ttl), n in counts.items():
                pipe.hincrby(key, field, n)
                if ttl:
                    lifetimes[key] = ttl
            for key, ttl in lifetimes.items():
                pipe.expire(key, ttl)
            pipe.execute()
        except REDIS_ERRORS:
            log.warning("could not record refusal counts; keeping them for the next flush", exc_info=True)
            with self._lock:
                self._counts.update(counts)
