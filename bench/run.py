"""The hot-path benchmark: claim script, play(), HTTP buy and a naive PostgreSQL claim, in one bounded run.

    .venv/bin/python bench/run.py [--redis-url URL] [--database-url URL] [--postgres-url URL]

Measures, on loopback only and each for a fixed time:

1. raw EVALSHA of claim.lua (the keys and arguments of a real buy) from N processes;
2. ``PlayService.play`` in-process from N processes;
3. ``POST /api/v1/campaigns/<id>/actions/buy`` under gunicorn, driven by wrk, once on a campaign under
   the built-in default fraud policy and once (``http_buy_nogate``) on a second one whose policy turns
   every rule off: the cost of the fraud gate in the claim benchmark;
4. a bare Flask endpoint and a Flask endpoint that only runs the same EVALSHA,
   under the same gunicorn and wrk settings (``bench/apps.py``);
5. a naive PostgreSQL claim (UPDATE stock ... AND left > 0 + INSERT order, one
   transaction) from N processes, in a schema made and dropped here.

The wrk load looks like many phones on many networks: each player has its own
device and its own /24 (sent as ``X-Forwarded-For``; the Huodong servers run
with ``HUODONG_TRUSTED_PROXIES=1``, as behind one proxy), a fresh timestamp
and nonce per request, and taps at irregular intervals, so that under the
default policy every buy is admitted; the bench counts the refusals per rule
to show it.

It prints the machine, a table and the ratios against the targets. Every key
it writes is under a fresh Redis namespace and deleted at the end; the
PostgreSQL schema is dropped; gunicorn is stopped even on error.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import re
import resource
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
SKU = "C50"
STOCK = 100_000_000
BUY_BODY = {"sku": SKU, "quantity": 1}

TARGET_HTTP_VS_EVALSHA = 0.80
TARGET_HTTP_P99_VS_EVALSHA = 1.5
TARGET_PLAY_VS_RAW = 0.70
TARGET_LUA_VS_PG = 10.0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--redis-url", default="redis://127.0.0.1:6379/0", help="a real Redis server (loopback)")
    p.add_argument("--database-url", default="",
                   help="Huodong's SQL database for the campaign (default: SQLite in a temp folder)")
    p.add_argument("--postgres-url", default="postgresql://postgres@127.0.0.1:5432/test",
                   help="PostgreSQL for the naive claim comparison")
    p.add_argument("--processes", type=int, default=3, help="client processes of the in-process measures")
    p.add_argument("--duration", type=float, default=5.0, help="seconds per in-process measure and round")
    p.add_argument("--http-duration", type=int, default=10, help="seconds of each wrk run, per round")
    p.add_argument("--rounds", type=int, default=3,
                   help="interleaved rounds per measure; the table shows medians (a shared machine drifts)")
    p.add_argument("--warmup", type=int, default=2, help="seconds of wrk warm-up before each HTTP measure")
    p.add_argument("--connections", type=int, default=16)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--workers", type=int, default=3, help="gunicorn sync workers")
    p.add_argument("--players", type=int, default=4096,
                   help="distinct players (tokens, each on its own device and /24) the load cycles through; enough "
                        "that each stays under the default fraud policy's rate limits and the risk score's floors "
                        "(30 plays a minute per device and per /24)")
    p.add_argument("--only", default="", help="comma-separated measures to run: raw,play,pg,pg_async,"
                   "http_bare,http_evalsha,http_buy,http_buy_nogate (default: all)")
    p.add_argument("--json", default="", help="also write the figures to this JSON file")
    return p.parse_args(argv)


LOOPBACK = {"127.0.0.1", "localhost", "::1", ""}


def require_loopback(*urls: str) -> None:
    """The bench puts load only on this machine's own servers."""
    from urllib.parse import urlsplit

    for url in urls:
        if url and not url.startswith(("unix:", "sqlite:")) and (urlsplit(url).hostname or "") not in LOOPBACK:
            raise SystemExit(f"refusing to load {url}: the bench targets loopback (127.0.0.1) only")


# ---------------------------------------------------------------- results


@dataclass
class Figure:
    name: str
    kind: str  # "inproc" or "http"
    ops: int = 0
    errors: int = 0
    seconds: float = 0.0
    rate: float = 0.0
    p50_ms: float | None = None
    p99_ms: float | None = None
    rounds: list[float] = field(default_factory=list)
    cpu_us: dict[str, float] = field(default_factory=dict)  # CPU microseconds per op, by process kind
    extra: dict[str, Any] = field(default_factory=dict)


def combine(name: str, kind: str, runs: list[Figure]) -> Figure:
    """Rounds of one measure as one figure: medians of rate and latencies, sums of counts."""
    return Figure(
        name=name, kind=kind, ops=sum(r.ops for r in runs), errors=sum(r.errors for r in runs),
        seconds=sum(r.seconds for r in runs), rate=statistics.median(r.rate for r in runs),
        p50_ms=statistics.median(r.p50_ms for r in runs), p99_ms=statistics.median(r.p99_ms for r in runs),
        rounds=[r.rate for r in runs],
        cpu_us={k: statistics.median(r.cpu_us[k] for r in runs) for k in runs[0].cpu_us},
        extra={"claims_admitted": sum(r.extra.get("claims_admitted") or 0 for r in runs),
               "non_2xx": sum(r.extra.get("non_2xx") or 0 for r in runs),
               "refused": sum_counts(r.extra.get("refused") or {} for r in runs),
               "wrk": [r.extra.get("wrk") for r in runs]},
    )


def sum_counts(dicts: Iterator[dict[str, int]]) -> dict[str, int]:
    out: dict[str, int] = {}
    for d in dicts:
        for k, v in d.items():
            out[k] = out.get(k, 0) + v
    return out


