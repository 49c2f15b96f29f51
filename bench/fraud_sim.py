"""Honest players and scripted attacks against the fraud gate, through the real HTTP API (issue 5's proof).

    .venv/bin/python bench/fraud_sim.py [--redis-url URL] [--honest 300] [--seed 7]

One flash sale under the built-in ``default`` policy, played through the Flask
app in this process (the real routes, tokens, gate and claim script; Redis on
loopback, SQLite in a temp folder). Time is simulated: each request carries the
timestamp its player would send, and the server's clock is moved with it, so a
day of traffic takes seconds. It reports, per population, how many plays were
made, admitted and refused (by code and rule):

- honest: phones of their own, a few plays each at human pace (seconds apart);
- device_farm: one phone carrying 50 accounts;
- bot: one account tapping every 200 ms, machine-regular;
- ip_flood: 200 fresh accounts and devices from one /24, as fast as they can;
- replay: captured requests (nonce and timestamp) sent again 30 s later with a new Idempotency-Key;
- stolen_token: tokens of honest players used from another device.

The targets (issue 5): at least 95 % of attack plays stopped, at most 1 % of
honest plays refused or challenged. Keys go under a fresh namespace and are
deleted at the end.
"""

from __future__ import annotations

import argparse
import random
import secrets
import sys
import tempfile
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import run  # noqa: E402  (bench/ is not a package)
from stateful_play import publish  # noqa: E402


@dataclass
class Tally:
    plays: int = 0
    admitted: int = 0
    refused: Counter = field(default_factory=Counter)

    def add(self, response: Any) -> None:
        self.plays += 1
        if response.status_code == 200:
            self.admitted += 1
        else:
            error = response.get_json()["error"]
            self.refused[f"{error['code']} {error['details'].get('rule') or error['details'].get('reason', '')}"] += 1


class MovableClock:
    """The server's clock, moved by the simulation (the gate compares it with the request's timestamp)."""

    def __init__(self, start: datetime) -> None:
        self.at = start

    def now(self) -> datetime:
        return self.at


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--redis-url", default="redis://127.0.0.1:6379/0", help="a real Redis server (loopback)")
    p.add_argument("--honest", type=int, default=300, help="honest players")
    p.add_argument("--seed", type=int, default=7)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    run.require_loopback(args.redis_url)
    rng = random.Random(args.seed)
    namespace = "hdbench" + secrets.token_hex(4)
    with tempfile.TemporaryDirectory(prefix="hdfraud-") as tmp:
        from campaigns.migrate import upgrade
        from engine.clock import iso
        from engine.config import load_settings
        from web import create_app

        settings = load_settings({
            "redis_url": args.redis_url, "database_url": f"sqlite:///{Path(tmp) / 'huodong.sqlite3'}",
            "redis_namespace": namespace, "instance_path": str(Path(tmp) / "instance"),
            "secret_key": "sim-" + secrets.token_hex(8), "log_level": "WARNING", "dev_login": True,
        }, environ={})
        upgrade(settings.resolved_database_url())
        clock = MovableClock(datetime.now(UTC))
        app = create_app(settings, clock=clock)
        container = app.extensions["huodong.container"]
        client = app.test_client()
        try:
            definition = run.flash_sale(clock.now())
            definition["ends_at"] = iso(clock.now() + timedelta(days=2))
            campaign = publish(container, definition)
            tallies = simulate(client, clock, campaign, rng, args.honest)
        finally:
            removed = run.delete_namespace(container.redis, namespace)
    report(tallies)
    print(f"cleaned up: {removed} Redis keys under {namespace}:*")
    return 0


