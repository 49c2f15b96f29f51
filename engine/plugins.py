"""Where plugins come from: the built-in packages, ``huodong.*`` entry points and HUODONG_PLUGINS."""

from __future__ import annotations

import importlib
from importlib.metadata import entry_points

from .config import Settings

BUILTIN_PACKAGES = ("games", "rewards", "challenges")
ENTRY_POINT_GROUPS = ("huodong.games", "huodong.rewards", "huodong.challenges")
_loaded: set[str] = set()


def _import_once(modules: tuple[str, ...]) -> None:
    for module in modules:
        if module not in _loaded:
            importlib.import_module(module)
            _loaded.add(module)


def load_builtin_plugins() -> None:
    """The built-in games, reward types and challenge providers (what a schema may check a name against)."""
    _import_once(BUILTIN_PACKAGES)


def load_plugins(settings: Settings) -> None:
    """Import every plugin once per process; importing a plugin registers it."""
    _import_once((*BUILTIN_PACKAGES, *settings.plugins))
    for group in ENTRY_POINT_GROUPS:
        for entry in entry_points(group=group):
            if entry.value not in _loaded:
                entry.load()
                _loaded.add(entry.value)
