"""Buyers who keep trying through a store outage, as the mini-program does: a play that meets Redis away (a
failover, a restart: engine.connections.REDIS_ERRORS, a 503 over HTTP) is sent again with the same
Idempotency-Key until it gets an answer. Many OS processes, each with many threads, as in racers.py; each play
reports its final code and how many times it was retried."""

from __future__ import annotations

import multiprocessing
import threading
import time
from collections.abc import Sequence
from typing import Any

from engine.config import Settings
from engine.connections import REDIS_ERRORS
from engine.errors import HuodongError
from engine.runtime import PlayRequest

RETRY_PAUSE = 0.05


def _process(settings: Settings, campaign_id: int, plays: Sequence[tuple[str, dict[str, Any], str]], threads: int,
             pause: float, deadline_seconds: float, results: Any) -> None:
    from web.container import Container

    container = Container.build(settings)
    answers: list[tuple[str, str, int]] = []
    lock = threading.Lock()
    deadline = time.monotonic() + deadline_seconds

    def run(chunk: Sequence[tuple[str, dict[str, Any], str]]) -> None:
        for user_id, payload, key in chunk:
            retries, code = 0, "GAVE_UP"
            while time.monotonic() < deadline:
                try:
                    result = container.play_service.play(PlayRequest(campaign_id, user_id, "buy", payload, key))
                    code = "REPLAY" if result.replayed else "OK"
                    break
                except HuodongError as exc:
                    code = exc.code
                    break
                except REDIS_ERRORS:
                    retries += 1
                    time.sleep(RETRY_PAUSE)
            with lock:
                answers.append((user_id, code, retries))
            time.sleep(pause)

    workers = [threading.Thread(target=run, args=(plays[i::threads],)) for i in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    results.put(answers)


def buy_through_outages(settings: Settings, campaign_id: int, plays: Sequence[tuple[str, dict[str, Any], str]], *,
                        processes: int = 3, threads: int = 4, pause: float = 0.0, deadline_seconds: float = 60
                        ) -> tuple[list[Any], Any]:
    """Start the buyers and answer (the processes, a queue of their answers): ``collect`` waits for them."""
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    workers = [context.Process(target=_process, args=(settings, campaign_id, list(plays[i::processes]), threads,
                                                       pause, deadline_seconds, results))
               for i in range(processes)]
    for worker in workers:
        worker.start()
    return workers, results


def collect(workers: list[Any], results: Any, timeout: float = 120) -> list[tuple[str, str, int]]:
    """Every play's (user, final code, retries)."""
    answers: list[tuple[str, str, int]] = []
    for _ in workers:
        answers += results.get(timeout=timeout)
    for worker in workers:
        worker.join(timeout=timeout)
        assert worker.exitcode == 0, f"buyer exited with {worker.exitcode}"
    return answers
