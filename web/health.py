"""Liveness (/healthz, Redis and SQL checked) and Prometheus metrics (/metrics)."""

from __future__ import annotations

import time
from typing import Any

from flask import Blueprint, Response, jsonify
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector
from sqlalchemy import text

from engine.keys import GlobalKeys
from rewards.settlement import first_unsettled_id, outbox_streams

from .requestctx import container

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz() -> Any:
    checks: dict[str, str] = {}
    c = container()
    try:
        c.redis.ping()
        checks["redis"] = "ok"
    except Exception as exc:  # noqa: BLE001  (any failure is reported, not raised)
        checks["redis"] = f"error: {exc.__class__.__name__}"
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


class OutboxCollector:
    """Outbox lag, read from Redis at scrape time: entries kept and age of the oldest unsettled one."""

    def __init__(self, client: Any, namespace: str) -> None:
        self._client = client
        self._namespace = namespace

    def collect(self) -> Any:
        entries = GaugeMetricFamily("huodong_outbox_entries", "Outbox entries not yet trimmed.", labels=["campaign"])
        lag = GaugeMetricFamily("huodong_outbox_lag_seconds", "Age of the oldest unsettled outbox entry.",
                                labels=["campaign"])
        group = GlobalKeys(self._namespace).outbox_group
        now_ms = time.time() * 1000
        for campaign_id, stream in outbox_streams(self._client, self._namespace):
            entries.add_metric([str(campaign_id)], self._client.xlen(stream))
            oldest_ms = self._oldest_unsettled_ms(stream, group, now_ms)
            lag.add_metric([str(campaign_id)], max(0.0, (now_ms - oldest_ms) / 1000))
        yield entries
        yield lag

    def _oldest_unsettled_ms(self, stream: str, group: str, now_ms: float) -> float:
        first = first_unsettled_id(self._client, stream, group)
        oldest = self._client.xrange(stream, min=first, count=1) if first else []
        return float(oldest[0][0].split("-")[0]) if oldest else now_ms


@bp.get("/metrics")
def metrics() -> Response:
    c = container()
    if c.settings.metrics_dir:  # gunicorn: every worker process writes its samples there
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=c.settings.metrics_dir)
    else:
        registry = REGISTRY
    outbox = CollectorRegistry()
    outbox.register(OutboxCollector(c.redis, c.settings.redis_namespace))
    return Response(generate_latest(registry) + generate_latest(outbox), mimetype=CONTENT_TYPE_LATEST)
