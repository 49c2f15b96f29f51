"""Where a buy's CPU goes: the three HTTP targets of run.py called in-process through WSGI, then profiled.

    .venv/bin/python bench/profile_buy.py [--requests N] [--redis-url URL]

No sockets between client and app (a prebuilt WSGI environ per request), so
the figures are the server-side CPU cost of one request in each app, without
gunicorn's HTTP parsing and accept/close (the same for all three). Then the
Huodong buy is profiled with cProfile: the cumulative cost of each step of the
request path, and the self time grouped by library. Uses a fresh Redis
namespace (deleted at the end) and a SQLite file in a temp folder.
"""

from __future__ import annotations

import argparse
import cProfile
import inspect
import io
import json
import pstats
import secrets
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager, suppress
from pathlib import Path
from typing import Any

from flask.sessions import SecureCookieSessionInterface

sys.path.insert(0, str(Path(__file__).resolve().parent))

import run  # noqa: E402  (bench/ is not a package)
from apps import ClaimTemplate, create_bare_app, create_evalsha_app  # noqa: E402

# Steps of the request path, matched on "file:function" of the profile (cumulative time per request).
STEPS = [
    ("Flask/werkzeug: whole request (wsgi_app)", "flask/app.py", "wsgi_app"),
    ("  require_player: token check (itsdangerous)", "web/auth.py", "verify"),
    ("  flask-smorest @blp.response wrapper (total)", "flask_smorest/response.py", "wrapper"),
    ("  json_body: parse + depth check", "web/jsonio.py", "json_body"),
    ("  PlayService.play (total)", "engine/runtime.py", "play"),
    ("    marshmallow: load", "marshmallow/schema.py", "load"),
    ("    game.plan", "games/flash_sale.py", "plan"),
    ("    fingerprint (json + sha256)", "engine/idempotency.py", "fingerprint"),
    ("    answer/event json.dumps", "engine/runtime.py", "_json"),
    ("    Scripts.claim (argv + EVALSHA round trip)", "engine/scripts.py", "claim"),
    ("      redis-py EVALSHA", "redis/commands/core.py", "evalsha"),
    ("    _answer: json.loads of the reply", "engine/runtime.py", "_answer"),
    ("    prometheus labels()", "prometheus_client/metrics.py", "labels"),
]

GROUPS = ["flask_smorest", "webargs", "apispec", "marshmallow", "itsdangerous", "werkzeug", "flask", "redis",
          "hiredis", "prometheus_client", "numpy", "json", "engine", "games", "web", "campaigns", "socket"]


@contextmanager
def patched(obj: Any, name: str, value: Any) -> Iterator[None]:
    old = getattr(obj, name)
    setattr(obj, name, value)
    try:
        yield
    finally:
        setattr(obj, name, old)


class _NoMetric:
    def labels(self, *args: Any) -> _NoMetric:
        return self

    def inc(self, *args: Any) -> None:
        pass

    def observe(self, *args: Any) -> None:
        pass


class _NoSession(SecureCookieSessionInterface):
    def open_session(self, app: Any, request: Any) -> None:
        return None


class _CachedTokens:
    """What a per-process cache of verified tokens would cost: a dict hit instead of an HMAC check."""

    def __init__(self, verify: Callable[[str], str]) -> None:
        self.real_verify = verify
        self.cache: dict[str, str] = {}

    def verify(self, token: str) -> str:
        user = self.cache.get(token)
        if user is None:
            user = self.cache[token] = self.real_verify(token)
        return user


def ablations(app: Any) -> dict[str, Callable[[], Any]]:
    """One change each, applied in-process only (no file is edited), to price a step of the request path."""
    import web.api.campaigns as views
    import web.jsonio
    from engine import runtime
    from web.auth import require_player

    bare_view = require_player(inspect.unwrap(views.play))
    tokens = app.extensions["huodong.player_tokens"]

    # Changes already made in the code since the first profile (lazy Generator, cached metric children,
    # no jsonify) are no longer priced here; RESULTS.md keeps their first figures.
    return {
        "no Flask session opened (SECRET_KEY makes every request open one)":
            lambda: patched(app, "session_interface", _NoSession()),
        "player token check cached per process": lambda: patched(
            tokens, "verify", _CachedTokens(tokens.verify).verify),
        "no Prometheus metrics": lambda: _both(patched(runtime, "plays_counter", lambda *a: _NoMetric()),
                                               patched(runtime, "claim_latency", lambda *a: _NoMetric())),
        "request JSON by plain json.loads (no StrictJSONProvider checks)": lambda: patched(
            web.jsonio.StrictJSONProvider, "loads", lambda self, s, **kw: json.loads(s)),
        "no flask-smorest wrappers around the view": lambda: patched_view(app, "player.play", bare_view),
    }