def percentile(sorted_values: list[int], q: float) -> float:
    if not sorted_values:
        return float("nan")
    i = min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))
    return sorted_values[i]


# ---------------------------------------------------------------- set-up


def huodong_overrides(args: argparse.Namespace, tmp: Path, namespace: str) -> dict[str, Any]:
    return {
        "redis_url": args.redis_url,
        "database_url": args.database_url or f"sqlite:///{tmp / 'huodong.sqlite3'}",
        "redis_namespace": namespace,
        "instance_path": str(tmp / "instance"),
        "secret_key": "bench-" + secrets.token_hex(8),
        "dev_login": True,
        "log_level": "WARNING",
        # As behind one reverse proxy: the client's address is the last of X-Forwarded-For (the wrk script's,
        # and profile_buy's WrkCaller's, per-player address); only the Huodong app reads it (ProxyFix).
        "trusted_proxies": 1,
    }


def flash_sale(now: Any) -> dict[str, Any]:
    """A free coupon grab with stock to spare and no per-player limit, so every buy succeeds."""
    from engine.clock import iso

    return {
        "name": "bench coupon grab",
        "game": "flash_sale",
        "starts_at": iso(now - timedelta(minutes=5)),
        "ends_at": iso(now + timedelta(days=1)),
        "budget_fen": None,
        "limits": {},
        "config": {
            "payment_window_seconds": 900,
            "skus": [{
                "sku": SKU, "name": "50 yuan coupon", "price_fen": 0, "stock": STOCK, "per_user_limit": None,
                "reward": {"type": "points", "amount": 50, "cost_fen": 100},
            }],
        },
    }


def set_up_campaign(overrides: dict[str, Any], *, shards: int = 1) -> tuple[int, dict[str, Any]]:
    """Migrate, create and publish the campaign (over ``shards`` key groups); answers its id and the EVALSHA of
    one real buy."""
    from campaigns.migrate import upgrade
    from engine.config import load_settings
    from engine.runtime import PlayRequest
    from web.container import Container

    settings = load_settings(overrides, environ={})
    upgrade(settings.resolved_database_url())
    c = Container.build(settings)
    with c.session_factory() as session:
        service = c.campaign_service(session)
        definition = flash_sale(c.clock.now())
        campaign = service.create({**definition, "shards": shards} if shards > 1 else definition, actor="bench")
        service.publish(campaign.id, actor="bench")
        campaign_id = campaign.id
    c.scripts.preload()

    sys.path.insert(0, str(BENCH_DIR))
    from apps import recorded

    # Record what play() sends, so the raw measure runs the very same script call.
    captured: dict[str, Any] = {}
    client = c.redis
    original = client.evalsha

    def recording(sha: str, numkeys: int, *keys_and_args: Any) -> Any:
        captured.update(sha=sha, numkeys=numkeys, keys_and_args=recorded(keys_and_args))
        return original(sha, numkeys, *keys_and_args)

    client.evalsha = recording  # type: ignore[method-assign]
    try:
        c.play_service.play(PlayRequest(campaign_id=campaign_id, user_id="capture", action="buy",
                                        payload=BUY_BODY, idempotency_key="capture-" + secrets.token_hex(8)))
    finally:
        del client.evalsha
    if captured.get("sha") != c.scripts.claim_sha:
        raise RuntimeError("could not capture the claim script call")
    captured["base"] = captured["keys_and_args"][0].removesuffix(":meta")
    captured["redis_url"] = overrides["redis_url"]
    c.sql_engine.dispose()
    return campaign_id, captured


# A fraud policy with every rule off: the gate-off twin of the buy (``http_buy_nogate``).
NOGATE_POLICY = "bench-gate-off"
POLICY_OFF: dict[str, Any] = {
    "description": "bench/run.py: every rule off",
    "replay": {"mode": "off"}, "lists": {"mode": "off"}, "devices": {"mode": "off"}, "rate_limits": [],
    "new_accounts": {"mode": "off"}, "risk": {"mode": "off"}, "referral": {"mode": "off"},
}


def set_up_nogate_campaign(overrides: dict[str, Any]) -> int:
    """Save the all-off policy and publish a second flash sale naming it; answers its id."""
    return set_up_policy_campaign(overrides, NOGATE_POLICY, POLICY_OFF, "fraud gate off")


def set_up_policy_campaign(overrides: dict[str, Any], policy: str, document: dict[str, Any], label: str) -> int:
    """Save a fraud policy and publish a flash sale (``flash_sale``) that plays under it; answers its id."""
    from engine.config import load_settings
    from engine.fraud.policy import CompiledPolicy
    from web.container import Container

    c = Container.build(load_settings(overrides, environ={}))
    with c.session_factory() as session:
        c.fraud_policy_service(session).save(policy, document, actor="bench")
        service = c.campaign_service(session)
        definition = flash_sale(c.clock.now())
        definition.update(name=f"bench coupon grab, {label}", fraud={"policy": policy})
        campaign = service.create(definition, actor="bench")
        service.publish(campaign.id, actor="bench")
        campaign_id = campaign.id
    # The campaign names the policy, and the hot path's cache holds it as saved (not the default in its place).
    if (c.snapshots.get(campaign_id, fresh=True).fraud_policy != policy
            or c.fraud_policies.get(policy).document != CompiledPolicy.compile(policy, document).document):
        raise RuntimeError(f"the campaign does not play under the policy {policy!r}")
    c.sql_engine.dispose()
    return campaign_id


