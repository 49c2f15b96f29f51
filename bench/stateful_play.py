"""What a stateful play costs: lottery and check-in plays against a flash-sale buy and a bare EVALSHA.

    .venv/bin/python bench/stateful_play.py [--redis-url URL] [--plays 5000] [--rounds 3] [--warmup 500]

A flash-sale ``buy`` is one Redis round trip (EVALSHA of claim.lua). A stateful
game's play first reads the player's state (``engine.state.read_state``, one
pipelined round trip), plans from it, then runs the claim with guarded ops.
This bench measures, in this process and one thread, ``--plays`` plays of each
kind after a warm-up, each by a new player, and keeps the best of ``--rounds``
interleaved rounds (the rounds rotate so drift on a shared machine does not
always hit the same measure):

1. EVALSHA of ``return 1`` (the floor: one round trip);
2. EVALSHA of claim.lua with the keys and arguments of a real buy, then of a real
   lottery draw x1 (re-targeted at a new player each call, as bench/run.py does);
3. ``read_state`` alone (the pipelined read of a lottery draw) and the player
   attributes read (``AttributeStore.of`` for a player not in its cache);
4. ``np.random.default_rng(seed).random(1)`` alone (what ``ctx.rng`` costs a draw);
5. ``PlayService.play``: flash_sale ``buy`` (free SKU, huge stock), lottery
   ``draw`` x1 and x10 (100 free chances a day, huge stocks), checkin ``checkin``.

Then instrumented passes (the fastest of ``--rounds`` per play kind) split a
play into its steps (state read, attributes, plan, building the answer and
event, the claim script call, the rest) and count Redis round trips (socket writes) per play. Keys go under
a fresh ``hdbench<random>:`` namespace and are deleted at the end; the SQLite
database lives in a temp folder.
"""

from __future__ import annotations

import argparse
import copy
import gc
import os
import platform
import secrets
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import run  # noqa: E402  (bench/ is not a package)
from apps import ClaimTemplate, recorded  # noqa: E402

TRIVIAL = "return 1"
PRIZE_STOCK = 100_000_000


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--redis-url", default="redis://127.0.0.1:6379/0", help="a real Redis server (loopback)")
    p.add_argument("--plays", type=int, default=5000, help="plays (calls) per measure and round")
    p.add_argument("--rounds", type=int, default=3, help="interleaved rounds; the best one counts")
    p.add_argument("--warmup", type=int, default=500, help="calls of each measure before the first round")
    p.add_argument("--breakdown", type=int, default=2000, help="plays per kind in the instrumented pass")
    return p.parse_args(argv)


# ---------------------------------------------------------------- campaigns


def lottery(game: Any, now: Any) -> dict[str, Any]:
    """The demo wheel with stock to spare, 100 free chances a day and no budget: every draw by a new player wins."""
    from engine.clock import iso

    (definition,) = game.demo_definitions(iso(now - timedelta(minutes=5)), iso(now + timedelta(days=1)))
    definition = copy.deepcopy(definition)
    definition["name"] = "bench wheel"
    definition["budget_fen"] = None
    definition["config"]["chances"]["free_per_day"] = 100
    for prize in definition["config"]["prizes"]:
        if prize.get("stock") is not None:
            prize["stock"] = PRIZE_STOCK
    return definition


def checkin(game: Any, now: Any) -> dict[str, Any]:
    """The demo check-in without a budget."""
    from engine.clock import iso

    (definition,) = game.demo_definitions(iso(now - timedelta(minutes=5)), iso(now + timedelta(days=1)))
    definition = copy.deepcopy(definition)
    definition["name"] = "bench check-in"
    definition["budget_fen"] = None
    return definition


def publish(container: Any, definition: dict[str, Any]) -> int:
    with container.session_factory() as session:
        service = container.campaign_service(session)
        campaign = service.create(definition, actor="bench")
        service.publish(campaign.id, actor="bench")
        return campaign.id


