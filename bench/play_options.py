"""What the claim journal and the fraud gate cost a play: flash-sale buys with each on and off, in one process.

    .venv/bin/python bench/play_options.py [--redis-url URL] [--plays 5000] [--rounds 5] [--warmup 500]

Two containers share one Redis server, one SQLite database and one published
flash sale (free SKU, huge stock); one journals every admitted claim
(``engine/journal.py``: one ``write(2)`` to an ``O_APPEND`` file before the
answer), the other does not. Three measures of ``--plays`` buys by new players
each, in rotating order per round, the best round of each counting:

1. no journal, no gate (the engine's own callers: no request features);
2. the journal on, no gate;
3. the journal on and the fraud gate with the built-in default policy (the
   request features a mini-program sends: device, IP, timestamp, nonce), so
   replay, device, rate-limit and risk-score checks run in the claim script.
   Each new player has its own device and its own /24 (10.a.b.0/24 from a
   counter), and is not a new account (no registration time, as a token
   issued without one), so the risk score's per-device and per-range rates
   stay at one play a minute and every play is admitted: what is timed is the
   gate's work on admitted plays, not refusals.

Every play's fate is counted per measure (admitted, or refused by error code
and gate rule) and printed with the campaign's fraud stats, so a reader can see
that the gated figure is one of admitted plays.

Each measure shows wall time, this process's CPU, redis-server's CPU (from
/proc) and Redis's own time per EVALSHA (INFO commandstats). Then the gate's
cost is taken apart: its Python steps timed alone (policy lookup, population
limits, ``screen()`` and the ``ipaddress`` /24 in it), the size of the claim
script's call with the gate on and off, a play's Python with that call answered
at once by a recorded reply, and the Redis commands a play runs, the script's
own included (INFO commandstats; run it on a quiet server).

A bare ``os.write`` of a 1 kB line is timed too. Keys go under a fresh
``hdbench<random>:`` namespace and are deleted at the end; the database and the
journal live in a temp folder.
"""

from __future__ import annotations

import argparse
import itertools
import os
import platform
import secrets
import sys
import tempfile
import time
import timeit
from collections import Counter
from contextlib import ExitStack
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import run  # noqa: E402  (bench/ is not a package)
from apps import recorded  # noqa: E402
from stateful_play import SERVER_PIDS, Figure, per_call, publish, users_for  # noqa: E402


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--redis-url", default="redis://127.0.0.1:6379/0", help="a real Redis server (loopback)")
    p.add_argument("--plays", type=int, default=5000, help="buys per measure and round")
    p.add_argument("--rounds", type=int, default=5, help="alternating rounds; the best one counts")
    p.add_argument("--warmup", type=int, default=500, help="buys of each kind before the first round")
    return p.parse_args(argv)