def player_tokens(overrides: dict[str, Any], count: int) -> list[str]:
    from engine.clock import SystemClock
    from engine.config import load_settings
    from web.auth import PlayerTokens

    settings = load_settings(overrides, environ={})
    tokens = PlayerTokens(settings.secret_key, settings.player_token_ttl_seconds)
    now = SystemClock().now()
    return [tokens.issue(f"p{i:05d}", now).token for i in range(count)]


# -------------------------------------------------------- in-process measures (one function a process)


def _timed_loop(one: Any, barrier: Any, duration: float, server_pids: list[int] | None = None
                ) -> tuple[int, int, float, list[int], float, float]:
    """Calls ``one(i)`` (True on success) for ``duration`` s.

    Answers ops, errors, seconds, latencies (ns), the CPU seconds this process
    spent and those ``server_pids`` spent meanwhile (a PostgreSQL backend).
    """
    for i in range(20):  # warm: connections, prepared statements, caches
        one(-1 - i)
    barrier.wait()
    clock = time.perf_counter_ns
    lat: list[int] = []
    ops = errors = 0
    cpu = time.process_time()
    server = cpu_seconds(server_pids or [])
    start = clock()
    deadline = start + int(duration * 1e9)
    now = start
    i = 0
    while now < deadline:
        ok = one(i)
        after = clock()
        lat.append(after - now)
        now = after
        i += 1
        if ok:
            ops += 1
        else:
            errors += 1
    return ops, errors, (now - start) / 1e9, lat, time.process_time() - cpu, cpu_seconds(server_pids or []) - server


def raw_worker(index: int, template: dict[str, Any], overrides: dict[str, Any], users: int, barrier: Any,
               duration: float, out: Any) -> None:
    sys.path.insert(0, str(BENCH_DIR))
    from apps import ClaimTemplate

    from engine.config import load_settings
    from engine.connections import connect

    claim = ClaimTemplate(template)
    client = connect(load_settings(overrides, environ={}))
    evalsha = client.evalsha
    prefix = f"r{index}{secrets.token_hex(4)}"

    def one(i: int) -> bool:
        kv = claim.call(f"u{i % users:05d}", f"{prefix}{i:012x}")
        return evalsha(claim.sha, claim.numkeys, *kv)[0] == "OK"

    out.put(_timed_loop(one, barrier, duration))


def play_worker(index: int, campaign_id: int, overrides: dict[str, Any], users: int, barrier: Any,
                duration: float, out: Any) -> None:
    from engine.config import load_settings
    from engine.runtime import PlayRequest
    from web.container import Container

    play = Container.build(load_settings(overrides, environ={})).play_service.play
    prefix = f"p{index}{secrets.token_hex(4)}-"

    def one(i: int) -> bool:
        result = play(PlayRequest(campaign_id=campaign_id, user_id=f"u{i % users:05d}", action="buy",
                                  payload=BUY_BODY, idempotency_key=f"{prefix}{i}"))
        return not result.replayed

    out.put(_timed_loop(one, barrier, duration))


TAKE_ONE = 'UPDATE stock SET "left" = "left" - 1 WHERE sku = %s AND "left" > 0 RETURNING "left"'


def pg_worker(index: int, url: str, schema: str, synchronous_commit: str, users: int, barrier: Any,
              duration: float, out: Any) -> None:
    import psycopg

    conn = psycopg.connect(url, autocommit=True)
    conn.execute(f"SET search_path TO {schema}")
    conn.execute(f"SET synchronous_commit TO {synchronous_commit}")
    prefix = f"g{index}{secrets.token_hex(4)}-"

    def one(i: int) -> bool:
        with conn.transaction():
            row = conn.execute(TAKE_ONE, (SKU,)).fetchone()
            if row is None:
                return False
            conn.execute("INSERT INTO orders (sku, user_id, idempotency_key) VALUES (%s, %s, %s)",
                         (SKU, f"u{i % users:05d}", f"{prefix}{i}"))
        return True

    out.put(_timed_loop(one, barrier, duration, [conn.info.backend_pid]))
    conn.close()


def run_processes(name: str, target: Any, args: tuple[Any, ...], n: int, duration: float, redis_pid: int | None
                  ) -> Figure:
    ctx = mp.get_context("spawn")  # each process builds its own clients, as a gunicorn worker would
    barrier = ctx.Barrier(n)
    out = ctx.Queue()
    procs = [ctx.Process(target=target, args=(i, *args, barrier, duration, out), daemon=True)
             for i in range(n)]
    redis_pids = [redis_pid] if redis_pid else []
    redis_before = cpu_seconds(redis_pids)
    for p in procs:
        p.start()
    results = []
    try:
        for _ in procs:
            results.append(out.get(timeout=duration + 120))
        redis_cpu = cpu_seconds(redis_pids) - redis_before  # includes the 20 warm-up calls a process: noise
    finally:
        for p in procs:
            p.join(timeout=10)
            if p.is_alive():
                p.kill()
    lat = sorted(v for r in results for v in r[3])
    ops = sum(r[0] + r[1] for r in results)
    return Figure(
        name=name, kind="inproc", ops=sum(r[0] for r in results), errors=sum(r[1] for r in results),
        seconds=max(r[2] for r in results), rate=sum(r[0] / r[2] for r in results),
        p50_ms=percentile(lat, 0.50) / 1e6, p99_ms=percentile(lat, 0.99) / 1e6,
        cpu_us={"clients": sum(r[4] for r in results) / ops * 1e6,
                "server": (redis_cpu + sum(r[5] for r in results)) / ops * 1e6},
    )


# ---------------------------------------------------------------- PostgreSQL


