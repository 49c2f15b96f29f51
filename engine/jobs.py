"""The collaborators background jobs run with: one context per worker process.

RQ jobs take ids as arguments; what they need besides (the settings, the SQL
session factory, the clock) is installed once by the process that runs them
(``huodong worker``, a test's burst worker) and inherited by every work horse
it forks. Rewards and the Alipay integration read the same context.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .clock import Clock
from .config import Settings


@dataclass(frozen=True)
class JobContext:
    settings: Settings
    # A SQLAlchemy sessionmaker (the engine itself does not import SQLAlchemy).
    session_factory: Any
    clock: Clock
    # The engine's Redis (a cluster, maybe), which is not the queues' (a job's own connection): what jobs read
    # and count in the engine's keys goes here.
    redis: Any = None


_installed: JobContext | None = None


def install(context: JobContext) -> None:
    global _installed
    _installed = context


def current() -> JobContext:
    """The installed context; a job run by anything but ``huodong worker`` (or a test's worker) has none."""
    if _installed is None:
        raise RuntimeError("no job context in this process: run jobs with `huodong worker`")
    return _installed
