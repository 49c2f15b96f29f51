"""lib/risk.lua's regular_taps, run by Redis on tap sequences of known spread: its answer is numpy's coefficient
of variation against max_cv, tap for tap, for people, bots and everything between (the shortcut that skips the
full count when the newest two gaps differ too much must never skip a regular set)."""

from __future__ import annotations

import secrets
import zlib
from importlib import resources

import numpy as np
import pytest

from engine.fraud.policy import regular_spread

MIN_TAPS, MAX_CV = 8, 0.05


def regular_taps_script() -> str:
    source = (resources.files("engine") / "scripts" / "lib" / "risk.lua").read_text()
    start = source.index("local function risk_rare")
    rare_end = source.index("-- A count that carries")
    taps = source[source.index("local function regular_taps"):source.index("-- now: the time in ms; sets:")]
    # The risk part's rare numbers, max cv last (engine/fraud/policy.py risk_constants).
    return source[start:rare_end] + taps + (
        "local r = {rare = '0 0 0 0 0 0 0 0 0 ' .. ARGV[4]}\n"
        "return regular_taps(KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3], r) and 1 or 0\n")


@pytest.mark.parametrize("jitter", [0.0, 0.005, 0.02, 0.04, 0.06, 0.1, 0.3, 1.0, "human"])
def test_regular_taps_agrees_with_numpy_tap_for_tap(redis, jitter):
    script = redis.register_script(regular_taps_script())
    spread = repr(regular_spread(MAX_CV, MIN_TAPS - 1))
    rng = np.random.default_rng(zlib.crc32(str(jitter).encode()))  # the same sequences every run
    checked = regular = 0
    for sequence in range(40):
        key = f"test:taps:{secrets.token_hex(6)}"
        base = float(rng.uniform(200, 20_000))
        gaps = rng.exponential(base, 30) if jitter == "human" else base * (1 + jitter * rng.standard_normal(30))
        gaps = np.clip(np.rint(gaps), 0, 2**24 - 1).astype(np.int64)
        now = 1_765_000_000_000 + int(rng.integers(0, 10**9))
        seen: list[int] = []
        try:
            for gap in gaps:
                now += int(gap)
                answer = script(keys=[key], args=[now, MIN_TAPS, spread, MAX_CV])
                seen.append(int(gap))
                window = np.array(seen[1:][-(MIN_TAPS - 1):], dtype=float)  # the first tap has no gap before it
                if len(window) < MIN_TAPS - 1:
                    assert answer == 0
                    continue
                cv = window.std() / window.mean() if window.mean() > 0 else np.inf
                if abs(cv - MAX_CV) < 1e-9:
                    continue
                assert answer == int(cv < MAX_CV), (jitter, sequence, seen, cv)
                checked += 1
                regular += answer
            assert 1_790_000 <= redis.pttl(key) <= 3_600_000  # at least half an hour from the latest tap
        finally:
            redis.delete(key)
    assert checked > 800
    if jitter in (0.0, 0.005):
        assert regular == checked  # every window of a metronome is regular
    if jitter in (1.0, "human"):
        assert regular == 0
