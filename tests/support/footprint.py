"""A campaign's Redis keys and what they hold: a refused play must leave them exactly as they were.

Except what the fraud gate counts of every attempt, refused or not: its rate-limit windows (a flood of refusals
is still a flood: an attempt the game refuses adds itself there by design), its per-minute stats (plays
screened, engine/fraud/stats.py), which the process's tally writes once a second, whenever that falls, and
the population's per-minute counts, whose hashes each process makes at its first screened play of a minute
(engine/fraud/risk.py PopulationStats), and the mark a counted attempt leaves under its Idempotency-Key
("<fingerprint>\n": lib/idempotency.lua), so that its retry is not counted again.
"""

from __future__ import annotations

from typing import Any

from engine.idempotency import is_attempt_mark

# Key name parts: rate-limit windows, the gate's minute stats, the population's minute counts.
GATE_COUNTS = (":fraud:rate:", ":fraud:minute:", ":fraud:pop:")


def is_gate_count(name: str) -> bool:
    """A key of what the gate counts of every attempt (see above)."""
    return any(part in name for part in GATE_COUNTS)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def footprint(client: Any, pattern: str) -> dict[str, Any]:
    """Every key matching ``pattern`` but the attempt windows and the gate's minute stats: hashes in full,
    strings, streams by length."""
    seen: dict[str, Any] = {}
    for name in sorted(map(_text, client.scan_iter(match=pattern, count=1000))):
        if is_gate_count(name):
            continue
        kind = _text(client.type(name))
        if kind == "hash":
            seen[name] = {_text(k): _text(v) for k, v in client.hgetall(name).items()}
        elif kind == "stream":
            seen[name] = client.xlen(name)
        elif kind == "string":
            value = _text(client.get(name))
            if not is_attempt_mark(value):
                seen[name] = value
        else:
            seen[name] = kind
    return seen
