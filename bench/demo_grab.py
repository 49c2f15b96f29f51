"""The demo's own processes under a free points grab: first win to last issue, as a new user would try it.

    .venv/bin/python bench/demo_grab.py [--players 2000] [--clients 2] [--threads 16] [--forwarded]

1. ``huodong demo`` (as ``make demo`` runs it: embedded Redis, SQLite, gunicorn with 3 workers, one RQ worker, the
   settlement loop) in a fresh instance folder, on a spare port;
2. through the admin API with the token the demo prints: a free flash sale of one points SKU with ``--players``
   stock, one per player, published;
3. every player logs in (``POST /api/v1/auth/dev`` from their own device), then all buy at once over HTTP, with
   the headers the README asks for (device, timestamp, nonce, Idempotency-Key), from ``--clients`` processes of
   ``--threads`` keep-alive connections each;
4. the demo's SQLite database is read every 100 ms until every grant is issued.

Reported: claims admitted and refused (by code) and their rate, grants/s from the first win to the last issue, and
win -> issued p50/p99 (from the rows). ``--forwarded`` runs the demo with ``HUODONG_TRUSTED_PROXIES=1`` and gives
each player an ``X-Forwarded-For`` of their own /24, as players behind a load balancer look; without it every
player comes from 127.0.0.1, which the default fraud policy may hold against them (``fraud_sim.py`` measures that).
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing as mp
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--players", type=int, default=2000)
    p.add_argument("--clients", type=int, default=2, help="client processes")
    p.add_argument("--threads", type=int, default=16, help="keep-alive connections per client process")
    p.add_argument("--forwarded", action="store_true", help="each player behind the proxy with their own /24")
    p.add_argument("--patience", type=float, default=300.0)
    p.add_argument("--json", default="")
    return p.parse_args(argv)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def call(port: int, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None) -> Any:
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method,
                                     data=json.dumps(body).encode() if body is not None else None,
                                     headers={"Content-Type": "application/json", **(headers or {})})
    with urllib.request.urlopen(request, timeout=30) as answer:  # noqa: S310  (loopback only)
        return json.loads(answer.read() or b"null")


def player_headers(index: int, forwarded: bool) -> dict[str, str]:
    headers = {"X-Device-Id": f"phone-{index:06d}"}
    if forwarded:
        headers["X-Forwarded-For"] = f"10.{index // 250 % 250}.{index % 250}.7"
    return headers


def buyer(port: int, campaign_id: int, players: list[tuple[int, str]], threads: int, forwarded: bool,
          barrier: Any, out: Any) -> None:
    """One client process: ``threads`` keep-alive connections, each buying for its share of the players."""
    answers: Counter[str] = Counter()
    lock = threading.Lock()
    barrier.wait()
    started = time.time()

    def work(mine: list[tuple[int, str]]) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        for index, token in mine:
            headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json",
                       "Idempotency-Key": uuid.uuid4().hex, "X-Request-Timestamp": str(int(time.time() * 1000)),
                       "X-Request-Nonce": uuid.uuid4().hex, **player_headers(index, forwarded)}
            connection.request("POST", f"/api/v1/campaigns/{campaign_id}/actions/buy",
                               body=json.dumps({"sku": "PTS", "quantity": 1}), headers=headers)
            response = connection.getresponse()
            answer = json.loads(response.read())
            code = "ok" if response.status == 200 else answer["error"]["code"]
            with lock:
                answers[code] += 1
        connection.close()

    workers = [threading.Thread(target=work, args=(players[i::threads],)) for i in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    out.put((started, time.time(), dict(answers)))


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    port = free_port()
    load = os.getloadavg()
    print(f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}; {os.cpu_count()} cores", flush=True)
    with tempfile.TemporaryDirectory(prefix="hddemo") as tmp:
        env = {k: v for k, v in os.environ.items() if not k.startswith("HUODONG_")}
        env.update(HUODONG_INSTANCE_PATH=tmp, HUODONG_LOG_LEVEL="WARNING")
        if args.forwarded:
            env["HUODONG_TRUSTED_PROXIES"] = "1"
        log = open(Path(tmp) / "demo.log", "w+b")  # noqa: SIM115  (read while the demo runs)
        demo = subprocess.Popen([sys.executable, "-m", "web.cli", "demo", "--port", str(port)], cwd=ROOT, env=env,
                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            token = wait_for_banner(Path(tmp) / "demo.log", demo, port)
            admin = {"Authorization": f"Bearer {token}"}
            now = datetime.now(UTC)
            definition = {
                "name": "bench points grab", "game": "flash_sale",
                "starts_at": (now - timedelta(minutes=1)).isoformat(), "ends_at": (now + timedelta(days=1)).isoformat(),
                "limits": {}, "config": {"skus": [{
                    "sku": "PTS", "name": "100 points", "price_fen": 0, "stock": args.players, "per_user_limit": 1,
                    "reward": {"type": "points", "amount": 100, "cost_fen": 100}}]}}
            campaign_id = call(port, "POST", "/admin/api/v1/campaigns", definition, admin)["id"]
            call(port, "POST", f"/admin/api/v1/campaigns/{campaign_id}/publish", {}, admin)
            players = [(i, call(port, "POST", "/api/v1/auth/dev", {"user_id": f"grab{i:06d}"},
                                player_headers(i, args.forwarded))["token"]) for i in range(args.players)]
            time.sleep(2.0)  # the published snapshot reaches every gunicorn worker's cache
            ctx = mp.get_context("spawn")
            barrier, out = ctx.Barrier(args.clients), ctx.Queue()
            clients = [ctx.Process(target=buyer, args=(port, campaign_id, players[i::args.clients], args.threads,
                                                       args.forwarded, barrier, out)) for i in range(args.clients)]
            for c in clients:
                c.start()
            report = follow(Path(tmp) / "huodong.sqlite3", campaign_id, clients, out, args)
        finally:
            os.killpg(demo.pid, signal.SIGTERM)
            try:
                demo.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(demo.pid, signal.SIGKILL)
            log.close()
    return_report(report, args)


def return_report(report: dict[str, Any], args: argparse.Namespace) -> None:
    print(json.dumps(report, indent=1))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1))


def wait_for_banner(path: Path, demo: subprocess.Popen, port: int, timeout: float = 180) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = re.search(r"admin token\s+(\S+)", path.read_text(errors="replace"))
        if found:  # gunicorn comes up after the banner
            while time.monotonic() < deadline:
                try:
                    urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5).close()  # noqa: S310
                    time.sleep(2.0)  # the worker and the settlement loop too
                    return found.group(1)
                except OSError:
                    time.sleep(0.2)
        if demo.poll() is not None:
            raise RuntimeError(f"the demo stopped: {path.read_text()[-2000:]}")
        time.sleep(0.2)
    raise RuntimeError("the demo did not print its banner")


def follow(database: Path, campaign_id: int, clients: list[Any], out: Any, args: argparse.Namespace
           ) -> dict[str, Any]:
    """Read the demo's SQLite every 100 ms until every admitted claim's grant is issued."""
    results: list[Any] = []
    started = time.monotonic()
    db = sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=30)
    issued = 0
    while time.monotonic() - started < args.patience:
        time.sleep(0.1)
        while not out.empty():
            results.append(out.get())
        issued = db.execute("SELECT count(*) FROM grants WHERE campaign_id = ? AND status = 'issued'",
                            (campaign_id,)).fetchone()[0]
        if len(results) == len(clients) and issued >= sum(r[2].get("ok", 0) for r in results):
            break
    for c in clients:
        c.join(timeout=60)
    rows = db.execute("SELECT created_at, issued_at FROM grants WHERE campaign_id = ? AND status = 'issued'",
                      (campaign_id,)).fetchall()
    claims = sorted(parse(at) for (at,) in db.execute("SELECT created_at FROM claims WHERE campaign_id = ?",
                                                       (campaign_id,)))
    db.close()
    answers: Counter[str] = Counter()
    for r in results:
        answers.update(r[2])
    won = [(parse(a), parse(b)) for a, b in rows]
    waits = sorted((done - at).total_seconds() for at, done in won)
    span = (max(d for _, d in won) - min(a for a, _ in won)).total_seconds() if won else 0
    burst = (max(claims) - min(claims)).total_seconds() if len(claims) > 1 else 0
    return {"players": args.players, "answers": dict(answers), "forwarded": args.forwarded,
            "claims_per_s": round(len(claims) / burst, 1) if burst else None, "issued": len(won),
            "grants_per_s_first_win_to_last_issue": round(len(won) / span, 1) if span else None,
            "win_to_issued_p50_s": round(waits[len(waits) // 2], 3) if waits else None,
            "win_to_issued_p99_s": round(waits[int(len(waits) * 0.99)], 3) if waits else None,
            "last_issue_after_first_win_s": round(span, 2),
            "last_issue_after_last_claim_s": round((max(d for _, d in won) - claims[-1]).total_seconds(), 3)
            if won and claims else None}


def parse(text: str) -> datetime:
    value = datetime.fromisoformat(text)
    return value if value.tzinfo else value.replace(tzinfo=UTC)


if __name__ == "__main__":
    main()
