"""The hot path's view of fraud policies: the Redis mirror of SQL's table, compiled and kept a second.

A name with no saved policy is the built-in default (``DEFAULT_POLICY``), also
when Redis lost its mirror: the gate never runs without a policy.
"""

from __future__ import annotations

import json
import logging
import time

import marshmallow
import redis

from ..keys import GlobalKeys
from .policy import DEFAULT, DEFAULT_POLICY, CompiledPolicy

log = logging.getLogger(__name__)


class PolicyCache:
    def __init__(self, client: redis.Redis, namespace: str, *, ttl_seconds: float = 1.0) -> None:
        self._client = client
        self._key = GlobalKeys(namespace).fraud_policies
        self._ttl = ttl_seconds
        self._entries: dict[str, tuple[float, CompiledPolicy]] = {}
        self._default = CompiledPolicy.compile(DEFAULT, DEFAULT_POLICY)

    def get(self, name: str) -> CompiledPolicy:
        entry = self._entries.get(name)
        now = time.monotonic()
        if entry is not None and now - entry[0] < self._ttl:
            return entry[1]
        text = self._client.hget(self._key, name)
        policy = self._compile(name, text) if text else self._fallback(name)
        self._entries[name] = (now, policy)
        return policy

    def forget(self) -> None:
        self._entries.clear()

    def _compile(self, name: str, text: str | bytes) -> CompiledPolicy:
        try:
            return CompiledPolicy.compile(name, json.loads(text))
        except (ValueError, marshmallow.ValidationError):  # only the admin API writes there, after validating
            # A bad entry must not open the gate: the default policy stands in.
            log.exception("fraud policy %r in Redis does not load; using the default policy", name)
            return self._default

    def _fallback(self, name: str) -> CompiledPolicy:
        if name != DEFAULT:
            log.warning("fraud policy %r is not in Redis; using the default policy", name)
        return self._default