@contextmanager
def pg_schema(url: str) -> Iterator[str]:
    import psycopg

    schema = "hdbench_" + secrets.token_hex(4)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
        try:
            conn.execute(f'CREATE TABLE {schema}.stock (sku text PRIMARY KEY, "left" bigint NOT NULL)')
            conn.execute(f"""CREATE TABLE {schema}.orders (
                id bigserial PRIMARY KEY, sku text NOT NULL, user_id text NOT NULL,
                idempotency_key text NOT NULL UNIQUE, created_at timestamptz NOT NULL DEFAULT now())""")
            conn.execute(f"INSERT INTO {schema}.stock VALUES (%s, %s)", (SKU, STOCK))
            yield schema
        finally:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")


def pg_facts(url: str) -> dict[str, str]:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        facts = {"version": conn.execute("SHOW server_version").fetchone()[0]}
        for name in ("synchronous_commit", "fsync", "wal_sync_method", "shared_buffers"):
            facts[name] = conn.execute(f"SHOW {name}").fetchone()[0]
    return facts


def pg_counts(url: str, schema: str) -> tuple[int, int]:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        left = conn.execute(f"SELECT \"left\" FROM {schema}.stock WHERE sku = %s", (SKU,)).fetchone()[0]
        orders = conn.execute(f"SELECT count(*) FROM {schema}.orders").fetchone()[0]
    return STOCK - left, orders


# ---------------------------------------------------------------- HTTP under gunicorn + wrk

WRK_SCRIPT = """
-- POST the buy body as many phones on many networks do. Player i (its bearer token) has its own device and
-- its own /24, sent as X-Forwarded-For (the server trusts one proxy); every request has a unique
-- Idempotency-Key and nonce and the time (the fraud gate's replay protection).
--
-- The fraud gate's risk score denies a player whose last 6 taps came at near-constant intervals
-- (tap_regularity: cv < 0.1). Nothing keeps a steady cycle through the players from being that regular
-- (one thread cycling alone is exactly periodic), and random picks give each player exponential gaps, of
-- which about 1 in 5,000 sets of 5 is. So each player taps twice in a row and then waits for its turn: any
-- 5 of its gaps hold at least 2 short ones and 2 a whole turn long (the thread's other players, twice
-- each), a cv of 0.8 or more. Each wrk thread has its own players, so that two threads never interleave one
-- player's taps.
-- wrk ... -s buy.lua URL -- <run id> <threads>
local body = %(body)s
local tokens = {%(tokens)s}
local counter = 0
local next_id = 0

function setup(thread)
  next_id = next_id + 1
  thread:set("tid", next_id)
end

function init(args)
  math.randomseed(os.time() * 1000 + tid)
  local run = args[1] or string.format("%%d-%%08x", os.time(), math.random(0, 2147483646))
  local threads = tonumber(args[2]) or 1
  prefix = string.format("w%%s-%%d-", run, tid)
  headers = {["Content-Type"] = "application/json"}
  auth, devices, addresses = {}, {}, {}
  for i = tid, #tokens, threads do  -- this thread's players
    local n = i - 1
    auth[#auth + 1] = "Bearer " .. tokens[i]
    devices[#devices + 1] = "bench-device-" .. i
    -- 10.a.b.c: a /24 of its own for each of the first 65,536 players
    addresses[#addresses + 1] = string.format("10.%%d.%%d.%%d", math.floor(n / 256) %% 256, n %% 256,
                                              1 + math.floor(n / 65536) %% 250)
  end
end

function request()
  counter = counter + 1
  local mine = math.floor((counter - 1) / 2) %% #auth + 1  -- twice in a row, then the next player
  headers["Authorization"] = auth[mine]
  headers["X-Device-Id"] = devices[mine]
  headers["X-Forwarded-For"] = addresses[mine]
  headers["Idempotency-Key"] = prefix .. counter
  headers["X-Request-Nonce"] = prefix .. counter
  headers["X-Request-Timestamp"] = string.format("%%d", os.time() * 1000)
  return wrk.format("POST", nil, headers, body)
end
"""


def write_wrk_script(path: Path, tokens: list[str]) -> None:
    lua_str = lambda s: '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'  # noqa: E731
    path.write_text(WRK_SCRIPT % {"body": lua_str(json.dumps(BUY_BODY)),
                                  "tokens": ",".join(lua_str(t) for t in tokens)})


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def gunicorn(app: str, env: dict[str, str], workers: int, cwd: Path, log: Path,
             pythonpath: str | None = None) -> Iterator[tuple[int, int]]:
    port = free_port()
    cmd = [sys.executable, "-m", "gunicorn", "--workers", str(workers), "--bind", f"127.0.0.1:{port}"]
    if pythonpath:
        cmd += ["--pythonpath", pythonpath]
    cmd.append(app)
    with open(log, "ab") as logf:
        proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=logf, stderr=logf, start_new_session=True)
    try:
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"gunicorn {app} exited with {proc.returncode}; see {log}")
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2)
                break
            except urllib.error.HTTPError:
                break  # 404/405: it answers
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"gunicorn {app} did not answer in 30 s; see {log}") from None
                time.sleep(0.2)
        yield port, proc.pid
    finally:
        stop_group(proc)


