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
   replay, device and rate-limit checks run in the claim script.

A bare ``os.write`` of a 1 kB line is timed too. Keys go under a fresh
``hdbench<random>:`` namespace and are deleted at the end; the database and the
journal live in a temp folder.
"""

from __future__ import annotations

import argparse
import os
import platform
import secrets
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import run  # noqa: E402  (bench/ is not a package)
from stateful_play import SERVER_PIDS, per_call, publish, users_for  # noqa: E402


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--redis-url", default="redis://127.0.0.1:6379/0", help="a real Redis server (loopback)")
    p.add_argument("--plays", type=int, default=5000, help="buys per measure and round")
    p.add_argument("--rounds", type=int, default=5, help="alternating rounds; the best one counts")
    p.add_argument("--warmup", type=int, default=500, help="buys of each kind before the first round")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    run.require_loopback(args.redis_url)
    namespace = "hdbench" + secrets.token_hex(4)
    load_before = os.getloadavg()
    with ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="hdbench-")))
        from campaigns.migrate import upgrade
        from engine.config import load_settings
        from engine.fraud.features import RequestFeatures
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

        def buyer(container: Container, *, screened: bool = False):
            play = container.play_service.play

            def one(user: str, key: str) -> None:
                features = RequestFeatures(device_id=f"d-{user}", ip="10.0.0.1", timestamp_ms=int(time.time() * 1000),
                                           nonce=key) if screened else None
                play(PlayRequest(sale_id, user, "buy", run.BUY_BODY, key, features))

            return one

        measures = {"journal off, gate off": buyer(bare), "journal on, gate off": buyer(journaled),
                    "journal on, gate on (default)": buyer(journaled, screened=True)}
        event = (tmp / "event.json")
        line = (b'{"type":"claim","claim_id":"' + secrets.token_hex(13).encode() + b'"' + b' ' * 900 + b"}\n")
        event.write_bytes(b"")
        fd = os.open(event, os.O_WRONLY | os.O_APPEND)
        stack.callback(os.close, fd)
        measures["os.write of a 1 kB line"] = lambda user, key: os.write(fd, line)

        for name, one in measures.items():
            per_call(one, users_for(f"w{len(name)}", args.warmup))
        best: dict[str, float] = {}
        for r in range(args.rounds):
            order = list(measures)[r % len(measures):] + list(measures)[:r % len(measures)]
            for name in order:
                figure = per_call(measures[name], users_for(f"r{r}{len(name)}", args.plays))
                best[name] = min(best.get(name, figure.wall), figure.wall)
        journal_lines = sum(1 for p in (tmp / "instance" / "journal").glob("*.jsonl") for _ in p.open("rb"))

    print(f"\nPython {platform.python_version()}, {os.cpu_count()} cores, load before {load_before[0]:.2f}; "
          f"{args.plays} buys x {args.rounds} rounds per measure, best round (µs per call, wall)")
    for name, micros in best.items():
        print(f"  {name:32} {micros:8.1f}")
    base = best["journal off, gate off"]
    for name in ("journal on, gate off", "journal on, gate on (default)"):
        cost = best[name] - base
        print(f"  {name} vs neither: {cost:+8.1f} µs ({cost / base * 100:+.1f} %)")
    print(f"  journal lines written        {journal_lines}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
