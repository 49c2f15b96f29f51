"""The two comparison apps of the HTTP benchmark, served by gunicorn like the real one.

``create_bare_app()`` answers ``{"ok": true}`` and does nothing else: the
floor of Flask + gunicorn on this machine. ``create_evalsha_app(path)`` runs
only the claim script, with the keys and arguments that a real buy sent
(captured by ``run.py`` into the JSON file at ``path``), a fresh idempotency
key and order id per request: the floor of "HTTP + one EVALSHA". Both route
the same URL as the player API, so one wrk script drives all three targets.
"""

from __future__ import annotations

import itertools
import json
import os
import secrets
from collections.abc import Sequence
from typing import Any

import msgpack
from flask import Flask, jsonify, request

from engine.claim_call import REQUEST_FIELDS
from engine.config import load_settings
from engine.connections import connect

PLAY_PATH = "/api/v1/campaigns/<int:campaign_id>/actions/<action>"


def create_bare_app() -> Flask:
    app = Flask("bench_bare")

    @app.post(PLAY_PATH)
    def play(campaign_id: int, action: str) -> Any:
        return jsonify(ok=True)

    return app


def recorded(keys_and_args: Sequence[Any]) -> list[Any]:
    """The keys and arguments of a script call as JSON can keep them: the claim's packed arguments (its ops and
    items, bytes) as the lists they pack."""
    return [msgpack.unpackb(v, raw=False) if isinstance(v, bytes) else str(v) for v in keys_and_args]


class ClaimTemplate:
    """The EVALSHA of one real buy, re-targeted per request at another player, key and order id.

    claim.lua's header says where: KEYS[4] player counters, KEYS[5] idempotency
    record, KEYS[8] order hash; the request's order id and user id are found by
    their names in lib/request.lua.
    """

    def __init__(self, data: dict[str, Any]) -> None:
        self.sha: str = data["sha"]
        self.numkeys: int = data["numkeys"]
        self.keys_and_args: list[Any] = [msgpack.packb(v, use_bin_type=False) if isinstance(v, list) else v
                                         for v in data["keys_and_args"]]
        self.base: str = data["base"]
        self.redis_url: str = data["redis_url"]
        self._order = self.numkeys + REQUEST_FIELDS.index("order_id")
        self._user = self.numkeys + REQUEST_FIELDS.index("user_id")

    def field(self, name: str) -> Any:
        """A field of the recorded request document."""
        return self.keys_and_args[self.numkeys + REQUEST_FIELDS.index(name)]

    @classmethod
    def load(cls, path: str) -> ClaimTemplate:
        with open(path, encoding="utf-8") as f:
            return cls(json.load(f))

    def call(self, user_id: str, unique: str) -> list[str]:
        """The keys and arguments of one claim by ``user_id``; ``unique`` makes its key and order id new."""
        kv = list(self.keys_and_args)
        kv[3] = f"{self.base}:u:{user_id}"
        kv[4] = f"{self.base}:idem:{user_id}:{unique}"
        kv[7] = f"{self.base}:o:O{unique}"
        kv[self._order] = f"O{unique}"
        kv[self._user] = user_id
        return kv


def create_evalsha_app(template_path: str) -> Flask:
    template = ClaimTemplate.load(template_path)
    settings = load_settings({"redis_url": template.redis_url, "secret_key": "bench"}, environ={})
    app = Flask("bench_evalsha")
    client = connect(settings)  # the same client options as the engine's; connects lazily, per worker
    counter = itertools.count()
    prefix = f"{os.getpid():x}{secrets.token_hex(4)}"

    @app.post(PLAY_PATH)
    def play(campaign_id: int, action: str) -> Any:
        # A player id from the bearer token without checking it (the check is what this app leaves out).
        user_id = "m" + request.headers.get("Authorization", "")[-8:]
        unique = f"{prefix}{next(counter):012x}{request.headers.get('Idempotency-Key', '')[-8:]}"
        reply = client.evalsha(template.sha, template.numkeys, *template.call(user_id, unique))
        if reply[0] != "OK":
            return jsonify(error=reply[0], body=reply[1]), 409
        return app.response_class(reply[1], mimetype="application/json")

    return app