def stop_group(proc: subprocess.Popen) -> None:
    """Stops the gunicorn master we started and its workers (its own process group, by id)."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)
        except ProcessLookupError:
            pass
    # Workers left behind by a master killed hard.
    with suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)


_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def _ms(text: str) -> float:
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    if not m:
        raise ValueError(f"wrk latency {text!r}")
    return float(m.group(1)) * _UNITS[m.group(2)]


def parse_wrk(output: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    m = re.search(r"(\d+) requests in ([\d.]+)(\w+)", output)
    out["requests"] = int(m.group(1)) if m else 0
    m = re.search(r"Requests/sec:\s+([\d.]+)", output)
    out["rate"] = float(m.group(1)) if m else 0.0
    for q in ("50", "75", "90", "99"):
        m = re.search(rf"^\s+{q}%\s+(\S+)", output, re.M)
        out[f"p{q}_ms"] = _ms(m.group(1)) if m else None
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    out["non_2xx"] = int(m.group(1)) if m else 0
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    out["socket_errors"] = sum(int(g) for g in m.groups()) if m else 0
    return out


def wrk(url: str, script: Path, args: argparse.Namespace, seconds: int) -> dict[str, Any]:
    cmd = ["wrk", f"-t{args.threads}", f"-c{args.connections}", f"-d{seconds}s", "--timeout", "5s",
           "--latency", "-s", str(script), url, "--", secrets.token_hex(6), str(args.threads)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 30, check=True)
    result = parse_wrk(done.stdout)
    result["raw"] = done.stdout
    return result


def http_figure(name: str, r: dict[str, Any], seconds: int, admitted: int | None,
                refused: dict[str, int] | None = None) -> Figure:
    return Figure(name=name, kind="http", ops=r["requests"], errors=r["non_2xx"] + r["socket_errors"],
                  seconds=seconds, rate=r["rate"], p50_ms=r["p50_ms"], p99_ms=r["p99_ms"],
                  extra={"p90_ms": r["p90_ms"], "claims_admitted": admitted, "non_2xx": r["non_2xx"],
                         "refused": refused or {}, "wrk": r["raw"]})


def fraud_counts(client: Any, stats_key: str) -> dict[str, int]:
    """The fraud gate's counters of a campaign: refusals per rule, and 'shadow:'/'held:' notes on admitted plays."""
    return {k: int(v) for k, v in client.hgetall(stats_key).items()}


def fraud_log_sample(client: Any, log_key: str, count: int = 5) -> list[dict[str, str]]:
    """The latest refused plays the gate logged (rule, user, device, ip, reasons)."""
    return [fields for _, fields in client.xrevrange(log_key, count=count)]