def capture_claim(container: Any, request: Any, redis_url: str) -> dict[str, Any]:
    """The EVALSHA of claim.lua that one real play sends (the last one, if it sends several)."""
    client = container.redis
    original = client.evalsha
    captured: dict[str, Any] = {}

    def recording(sha: str, numkeys: int, *keys_and_args: Any) -> Any:
        if sha == container.scripts.claim_sha:
            captured.update(sha=sha, numkeys=numkeys, keys_and_args=recorded(keys_and_args))
        return original(sha, numkeys, *keys_and_args)

    client.evalsha = recording  # type: ignore[method-assign]
    try:
        container.play_service.play(request)
    finally:
        del client.evalsha
    if not captured or captured["numkeys"] != 8:
        raise RuntimeError(f"unexpected claim call: {captured.get('numkeys')} keys")
    captured["base"] = captured["keys_and_args"][0].removesuffix(":meta")
    captured["redis_url"] = redis_url
    return captured


# ---------------------------------------------------------------- measuring


def users_for(tag: str, count: int) -> list[tuple[str, str]]:
    """New players and their Idempotency-Keys, built before the clock starts."""
    prefix = f"{tag}{secrets.token_hex(3)}-"
    return [(f"{prefix}{i:06d}", f"k{prefix}{i:06d}") for i in range(count)]


class Figure(NamedTuple):
    """Microseconds per call: wall clock, this process's CPU, redis-server's CPU (None: not on this machine)."""

    wall: float
    cpu: float
    server: float | None


SERVER_PIDS: list[int] = []


def per_call(one: Callable[[str, str], Any], calls: list[tuple[str, str]]) -> Figure:
    gc.collect()
    clock = time.perf_counter_ns
    server = run.cpu_seconds(SERVER_PIDS)
    cpu = time.process_time()
    start = clock()
    for user, key in calls:
        one(user, key)
    wall = clock() - start
    cpu = time.process_time() - cpu
    server = run.cpu_seconds(SERVER_PIDS) - server
    n = len(calls)
    return Figure(wall / n / 1000, cpu / n * 1e6, server / n * 1e6 if SERVER_PIDS else None)


def per_call_us(one: Callable[[str, str], Any], calls: list[tuple[str, str]]) -> float:
    return per_call(one, calls).wall


