"""A merchant's webhook endpoint for tests: pays each grant once (by Idempotency-Key) and answers as told.

Answers can be scripted per delivery (``answers``) or drawn at random (``rates``, seeded) from the same
faults the Alipay sandbox injects: ``timeout_before`` (too late, nothing paid), ``timeout_after`` (paid,
then too late: the sender cannot know) and ``http_500`` (nothing paid).
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections import Counter
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from werkzeug.wrappers import Request, Response

from rewards.webhook import SIGNATURE_HEADER, verify_signature

from .services import serving as serving_app

SECRET = "whsec-test"


@dataclass
class Receiver:
    answers: list[tuple[int, float]] = field(default_factory=list)  # (status, delay) per delivery, then 200
    rates: Mapping[str, float] = field(default_factory=dict)
    late_seconds: float = 1.5
    seed: int = 0
    deliveries: list[dict[str, Any]] = field(default_factory=list)
    paid: dict[str, str] = field(default_factory=dict)
    faults: Counter = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self._random = random.Random(self.seed)

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        body = request.get_data()
        key = request.headers.get("Idempotency-Key", "")
        with self.lock:
            status, delay, fault = self._next()
            self.deliveries.append({"key": key, "body": body, "fault": fault,
                                    "valid": verify_signature(SECRET, request.headers.get(SIGNATURE_HEADER, ""),
                                                              body)})
            if status == 200:
                self.paid.setdefault(key, f"pay-{len(self.paid) + 1}")
                answer = json.dumps({"id": self.paid[key]})
            else:
                answer = f"refused with {status}"
        time.sleep(delay)
        return Response(answer, status=status, content_type="application/json")(environ, start_response)

    def _next(self) -> tuple[int, float, str | None]:
        if self.answers:
            status, delay = self.answers.pop(0)
            return status, delay, None
        draw, edge = self._random.random(), 0.0
        for fault, rate in self.rates.items():
            edge += rate
            if draw < edge:
                self.faults[fault] += 1
                return {"timeout_before": (503, self.late_seconds), "timeout_after": (200, self.late_seconds),
                        "http_500": (500, 0.0)}[fault] + (fault,)
        return 200, 0.0, None


@contextmanager
def serving(receiver: Receiver) -> Iterator[str]:
    """The receiver on 127.0.0.1 in a thread; yields its URL."""
    with serving_app(receiver) as base:
        yield f"{base}/rewards"
