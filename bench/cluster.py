"""A hot flash sale on a local three-primary Redis Cluster, as one key group and as K: claims/s, Redis CPU per
primary, and the share of claims each primary took, with the count of winners checked against the stock taken.

    .venv/bin/python bench/cluster.py [--shards 1 3] [--processes 4] [--seconds 10]
                                      [--queue-redis-url redis://127.0.0.1:6379/0]

Starts the tests' local cluster (tests/support/cluster.py: six of Debian's ``redis-server``, three primaries
with a replica each, on spare ports), publishes one free flash sale with stock to spare on it, and runs
``bench/run.py``'s in-process buyers (``--processes`` processes, each its own ``PlayService``, distinct players)
for ``--seconds``, once per ``--shards`` K (a campaign of its own each time, on the same cluster). Then it reads,
per primary, the ``EVALSHA`` calls it ran (``INFO commandstats``) and its CPU (from /proc), and checks that the
stock the campaign's groups say was taken, summed, equals the buys answered OK.

With K = 1 a campaign is one key group with one hash tag, so a sale lives on one primary. With K = 3 its players
are spread over three groups that publish placed on the three primaries (engine/shards.py). RQ's queues are on
the plain Redis of ``--queue-redis-url`` (no job is run here).
"""

from __future__ import annotations

import argparse
import secrets
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import run  # noqa: E402  (bench/ is not a package)

from tests.support.cluster import LocalCluster  # noqa: E402


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shards", type=int, nargs="+", default=[1, 3])
    parser.add_argument("--processes", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--queue-redis-url", default="redis://127.0.0.1:6379/0")
    return parser.parse_args(argv)


def evalsha_calls(cluster: LocalCluster) -> dict[int, int]:
    import redis

    calls = {}
    for node in cluster.primaries():
        client = redis.Redis(port=node.port)
        try:
            calls[node.port] = int(client.info("commandstats").get("cmdstat_evalsha", {}).get("calls", 0))
        finally:
            client.close()
    return calls


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    run.require_loopback(args.queue_redis_url)
    with tempfile.TemporaryDirectory(prefix="hdcluster-") as tmp:
        cluster = LocalCluster(Path(tmp) / "cluster")
        cluster.start()
        try:
            for shards in args.shards:
                measure(cluster, Path(tmp), shards, args)
        finally:
            cluster.stop()
    return 0


def measure(cluster: LocalCluster, tmp: Path, shards: int, args: argparse.Namespace) -> None:
    from engine.config import load_settings
    from engine.connections import connect
    from engine.shards import ShardDirectory

    namespace = "hdbench" + secrets.token_hex(4)
    overrides: dict[str, Any] = {
        **run.huodong_overrides(run.parse_args(["--redis-url", cluster.url]), tmp, namespace),
        "redis_cluster": "1", "queue_redis_url": args.queue_redis_url, "claim_journal": False,
    }
    campaign_id, _ = run.set_up_campaign(overrides, shards=shards)
    primaries = cluster.primaries()
    pids = {node.port: node.process.pid for node in primaries}
    calls_before, cpu_before = evalsha_calls(cluster), {p: run.cpu_seconds([pid]) for p, pid in pids.items()}
    started = time.monotonic()
    figure = run.run_processes(f"in-process buy on the cluster (K = {shards})", run.play_worker,
                               (campaign_id, overrides, args.users), args.processes, args.seconds, None)
    wall = time.monotonic() - started
    calls_after = evalsha_calls(cluster)
    cpu = {port: run.cpu_seconds([pid]) - cpu_before[port] for port, pid in pids.items()}
    client = connect(load_settings(overrides, environ={}))
    groups = ShardDirectory(client, namespace).get(campaign_id)
    taken = sum(int(client.hget(keys.stock_taken, f"sku:{run.SKU}") or 0) for keys in groups)
    placed = sorted({client.get_node_from_key(keys.meta).port for keys in groups})
    client.close()

    claims = {port: calls_after.get(port, 0) - calls_before.get(port, 0) for port in pids}
    total = sum(claims.values()) or 1
    print(f"{figure.name}: {figure.rate:,.0f} claims/s ({args.processes} processes, {figure.seconds:.1f} s; "
          f"p50 {figure.p50_ms:.2f} ms, p99 {figure.p99_ms:.2f} ms; wall {wall:.1f} s with start-up)")
    print(f"  {len(groups)} key group(s) on the primaries {', '.join(f':{p}' for p in placed)}")
    # Each buyer process warms up with 20 buys (bench/run.py _timed_loop); set_up_campaign makes one.
    expected = figure.ops + 20 * args.processes + 1
    print(f"  buys answered OK {figure.ops:,} (+ {expected - figure.ops} of the warm-up and set-up); stock taken "
          f"{taken:,}: {'exact' if taken == expected else f'OFF BY {taken - expected:+,}'}")
    for port in sorted(pids):
        per_claim = f"{cpu[port] / claims[port] * 1e6:6.1f} µs a claim" if claims[port] else "idle"
        print(f"  primary :{port}  EVALSHA {claims[port]:8,}  ({claims[port] / total:6.1%} of the claims)  "
              f"Redis CPU {cpu[port]:.2f} s, {per_claim}")


if __name__ == "__main__":
    sys.exit(main())