class Steps:
    """Wall time spent in named steps of a play, and socket writes to Redis (round trips), while installed."""

    def __init__(self) -> None:
        self.ns: dict[str, int] = {}
        self.writes = 0

    def wrap(self, name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        clock = time.perf_counter_ns
        ns = self.ns
        ns.setdefault(name, 0)

        def timed(*a: Any, **kw: Any) -> Any:
            start = clock()
            try:
                return fn(*a, **kw)
            finally:
                ns[name] += clock() - start

        return timed

    @contextmanager
    def installed(self, container: Any, games: list[type]) -> Iterator[None]:
        import redis.connection

        import engine.runtime

        service = container.play_service
        conn_cls = redis.connection.AbstractConnection
        send = conn_cls.send_packed_command
        read_state = engine.runtime.read_state

        def counting(conn: Any, command: Any, check_health: bool = True) -> Any:
            self.writes += 1
            return send(conn, command, check_health)

        saved_plans = {g: g.__dict__["plan"] for g in games}
        engine.runtime.read_state = self.wrap("read_state", read_state)
        service._attributes.of = self.wrap("attributes", service._attributes.of)
        service._claim = self.wrap("claim (answer+event+script)", service._claim)
        container.scripts.claim = self.wrap("script call (scripts.claim)", container.scripts.claim)
        for g in games:
            g.plan = self.wrap("plan", g.plan)
        conn_cls.send_packed_command = counting
        try:
            yield
        finally:
            conn_cls.send_packed_command = send
            engine.runtime.read_state = read_state
            for name in ("of",):
                del service._attributes.__dict__[name]
            del service.__dict__["_claim"]
            del container.scripts.__dict__["claim"]
            for g, plan in saved_plans.items():
                g.plan = plan


# ---------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    run.require_loopback(args.redis_url)
    started = time.monotonic()
    load_before = os.getloadavg()
    namespace = "hdbench" + secrets.token_hex(4)

    with ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="hdbench-")))
        from campaigns.migrate import upgrade
        from engine.config import load_settings
        from engine.keys import CampaignKeys
        from engine.runtime import PlayRequest
        from engine.state import read_state
        from games.checkin import Checkin
        from games.lottery import Lottery
        from web.container import Container

        settings = load_settings({
            "redis_url": args.redis_url,
            "database_url": f"sqlite:///{tmp / 'huodong.sqlite3'}",
            "redis_namespace": namespace,
            "instance_path": str(tmp / "instance"),
            "secret_key": "bench-" + secrets.token_hex(8),
            "log_level": "WARNING",
        }, environ={})
        upgrade(settings.resolved_database_url())
        c = Container.build(settings)
        client = c.redis
        stack.callback(lambda: print(f"cleaned up: {run.delete_namespace(client, namespace)} Redis keys"
                                     f" under {namespace}:*"))
        stack.callback(c.sql_engine.dispose)

        now = c.clock.now()
        sale_id = publish(c, run.flash_sale(now))
        lottery_id = publish(c, lottery(Lottery(), now))
        checkin_id = publish(c, checkin(Checkin(), now))
        c.scripts.preload()
        server_pid = int(client.info("server").get("process_id", 0))
        if server_pid and Path(f"/proc/{server_pid}/stat").exists():
            SERVER_PIDS.append(server_pid)
        trivial_sha = client.script_load(TRIVIAL)
        play = c.play_service.play

        buy_template = ClaimTemplate(capture_claim(c, PlayRequest(
            sale_id, "capture", "buy", run.BUY_BODY, "capture-" + secrets.token_hex(4)), args.redis_url))
        draw_template = ClaimTemplate(capture_claim(c, PlayRequest(
            lottery_id, "capture", "draw", {"times": 1}, "capture-" + secrets.token_hex(4)), args.redis_url))

        def trivial(user: str, key: str) -> None:
            client.evalsha(trivial_sha, 0)

        def raw_claim(template: ClaimTemplate) -> Callable[[str, str], None]:
            evalsha, sha, numkeys, call = client.evalsha, template.sha, template.numkeys, template.call

            def one(user: str, key: str) -> None:
                reply = evalsha(sha, numkeys, *call(user, key))
                if reply[0] != "OK":
                    raise RuntimeError(f"raw claim refused: {reply[0]} {reply[1]}")

            return one

        lottery_keys = CampaignKeys(namespace, lottery_id)

        def state_read(user: str, key: str) -> None:
            read_state(client, lottery_keys, user, (), key)

        attributes_of = c.attributes.of
        default_rng = np.random.default_rng
        seed = int(secrets.token_hex(16), 16)

        def numpy_rng(user: str, key: str) -> None:
            default_rng(seed).random(1)

        def attributes(user: str, key: str) -> None:
            attributes_of(user)

        def player(campaign_id: int, action: str, payload: dict[str, Any]) -> Callable[[str, str], None]:
            def one(user: str, key: str) -> None:
                if play(PlayRequest(campaign_id, user, action, payload, key)).replayed:
                    raise RuntimeError("a new player's play was answered as a replay")

            return one

        # key: (label, call, play kind shown in the breakdown)
        measures: dict[str, tuple[str, Callable[[str, str], None], bool]] = {
            "trivial": ("(1) raw EVALSHA 'return 1'", trivial, False),
            "raw_buy": ("raw EVALSHA claim.lua, a buy's args", raw_claim(buy_template), False),
            "raw_draw": ("raw EVALSHA claim.lua, a draw x1's args", raw_claim(draw_template), False),
            "read_state": ("read_state alone (lottery draw's pipeline)", state_read, False),
            "attributes": ("attributes.of alone (uncached player)", attributes, False),
            "rng": ("numpy default_rng(seed).random(1) alone", numpy_rng, False),
            "buy": ("(2) play: flash_sale buy", player(sale_id, "buy", run.BUY_BODY), True),
            "draw1": ("play: lottery draw x1", player(lottery_id, "draw", {"times": 1}), True),
            "draw10": ("play: lottery draw x10", player(lottery_id, "draw", {"times": 10}), True),
            "checkin": ("play: checkin", player(checkin_id, "checkin", {}), True),
        }

        print(f"namespace {namespace}; {args.plays} calls x {args.rounds} rounds per measure, each call a new"
              f" player; warm-up {args.warmup}", flush=True)
        for key, (_, one, _) in measures.items():
            per_call_us(one, users_for(f"w{key}", args.warmup))
        results: dict[str, list[Figure]] = {k: [] for k in measures}
        for r in range(args.rounds):
            for key in run.rotated(list(measures), r):
                results[key].append(per_call(measures[key][1], users_for(f"r{r}{key}", args.plays)))
            print(f"round {r + 1}/{args.rounds} done ({time.monotonic() - started:.0f} s)", flush=True)

        # Instrumented passes: where a play's time goes, and how many round trips it makes (the fastest pass counts).
        steps_of: dict[str, tuple[Figure, Steps]] = {}
        plays = [k for k, (_, _, is_play) in measures.items() if is_play]
        game_classes = [Lottery, Checkin, type(c.snapshots.get(sale_id).plugin)]
        for r in range(args.rounds):
            for key in run.rotated(plays, r):
                steps = Steps()
                calls = users_for(f"b{r}{key}", args.breakdown)
                with steps.installed(c, game_classes):
                    figure = per_call(measures[key][1], calls)
                if key not in steps_of or figure.wall < steps_of[key][0].wall:
                    steps_of[key] = (figure, steps)
        print(f"instrumented passes done ({time.monotonic() - started:.0f} s)", flush=True)

        sold = int(client.hget(CampaignKeys(namespace, sale_id).stock_taken, f"sku:{run.SKU}") or 0)
        # The captured buy, then warm-up and rounds of both the plays and the raw claims, then the instrumented buys.
        expected_buys = 1 + 2 * (args.warmup + args.rounds * args.plays) + args.rounds * args.breakdown
        report(args, measures, results, steps_of, load_before, sold, expected_buys)
    print(f"total time {time.monotonic() - started:.0f} s")
    return 0