@contextmanager
def _both(a: Any, b: Any) -> Iterator[None]:
    with a, b:
        yield


@contextmanager
def patched_view(app: Any, endpoint: str, view: Any) -> Iterator[None]:
    old = app.view_functions[endpoint]
    app.view_functions[endpoint] = view
    try:
        yield
    finally:
        app.view_functions[endpoint] = old


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    p.add_argument("--requests", type=int, default=4000, help="requests per app and repetition")
    p.add_argument("--players", type=int, default=256)
    return p.parse_args(argv)


class Caller:
    """Calls a WSGI app with a prebuilt environ: a fresh body stream, key and player token per request."""

    def __init__(self, app: Callable[..., Any], path: str, tokens: list[str]) -> None:
        from werkzeug.test import EnvironBuilder

        self.app = app
        self.body = json.dumps(run.BUY_BODY).encode()
        self.base = EnvironBuilder(path=path, method="POST", data=self.body,
                                   headers={"Content-Type": "application/json", "Host": "127.0.0.1"}
                                   ).get_environ()
        self.tokens = [f"Bearer {t}" for t in tokens]
        self.prefix = "pb-" + secrets.token_hex(4) + "-"
        self.n = 0
        self.statuses: dict[str, int] = defaultdict(int)

    def _start_response(self, status: str, headers: list[Any], exc_info: Any = None) -> None:
        self.statuses[status] += 1

    def environ(self) -> dict[str, Any]:
        """Request ``self.n``'s environ: a fresh body stream, its player's token and a key of its own."""
        environ = dict(self.base)
        environ["wsgi.input"] = io.BytesIO(self.body)
        environ["HTTP_AUTHORIZATION"] = self.tokens[self.n % len(self.tokens)]
        environ["HTTP_IDEMPOTENCY_KEY"] = f"{self.prefix}{self.n}"
        return environ

    def one(self) -> None:
        self.n += 1
        result = self.app(self.environ(), self._start_response)
        try:
            b"".join(result)
        finally:
            if hasattr(result, "close"):
                result.close()

    def cpu_us(self, requests: int, repeats: int = 3) -> tuple[float, float]:
        """Best of ``repeats``: CPU and wall microseconds per request."""
        best = (float("inf"), float("inf"))
        for _ in range(repeats):
            c, w = time.process_time(), time.perf_counter()
            for _ in range(requests):
                self.one()
            cpu, wall = time.process_time() - c, time.perf_counter() - w
            best = min(best, (cpu / requests * 1e6, wall / requests * 1e6))
        return best


class WrkCaller(Caller):
    """A Caller with what bench/run.py's wrk script sends the Huodong buy: each player's device and /24 (as
    X-Forwarded-For, for an app with one trusted proxy), a nonce and the time; each player twice in a row, then
    the next. Without them the default fraud policy refuses every buy (no nonce: 409 REPLAY_REJECTED)."""

    def environ(self) -> dict[str, Any]:
        environ = super().environ()
        mine = (self.n - 1) // 2 % len(self.tokens)
        environ.update({
            "HTTP_AUTHORIZATION": self.tokens[mine], "HTTP_X_DEVICE_ID": f"bench-device-{mine}",
            "HTTP_X_FORWARDED_FOR": f"10.{mine // 256}.{mine % 256}.1",
            "HTTP_X_REQUEST_NONCE": environ["HTTP_IDEMPOTENCY_KEY"],
            "HTTP_X_REQUEST_TIMESTAMP": str(int(time.time() * 1000)),
        })
        return environ


def cumulative_us(stats: pstats.Stats, path_part: str, func: str, requests: int) -> float:
    """Cumulative time of the outermost matching entry (recursion and nested wrappers count once)."""
    total = 0.0
    for (filename, _, name), (_, _, _, ct, _) in stats.stats.items():  # type: ignore[attr-defined]
        if path_part == "~":
            hit = filename == "~" and func in name
        else:
            hit = name == func and path_part in filename.replace("\\", "/")
        if hit:
            total = max(total, ct)
    return total / requests * 1e6


def self_by_group(stats: pstats.Stats, requests: int) -> list[tuple[str, float]]:
    groups: dict[str, float] = defaultdict(float)
    for (filename, _, name), (_, _, tt, _, _) in stats.stats.items():  # type: ignore[attr-defined]
        path = filename.replace("\\", "/")
        group = "other"
        if filename == "~":
            group = "builtins: " + ("socket I/O" if any(s in name for s in ("recv", "send", "sock"))
                                    else "other C calls")
        else:
            for g in GROUPS:
                if f"/{g}/" in path or path.endswith(f"/{g}.py"):
                    group = g
                    break
            if group == "other" and "/python3." in path:
                group = "stdlib (" + Path(path).stem + ")"
        groups[group] += tt
    return sorted(((g, t / requests * 1e6) for g, t in groups.items()), key=lambda x: -x[1])


