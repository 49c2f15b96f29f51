"""Prometheus metrics of the hot path. Multi-process safe when PROMETHEUS_MULTIPROC_DIR is set (gunicorn)."""

from __future__ import annotations

from functools import lru_cache

from prometheus_client import Counter, Histogram

PLAYS = Counter("huodong_plays_total", "Plays by game, action and outcome code.", ["game", "action", "outcome"])
CLAIM_LATENCY = Histogram(
    "huodong_claim_seconds", "Time from a validated play to the claim script's answer.", ["game"],
    buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0),
)


@lru_cache(maxsize=4096)
def plays_counter(game: str, action: str, outcome: str) -> Counter:
    """The labelled child, looked up once: ``labels()`` costs a lock and a tuple per call."""
    return PLAYS.labels(game, action, outcome)


@lru_cache(maxsize=256)
def claim_latency(game: str) -> Histogram:
    return CLAIM_LATENCY.labels(game)