def simulate(client: Any, clock: MovableClock, campaign: int, rng: random.Random, honest: int) -> dict[str, Tally]:
    tallies: dict[str, Tally] = defaultdict(Tally)
    path = f"/api/v1/campaigns/{campaign}/actions/buy"
    body = {"sku": run.SKU, "quantity": 1}

    def login(user: str, device: str) -> str:
        return client.post("/api/v1/auth/dev", json={"user_id": user}, headers={"X-Device-Id": device}).json["token"]

    def play(who: str, token: str, device: str, ip: str, at: datetime, nonce: str | None = None) -> Any:
        clock.at = max(clock.at, at)
        headers = {"Authorization": f"Bearer {token}", "Idempotency-Key": str(uuid.uuid4()), "X-Device-Id": device,
                   "X-Request-Timestamp": str(int(at.timestamp() * 1000)),
                   "X-Request-Nonce": nonce or secrets.token_hex(12)}
        response = client.post(path, json=body, headers=headers, environ_base={"REMOTE_ADDR": ip})
        tallies[who].add(response)
        return response

    start = clock.now()
    events: list[tuple[datetime, Any]] = []  # every play, in time order across populations

    # Honest players: their own phone, 1 to 6 plays each, seconds to minutes apart, over the day.
    captured: list[tuple[str, str, str, datetime]] = []
    for i in range(honest):
        user, device, ip = f"h{i:05d}", f"phone-h{i:05d}", f"100.{64 + i // 250}.{i % 250}.{rng.randrange(1, 250)}"
        token = login(user, device)
        at = start + timedelta(seconds=rng.uniform(0, 86_000))
        for _ in range(rng.randint(1, 6)):
            events.append((at, ("honest", token, device, ip)))
            at += timedelta(seconds=rng.uniform(2, 300))
        if i < 50:
            captured.append((user, token, device, ip))
    # One phone, fifty accounts.
    for i in range(50):
        token = login(f"farm{i:03d}", "farm-phone")
        at = start + timedelta(seconds=3600 + i * 20)
        for k in range(3):
            events.append((at + timedelta(seconds=k * 5), ("device_farm", token, "farm-phone", "100.99.0.7")))
    # A bot: one account, a tap every 200 ms for two minutes.
    bot = login("bot", "bot-phone")
    for k in range(600):
        events.append((start + timedelta(seconds=7200 + k * 0.2), ("bot", bot, "bot-phone", "100.98.0.9")))
    # An IP range flooding: 200 fresh accounts and devices, 5 plays each within seconds.
    for i in range(200):
        device = f"flood-{i:03d}"
        token = login(f"flood{i:03d}", device)
        for k in range(5):
            events.append((start + timedelta(seconds=10_800 + i * 0.05 + k * 0.3),
                           ("ip_flood", token, device, f"198.51.100.{i % 250}")))
    events.sort(key=lambda e: e[0])

    replays = 0
    for at, (who, token, device, ip) in events:
        nonce = secrets.token_hex(12)
        response = play(who, token, device, ip, at, nonce)
        if who == "honest" and response.status_code == 200 and replays < 200:
            # A captured request (its nonce and timestamp) sent again 30 s later under a new Idempotency-Key.
            clock.at = at + timedelta(seconds=30)
            play("replay", token, device, ip, at, nonce)
            replays += 1
    # Stolen tokens: honest players' tokens from the thief's phone.
    for _user, token, _device, _ip in captured:
        play("stolen_token", token, "thief-phone", "203.0.113.5", clock.at + timedelta(seconds=1))
    return tallies


def report(tallies: dict[str, Tally]) -> None:
    print(f"\n{'population':14} {'plays':>6} {'admitted':>9} {'stopped':>8}  refusals")
    for name, tally in tallies.items():
        stopped = (tally.plays - tally.admitted) / tally.plays * 100 if tally.plays else 0.0
        reasons = ", ".join(f"{k}: {v}" for k, v in tally.refused.most_common())
        print(f"{name:14} {tally.plays:6d} {tally.admitted:9d} {stopped:7.1f}%  {reasons}")
    attacks = [t for n, t in tallies.items() if n != "honest"]
    attack_plays = sum(t.plays for t in attacks)
    stopped = sum(t.plays - t.admitted for t in attacks)
    honest = tallies["honest"]
    print(f"\nattack plays stopped: {stopped}/{attack_plays} = {stopped / attack_plays * 100:.1f} % (target >= 95 %)")
    print(f"honest plays refused: {honest.plays - honest.admitted}/{honest.plays} = "
          f"{(honest.plays - honest.admitted) / honest.plays * 100:.2f} % (target <= 1 %)")


if __name__ == "__main__":
    sys.exit(main())