def micro_costs(app: Any, campaign_id: int, path: str, token: str, template: dict[str, Any]
                ) -> list[tuple[str, float]]:
    """The steps of a buy timed one by one on the real objects (timeit, best of 5): microseconds per call."""
    import timeit

    from flask import request as flask_request

    from engine.idempotency import fingerprint
    from engine.keys import CampaignKeys
    from engine.metrics import claim_latency, plays_counter
    from engine.runtime import _json
    from games.flash_sale import BuyRequest

    tokens = app.extensions["huodong.player_tokens"]
    body = json.dumps(run.BUY_BODY).encode()
    payload = dict(run.BUY_BODY)
    recorded = ClaimTemplate(template)
    answer = json.loads(recorded.field("answer"))
    event = json.loads(recorded.field("event"))
    schema = BuyRequest()
    adapter = app.url_map.bind("127.0.0.1")
    environ = Caller(app, path, [token]).base

    def request_context() -> None:
        environ["wsgi.input"] = io.BytesIO(body)
        ctx = app.request_context(environ)
        ctx.push()
        ctx.pop()

    def open_session() -> None:
        app.session_interface.open_session(app, flask_request)

    def metrics() -> None:
        plays_counter("flash_sale", "buy", "ok").inc()
        claim_latency("flash_sale").observe(0.0003)

    steps: list[tuple[str, Callable[[], Any]]] = [
        ("web: request context push/pop (routing + session open)", request_context),
        ("web:   of which werkzeug URL match", lambda: adapter.match(path, method="POST")),
        ("web:   of which Flask open_session (SECRET_KEY set, no cookie)", open_session),
        ("web: require_player -> PlayerTokens.verify (itsdangerous)", lambda: tokens.verify(token)),
        ("web: json_body -> StrictJSONProvider.loads of the body", lambda: app.json.loads(body)),
        ("play: BuyRequest.load (instance reused, as engine/runtime.py does)", lambda: schema.load(payload)),
        ("play: fingerprint (sorted JSON + sha256)", lambda: fingerprint("buy", payload)),
        ("play: _json(answer) + _json(event)", lambda: (_json(answer), _json(event))),
        ("play: CampaignKeys.idempotency (sha256 of the key)",
         lambda: CampaignKeys("ns", campaign_id).idempotency("u1", "w1-1764000000-0abc1234-42")),
        ("play: Prometheus plays counter + claim latency (cached children)", metrics),
    ]
    out = []
    environ["wsgi.input"] = io.BytesIO(body)
    with app.request_context(dict(environ)):
        for label, fn in steps:
            n = 2000
            best = min(timeit.repeat(fn, number=n, repeat=5)) / n * 1e6
            out.append((label, best))
    return out


def paired(caller: Caller, change: Callable[[], Any], requests: int, pairs: int = 7) -> tuple[float, float]:
    """Baseline and changed, alternated ``pairs`` times; the best of each (a shared machine drifts)."""
    before, after = [], []
    for _ in range(pairs):
        before.append(caller.cpu_us(requests, repeats=1)[0])
        with change():
            after.append(caller.cpu_us(requests, repeats=1)[0])
    return min(before), min(after)


def play_cpu_us(app: Any, campaign_id: int, requests: int) -> float:
    from engine.runtime import PlayRequest

    play = app.extensions["huodong.container"].play_service.play
    prefix = "pp-" + secrets.token_hex(4) + "-"
    best = float("inf")
    for r in range(3):
        c = time.process_time()
        for i in range(requests):
            play(PlayRequest(campaign_id=campaign_id, user_id=f"u{i % 256}", action="buy", payload=run.BUY_BODY,
                             idempotency_key=f"{prefix}{r}-{i}"))
        best = min(best, (time.process_time() - c) / requests * 1e6)
    return best