def gate_breakdown(container: Any, sale_id: int, namespace: str) -> dict[str, Any]:
    """Where the gate's cost goes: its Python steps timed alone on the real objects; the claim script's call with
    the gate on and off (its size; a play's Python with the call answered at once); the Redis commands of a play.
    Every play here is by a new player on a device and /24 of its own."""
    from engine.fraud.features import RequestFeatures
    from engine.fraud.gate import screen
    from engine.fraud.risk import ip_range
    from engine.keys import CampaignKeys
    from engine.runtime import PlayRequest

    keys = CampaignKeys(namespace, sale_id)
    policies = container.fraud_policies
    name = container.snapshots.get(sale_id).fraud_policy
    policy = policies.get(name)
    risk = policy.document["risk"]
    population = container.play_service._population  # the play service's own PopulationStats
    now_ms = int(time.time() * 1000)
    features = RequestFeatures(device_id="d-breakdown", ip="10.250.1.7", timestamp_ms=now_ms, nonce="k-breakdown")
    limits = population.limits(keys, now_ms, risk)
    steps = {
        "policy lookup (PolicyCache.get, cached a second)": lambda: policies.get(name),
        "population limits (PopulationStats, cached a minute)": lambda: population.limits(keys, now_ms, risk),
        "screen(): the rules' checks and the risk part": lambda: screen(
            policy, keys, "u-breakdown", "buy", features, now_ms, limits),
        "  of which ip_range(): the /24 (ipaddress)": lambda: ip_range("10.250.1.7", 24, 64),
    }
    out: dict[str, Any] = {"steps": {step: min(timeit.repeat(fn, number=2000, repeat=5)) / 2000 * 1e6
                                     for step, fn in steps.items()}}
    client = container.redis
    original = client.evalsha
    captured: list[tuple[int, list[str], Any]] = []

    def recording(sha: str, numkeys: int, *keys_and_args: Any) -> Any:
        reply = original(sha, numkeys, *keys_and_args)
        captured.append((numkeys, recorded(keys_and_args), reply))
        return reply

    def buy(tag: str, n: int) -> None:
        user = f"breakdown-{tag}-{secrets.token_hex(4)}"
        container.play_service.play(PlayRequest(sale_id, user, "buy", run.BUY_BODY, "k-" + user, RequestFeatures(
            device_id="d-" + user, ip=f"10.252.{n}.7",  # a /24 each (n < 256)
            timestamp_ms=int(time.time() * 1000), nonce="n-" + user) if tag == "on" else None))

    replies = {}
    client.evalsha = recording
    try:
        for tag in ("off", "on"):
            captured.clear()
            buy(tag, 0)
            numkeys, kv, replies[tag] = captured[-1]
            gate_arg = kv[numkeys + 18]  # ARGV[19]: the gate's JSON ('' when nothing to check)
            out[f"call_{tag}"] = (f"{numkeys} keys, {sum(len(v) for v in kv)} bytes of keys and arguments"
                                  + (f" (the gate's JSON {len(gate_arg)})" if gate_arg else ""))
    finally:
        del client.evalsha
    # The Python of a play alone: the claim script's call answered at once with the reply recorded above (the
    # keys and arguments are still built, the gate's JSON included; nothing is sent).
    scripts = container.scripts
    real_claim = scripts._claim
    out["python_only"] = {}
    try:
        for tag in ("off", "on"):
            scripts._claim = lambda keys, args, reply=replies[tag]: reply
            rounds = []
            for _ in range(5):
                start = time.process_time()
                for n in range(STUB_PLAYS):
                    buy(tag, n % 250 + 1)
                rounds.append((time.process_time() - start) / STUB_PLAYS * 1e6)
            out["python_only"][tag] = min(rounds)
    finally:
        scripts._claim = real_claim
    # Redis commands per play, the script's own included (INFO commandstats counts them; on a shared server
    # other clients' commands count too, so run it quiet).
    for tag in ("off", "on"):
        before = client.info("commandstats")
        for n in range(COUNTED_PLAYS):
            buy(tag, n + 1)
        after = client.info("commandstats")
        out[f"commands_{tag}"] = {name.removeprefix("cmdstat_"): (stat["calls"] - before.get(name, {}).get("calls", 0))
                                  / COUNTED_PLAYS for name, stat in after.items()
                                  if stat["calls"] - before.get(name, {}).get("calls", 0) >= COUNTED_PLAYS / 2}
    return out