def refusals_between(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    """Plays the gate refused between two readings of ``fraud_counts``, per rule."""
    return {k: v - before.get(k, 0) for k, v in after.items()
            if v != before.get(k, 0) and not k.startswith(("shadow:", "held:"))}


# ---------------------------------------------------------------- machine, report, clean-up


def machine_facts(redis_client: Any, args: argparse.Namespace) -> dict[str, Any]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    info = redis_client.info()
    persistence = redis_client.config_get("appendonly") | redis_client.config_get("appendfsync")
    wrk_version = subprocess.run(["wrk", "--version"], capture_output=True, text=True).stdout.split("\n")[0]
    git = ["git", "-C", str(BENCH_DIR.parent)]
    commit = subprocess.run([*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run([*git, "status", "--porcelain", "--untracked-files=no"], capture_output=True,
                           text=True).stdout.split()
    return {
        "nproc": os.cpu_count(),
        "loadavg_before": os.getloadavg(),
        "busy_before": busy_processes(),
        "cpu": cpu,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "redis": info.get("redis_version"),
        "redis_persistence": persistence,
        "wrk": wrk_version.split(" Copyright")[0].strip(),
        "commit": commit + (" + uncommitted changes" if dirty else ""),
        "postgres": pg_facts(args.postgres_url),
    }


def _proc_ticks(pid: int) -> tuple[int, int] | None:
    """(process group, utime + stime ticks) of a process, None when it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return int(fields[2]), int(fields[11]) + int(fields[12])


def cpu_seconds(pids: list[int]) -> float:
    ticks = sum(t[1] for t in map(_proc_ticks, pids) if t)
    return ticks / os.sysconf("SC_CLK_TCK")


def group_cpu_seconds(pgid: int) -> float:
    """CPU of every live process in a process group (gunicorn's master and workers), children's exited time aside."""
    ticks = 0
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            t = _proc_ticks(int(d.name))
            if t and t[0] == pgid:
                ticks += t[1]
    return ticks / os.sysconf("SC_CLK_TCK")


def busy_processes(sample_seconds: float = 1.0, threshold: float = 0.1) -> list[str]:
    """Other processes using more than ``threshold`` of a core right now (the figures share the machine)."""

    def ticks() -> dict[int, tuple[int, str]]:
        out = {}
        for d in Path("/proc").iterdir():
            if not d.name.isdigit():
                continue
            try:
                stat = (d / "stat").read_text()
                cmd = (d / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
            except OSError:
                continue
            fields = stat.rsplit(")", 1)[1].split()
            out[int(d.name)] = (int(fields[11]) + int(fields[12]), cmd or stat.split("(", 1)[1].split(")")[0])
        return out

    hz = os.sysconf("SC_CLK_TCK")
    first = ticks()
    time.sleep(sample_seconds)
    busy = []
    for pid, (t, cmd) in ticks().items():
        if pid == os.getpid() or pid not in first:
            continue
        share = (t - first[pid][0]) / hz / sample_seconds
        if share >= threshold:
            busy.append(f"{share:.0%} pid {pid} {cmd[:90]}")
    return busy


def evalsha_stats(client: Any) -> tuple[int, int]:
    """Calls and server microseconds of EVALSHA so far (INFO commandstats; read-only, nothing reset)."""
    stat = client.info("commandstats").get("cmdstat_evalsha", {})
    return int(stat.get("calls", 0)), int(stat.get("usec", 0))


def children_cpu() -> float:
    """CPU of this process's waited-for children (wrk runs as one)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def delete_namespace(client: Any, namespace: str) -> int:
    deleted = 0
    batch: list[str] = []
    for key in client.scan_iter(match=f"{namespace}:*", count=1000):
        batch.append(key)
        if len(batch) >= 1000:
            deleted += client.unlink(*batch)
            batch.clear()
    if batch:
        deleted += client.unlink(*batch)
    return deleted


def rotated(items: list[str], by: int) -> list[str]:
    """Each round starts with another measure, so a drift of the machine does not always hit the same one."""
    by %= len(items) or 1
    return items[by:] + items[:by]


def verdict(ok: bool) -> str:
    return "MET" if ok else "MISSED"



@dataclass(frozen=True)
class Ratio:
    key: str
    label: str
    num: str  # figure keys
    den: str
    attr: str = "rate"
    at_least: float | None = None  # target: ratio >= at_least
    at_most: float | None = None  # target: ratio <= at_most
    times: bool = False  # shown as 2.5x rather than 250%

    def show(self, value: float) -> str:
        return f"{value:.2f}x" if self.times else f"{value:.1%}"

    def target(self) -> str:
        if self.at_least is not None:
            return ">= " + self.show(self.at_least).replace(".00x", "x").replace(".0%", "%")
        if self.at_most is not None:
            return "<= " + self.show(self.at_most).replace("0x", "x")
        return "(info)"

    def met(self, value: float) -> bool | None:
        if self.at_least is not None:
            return value >= self.at_least
        if self.at_most is not None:
            return value <= self.at_most
        return None


RATIOS = [
    Ratio("http_buy_vs_evalsha_endpoint", "HTTP buy / minimal EVALSHA endpoint", "http_buy", "http_evalsha",
          at_least=TARGET_HTTP_VS_EVALSHA),
    Ratio("http_buy_p99_vs_evalsha_endpoint_p99", "HTTP buy p99 / minimal endpoint p99", "http_buy",
          "http_evalsha", attr="p99_ms", at_most=TARGET_HTTP_P99_VS_EVALSHA, times=True),
    Ratio("http_buy_vs_bare_flask", "HTTP buy / bare Flask", "http_buy", "http_bare"),
    Ratio("http_buy_gate_on_vs_off", "HTTP buy, fraud gate on / off (throughput)", "http_buy", "http_buy_nogate"),
    Ratio("http_buy_gate_on_vs_off_p50", "HTTP buy, fraud gate on / off (p50)", "http_buy", "http_buy_nogate",
          attr="p50_ms", times=True),
    Ratio("http_buy_gate_on_vs_off_p99", "HTTP buy, fraud gate on / off (p99)", "http_buy", "http_buy_nogate",
          attr="p99_ms", times=True),
    Ratio("http_evalsha_vs_bare_flask", "minimal EVALSHA endpoint / bare Flask", "http_evalsha", "http_bare"),
    Ratio("play_vs_raw_evalsha", "in-process play / raw EVALSHA", "play", "raw", at_least=TARGET_PLAY_VS_RAW),
    Ratio("raw_evalsha_vs_pg", "raw EVALSHA / PostgreSQL claims", "raw", "pg", at_least=TARGET_LUA_VS_PG,
          times=True),
    Ratio("raw_evalsha_vs_pg_async_commit", "raw EVALSHA / PostgreSQL (synchronous_commit=off)", "raw",
          "pg_async", times=True),
]


def report(machine: dict[str, Any], figs: dict[str, Figure], args: argparse.Namespace) -> dict[str, Any]:
    print()
    print("== machine")
    print(f"nproc {machine['nproc']}, CPU {machine['cpu']}, kernel {machine['kernel']}; code at {machine['commit']}")
    persistence = machine["redis_persistence"]
    print(f"Python {machine['python']}, Redis {machine['redis']} (appendonly={persistence['appendonly']},"
          f" appendfsync={persistence['appendfsync']}), {machine['wrk']}")
    pg = machine["postgres"]
    print(f"PostgreSQL {pg['version']} (synchronous_commit={pg['synchronous_commit']}, fsync={pg['fsync']},"
          f" wal_sync_method={pg['wal_sync_method']})")
    print(f"load: {args.processes} client processes x {args.duration:g} s in-process;"
          f" gunicorn {args.workers} sync workers, wrk -t{args.threads} -c{args.connections}"
          f" -d{args.http_duration}s (+{args.warmup} s warm-up); {args.rounds} rounds;"
          f" {args.players} players, each on its own device and /24 (X-Forwarded-For, trusted_proxies=1)")
    print("load average before the run: {:.2f} {:.2f} {:.2f}; after: {:.2f} {:.2f} {:.2f}".format(
        *machine["loadavg_before"], *os.getloadavg()))
    if "evalsha_server_us" in machine:
        print(f"Redis server time per EVALSHA during the in-process measures: {machine['evalsha_server_us']:.1f} us"
              f" (one core: at most {1e6 / machine['evalsha_server_us']:.0f} claims/s)")
    for line in machine["busy_before"]:
        print(f"  busy before the run (not ours): {line}")
    print()
    print("== figures")
    print(f"(median of {args.rounds} interleaved rounds; ops/s of each round in the last column)")
    head = f"{'measure':<44} {'ops/s':>8} {'p50 ms':>7} {'p99 ms':>7} {'ok':>8} {'errors':>6}  rounds"
    print(head)
    print("-" * (len(head) + 14))
    for f in figs.values():
        rounds = "/".join(f"{r:.0f}" for r in f.rounds)
        print(f"{f.name:<44} {f.rate:>8.0f} {f.p50_ms:>7.2f} {f.p99_ms:>7.2f} {f.ops:>8} {f.errors:>6}"
              f"  {rounds}")
    print()
    print("== CPU per operation, microseconds (median of rounds; from /proc and getrusage)")
    cores = os.cpu_count() or 1
    print(f"{'measure':<44} {'client/app':>10} {'server':>7} {'wrk':>7} {'total':>7}  ceiling on {cores} cores")
    for f in figs.values():
        if not f.cpu_us:
            continue
        app = f.cpu_us.get("clients", f.cpu_us.get("gunicorn", 0.0))
        total = sum(f.cpu_us.values())
        wrk_us = f"{f.cpu_us['wrk']:>7.0f}" if "wrk" in f.cpu_us else f"{'-':>7}"
        ceiling = cores * 1e6 / total if total else float("nan")
        server = f.cpu_us.get("server", 0.0)
        print(f"{f.name:<44} {app:>10.0f} {server:>7.0f} {wrk_us} {total:>7.0f}  {ceiling:>8.0f}/s")
    print("  (server: redis-server, or the PostgreSQL backends of the bench's connections (not the WAL writer);"
          " kernel time\n   on behalf of no process, e.g. loopback softirqs, is outside: the ceiling is an"
          " upper bound)")
    print()
    print("== admitted and refused (sums over the rounds; refusals from the campaign's fraud stats, per rule)")
    for f in figs.values():
        if f.kind == "http" and f.extra.get("claims_admitted") is not None:
            refused = f.extra.get("refused") or {}
            by_rule = ", ".join(f"{k} {v}" for k, v in sorted(refused.items())) or "none"
            print(f"  {f.name}: {f.ops} responses, {f.extra.get('non_2xx', 0)} non-2xx; claims admitted by Redis:"
                  f" {f.extra['claims_admitted']}; refused by the fraud gate: {by_rule}")
    print()
    print("== ratios")
    ratios: dict[str, float] = {}
    for r in RATIOS:
        if r.num not in figs or r.den not in figs:
            continue
        value = ratios[r.key] = getattr(figs[r.num], r.attr) / getattr(figs[r.den], r.attr)
        met = r.met(value)
        mark = "" if met is None else verdict(met)
        print(f"{r.label:<52} {r.show(value):>8}  target {r.target():<8} {mark}")
    if "http_buy" in figs and "http_buy_nogate" in figs:
        ratios.update(gate_detail(figs["http_buy"], figs["http_buy_nogate"]))
    return ratios


def gate_detail(on: Figure, off: Figure) -> dict[str, float]:
    """The gate's cost two more ways, as this shared machine drifts between rounds: each round's own ratio (its
    gate-on and gate-off measures ran next to each other), and the CPU a request took with the gate off over
    with it on (a ceiling's ratio, less swayed by what else the machine ran)."""
    paired = [a / b for a, b in zip(on.rounds, off.rounds, strict=True) if b]
    print("HTTP buy, fraud gate on / off, round by round:      "
          + " / ".join(f"{r:.1%}" for r in paired))
    found: dict[str, float] = {}
    if on.cpu_us and off.cpu_us and sum(on.cpu_us.values()):
        found["http_buy_gate_on_vs_off_cpu"] = sum(off.cpu_us.values()) / sum(on.cpu_us.values())
        print(f"HTTP buy, fraud gate off / on (CPU per request)      {found['http_buy_gate_on_vs_off_cpu']:>8.1%}")
    return found


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    require_loopback(args.redis_url, args.database_url, args.postgres_url)
    for tool in ("wrk",):
        if shutil.which(tool) is None:
            print(f"{tool} is needed (apt-get install -y {tool})", file=sys.stderr)
            return 2
    only = {k.strip() for k in args.only.split(",") if k.strip()}

    def wanted(key: str) -> bool:
        return not only or key in only

    namespace = "hdbench" + secrets.token_hex(4)
    started = time.monotonic()
    figs: dict[str, Figure] = {}
    with ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="hdbench-")))
        overrides = huodong_overrides(args, tmp, namespace)

        from engine.config import environment_for_children, load_settings
        from engine.connections import connect
        from engine.keys import CampaignKeys

        settings = load_settings(overrides, environ={})
        admin = connect(settings)
        stack.callback(lambda: print(f"cleaned up: {delete_namespace(admin, namespace)} Redis keys"
                                     f" under {namespace}:*"))
        machine = machine_facts(admin, args)

        print(f"setting up campaign (namespace {namespace}) ...", flush=True)
        campaign_id, template = set_up_campaign(overrides)
        nogate_id = set_up_nogate_campaign(overrides) if wanted("http_buy_nogate") else None

        def taken(campaign: int) -> int:
            return int(admin.hget(CampaignKeys(namespace, campaign).stock_taken, f"sku:{SKU}") or 0)

        n, d = args.processes, args.duration
        # The server's own CPU is read from /proc when it runs on this machine (the loopback default does).
        redis_pid = int(admin.info("server").get("process_id", 0)) or None
        if redis_pid and not Path(f"/proc/{redis_pid}").exists():
            redis_pid = None
        redis_pids = [redis_pid] if redis_pid else []
        schema = stack.enter_context(pg_schema(args.postgres_url))
        pg_before = pg_counts(args.postgres_url, schema)
        inproc = {
            "raw": (f"raw EVALSHA claim.lua ({n} proc)", raw_worker, (template, overrides, args.players)),
            "play": (f"play() in-process ({n} proc)", play_worker, (campaign_id, overrides, args.players)),
            "pg": (f"PostgreSQL UPDATE+INSERT ({n} proc)", pg_worker,
                   (args.postgres_url, schema, "on", args.players)),
            "pg_async": (f"PostgreSQL, synchronous_commit=off ({n} proc)", pg_worker,
                         (args.postgres_url, schema, "off", args.players)),
        }
        inproc = {k: v for k, v in inproc.items() if wanted(k)}
        runs: dict[str, list[Figure]] = {k: [] for k in inproc}
        calls_before, usec_before = evalsha_stats(admin)
        for r in range(args.rounds):
            for key in rotated(list(inproc), r):
                name, target, targs = inproc[key]
                print(f"round {r + 1}/{args.rounds}: {name} ...", flush=True)
                runs[key].append(run_processes(name, target, targs, n, d, redis_pid))
        for key, (name, _, _) in inproc.items():
            figs[key] = combine(name, "inproc", runs[key])
        calls, usec = (a - b for a, b in zip(evalsha_stats(admin), (calls_before, usec_before), strict=True))
        if calls:
            # Other clients of a shared server count too; on a quiet server this is the claim script's own cost.
            machine["evalsha_server_us"] = usec / calls
        sold, orders = pg_counts(args.postgres_url, schema)
        print(f"  PostgreSQL: {sold - pg_before[0]} units sold, {orders - pg_before[1]} orders", flush=True)

        script = tmp / "buy.lua"
        write_wrk_script(script, player_tokens(overrides, args.players))
        env = {k: v for k, v in os.environ.items() if not k.startswith("HUODONG_")}
        env.pop("PROMETHEUS_MULTIPROC_DIR", None)
        env.update(environment_for_children(settings))
        env["HUODONG_LOG_LEVEL"] = "WARNING"
        template_path = tmp / "claim.json"
        template_path.write_text(json.dumps(template))
        bench_path = str(BENCH_DIR)
        # key: (name, gunicorn app, --pythonpath, the campaign the URL names, the campaign whose claims count
        # (None: the app claims nothing), whether the Huodong gate screens it)
        http: dict[str, tuple[str, str, str | None, int, int | None, bool]] = {
            "http_bare": ("HTTP bare Flask {ok:true}", "apps:create_bare_app()", bench_path, campaign_id, None,
                          False),
            "http_evalsha": ("HTTP minimal EVALSHA endpoint",
                             f"apps:create_evalsha_app({str(template_path)!r})", bench_path, campaign_id,
                             campaign_id, False),
            "http_buy": ("HTTP POST .../actions/buy (Huodong)", "web.wsgi:app", None, campaign_id, campaign_id,
                         True),
        }
        if nogate_id is not None:
            http["http_buy_nogate"] = ("HTTP buy, fraud gate off (all rules off)", "web.wsgi:app", None, nogate_id,
                                       nogate_id, True)
        http = {k: v for k, v in http.items() if wanted(k)}
        with ExitStack() as servers:
            # All servers up at once (idle sync workers cost nothing), so rounds can interleave.
            urls, groups = {}, {}
            for key, (_, app, pythonpath, target, _, _) in http.items():
                log = tmp / f"{key}.log"
                port, groups[key] = servers.enter_context(gunicorn(app, env, args.workers, tmp, log, pythonpath))
                urls[key] = f"http://127.0.0.1:{port}/api/v1/campaigns/{target}/actions/buy"
                if args.warmup:
                    wrk(urls[key], script, args, args.warmup)
            http_runs: dict[str, list[Figure]] = {k: [] for k in http}
            for r in range(args.rounds):
                for key in rotated(list(http), r):
                    name, _, _, _, counted, gated = http[key]
                    print(f"round {r + 1}/{args.rounds}: {name} ...", flush=True)
                    stats_key = CampaignKeys(namespace, counted).fraud_stats if gated and counted else None
                    before = taken(counted) if counted else 0
                    stats_before = fraud_counts(admin, stats_key) if stats_key else {}
                    cpu_before = (group_cpu_seconds(groups[key]), cpu_seconds(redis_pids), children_cpu())
                    result = wrk(urls[key], script, args, args.http_duration)
                    cpu_after = (group_cpu_seconds(groups[key]), cpu_seconds(redis_pids), children_cpu())
                    admitted = taken(counted) - before if counted else None
                    refused = refusals_between(stats_before, fraud_counts(admin, stats_key)) if stats_key else {}
                    fig = http_figure(name, result, args.http_duration, admitted, refused)
                    fig.cpu_us = {k: (a - b) / max(1, fig.ops) * 1e6
                                  for k, a, b in zip(("gunicorn", "server", "wrk"), cpu_after, cpu_before, strict=True)}
                    http_runs[key].append(fig)
            refusal_samples = {key: fraud_log_sample(admin, CampaignKeys(namespace, http[key][4]).fraud_log)
                               for key, runs_of in http_runs.items()
                               if http[key][5] and any(f.extra["refused"] for f in runs_of)}
        for key, (name, _, _, _, counted, _) in http.items():
            figs[key] = combine(name, "http", http_runs[key])
            if counted is None:
                figs[key].extra["claims_admitted"] = None

        ratios = report(machine, figs, args)
        for key, sample in refusal_samples.items():
            print(f"  {figs[key].name}: the latest refusals in the campaign's fraud log:")
            for entry in sample:
                print(f"    {entry}")
        if args.json:
            Path(args.json).write_text(json.dumps({
                "machine": machine, "ratios": ratios,
                "figures": {k: {**f.__dict__, "extra": {x: y for x, y in f.extra.items() if x != "wrk"}}
                            for k, f in figs.items()},
            }, indent=2))
        for f in figs.values():
            if f.errors:
                print(f"WARNING: {f.name} had {f.errors} errors", file=sys.stderr)
            admitted = f.extra.get("claims_admitted")
            if f.kind == "http" and admitted is not None and (admitted < f.ops or f.extra.get("refused")):
                print(f"WARNING: {f.name}: {f.ops} responses but {admitted} claims admitted", file=sys.stderr)
        for log in tmp.glob("http_*.log"):
            text = log.read_text()
            if "Traceback" in text:
                print(f"--- {log.name}:\n{text[-3000:]}", file=sys.stderr)
    print(f"total time {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
