"""Where plugins come from: the built-in packages, ``huodong.*`` entry points and HUODONG_PLUGINS."""

from __future__ import annotations

import importlib
from importlib.metadata import entry_points

from .config import Settings

BUILTIN_PACKAGES = ("games", "rewards")
ENTRY_POINT_GROUPS = ("huodong.games", "huodong.rewards")
_loaded: set[str] = set()


def load_plugins(settings: Settings) -> None:
    """Import every plugin once per process; importing a plugin registers it."""
    for module in (*BUILTIN_PACKAGES, *settings.plugins):
        if module not in _loaded:
            importlib.import_module(module)
            _loaded.add(module)
    for group in ENTRY_POINT_GROUPS:
        for entry in entry_points(group=group):
            if entry.value not in _loaded:
                entry.load()
                _loaded.add(entry.value)
