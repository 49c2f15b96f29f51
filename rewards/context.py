"""The collaborators of a settlement process (RQ worker or settlement loop), built once per process."""

from __future__ import annotations

import os

from campaigns.db import make_engine, make_session_factory
from engine.clock import Clock, SystemClock
from engine.config import Settings, load_settings
from engine.plugins import load_plugins

from .base import AdapterContext

_context: AdapterContext | None = None


def build_context(settings: Settings, clock: Clock | None = None) -> AdapterContext:
    engine = make_engine(settings.resolved_database_url())
    # A forked RQ work horse must not share its parent's SQL connections.
    os.register_at_fork(after_in_child=lambda: engine.dispose(close=False))
    load_plugins(settings)
    return AdapterContext(settings=settings, session_factory=make_session_factory(engine), clock=clock or SystemClock())


def set_worker_context(context: AdapterContext) -> None:
    global _context
    _context = context


def worker_context() -> AdapterContext:
    """The context the worker command installed, or one built from the environment on first use."""
    global _context
    if _context is None:
        _context = build_context(load_settings())
    return _context
