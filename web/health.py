"""Liveness (/healthz: Redis, every primary of a cluster, the queues' Redis and SQL checked) and Prometheus
metrics (/metrics)."""

from __future__ import annotations

import time
from typing import Any

from flask import Blueprint, Response, jsonify
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector
from sqlalchemy import text

from engine.connections import ping
from engine.keys import GlobalKeys
from rewards.lag import outbox_age_seconds, unissued
from rewards.settlement import outbox_streams

from .requestctx import container

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz() -> Any:
    checks: dict[str, str] = {}
    c = container()
    # Redis (every primary of a cluster), and the queues' Redis when it is another server.
    servers = {"redis": lambda: ping(c.redis)}
    if c.settings.queue_redis_url:
        servers["queue"] = lambda: ping(c.rq_redis)
    for name, check in servers.items():
        try:
            check()
            checks[name] = "ok"
        except Exception as exc:  # noqa: BLE001  (any failure is reported, not raised)
            checks[name] = f"error: {exc.__class__.__name__}"
    try:
        with c.sql_engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        checks["sql"] = "ok"
    except Exception as exc:  # noqa: BLE001
        checks["sql"] = f"error: {exc.__class__.__name__}"
    healthy = all(v == "ok" for v in checks.values())
    response = jsonify({"status": "ok" if healthy else "unhealthy", "checks": checks})
    response.status_code = 200 if healthy else 503
    return response


class SettlementCollector:
    """Settlement's lag and throughput, read at scrape time from Redis and SQL (so any web process reports what
    every worker did): the outbox, what was won and not yet issued, and grants settled by adapter and status."""

    def __init__(self, client: Any, namespace: str, session_factory: Any, clock: Any) -> None:
        self._client = client
        self._namespace = namespace
        self._sessions = session_factory
        self._clock = clock

    def collect(self) -> Any:
        entries = GaugeMetricFamily("huodong_outbox_entries", "Outbox entries not yet trimmed.", labels=["campaign"])
        lag = GaugeMetricFamily("huodong_outbox_lag_seconds",
                                "Age of the oldest outbox entry (an admitted claim) not yet settled into SQL.",
                                labels=["campaign"])
        keys = GlobalKeys(self._namespace)
        now_ms = time.time() * 1000
        counts: dict[int, int] = {}
        ages: dict[int, float] = {}
        for campaign_id, stream in outbox_streams(self._client, self._namespace):  # a sharded one has several
            counts[campaign_id] = counts.get(campaign_id, 0) + self._client.xlen(stream)
            ages[campaign_id] = max(ages.get(campaign_id, 0.0),
                                    outbox_age_seconds(self._client, stream, keys.outbox_group, now_ms))
        for campaign_id, count in counts.items():
            entries.add_metric([str(campaign_id)], count)
            lag.add_metric([str(campaign_id)], ages[campaign_id])
        yield entries
        yield lag
        waiting = GaugeMetricFamily("huodong_grants_unissued", "Grants won and not yet issued (pending, failed, "
                                    "unknown).", labels=["campaign"])
        oldest = GaugeMetricFamily("huodong_grants_unissued_age_seconds",
                                   "How long ago the oldest grant not yet issued was won.", labels=["campaign"])
        now = self._clock.now()
        with self._sessions() as session:
            for campaign_id, behind in sorted(unissued(session).items()):
                waiting.add_metric([str(campaign_id)], behind.grants)
                oldest.add_metric([str(campaign_id)], behind.age_seconds(now))
        yield waiting
        yield oldest
        settled = CounterMetricFamily("huodong_grants_settled", "Grants settled by issuance batches, by adapter and "
                                      "outcome (issued, dead, failed and unknown attempts); rate() gives grants/s.",
                                      labels=["adapter", "status"])
        for field, count in sorted(self._client.hgetall(keys.settled).items()):
            adapter, _, status = field.rpartition(":")
            settled.add_metric([adapter, status], int(count))
        yield settled


@bp.get("/metrics")
def metrics() -> Response:
    c = container()
    if c.settings.metrics_dir:  # gunicorn: every worker process writes its samples there
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=c.settings.metrics_dir)
    else:
        registry = REGISTRY
    settlement = CollectorRegistry()
    settlement.register(SettlementCollector(c.redis, c.settings.redis_namespace, c.read_session_factory, c.clock))
    return Response(generate_latest(registry) + generate_latest(settlement), mimetype=CONTENT_TYPE_LATEST)