COUNTED_PLAYS = 200
STUB_PLAYS = 2000


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    run.require_loopback(args.redis_url)
    namespace = "hdbench" + secrets.token_hex(4)
    load_before = os.getloadavg()
    with ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="hdbench-")))
        from campaigns.migrate import upgrade
        from engine.config import load_settings
        from engine.errors import HuodongError
        from engine.fraud.features import RequestFeatures
        from engine.keys import CampaignKeys
        from engine.runtime import PlayRequest
        from web.container import Container

        settings = load_settings({
            "redis_url": args.redis_url, "database_url": f"sqlite:///{tmp / 'huodong.sqlite3'}",
            "redis_namespace": namespace, "instance_path": str(tmp / "instance"),
            "secret_key": "bench-" + secrets.token_hex(8), "log_level": "WARNING",
        }, environ={})
        upgrade(settings.resolved_database_url())
        journaled = Container.build(settings)
        bare = Container.build(settings.replace(claim_journal=False))
        stack.callback(lambda: print(f"cleaned up: {run.delete_namespace(journaled.redis, namespace)} Redis keys"
                                     f" under {namespace}:*"))
        sale_id = publish(journaled, run.flash_sale(journaled.clock.now()))
        journaled.scripts.preload()
        server_pid = int(journaled.redis.info("server").get("process_id", 0))
        if server_pid and Path(f"/proc/{server_pid}/stat").exists():
            SERVER_PIDS.append(server_pid)

        tallies: dict[str, Counter] = {}  # measure -> outcome ("admitted", or "<code> <rule>") -> plays

        def buyer(name: str, container: Container, *, screened: bool = False):
            play = container.play_service.play
            tally = tallies[name] = Counter()
            networks = itertools.count()  # each player a /24 of its own: 10.a.b.0/24

            def one(user: str, key: str) -> None:
                features = None
                if screened:
                    n = next(networks)
                    features = RequestFeatures(device_id=f"d-{user}", ip=f"10.{(n >> 8) & 255}.{n & 255}.7",
                                               timestamp_ms=int(time.time() * 1000), nonce=key)
                try:
                    result = play(PlayRequest(sale_id, user, "buy", run.BUY_BODY, key, features))
                except HuodongError as refusal:
                    tally[f"{refusal.code} {refusal.details.get('rule', '')}".rstrip()] += 1
                    return
                tally["replayed" if result.replayed else "admitted"] += 1

            return one

        measures = {name: buyer(name, container, screened=screened) for name, container, screened in (
            ("journal off, gate off", bare, False), ("journal on, gate off", journaled, False),
            ("journal on, gate on (default)", journaled, True))}
        event = (tmp / "event.json")
        line = (b'{"type":"claim","claim_id":"' + secrets.token_hex(13).encode() + b'"' + b' ' * 900 + b"}\n")
        event.write_bytes(b"")
        fd = os.open(event, os.O_WRONLY | os.O_APPEND)
        stack.callback(os.close, fd)
        measures["os.write of a 1 kB line"] = lambda user, key: os.write(fd, line)

        for name, one in measures.items():
            per_call(one, users_for(f"w{len(name)}", args.warmup))
        warmup_tallies = {name: Counter(tally) for name, tally in tallies.items()}
        for tally in tallies.values():
            tally.clear()
        client = journaled.redis
        best: dict[str, tuple[Figure, float | None]] = {}  # the best round's figure, and Redis's µs per EVALSHA
        for r in range(args.rounds):
            order = list(measures)[r % len(measures):] + list(measures)[:r % len(measures)]
            for name in order:
                calls_before, usec_before = run.evalsha_stats(client)
                figure = per_call(measures[name], users_for(f"r{r}{len(name)}", args.plays))
                calls, usec = (a - b for a, b in zip(run.evalsha_stats(client), (calls_before, usec_before),
                                                     strict=True))
                if name not in best or figure.wall < best[name][0].wall:
                    best[name] = (figure, usec / calls if calls else None)
        journal_lines = sum(1 for p in (tmp / "instance" / "journal").glob("*.jsonl") for _ in p.open("rb"))
        sale_keys = CampaignKeys(namespace, sale_id)
        fraud_stats = journaled.redis.hgetall(sale_keys.fraud_stats)
        # One nonce key per gated play the claim script admitted (kept 10 minutes): the gate did run.
        nonces = sum(1 for _ in journaled.redis.scan_iter(match=sale_keys.fraud("nonce", "*"), count=1000))
        breakdown = gate_breakdown(journaled, sale_id, namespace)

    print(f"\nPython {platform.python_version()}, {os.cpu_count()} cores, load before {load_before[0]:.2f}; "
          f"{args.plays} buys x {args.rounds} rounds per measure, best round (µs per call)")
    print(f"  {'measure':32} {'wall':>8} {'our CPU':>8} {'Redis CPU':>9} {'EVALSHA':>8}")
    for name, (figure, script_us) in best.items():
        server = f"{figure.server:9.1f}" if figure.server is not None else f"{'-':>9}"
        script = f"{script_us:8.1f}" if script_us is not None else f"{'-':>8}"
        print(f"  {name:32} {figure.wall:8.1f} {figure.cpu:8.1f} {server} {script}")
    print("  (our CPU: this process; Redis CPU: redis-server from /proc; EVALSHA: Redis's own time per script call,"
          " INFO commandstats)")
    base = best["journal off, gate off"][0].wall
    for name in ("journal on, gate off", "journal on, gate on (default)"):
        cost = best[name][0].wall - base
        print(f"  {name} vs neither: {cost:+8.1f} µs ({cost / base * 100:+.1f} %)")
    print("the gate's Python, each step alone (best of 5 x 2,000 calls, µs):")
    for step, micros in breakdown["steps"].items():
        print(f"  {step:52} {micros:6.1f}")
    print(f"  the claim script's call: {breakdown['call_off']} with the gate off, {breakdown['call_on']} with it on")
    python_only = breakdown["python_only"]
    print(f"  a play's Python alone (the claim script's call answered at once with a recorded reply; CPU, best of 5 x"
          f" {STUB_PLAYS:,}): gate off {python_only['off']:.1f}, gate on {python_only['on']:.1f}"
          f" ({python_only['on'] - python_only['off']:+.1f})")
    for tag in ("off", "on"):
        commands = breakdown[f"commands_{tag}"]
        print(f"  Redis commands per play, gate {tag} ({sum(commands.values()):.1f}; {COUNTED_PLAYS} plays, INFO"
              f" commandstats): " + ", ".join(f"{k} {v:.1f}" for k, v in sorted(commands.items())))
    print(f"  journal lines written        {journal_lines}")
    print("admitted and refused plays per measure (rounds; warm-up in brackets):")
    for name, tally in tallies.items():
        others = ", ".join(f"{k} {v}" for k, v in sorted(tally.items()) if k != "admitted") or "none refused"
        warm = warmup_tallies[name]
        print(f"  {name:32} admitted {tally['admitted']} of {sum(tally.values())} ({warm['admitted']} of"
              f" {sum(warm.values())}); {others}")
    print(f"  the campaign's fraud stats (refusals per rule): {fraud_stats or 'none'}; nonces the gate recorded:"
          f" {nonces}")
    if any(k != "admitted" for tally in [*tallies.values(), *warmup_tallies.values()] for k in tally):
        print("WARNING: some plays were not admitted; the µs per play above mix in refusals", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