def raw_cpu_us(template: dict[str, Any], overrides: dict[str, Any], requests: int) -> float:

    from engine.config import load_settings
    from engine.connections import connect

    claim = ClaimTemplate(template)
    client = connect(load_settings(overrides, environ={}))
    prefix = "pr" + secrets.token_hex(4)
    best = float("inf")
    for r in range(3):
        c = time.process_time()
        for i in range(requests):
            client.evalsha(claim.sha, claim.numkeys, *claim.call(f"u{i % 256}", f"{prefix}{r}x{i}"))
        best = min(best, (time.process_time() - c) / requests * 1e6)
    return best


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from engine.config import load_settings
    from engine.connections import connect
    from web import create_app

    namespace = "hdbench" + secrets.token_hex(4)
    with tempfile.TemporaryDirectory(prefix="hdprofile-") as tmpdir:
        tmp = Path(tmpdir)
        bench_args = run.parse_args(["--redis-url", args.redis_url])
        overrides = run.huodong_overrides(bench_args, tmp, namespace)
        admin = connect(load_settings(overrides, environ={}))
        try:
            campaign_id, template = run.set_up_campaign(overrides)
            template_path = tmp / "claim.json"
            template_path.write_text(json.dumps(template))
            tokens = run.player_tokens(overrides, args.players)
            path = f"/api/v1/campaigns/{campaign_id}/actions/buy"
            huodong = create_app(load_settings(overrides, environ={}))
            callers = {
                "bare Flask {ok:true}": Caller(create_bare_app(), path, tokens),
                "minimal EVALSHA endpoint": Caller(create_evalsha_app(str(template_path)), path, tokens),
                "Huodong buy": WrkCaller(huodong, path, tokens),
            }
            for c in callers.values():
                for _ in range(300):
                    c.one()
            print(f"== server-side cost per request, in-process WSGI, best of 3 x {args.requests}")
            print(f"{'app':<28} {'CPU us':>8} {'wall us':>8}")
            costs = {}
            for name, c in callers.items():
                costs[name] = c.cpu_us(args.requests)
                statuses = dict(c.statuses)
                print(f"{name:<28} {costs[name][0]:>8.1f} {costs[name][1]:>8.1f}   statuses {statuses}")

            buy = callers["Huodong buy"]
            base = costs["Huodong buy"][0]
            print()
            print("== steps of a buy timed alone (timeit on the real objects, best of 5), us per call")
            for label, us in micro_costs(huodong, campaign_id, path, tokens[0], template):
                print(f"{label:<66} {us:>8.1f}")
            print()
            print("== play() and raw EVALSHA alone, CPU us per call (best of 3)")
            print(f"{'PlayService.play (no HTTP)':<40} {play_cpu_us(huodong, campaign_id, args.requests):>8.1f}")
            print(f"{'raw EVALSHA (redis-py client side)':<40} {raw_cpu_us(template, overrides, args.requests):>8.1f}")
            print()
            print(f"== Huodong buy with one change each (CPU us per request; baseline {base:.1f})")
            print("(each change alternated 7 times with the baseline, best of each; saves = baseline - changed;"
                  " +-10 us is noise)")
            print(f"{'change':<66} {'CPU us':>8} {'saves':>7}")
            changes = ablations(huodong)
            for label, change in changes.items():
                try:
                    before, after = paired(buy, change, args.requests // 3)
                except AttributeError as exc:  # the code moved under the bench: say so, carry on
                    print(f"{label:<66} n/a ({exc})")
                    continue
                print(f"{label:<66} {after:>8.1f} {before - after:>7.1f}")
            with ExitStack() as every:
                for change in changes.values():
                    with suppress(AttributeError):
                        every.enter_context(change())
                us = buy.cpu_us(args.requests)[0]
            print(f"{'all of the above together':<66} {us:>8.1f} {base - us:>7.1f}")
            print(f"  statuses: {dict(buy.statuses)}")

            profiler = cProfile.Profile(time.process_time)  # CPU, not waiting for Redis
            profiler.enable()
            for _ in range(args.requests):
                buy.one()
            profiler.disable()
            stats = pstats.Stats(profiler)
            profiled = sum(v[2] for v in stats.stats.values()) / args.requests * 1e6  # type: ignore[attr-defined]
            scale = costs["Huodong buy"][0] / profiled
            print()
            print("== Huodong buy under cProfile (CPU timer): cumulative us per request, profiled and scaled"
                  f" by {scale:.2f} to the unprofiled CPU")
            for label, part, func in STEPS:
                if part is None:
                    continue
                us = cumulative_us(stats, part, func, args.requests)
                print(f"{label:<56} {us:>8.1f} {us * scale:>8.1f}")
            print()
            print("== self time by library (us per request, profiled / scaled)")
            for group, us in self_by_group(stats, args.requests)[:18]:
                print(f"{group:<40} {us:>8.1f} {us * scale:>8.1f}")
            print()
            out = io.StringIO()
            pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(40)
            print(out.getvalue())
        finally:
            print(f"cleaned up: {run.delete_namespace(admin, namespace)} Redis keys under {namespace}:*")
    return 0


if __name__ == "__main__":
    sys.exit(main())
