"""Many OS processes, each with many threads, playing at once through the engine.

Each process builds its own Container (its own Redis connections), waits at
a shared barrier so that every thread starts together, and reports each
play's outcome code back through a queue.
"""

from __future__ import annotations

import multiprocessing
import threading
import uuid
from collections import Counter
from collections.abc import Sequence
from typing import Any

from engine.config import Settings
from engine.errors import HuodongError
from engine.runtime import PlayRequest


def _process(settings: Settings, campaign_id: int, plays: Sequence[tuple[str, dict[str, Any], str]], threads: int,
             barrier: Any, results: Any, action: str) -> None:
    from web.container import Container

    container = Container.build(settings)
    container.scripts.preload()
    codes: list[tuple[str, str, dict[str, Any] | None]] = []
    lock = threading.Lock()
    chunks = [plays[i::threads] for i in range(threads)]
    start = threading.Barrier(threads)
    barrier.wait()

    def run(chunk: Sequence[tuple[str, dict[str, Any], str]]) -> None:
        start.wait()
        for user_id, payload, key in chunk:
            outcome = None
            try:
                result = container.play_service.play(PlayRequest(campaign_id, user_id, action, payload, key))
                code, outcome = ("REPLAY" if result.replayed else "OK"), result.outcome
            except HuodongError as exc:
                code = exc.code
            with lock:
                codes.append((user_id, code, outcome))

    workers = [threading.Thread(target=run, args=(chunk,)) for chunk in chunks]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    results.put(codes)


def race(settings: Settings, campaign_id: int, plays: Sequence[tuple[str, dict[str, Any], str]], *,
         processes: int = 8, threads: int = 8, timeout: float = 120, action: str = "buy",
         outcomes: bool = False) -> list[Any]:
    """Run ``plays`` (user, payload, idempotency key) of ``action`` across processes x threads; answer
    (user, code) pairs, or (user, code, outcome or None) with ``outcomes``."""
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(processes)
    results = context.Queue()
    shares = [list(plays[i::processes]) for i in range(processes)]
    workers = [context.Process(target=_process, args=(settings, campaign_id, share, threads, barrier, results, action))
               for share in shares]
    for worker in workers:
        worker.start()
    answers: list[tuple[str, str, dict[str, Any] | None]] = []
    for _ in workers:
        answers += results.get(timeout=timeout)
    for worker in workers:
        worker.join(timeout=timeout)
        assert worker.exitcode == 0, f"racer exited with {worker.exitcode}"
    return answers if outcomes else [(user, code) for user, code, _ in answers]


def distinct_buyers(count: int, sku: str = "C50", quantity: int = 1) -> list[tuple[str, dict[str, Any], str]]:
    return [(f"p{i}", {"sku": sku, "quantity": quantity}, uuid.uuid4().hex) for i in range(count)]


def tally(outcomes: list[tuple[str, str]]) -> Counter[str]:
    return Counter(code for _user, code in outcomes)
