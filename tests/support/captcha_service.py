"""A captcha service's server-side verification endpoint for tests ("siteverify": secret and response in, a
JSON ``{"success": bool}`` out), on 127.0.0.1: tokens it issued pass once, and it can be told to be slow,
to fail or to answer nonsense."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field

from werkzeug.wrappers import Request, Response

SECRET = "captcha-test-secret"


@dataclass
class CaptchaService:
    tokens: set[str] = field(default_factory=set)
    delay_seconds: float = 0.0
    answer: str | None = None  # a raw body to answer instead (nonsense, say)
    status: int = 200
    calls: list[dict[str, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, environ, start_response):  # a WSGI app
        request = Request(environ)
        form = request.form.to_dict()
        with self.lock:
            self.calls.append(form)
        time.sleep(self.delay_seconds)
        if self.answer is not None or self.status != 200:
            return Response(self.answer or "", status=self.status)(environ, start_response)
        with self.lock:
            success = form.get("secret") == SECRET and form.get("response") in self.tokens
            self.tokens.discard(form.get("response", ""))
        return Response(json.dumps({"success": success}), mimetype="application/json")(environ, start_response)
