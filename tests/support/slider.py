"""Playing the slider as a person does, for the tests and bench/fraud_sim.py.

A person sees where the gap is; a test has no eyes, so ``gap_of`` reads the offset the server keeps (what
only the picture shows the player). ``hand_drag`` is a drag as a hand makes it: a minimum-jerk path (speeding
up, then slowing down) with uneven sampling and a little wobble. ``straight_drag`` is a script's: one speed,
a straight line.
"""

from __future__ import annotations

import json
import random
from typing import Any

from engine.fraud.challenge import challenge_key


def gap_of(client: Any, keys: Any, challenge_id: str) -> int:
    """Where the gap is, as the player sees it in the picture."""
    x = client.hget(challenge_key(keys, challenge_id), "x")
    return int(x.decode() if isinstance(x, bytes) else x)


def hand_drag(x: int, rng: random.Random | None = None) -> list[list[float]]:
    rng = rng or random.Random()
    gaps = [rng.uniform(8, 40) for _ in range(rng.randint(25, 60))]  # touch events come 8 to 40 ms apart
    times = [sum(gaps[:i]) for i in range(len(gaps) + 1)]
    duration = times[-1]
    trace = []
    for t in times:
        tau = t / duration
        along = 10 * tau**3 - 15 * tau**4 + 6 * tau**5
        trace.append([round(t, 1), round(x * along + (rng.uniform(-0.6, 0.6) if 0 < tau < 1 else 0), 1),
                      round(rng.gauss(0, 1.2), 1)])
    return trace


def straight_drag(x: int, duration: float = 800, steps: int = 30) -> list[list[float]]:
    return [[round(duration * i / steps, 1), round(x * i / steps, 1), 0.0] for i in range(steps + 1)]


def answer(x: int, trace: list[list[float]]) -> str:
    """X-Challenge-Answer: where the piece was let go and the drag."""
    return json.dumps({"x": x, "trace": trace}, separators=(",", ":"))
