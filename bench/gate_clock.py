"""The fraud gate's cost by the clock, in one process: where a gated buy's extra time goes, and screen()'s
Python alone.

    .venv/bin/python bench/gate_clock.py [--redis-url redis://127.0.0.1:6379/0] [--rounds 16] [--buys 500]
    .venv/bin/python bench/gate_clock.py --screen-only                  # screen() and the arguments, no Redis

Two sales share one app as ``bench/gate_cost.py`` builds them (the built-in default policy, and a policy with
every rule off), on a real Redis; the buy is called through WSGI with ``bench/run.py``'s load (4,096 players,
each with its device and /24, two taps in a row), two rounds of each player first, so every player is in the
state a minute of the HTTP load leaves. Then ``--rounds`` interleaved rounds of ``--buys`` buys on each sale,
timing in place (``time.perf_counter`` around them): ``screen()``, the gate's arguments (``_gate_args``), the
claim script's call (Redis's time, the transfer and redis-py) and the process's CPU a buy. The medians of the
rounds, gate on and off, and their difference: the gate's share of each.

``--screen-only`` times ``screen()`` and ``_gate_args`` alone over 4,096 rotating players whose device pairs
the process knows (KnownMembers), the steady state of the HTTP load: 15 runs of one pass each, median and best.

Times drift on this shared machine: compare the two sales of one run, not runs. Redis's instructions (which do not
drift) are ``bench/gate_cost.py``'s.
"""

from __future__ import annotations

import argparse
import secrets
import statistics
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import gate_cost  # noqa: E402  (bench/ is not a package)
import run  # noqa: E402

PLAYERS = gate_cost.PLAYERS


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--rounds", type=int, default=16)
    parser.add_argument("--buys", type=int, default=500)
    parser.add_argument("--screen-only", action="store_true")
    return parser.parse_args(argv)


def screen_only() -> None:
    from engine.fraud.features import RequestFeatures
    from engine.fraud.gate import screen
    from engine.fraud.members import KnownMembers
    from engine.fraud.policy import DEFAULT, DEFAULT_POLICY, CompiledPolicy
    from engine.fraud.risk import Limits
    from engine.keys import CampaignKeys
    from engine.scripts import _gate_args

    policy = CompiledPolicy.compile(DEFAULT, DEFAULT_POLICY)
    keys = CampaignKeys("hdbench" + secrets.token_hex(4), 1)
    known, limits = KnownMembers(), Limits(30, 30)
    now = int(time.time() * 1000)
    players = [(f"p{i:05d}", RequestFeatures(
        device_id=f"bench-device-{i}", ip=f"10.{i // 256}.{i % 256}.1", timestamp_ms=now, nonce=secrets.token_hex(16),
        token_device=f"bench-device-{i}", registered_ms=now - 30 * 86_400_000)) for i in range(PLAYERS)]
    for user, features in players:  # the steady state: every pair the plays join is known
        known.remember(screen(policy, keys, user, "buy", features, now, limits, known=known).joins, now)

    def one_pass() -> float:
        start = time.perf_counter()
        for user, features in players:
            screening = screen(policy, keys, user, "buy", features, now, limits, known=known)
            _gate_args(keys, screening, screening.claim_checks(), [""] * 8, risk=screening.risk)
        return (time.perf_counter() - start) / PLAYERS * 1e6

    runs = [one_pass() for _ in range(15)]
    print(f"screen() and the gate's arguments, a play: median {statistics.median(runs):.2f} µs, best "
          f"{min(runs):.2f} µs ({PLAYERS:,} rotating players, 15 passes)")


def timed(holder: Any, name: str, label: str, spent: Counter[str]) -> None:
    """Wraps ``holder.name`` so that its time adds to ``spent[label]``."""
    inner = getattr(holder, name)

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return inner(*args, **kwargs)
        finally:
            spent[label] += time.perf_counter() - start

    setattr(holder, name, wrapper)


def in_process(args: argparse.Namespace) -> None:
    import redis

    import engine.fraud.stats
    import engine.runtime
    import engine.scripts

    run.require_loopback(args.redis_url)
    spent: Counter[str] = Counter()
    timed(engine.runtime, "screen", "screen()", spent)
    timed(engine.scripts, "_gate_args", "the gate's arguments", spent)
    timed(redis.Redis, "execute_command", "the claim script's call", spent)
    with tempfile.TemporaryDirectory(prefix="hdclock-") as tmp:
        on, off, (admin, namespace) = gate_cost.sale_pair(args.redis_url, Path(tmp))
        try:
            for buyer in (on, off):
                for _ in range(2 * PLAYERS):
                    buyer.one()
            figures: dict[str, dict[str, list[float]]] = {"on": defaultdict(list), "off": defaultdict(list)}
            for round_ in range(args.rounds):
                for tag, buyer in (("on", on), ("off", off)) if round_ % 2 == 0 else (("off", off), ("on", on)):
                    spent.clear()
                    cpu = time.process_time()
                    for _ in range(args.buys):
                        buyer.one()
                    figures[tag]["the process's CPU"].append((time.process_time() - cpu) / args.buys * 1e6)
                    for label, seconds in spent.items():
                        figures[tag][label].append(seconds / args.buys * 1e6)
            statuses = {tag: dict(buyer.statuses) for tag, buyer in (("on", on), ("off", off))}
        finally:
            run.delete_namespace(admin, namespace)
    print(f"µs a buy, medians of {args.rounds} interleaved rounds of {args.buys:,} (answers {statuses}):")
    print(f"  {'':28} {'gate on':>9} {'gate off':>9} {'the gate':>9}")
    for label in figures["on"]:
        gate_on = statistics.median(figures["on"][label])
        gate_off = statistics.median(figures["off"][label]) if figures["off"].get(label) else 0.0
        print(f"  {label:28} {gate_on:9.1f} {gate_off:9.1f} {gate_on - gate_off:9.1f}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.screen_only:
        screen_only()
    else:
        in_process(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
