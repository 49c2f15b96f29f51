"""The fault-injection proof, several times in a row: a proof that passes once is not a proof.

    .venv/bin/python bench/fault_soak.py [--runs 5] [--json FILE] [-- extra pytest arguments]

Runs ``tests/invariants/test_fault_proof.py`` ``--runs`` times, each in its own pytest process and temporary
folder (with the environment it is given: ``HUODONG_TEST_DATABASE_URL`` and ``HUODONG_TEST_REDIS_URL`` put it on
PostgreSQL and Redis 7), and prints one line per run from the report the proof writes (``fault-proof.json``):
grants acknowledged, issued, dead and unsettled, the providers' counts, and the chaos that happened. Exit 1 when
any run failed or left anything unsettled.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
PROOF = "tests/invariants/test_fault_proof.py"


def summary(report: dict[str, Any]) -> dict[str, Any]:
    grants, chaos = report["grants"], report["chaos"]
    return {
        "acknowledged": grants["acknowledged"], "issued": grants["issued"], "dead": grants["dead"],
        "unsettled": grants["unsettled"], "without_rows": grants["acknowledged_without_rows"],
        "twice": sum(p["twice"] for p in report["providers"].values()),
        "provider_mismatch": sum(p["issued_in_sql"] != p["at_provider"] for p in report["providers"].values()),
        "redis_kills": chaos["redis_kills"], "worker_kills": chaos["worker_kills"],
        "horse_kills": chaos["work_horse_kills"], "mid_batch_kills": chaos.get("batch_kills_mid_batch"),
        "settlement_kills": chaos["settlement_kills"], "attempts_max": grants["attempts_max"],
        "retried": grants["retried"], "alipay_faults": report["faults"]["alipay"],
        "drain_seconds": report["drain"]["seconds"],
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--json", default="")
    args, pytest_args = p.parse_known_args(argv)
    results = []
    for run in range(1, args.runs + 1):
        with tempfile.TemporaryDirectory(prefix=f"hdsoak{run}-") as tmp:
            started = time.monotonic()
            done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--basetemp", tmp,
                                   PROOF, *[a for a in pytest_args if a != "--"]], cwd=ROOT, capture_output=True,
                                  text=True)
            found = list(Path(tmp).rglob("fault-proof.json"))
            report = json.loads(found[0].read_text()) if found else None
        line = {"run": run, "passed": done.returncode == 0, "seconds": round(time.monotonic() - started, 1),
                **(summary(report) if report else {"error": done.stdout[-1500:]})}
        results.append(line)
        print(json.dumps(line, ensure_ascii=False), flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1, ensure_ascii=False))
    clean = all(r["passed"] and r.get("unsettled") == 0 for r in results)
    print(f"{sum(r['passed'] for r in results)} of {len(results)} runs passed; "
          f"unsettled {[r.get('unsettled') for r in results]}")
    return 0 if clean else 1


if __name__ == "__main__":
    sys.exit(main())
