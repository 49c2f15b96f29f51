"""Refused plays per campaign and error code, for the admin page's "refusals by reason" chart.

A refusal is counted in memory and the counts go to Redis (HINCRBY on the
campaign's ``refusals`` hash, a field per code) in one pipeline at most once a second per
process, so a storm of SOLD_OUT answers costs Redis about nothing. The price:
a process that dies loses up to a second of counts, and the chart lags by as
much. These are figures to watch, not to settle: nothing is paid from them.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable

import redis
import structlog

from .keys import GlobalKeys

FLUSH_SECONDS = 1.0
log = structlog.get_logger(__name__)


class RefusalTally:
    def __init__(self, client: redis.Redis, *, namespace: str, seconds: Callable[[], float] = time.monotonic
                 ) -> None:
        self._client = client
        self._keys = GlobalKeys(namespace)
        self._seconds = seconds
        self._counts: Counter[tuple[int, str]] = Counter()
        self._lock = threading.Lock()
        self._flushed_at = seconds()

    def add(self, campaign_id: int, code: str) -> None:
        with self._lock:
            self._counts[(campaign_id, code)] += 1
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
            for (campaign_id, code), n in counts.items():
                pipe.hincrby(self._keys.refusals(campaign_id), code, n)
            pipe.execute()
        except redis.RedisError:
            log.warning("could not record refusal counts; keeping them for the next flush", exc_info=True)
            with self._lock:
                self._counts.update(counts)
