"""Ten million lottery draws: numpy against a plain Python loop, from the demo wheel's probability table.

    .venv/bin/python bench/lottery_draws.py [--draws 10000000] [--loop-draws 1000000] [--rounds 3]

Both sides draw from ``games.lottery.probability_table`` (the table the live
draw, the public rules and the forecast use). numpy draws uniforms with one
Generator and maps them to slots with ``games.lottery.pick`` (searchsorted on
the cumulative table, the live draw's own code), in chunks of a million so the
memory stays bounded; the loop calls ``random.random`` and ``bisect`` on the same
cumulative table once per draw, and its time for ``--loop-draws`` is scaled to ``--draws``. Each side
runs ``--rounds`` times and the best time counts. Counts of both are checked
against the table (within 6 standard deviations) so neither measures a wrong
draw.
"""

from __future__ import annotations

import argparse
import bisect
import os
import platform
import random
import time

import numpy as np

import rewards  # noqa: F401  (registers the reward types the demo wheel pays with)
from games.lottery import Lottery, LotteryConfig, cumulative, pick, probability_table

CHUNK = 1_000_000


def demo_table() -> tuple[tuple[str | None, ...], np.ndarray]:
    (definition,) = Lottery().demo_definitions("2026-11-11T00:00:00Z", "2026-11-18T00:00:00Z")
    return probability_table(LotteryConfig().load(definition["config"]))


def numpy_draws(probabilities: np.ndarray, draws: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    counts = np.zeros(len(probabilities), np.int64)
    for start in range(0, draws, CHUNK):
        slots = pick(probabilities, rng.random(min(CHUNK, draws - start)))
        counts += np.bincount(slots, minlength=len(probabilities))
    return counts


def loop_draws(probabilities: np.ndarray, draws: int, seed: int) -> list[int]:
    ends = cumulative(probabilities).tolist()
    generator = random.Random(seed)
    uniform, find = generator.random, bisect.bisect_right
    counts = [0] * len(probabilities)
    for _ in range(draws):
        counts[find(ends, uniform())] += 1
    return counts


def best_of(rounds: int, run) -> tuple[float, object]:
    best, result = float("inf"), None
    for round_ in range(rounds):
        started = time.perf_counter()
        result = run(round_)
        best = min(best, time.perf_counter() - started)
    return best, result


def check(counts, probabilities: np.ndarray, draws: int, what: str) -> None:
    expected = probabilities * draws
    spread = np.sqrt(np.maximum(expected * (1 - probabilities), 1.0))
    worst = float(np.max(np.abs(np.asarray(counts) - expected) / spread))
    assert worst < 6, f"{what}: counts {list(counts)} are {worst:.1f} sd from {expected.tolist()}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--draws", type=int, default=10_000_000)
    parser.add_argument("--loop-draws", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    ids, probabilities = demo_table()
    print(f"python {platform.python_version()}, numpy {np.__version__}, {os.cpu_count()} cpus, "
          f"load average {os.getloadavg()[0]:.2f}")
    print("table (demo wheel): " + ", ".join(f"{i or 'miss'} {p:.3f}" for i, p in zip(ids, probabilities,
                                                                                      strict=True)))

    numpy_s, counts = best_of(args.rounds, lambda r: numpy_draws(probabilities, args.draws, seed=r))
    check(counts, probabilities, args.draws, "numpy")
    loop_s, loop_counts = best_of(args.rounds, lambda r: loop_draws(probabilities, args.loop_draws, seed=r))
    check(loop_counts, probabilities, args.loop_draws, "loop")
    loop_scaled = loop_s * args.draws / args.loop_draws

    print(f"numpy  {args.draws:>12,} draws: {numpy_s:8.3f} s  ({args.draws / numpy_s / 1e6:6.1f} M draws/s)")
    print(f"loop   {args.loop_draws:>12,} draws: {loop_s:8.3f} s  ({args.loop_draws / loop_s / 1e6:6.1f} M draws/s)"
          f"  -> {args.draws:,} draws: {loop_scaled:.2f} s (scaled)")
    print(f"numpy is {loop_scaled / numpy_s:.1f}x faster; target {args.draws:,} draws < 1 s: "
          f"{'met' if numpy_s < 1 else 'MISSED'}")


if __name__ == "__main__":
    main()