def report(args: argparse.Namespace, measures: dict[str, Any], results: dict[str, list[Figure]],
           steps_of: dict[str, tuple[Figure, Steps]], load_before: tuple[float, float, float], sold: int,
           expected_buys: int) -> None:
    fastest = {k: min(v, key=lambda f: f.wall) for k, v in results.items()}
    best = {k: f.wall for k, f in fastest.items()}
    floor, buy = best["trivial"], best["buy"]
    print()
    print("== machine")
    print(f"nproc {os.cpu_count()}, Python {platform.python_version()}, {platform.platform()}")
    print("load average before: {:.2f} {:.2f} {:.2f}; after: {:.2f} {:.2f} {:.2f}".format(
        *load_before, *os.getloadavg()))
    print()
    print(f"== microseconds per call (best of {args.rounds} rounds of {args.plays}; single thread, in-process)")
    print("   wall = elapsed per call; cpu = this process's CPU; srv = redis-server's CPU (of the best round);"
          " all rounds' wall last")
    head = f"{'measure':<44} {'wall':>7} {'x (1)':>6} {'x (2)':>6} {'cpu':>6} {'srv':>5}  {'rounds (wall)':<16}"
    print(head)
    print("-" * len(head))
    for key, (label, _, _) in measures.items():
        f = fastest[key]
        server = f"{f.server:>5.0f}" if f.server is not None else f"{'-':>5}"
        rounds = "/".join(f"{r.wall:.0f}" for r in results[key])
        print(f"{label:<44} {f.wall:>7.1f} {f.wall / floor:>6.2f} {f.wall / buy:>6.2f} {f.cpu:>6.1f} {server}"
              f"  {rounds:<16}")
    medians = {k: statistics.median(r.wall for r in v) for k, v in results.items()}
    print(f"  ratios of the medians of rounds: draw x1 / buy {medians['draw1'] / medians['buy']:.2f},"
          f" draw x10 / buy {medians['draw10'] / medians['buy']:.2f},"
          f" checkin / buy {medians['checkin'] / medians['buy']:.2f},"
          f" buy / (1) {medians['buy'] / medians['trivial']:.2f}")
    print()
    print(f"== where a play's time goes (instrumented, fastest of {args.rounds} passes of {args.breakdown} plays;"
          " wall us per play)")
    names = ["read_state", "attributes", "plan", "claim (answer+event+script)", "script call (scripts.claim)"]
    short = ["read_state", "attrs", "plan", "_claim", "script", "rest"]
    print(f"{'play':<26} {'total':>6} " + " ".join(f"{s:>10}" for s in short)
          + f" {'cpu':>6} {'RT/play':>7} {'wait/RT':>7}")
    for key, (figure, steps) in steps_of.items():
        us = {n: steps.ns.get(n, 0) / args.breakdown / 1000 for n in names}
        rest = figure.wall - us["read_state"] - us["attributes"] - us["plan"] - us["claim (answer+event+script)"]
        cells = [us[n] for n in names] + [rest]
        trips = steps.writes / args.breakdown
        print(f"{measures[key][0].removeprefix('(2) '):<26} {figure.wall:>6.1f} "
              + " ".join(f"{v:>10.1f}" for v in cells)
              + f" {figure.cpu:>6.1f} {trips:>7.2f} {(figure.wall - figure.cpu) / trips:>7.1f}")
    print("  _claim = PlayService._claim: building the answer and outbox event JSON, then the script call;"
          " script = its\n  Scripts.claim part (arguments + EVALSHA). rest = snapshot, validation,"
          " eligibility, PlayContext, answer.\n  cpu = this process's CPU per play; RT = round trips (socket"
          " writes) per play; wait/RT = (wall - cpu) / RT.")
    print()
    d1, rs, at = best["draw1"], best["read_state"], best["attributes"]
    print("== stateful overhead, from the best-of figures")
    floor_wait = fastest["trivial"].wall - fastest["trivial"].cpu
    print(f"one round trip of 'return 1': {floor_wait:.1f} us waiting + {fastest['trivial'].cpu:.1f} us client CPU")
    for key in ("draw1", "draw10", "checkin"):
        extra_cpu = fastest[key].cpu - fastest["buy"].cpu
        extra_wall = best[key] - buy
        print(f"{measures[key][0].removeprefix('play: ')} - buy = {extra_wall:.1f} us wall, of which"
              f" {extra_cpu:.1f} us client CPU and {extra_wall - extra_cpu:.1f} us waiting on Redis"
              f" ({(extra_wall - extra_cpu) / floor_wait:.1f} x the floor's wait)")
    print(f"read_state alone {rs:.1f} us ({rs / d1:.0%} of a draw x1, {fastest['read_state'].cpu:.1f} us of it"
          f" client CPU); attributes.of alone {at:.1f} us ({at / d1:.0%}, {fastest['attributes'].cpu:.1f} us CPU)")
    print(f"a fresh numpy Generator per draw (ctx.rng): {best['rng']:.1f} us")
    print(f"raw claim.lua: draw x1 {best['raw_draw']:.1f} us vs buy {best['raw_buy']:.1f} us"
          f" (+{best['raw_draw'] - best['raw_buy']:.1f} us of Lua and arguments for the guarded ops)")
    status = "ok" if sold == expected_buys else "MISMATCH"
    print(f"check: flash-sale units taken {sold}, buys made {expected_buys}: {status}")


if __name__ == "__main__":
    sys.exit(main())
