"""Prometheus metrics of the hot path. Multi-process safe when PROMETHEUS_MULTIPROC_DIR is set (gunicorn)."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

PLAYS = Counter("huodong_plays_total", "Plays by game, action and outcome code.", ["game", "action", "outcome"])
CLAIM_LATENCY = Histogram(
    "huodong_claim_seconds", "Time from a validated play to the claim script's answer.", ["game"],
    buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0),
)
