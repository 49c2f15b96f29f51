"""The test client as a mini-program uses the API: every request names its device and carries a fresh
timestamp and nonce (the fraud gate's replay protection), unless the test sets those headers itself. Each
device connects from an address of its own (one phone, one network), unless the test sets REMOTE_ADDR."""

from __future__ import annotations

import hashlib
import secrets
import time
from typing import Any

from flask import Flask
from flask.testing import FlaskClient

from engine.config import Settings
from engine.fraud.features import DEVICE_HEADER, NONCE_HEADER, TIMESTAMP_HEADER
from web import create_app


class MiniProgramClient(FlaskClient):
    def open(self, *args: Any, **kwargs: Any) -> Any:
        headers = dict(kwargs.pop("headers", None) or {})
        authorization = headers.get("Authorization")
        if authorization and DEVICE_HEADER not in headers:
            # One device per player: the same token always comes from the same phone.
            headers[DEVICE_HEADER] = "dev-" + hashlib.sha256(authorization.encode()).hexdigest()[:16]
        headers.setdefault(TIMESTAMP_HEADER, str(int(time.time() * 1000)))
        headers.setdefault(NONCE_HEADER, secrets.token_hex(12))
        device = headers.get(DEVICE_HEADER)
        environ = dict(kwargs.pop("environ_base", None) or {})
        if device and "REMOTE_ADDR" not in environ:
            a, b, c = hashlib.sha256(device.encode()).digest()[:3]
            environ["REMOTE_ADDR"] = f"10.{a}.{b}.{c % 254 + 1}"
        return super().open(*args, headers=headers, environ_base=environ, **kwargs)


def mini_program_app(settings: Settings) -> Flask:
    """An app of a test's own (its own Redis server, say) whose test client sends what a mini-program sends."""
    app = create_app(settings)
    app.test_client_class = MiniProgramClient
    return app
