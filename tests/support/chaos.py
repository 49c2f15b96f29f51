"""The moving parts of the fault-injection proof: a Redis server the test owns and can kill, worker and
settlement processes kept running by a supervisor that can SIGKILL them, and players who retry.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import pytest
import redis

from .services import TEST_REDIS_CLUSTER

ROOT = Path(__file__).resolve().parents[2]
REDIS_SERVER = "/usr/bin/redis-server"
# A test on a Redis server of its own (OwnRedis) runs the same in every pass: the cluster pass leaves it out.
own_server = pytest.mark.skipif(TEST_REDIS_CLUSTER, reason="on a Redis of its own: the single-server passes run it")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until_up(process: subprocess.Popen, port: int, directory: Path, timeout: float = 20) -> None:
    """Until the redis-server just started on ``port`` answers PING (it may still be loading its append-only
    file); its log in ``directory`` says why if it never does."""
    client = redis.Redis(port=port)
    deadline = time.monotonic() + timeout
    try:
        while True:
            try:
                client.ping()
                return
            except redis.RedisError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError(f"redis-server did not start: see {directory / 'redis.log'}") from None
                time.sleep(0.05)
    finally:
        client.close()


class OwnRedis:
    """Debian's redis-server with an append-only file, on a spare port, in a folder of the test's.

    ``appendfsync always`` is the production setting for money: every write is on disk before Redis
    answers it. ``everysec`` answers first and syncs once a second.
    """

    def __init__(self, directory: Path, *, appendfsync: str = "always") -> None:
        self.directory = directory
        self.directory.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.appendfsync = appendfsync
        self.process: subprocess.Popen | None = None
        self.kills = 0

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def settings(self) -> dict[str, str]:
        """Settings of an engine and queues on this server alone (also in the cluster pass of the suite)."""
        return {"redis_url": self.url, "redis_cluster": "0", "queue_redis_url": ""}

    def start(self) -> None:
        self.process = subprocess.Popen(
            [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.directory),
             "--appendonly", "yes", "--appendfsync", self.appendfsync, "--save", "",
             "--aof-load-truncated", "yes", "--logfile", str(self.directory / "redis.log")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until_up(self.process, self.port, self.directory)

    def kill(self) -> None:
        """SIGKILL: no shutdown, no last write; what is on disk is what survives."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()
        self.kills += 1

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.kill()

    def incr_aof(self) -> Path:
        """The append-only file Redis 7 is appending to now (the last incr file of its manifest)."""
        manifest = (self.directory / "appendonlydir" / "appendonly.aof.manifest").read_text().split("\n")
        incr = [line.split()[1] for line in manifest if line.endswith("type i")]
        return self.directory / "appendonlydir" / incr[-1]


@dataclass
class Supervised:
    name: str
    argv: list[str]
    log: Path
    process: subprocess.Popen | None = None
    starts: int = 0
    started_at: float = 0.0


@dataclass
class Supervisor:
    """Keeps named processes running: what dies (killed, or its Redis went away) is started again."""

    env: dict[str, str]
    logs: Path
    children: dict[str, Supervised] = field(default_factory=dict)
    kills: list[dict[str, Any]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def add(self, name: str, argv: list[str]) -> None:
        self.logs.mkdir(parents=True, exist_ok=True)
        self.children[name] = Supervised(name, argv, self.logs / f"{name}.log")

    def start(self) -> None:
        for child in self.children.values():
            self._spawn(child)
        self._thread = threading.Thread(target=self._watch, name="supervisor", daemon=True)
        self._thread.start()

    def _spawn(self, child: Supervised) -> None:
        with child.log.open("ab") as log:
            child.process = subprocess.Popen(child.argv, cwd=ROOT, env=self.env, stdout=log, stderr=log,
                                             start_new_session=True)
        child.starts += 1
        child.started_at = time.monotonic()

    def _watch(self) -> None:
        while not self._stop.wait(0.3):
            with self._lock:
                for child in self.children.values():
                    # At most one start a second: while Redis is down a new worker dies at once.
                    if child.process is not None and child.process.poll() is not None \
                            and time.monotonic() - child.started_at > 1.0:
                        self._spawn(child)

    def kill(self, name: str, *, horse_only: bool = False, note: dict[str, Any] | None = None) -> bool:
        """SIGKILL a process and everything it forked, or only its forked children (an RQ work horse)."""
        with self._lock:
            child = self.children[name]
            if child.process is None or child.process.poll() is not None:
                return False
            try:
                victims = psutil.Process(child.process.pid).children(recursive=True)
            except psutil.NoSuchProcess:
                return False
            if horse_only:
                if not victims:
                    return False
                for victim in victims:
                    _sigkill(victim.pid)
            else:
                os.killpg(child.process.pid, signal.SIGKILL)
                child.process.wait()
            self.kills.append({"name": name, "horse_only": horse_only, **(note or {})})
            return True

    def kill_pid_horse(self, pid: int, note: dict | None = None) -> bool:
        """SIGKILL only the work horse of the supervised worker whose process id is ``pid``."""
        for name, child in self.children.items():
            if child.process is not None and child.process.pid == pid:
                return self.kill(name, horse_only=True, note={"mid_batch": True, **(note or {})})
        return False

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        for child in self.children.values():
            if child.process is not None and child.process.poll() is None:
                os.killpg(child.process.pid, signal.SIGKILL)
                child.process.wait()


def _sigkill(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


def huodong(*args: str) -> list[str]:
    return [sys.executable, "-m", "web.cli", *args]


@dataclass
class PlayLog:
    """What the players were told: the claims acknowledged to them, and how often they had to retry."""

    acknowledged: dict[str, dict[str, Any]] = field(default_factory=dict)  # claim id -> the answer
    refused: list[tuple[Any, ...]] = field(default_factory=list)  # (status, code, rule, reasons)
    unavailable: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


def play_until_answered(post: Callable[[dict[str, str]], Any], headers: dict[str, str], log: PlayLog,
                        *, patience: float = 60.0) -> None:
    """One play as a mini-program makes it: on 503 (Redis away) the same request, same Idempotency-Key, again."""
    headers = {**headers, "Idempotency-Key": str(uuid.uuid4())}
    deadline = time.monotonic() + patience
    while True:
        response = post(headers)
        if response.status_code != 503:
            break
        with log.lock:
            log.unavailable += 1
        if time.monotonic() > deadline:
            raise AssertionError("the service stayed unavailable")
        time.sleep(random.uniform(0.1, 0.4))
    with log.lock:
        if response.status_code == 200:
            answer = response.get_json()
            log.acknowledged[answer["outcome"]["claim_id"]] = answer
        else:
            error = response.get_json()["error"]
            log.refused.append((response.status_code, error["code"], error["details"].get("rule"),
                                error["details"].get("reasons")))


def chaos_loop(rng: random.Random, until: Callable[[], bool], actions: Iterable[tuple[float, Callable[[], Any]]],
               *, pause: tuple[float, float] = (0.6, 1.4),
               due: Callable[[], Callable[[], Any] | None] = lambda: None) -> None:
    """Until ``until()``: sleep a random pause, then the action ``due()`` names (a fault that must have happened
    by this phase of the run and has not yet) or else one picked by weight."""
    weights, moves = zip(*actions, strict=True)
    while not until():
        time.sleep(rng.uniform(*pause))
        (due() or rng.choices(moves, weights=weights)[0])()
