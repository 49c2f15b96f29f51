"""A campaign's Redis keys and what they hold: a refused play must leave them exactly as they were.

Except the fraud gate's rate-limit windows: they count every attempt of a player, device and IP, refused or
not (a flood of refusals is still a flood), so an attempt the game refuses adds itself there by design.
"""

from __future__ import annotations

from typing import Any

ATTEMPT_WINDOWS = ":fraud:rate:"


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def footprint(client: Any, pattern: str) -> dict[str, Any]:
    """Every key matching ``pattern`` but the attempt windows: hashes in full, strings, streams by length."""
    seen: dict[str, Any] = {}
    for name in sorted(map(_text, client.scan_iter(match=pattern, count=1000))):
        if ATTEMPT_WINDOWS in name:
            continue
        kind = _text(client.type(name))
        if kind == "hash":
            seen[name] = {_text(k): _text(v) for k, v in client.hgetall(name).items()}
        elif kind == "stream":
            seen[name] = client.xlen(name)
        elif kind == "string":
            seen[name] = _text(client.get(name))
        else:
            seen[name] = kind
    return seen
