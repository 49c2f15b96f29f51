"""Reading the outbox streams of every campaign through one consumer group, on a plain Redis or a cluster.

On a plain Redis one ``XREADGROUP`` reads all the streams (and blocks on all of them at once). A Redis Cluster
refuses a command whose keys lie in two slots, and every campaign's stream has a slot of its own (its
``{c:<id>}`` hash tag), so there each stream is read by its own ``XREADGROUP``, all of them in one pipeline that
redis-py splits by node; a read that found nothing is tried again every ``POLL_MS`` until the block time is
over (a blocking read of one stream would leave the others waiting).
"""

from __future__ import annotations

import time
from typing import Any

from engine.connections import on_cluster

POLL_MS = 25

Batches = list[tuple[str, list[Any]]]


def read_group(client: Any, group: str, consumer: str, streams: list[str], last_id: str, *, count: int,
               block_ms: int | None = None) -> Batches:
    """(stream, entries) of the streams that gave any: this consumer's pending entries (``last_id`` '0') or new
    ones ('>'), at most ``count`` a stream, waiting up to ``block_ms`` for the first when there are none."""
    if not on_cluster(client):
        read = client.xreadgroup(group, consumer, dict.fromkeys(streams, last_id), count=count, block=block_ms)
        return [(name, entries) for name, entries in read or [] if entries]
    deadline = time.monotonic() + (block_ms or 0) / 1000
    while True:
        with client.pipeline(transaction=False) as pipe:
            for stream in streams:
                pipe.xreadgroup(group, consumer, {stream: last_id}, count=count)
            replies = pipe.execute()
        found = [(name, entries) for reply in replies for name, entries in reply or [] if entries]
        if found or time.monotonic() >= deadline:
            return found
        time.sleep(min(POLL_MS / 1000, max(0.0, deadline - time.monotonic())))
