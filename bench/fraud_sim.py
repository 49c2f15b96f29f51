"""Honest players and scripted attacks against the fraud gate, through the real HTTP API (issue 5's proof).

    .venv/bin/python bench/fraud_sim.py [--redis-url URL] [--honest 300] [--owners 40] [--seed 7]
                                        [--ring-phones 2] [--ring-ranges 1]

A flash sale and a referral red packet under the built-in ``default`` policy,
played through the Flask app in this process (the real routes, tokens, gate,
challenges and claim script; Redis on loopback, SQLite in a temp folder).
Time is simulated: each request carries the timestamp its player would send,
and the server's clock is moved with it, so a day of traffic takes seconds.
Every account logs in (``POST /auth/dev`` with ``registered_days_ago``) just
before its first play: a new account (0 days) is new for the gate's first hour.

Honest people (their own phone and IP, spread over 4,000 /24s, so a few share
one) answer a slider challenge: they see the gap (the simulation reads where the
server keeps it), drag the piece there by hand and play again with
``X-Challenge-Id`` / ``X-Challenge-Answer``. Attackers do not solve challenges
(a challenge stops them), but for the solver script. Populations:

- honest: flash-sale buyers, 1 to 6 plays each at human pace over the day; 12 % new accounts,
  the rest 30 to 400 days old;
- honest_referral: established owners open a red packet, distinct friends (own phones, own
  ranges, 20 % new accounts) assist it over minutes to hours until full, the owner cashes out;
- device_farm: one phone carrying 50 new accounts;
- bot: one new account tapping every 200 ms, machine-regular;
- ip_flood: 200 new accounts and devices from one /24, as fast as they can;
- replay: captured requests (nonce and timestamp) sent again 30 s later with a new Idempotency-Key;
- stolen_token: tokens of honest buyers (mostly old accounts) used from another device;
- referral_ring: 20 new accounts on 2 phones and one /24, each opening a packet, assisting each
  other's (circularly too) and cashing out the full ones;
- flood: one established player (30 days old, own phone) sending 300 buys 20 ms apart: refused from at most
  the 40th request on, at least 90 % of the rest RATE_LIMITED or RISK_DENIED (issue 14);
- solver: a script that answers every slider challenge from what it receives: it looks for the gap's offset in
  the picture's text (the old SVG slider carried it) and otherwise drags, at one speed, to a guess; 30 new
  accounts on 3 phones, 3 buys each.

Honest crowds that share addresses (issue 14), each its own population, every person logging in (and so, if
new, registering) a human moment (3.5 to 60 s) before their first play:

- nat_50, nat_500, nat_5000: 50, 500 and 5,000 players behind one carrier NAT address each, 1 to 3 buys
  over two hours, 12 % new accounts;
- peak: a flash-sale peak, 3,000 players (own addresses, and 20 % of them behind 10 NAT addresses) buying
  within one minute;
- proxy: an operator who forgot HUODONG_TRUSTED_PROXIES: 1,000 players over 10 minutes all seen from the
  load balancer's address, 1 to 4 buys each;
- fresh_burst: the issue's case: 300 accounts registered moments before, one phone each, one address, all
  buying within a minute;
- acquisition: a new-user campaign (``"expects_new_users": true``): 800 players, 85 % new, 20 per campus or
  office address, over an hour.

A play is *stopped* when it is refused (any non-200 answer) or admitted but held for review
(``outcome.held``). Targets (issue 5): at least 95 % of attack plays stopped; at most 1 % of honest
plays refused, challenged or held. Keys go under a fresh namespace and are deleted at the end.
"""

from __future__ import annotations

import argparse
import base64
import heapq
import itertools
import json
import random
import re
import secrets
import sys
import tempfile
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import run  # noqa: E402  (bench/ is not a package)
from stateful_play import publish  # noqa: E402

from engine.keys import CampaignKeys  # noqa: E402
from tests.support import slider  # noqa: E402  (how a person drags; the tests play the slider the same way)

HONEST = ("honest", "honest_referral", "nat_50", "nat_500", "nat_5000", "peak", "proxy", "fresh_burst",
          "acquisition")
ATTACKS = ("replay", "device_farm", "bot", "ip_flood", "stolen_token", "referral_ring", "solver", "flood")
FLOOD = 300  # requests one established player sends as fast as one client goes (issue 14's figure)
CHALLENGE = "CHALLENGE_REQUIRED"
# The gap as the old SVG slider gave it away (the only rect with rx="6"): what the solver script looks for.
GAP = re.compile(r'<rect x="(\d+)" y="\d+" width="\d+" height="\d+" rx="6"')
HONEST_NEW_SHARE = 0.12  # flash-sale buyers who registered today
FRIEND_NEW_SHARE = 0.20  # referral helpers who registered to assist
PACKET_ASSISTS = 6  # the referral config below: 500 fen over at most 6 assists
RING_ACCOUNTS = 20
TARGET_STOPPED, TARGET_HONEST = 95.0, 1.0
Then = Callable[[Any, datetime], None]


@dataclass
class Player:
    user: str
    device: str
    ip: str
    days: int = 0  # registered this many days before their first login
    token: str | None = None


@dataclass
class Tally:
    plays: int = 0
    admitted: int = 0  # 200 and not held
    challenged: int = 0  # the first answer was CHALLENGE_REQUIRED (a person then plays again)
    held: int = 0  # 200 with outcome.held: the rewards wait in the review queue
    refused: int = 0  # the final answer was not 200
    hindered: int = 0  # plays challenged, held or refused (what the honest target counts)
    accounts: dict[str, int] = field(default_factory=dict)  # who played: user -> registered days ago
    refusals: Counter = field(default_factory=Counter)
    held_by: Counter = field(default_factory=Counter)
    scored: Counter = field(default_factory=Counter)  # risk and ring refusals by label, score and reasons
    # Admitted and held plays: (claim id, user, action, hours into the day, held, rewards granted), for what
    # the gate noted on them (the outbox).
    passed: list[tuple[str, str, str, float, bool, int]] = field(default_factory=list)
    notes: list[dict[str, Any]] = field(default_factory=list)  # honest plays challenged, held or refused
    codes: list[str] = field(default_factory=list)  # every final answer's code, in order ("OK" for 200)

    @property
    def stopped(self) -> int:
        return self.refused + self.held


class MovableClock:
    """The server's clock, moved by the simulation (the gate compares it with the request's timestamp)."""

    def __init__(self, start: datetime) -> None:
        self.at = start

    def now(self) -> datetime:
        return self.at


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--redis-url", default="redis://127.0.0.1:6379/0", help="a real Redis server (loopback)")
    p.add_argument("--honest", type=int, default=300, help="honest flash-sale players")
    p.add_argument("--owners", type=int, default=40, help="honest referral packet owners (6 friends each)")
    p.add_argument("--ring-phones", type=int, default=2,
                   help="phones the referral ring's 20 accounts share (20: one each, no device signal)")
    p.add_argument("--ring-ranges", type=int, default=1, help="/24s the referral ring's accounts play from")
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
        from engine.keys import CampaignKeys
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
            sale = publish(container, definition)
            packets = publish(container, referral_campaign(clock.now()))
            acquisition = publish(container, {**definition, "name": "bench new users",
                                              "fraud": {"policy": "default", "expects_new_users": True}})
            sim = Sim(client, clock, rng)
            simulate(sim, sale, packets, acquisition, args.honest, args.owners, args.ring_phones, args.ring_ranges)
            records = gate_records(container.redis, [CampaignKeys(namespace, c).outbox
                                                     for c in (sale, packets, acquisition)])
        finally:
            removed = run.delete_namespace(container.redis, namespace)
    print(f"seed {args.seed}: {args.honest} honest buyers, {args.owners} honest packet owners, "
          f"a ring of {RING_ACCOUNTS} accounts on {args.ring_phones} phones and {args.ring_ranges} /24")
    report(sim.tallies, records)
    print(f"cleaned up: {removed} Redis keys under {namespace}:*")
    return 0


def referral_campaign(now: datetime) -> dict[str, Any]:
    """games/referral.py's demo packet (5 yuan over at most 6 assists), with budget to spare."""
    from engine.clock import iso

    return {
        "name": "bench red packet", "game": "referral",
        "starts_at": iso(now - timedelta(minutes=5)), "ends_at": iso(now + timedelta(days=2)),
        "budget_fen": 10_000_000,
        "config": {
            "target_fen": 500, "max_assists": PACKET_ASSISTS, "packet_hours": 24, "packets_per_user": 3,
            "assists_per_day": 3, "new_user_days": 7, "cash_reward": {"type": "points"},
            "welcome_reward": {"type": "points", "amount": 20, "cost_fen": 20},
            "consolation": {"type": "points", "amount": 10, "cost_fen": 10},
        },
    }


def script_answer(challenge: dict[str, Any], rng: random.Random) -> str:
    """What the solver script makes of the slider from what it received: it looks for the gap's offset in the
    picture's text (as the SVG slider gave it away), and failing that drags, at one speed, to a guess."""
    picture = base64.b64decode(challenge["image"].split(",", 1)[1])
    found = GAP.search(picture.decode("latin-1"))
    x = int(found.group(1)) if found else rng.randint(60, 250)
    return slider.answer(x, slider.straight_drag(x))


def error_of(response: Any) -> dict[str, Any] | None:
    return None if response.status_code == 200 else response.get_json()["error"]


def label_of(error: dict[str, Any]) -> str:
    return f"{error['code']} {error['details'].get('rule') or error['details'].get('reason', '')}".strip()


class Sim:
    """Events in time order across populations; every play goes through the HTTP API."""

    def __init__(self, client: Any, clock: MovableClock, rng: random.Random) -> None:
        self.client, self.clock, self.rng = client, clock, rng
        self.start = clock.now()
        self.tallies: dict[str, Tally] = defaultdict(Tally)
        self._queue: list[tuple[datetime, int, Callable[[datetime], None]]] = []
        self._order = itertools.count()

    def at(self, when: datetime, event: Callable[[datetime], None]) -> None:
        heapq.heappush(self._queue, (when, next(self._order), event))

    def run(self) -> None:
        while self._queue:
            when, _, event = heapq.heappop(self._queue)
            event(when)

    def look(self, path: str, challenge: dict[str, Any]) -> int:
        """Where a slider's gap is, as a person sees it in the picture (the simulation reads the server's own
        record: a script gets only the PNGs)."""
        container = self.client.application.extensions["huodong.container"]
        campaign = int(path.split("/")[4])
        return slider.gap_of(container.redis, CampaignKeys(container.settings.redis_namespace, campaign),
                             challenge["id"])

    def login_before(self, player: Player, first_play: datetime) -> None:
        """A person opens the mini-program (logs in, and registers when new) a human moment before playing."""
        self.at(first_play - timedelta(seconds=self.rng.uniform(3.5, 60)), lambda when: self.login(player, when))

    def login(self, player: Player, when: datetime) -> str:
        if player.token is None:
            self.clock.at = max(self.clock.at, when)
            player.token = self.client.post("/api/v1/auth/dev", json={
                "user_id": player.user, "registered_days_ago": player.days,
            }, headers={"X-Device-Id": player.device}).json["token"]
        return player.token

    def send(self, player: Player, path: str, body: dict[str, Any], when: datetime, *, nonce: str | None = None,
             stamp: int | None = None, challenge: tuple[str, int] | None = None) -> Any:
        token = self.login(player, when)
        self.clock.at = max(self.clock.at, when)
        nonce, stamp = nonce or secrets.token_hex(12), stamp or int(when.timestamp() * 1000)
        headers = {"Authorization": f"Bearer {token}", "Idempotency-Key": str(uuid.uuid4()),
                   "X-Device-Id": player.device, "X-Request-Timestamp": str(stamp), "X-Request-Nonce": nonce}
        if challenge:
            headers["X-Challenge-Id"], headers["X-Challenge-Answer"] = challenge[0], str(challenge[1])
        response = self.client.post(path, json=body, headers=headers, environ_base={"REMOTE_ADDR": player.ip})
        response.sent = (nonce, stamp)  # what a thief captures
        return response

    def play(self, population: str, player: Player, path: str, body: dict[str, Any], when: datetime, *,
             person: bool, action: str = "buy", then: Then | None = None, nonce: str | None = None,
             stamp: int | None = None) -> None:
        """One play. A person who is challenged solves it and plays again 4 to 15 s later (the same play:
        challenged, and admitted, held or refused by the retry); anyone else stops there."""
        tally = self.tallies[population]
        tally.plays += 1
        tally.accounts[player.user] = player.days
        response = self.send(player, path, body, when, nonce=nonce, stamp=stamp)
        error = error_of(response)
        if (person or population == "solver") and error and error["code"] == CHALLENGE:
            tally.challenged += 1
            asked = error["details"]
            if person:  # a person looks at the picture, sees the gap and drags the piece there by hand
                x = self.look(path, asked["challenge"])
                answer = (asked["challenge"]["id"], slider.answer(x, slider.hand_drag(x, self.rng)))
            else:
                answer = (asked["challenge"]["id"], script_answer(asked["challenge"], self.rng))

            def retry(later: datetime) -> None:
                again = self.send(player, path, body, later, challenge=answer)
                self._settle(population, player, action, again, later, asked, then)

            self.at(when + timedelta(seconds=self.rng.uniform(4, 15) if person else 0.3), retry)
            return
        if error and error["code"] == CHALLENGE:
            tally.challenged += 1
        self._settle(population, player, action, response, when, None, then)

    def _settle(self, population: str, player: Player, action: str, response: Any, when: datetime,
                challenged: dict[str, Any] | None, then: Then | None) -> None:
        tally = self.tallies[population]
        error = error_of(response)
        tally.codes.append(error["code"] if error else "OK")
        held = False
        if error is None:
            answer = response.get_json()
            held = bool(answer["outcome"].get("held"))
            tally.held += held
            tally.admitted += not held
            tally.passed.append((answer["outcome"]["claim_id"], player.user, action, self.hours(when), held,
                                 len(answer["grants"])))
        else:
            tally.refused += 1
            tally.refusals[label_of(error) if action == "buy" else f"{action}: {label_of(error)}"] += 1
            if error["details"].get("reasons"):
                details = error["details"]
                tally.scored[f"{action} {details.get('rule')} (score {details.get('score', '-')}: "
                             f"{'+'.join(details['reasons'])})"] += 1
        if challenged or held or error:
            tally.hindered += 1
            if population in HONEST:
                tally.notes.append({
                    "user": player.user, "days": player.days, "action": action, "hours": self.hours(when),
                    "challenged": challenged and {"score": challenged.get("score"),
                                                  "reasons": challenged.get("reasons")},
                    "result": "held" if held else ("refused" if error else "admitted"),
                    "refusal": error and {"label": label_of(error), "score": error["details"].get("score"),
                                          "reasons": error["details"].get("reasons")},
                    "claim": response.get_json()["outcome"]["claim_id"] if held else None})
        if then is not None:
            then(response, when)

    def hours(self, when: datetime) -> float:
        return (when - self.start).total_seconds() / 3600


def honest_ip(rng: random.Random) -> str:
    """An address in one of 4,000 /24s (100.64.0.0 to 100.79.249.0): a few people share a range."""
    return f"100.{64 + rng.randrange(16)}.{rng.randrange(250)}.{rng.randrange(1, 250)}"


def honest_age(rng: random.Random, new_share: float) -> int:
    return 0 if rng.random() < new_share else rng.randint(30, 400)


def simulate(sim: Sim, sale: int, packets: int, acquisition: int, honest: int, owners: int, ring_phones: int = 2,
             ring_ranges: int = 1) -> None:
    rng, start = sim.rng, sim.start
    buy_path, buy = f"/api/v1/campaigns/{sale}/actions/buy", {"sku": run.SKU, "quantity": 1}
    acquisition_path = f"/api/v1/campaigns/{acquisition}/actions/buy"
    seconds = timedelta(seconds=1)
    replays = [0]

    def buyer(population: str, player: Player, *, person: bool, replayable: bool = False) -> Callable:
        def event(when: datetime) -> None:
            sim.play(population, player, buy_path, buy, when, person=person,
                     then=replay_later(player) if replayable else None)
        return event

    def replay_later(player: Player) -> Then:
        def then(response: Any, when: datetime) -> None:
            if response.status_code == 200 and replays[0] < 200:
                # The captured request (its nonce and timestamp) sent again 30 s later under a new key.
                replays[0] += 1
                nonce, stamp = response.sent
                sim.at(when + 30 * seconds, lambda later: sim.play(
                    "replay", player, buy_path, buy, later, person=False, nonce=nonce, stamp=stamp))
        return then

    # Honest buyers: their own phone, 1 to 6 plays each, seconds to minutes apart, over the day.
    buyers = []
    for i in range(honest):
        player = Player(f"h{i:05d}", f"phone-h{i:05d}", honest_ip(rng), honest_age(rng, HONEST_NEW_SHARE))
        buyers.append(player)
        at = start + rng.uniform(0, 86_000) * seconds
        sim.login_before(player, at)
        for _ in range(rng.randint(1, 6)):
            sim.at(at, buyer("honest", player, person=True, replayable=True))
            at += rng.uniform(2, 300) * seconds
    # One phone, fifty new accounts, three plays each.
    for i in range(50):
        farmed = Player(f"farm{i:03d}", "farm-phone", "100.99.0.7")
        for k in range(3):
            sim.at(start + (3600 + i * 20 + k * 5) * seconds, buyer("device_farm", farmed, person=False))
    # A bot: one new account, a tap every 200 ms for two minutes.
    bot = Player("bot", "bot-phone", "100.98.0.9")
    for k in range(600):
        sim.at(start + (7200 + k * 0.2) * seconds, buyer("bot", bot, person=False))
    # An IP range flooding: 200 new accounts and devices, 5 plays each within seconds.
    for i in range(200):
        flooder = Player(f"flood{i:03d}", f"flood-{i:03d}", f"198.51.100.{i % 250}")
        for k in range(5):
            sim.at(start + (10_800 + i * 0.05 + k * 0.3) * seconds, buyer("ip_flood", flooder, person=False))
    # Stolen tokens: fifty honest buyers' tokens, from the thief's phone, once the day is over.
    for k, victim in enumerate(buyers[:50]):
        def steal(when: datetime, victim: Player = victim) -> None:
            thief = Player(victim.user, "thief-phone", "203.0.113.5", victim.days, sim.login(victim, when))
            sim.play("stolen_token", thief, buy_path, buy, when, person=False)
        sim.at(start + (90_000 + k) * seconds, steal)

    flooder = Player("flooder", "flood-phone", "100.97.0.5", 30)
    for k in range(FLOOD):
        sim.at(start + (6 * 3600 + k * 0.02) * seconds, buyer("flood", flooder, person=False))
    # A script that solves the slider: 30 new accounts on 3 phones, 3 buys each, a second apart.
    for i in range(30):
        solver = Player(f"solver{i:03d}", f"solver-phone-{i % 3}", f"198.19.0.{10 + i % 3}")
        for k in range(3):
            sim.at(start + (5 * 3600 + i * 4 + k) * seconds, buyer("solver", solver, person=False))

    honest_referral(sim, packets, owners)
    referral_ring(sim, packets, start + 4 * 3600 * seconds, ring_phones, ring_ranges)
    crowds(sim, buy_path, buy, acquisition_path)
    sim.run()


def crowds(sim: Sim, buy_path: str, buy: dict[str, Any], acquisition_path: str) -> None:
    """The honest populations that share addresses (the module's docstring)."""
    rng, start, second = sim.rng, sim.start, timedelta(seconds=1)

    def person(population: str, name: str, ip: str, new_share: float, first: datetime, plays: int, *,
               gaps: tuple[float, float] = (20, 1800), path: str = buy_path) -> None:
        player = Player(name, f"phone-{name}", ip, honest_age(rng, new_share))
        sim.login_before(player, first)
        at = first
        for _ in range(plays):
            sim.at(at, lambda when, player=player: sim.play(population, player, path, buy, when, person=True))
            at += rng.uniform(*gaps) * second

    for size, octet in ((50, 1), (500, 2), (5000, 3)):
        for i in range(size):
            person(f"nat_{size}", f"nat{size}-{i:04d}", f"100.80.{octet}.1", HONEST_NEW_SHARE,
                   start + (8 * 3600 + rng.uniform(0, 7200)) * second, rng.randint(1, 3))
    for i in range(3000):
        ip = f"100.81.{i % 10}.1" if rng.random() < 0.2 else honest_ip(rng)
        person("peak", f"peak{i:04d}", ip, HONEST_NEW_SHARE, start + (12 * 3600 + rng.uniform(0, 60)) * second, 1)
    for i in range(1000):
        person("proxy", f"proxy{i:04d}", "10.0.0.1", HONEST_NEW_SHARE,
               start + (14 * 3600 + rng.uniform(0, 600)) * second, rng.randint(1, 4), gaps=(5, 120))
    for i in range(300):
        person("fresh_burst", f"fresh{i:03d}", "100.82.0.1", 1.0, start + (16 * 3600 + rng.uniform(0, 60)) * second,
               1)
    for i in range(800):
        person("acquisition", f"acq{i:03d}", f"100.83.{i % 40}.1", 0.85,
               start + (18 * 3600 + rng.uniform(0, 3600)) * second, rng.randint(1, 2), path=acquisition_path)


def referral_paths(campaign: int) -> dict[str, str]:
    return {action: f"/api/v1/campaigns/{campaign}/actions/{action}" for action in ("open", "assist", "cashout")}


def honest_referral(sim: Sim, campaign: int, owners: int) -> None:
    """Established owners open a packet; six distinct friends (each helps at most two packets) assist it
    from a minute to six hours later; the owner cashes out from a minute to three hours after it is full."""
    rng, second, paths, population = sim.rng, timedelta(seconds=1), referral_paths(campaign), "honest_referral"
    pool = [Player(f"rf{j:04d}", f"phone-rf{j:04d}", honest_ip(rng), honest_age(rng, FRIEND_NEW_SHARE))
            for j in range(max(PACKET_ASSISTS, owners * PACKET_ASSISTS * 2 // 3))]
    helped: Counter = Counter()

    def packet_of(owner: Player, friends: list[Player], opened: datetime) -> None:
        packet: dict[str, str] = {}

        def cashout(when: datetime) -> None:
            sim.play(population, owner, paths["cashout"], {"packet_id": packet["code"]}, when, person=True,
                     action="cashout")

        def assisted(response: Any, when: datetime) -> None:
            if response.status_code == 200 and response.get_json()["outcome"].get("full"):
                sim.at(when + rng.uniform(60, 3 * 3600) * second, cashout)

        def assist(friend: Player) -> Callable[[datetime], None]:
            def event(when: datetime) -> None:
                if "code" in packet:  # no share code (the open failed): nothing to assist
                    sim.play(population, friend, paths["assist"], {"share_code": packet["code"]}, when,
                             person=True, action="assist", then=assisted)
            return event

        sim.login_before(owner, opened)
        sim.at(opened, lambda when: sim.play(population, owner, paths["open"], {}, when, person=True,
                                             action="open", then=keep_code(packet)))
        for friend, delay in zip(friends, sorted(rng.uniform(60, 6 * 3600) for _ in friends), strict=True):
            sim.login_before(friend, opened + delay * second)  # the earliest of these logs them in
            sim.at(opened + delay * second, assist(friend))

    for i in range(owners):
        owner = Player(f"ro{i:04d}", f"phone-ro{i:04d}", honest_ip(rng), rng.randint(30, 400))
        opened = sim.start + rng.uniform(600, 70_000) * second
        friends = rng.sample([f for f in pool if helped[f.user] < 2], PACKET_ASSISTS)
        helped.update(f.user for f in friends)
        packet_of(owner, friends, opened)


def keep_code(packet: dict[str, str]) -> Then:
    def then(response: Any, _when: datetime) -> None:
        if response.status_code == 200:
            packet["code"] = response.get_json()["outcome"]["share_code"]
    return then


def ring_plan() -> list[tuple[int, int]]:
    """(helper, owner) of the ring's 60 assists (3 a day each): accounts 0-9 own the packets to fill and help
    each other (i helps i+1, i-1 and i+5: A helps B, B helps A); 10-19 only help (k helps k, k+3, k+7 of the
    owners). Every owner's packet gets its 6 assists. In rounds: every account's first assist, then second..."""
    owners = RING_ACCOUNTS // 2
    helps = {i: [(i + 1) % owners, (i - 1) % owners, (i + 5) % owners] for i in range(owners)}
    helps |= {owners + k: [k, (k + 3) % owners, (k + 7) % owners] for k in range(owners)}
    return [(helper, targets[r]) for r in range(3) for helper, targets in helps.items()]


def referral_ring(sim: Sim, campaign: int, begin: datetime, phones: int = 2, ranges: int = 1) -> None:
    """Twenty new accounts on ``phones`` phones (ten on each of two) and ``ranges`` /24s (one): all register and
    open a packet within ten minutes, then assist by plan every 5 to 40 s and cash out a full packet at once."""
    rng, paths, population = sim.rng, referral_paths(campaign), "referral_ring"
    second = timedelta(seconds=1)
    ring = [Player(f"ring{i:02d}", f"ring-phone-{i % phones}", f"198.18.{7 + i % ranges}.{21 + i % phones}")
            for i in range(RING_ACCOUNTS)]
    packets: list[dict[str, str]] = [{} for _ in ring]
    at = begin
    for player, packet in zip(ring, packets, strict=True):
        at += rng.uniform(15, 40) * second
        sim.at(at, lambda when, player=player, packet=packet: sim.play(
            population, player, paths["open"], {}, when, person=False, action="open", then=keep_code(packet)))
    at += 60 * second
    for helper, owner in ring_plan():
        at += rng.uniform(5, 40) * second

        def assist(when: datetime, helper: Player = ring[helper], owner: Player = ring[owner],
                   packet: dict[str, str] = packets[owner]) -> None:
            if "code" not in packet:
                return  # that account never got a packet open: nothing to assist

            def assisted(response: Any, when: datetime) -> None:
                if response.status_code == 200 and response.get_json()["outcome"].get("full"):
                    sim.at(when + rng.uniform(10, 60) * second, lambda later: sim.play(
                        population, owner, paths["cashout"], {"packet_id": packet["code"]}, later, person=False,
                        action="cashout"))

            sim.play(population, helper, paths["assist"], {"share_code": packet["code"]}, when, person=False,
                     action="assist", then=assisted)

        sim.at(at, assist)


def gate_records(client: Any, outboxes: list[str]) -> dict[str, dict[str, Any]]:
    """What the gate noted on every admitted play (claims.fraud: risk score and reasons, ring holds), by claim."""
    records = {}
    for outbox in outboxes:
        for _id, entry in client.xrange(outbox):
            if "f" in entry:
                records[json.loads(entry["e"])["claim_id"]] = json.loads(entry["f"])
    return records


def describe(record: dict[str, Any] | None) -> str:
    if not record:
        return "score 0"
    risk = record.get("risk") or {}
    text = f"score {risk.get('score', 0)}" + (f" ({'+'.join(risk['reasons'])})" if risk.get("reasons") else "")
    if record.get("held"):
        text += " held: " + "+".join(record["held"])
    return text


def pct(part: int, whole: int) -> float:
    return part / whole * 100 if whole else 0.0


def report(tallies: dict[str, Tally], records: dict[str, dict[str, Any]]) -> None:
    for tally in tallies.values():
        for claim, _user, _action, _hours, held, _grants in tally.passed:
            if held:
                tally.held_by["+".join((records.get(claim) or {}).get("held") or ["?"])] += 1
    names = [n for n in (*HONEST, *ATTACKS) if n in tallies]
    print(f"\n{'population':16} {'accounts (new)':>14} {'plays':>6} {'admitted':>8} {'challenged':>10} {'held':>5} "
          f"{'refused':>7} {'stopped':>8}  refusals (code rule) / held by")
    for name in names:
        t = tallies[name]
        share = pct(t.stopped, t.plays)
        why = [f"{k}: {v}" for k, v in t.refusals.most_common()] + [f"held {k}: {v}" for k, v in t.held_by.items()]
        accounts = f"{len(t.accounts)} ({sum(days == 0 for days in t.accounts.values())})"
        print(f"{name:16} {accounts:>14} {t.plays:6d} {t.admitted:8d} {t.challenged:10d} {t.held:5d} "
              f"{t.refused:7d} {share:7.1f}%  {', '.join(why)}")

    attacks = [tallies[n] for n in ATTACKS if n in tallies]
    plays, stopped = sum(t.plays for t in attacks), sum(t.stopped for t in attacks)
    overall = pct(stopped, plays)
    print(f"\nattack plays stopped (refused or held): {stopped}/{plays} = {overall:.1f} % (target >= "
          f"{TARGET_STOPPED:.0f} %): {'met' if overall >= TARGET_STOPPED else 'MISSED'}")
    for name in ATTACKS:
        t = tallies[name]
        share = pct(t.stopped, t.plays)
        print(f"  {name:16} {t.stopped:5d}/{t.plays:<5d} = {share:5.1f} %"
              f"{'' if share >= TARGET_STOPPED else '  below 95 %'}")
    codes = tallies["flood"].codes
    first = next((i + 1 for i, code in enumerate(codes) if code != "OK"), None)
    rest = codes[first - 1:] if first else []
    limited = sum(code in ("RATE_LIMITED", "RISK_DENIED") for code in rest)
    met = first is not None and first <= 40 and limited >= 0.9 * len(rest)
    print(f"flood of {len(codes)} requests from one player: first refused at request {first}, then "
          f"{limited}/{len(rest)} of the rest RATE_LIMITED or RISK_DENIED (target: from the 40th at most, "
          f">= 90 %): {'met' if met else 'MISSED'}")
    honest = [tallies[n] for n in HONEST]
    plays, hindered = sum(t.plays for t in honest), sum(t.hindered for t in honest)
    share = pct(hindered, plays)
    print(f"honest plays refused, challenged or held: {hindered}/{plays} = {share:.2f} % (target <= "
          f"{TARGET_HONEST:.0f} %): {'met' if share <= TARGET_HONEST else 'MISSED'}")
    for name in HONEST:
        t = tallies[name]
        print(f"  {name:16} {t.hindered:5d}/{t.plays:<5d} = {pct(t.hindered, t.plays):5.2f} %  (challenged "
              f"{t.challenged}, held {t.held}, refused {t.refused})")

    print("\nhonest plays challenged, held or refused:" + ("" if any(t.notes for t in honest) else " none"))
    for name in HONEST:
        for note in tallies[name].notes:
            what = []
            if note["challenged"]:
                c = note["challenged"]
                what.append(f"challenged (score {c['score']}: {'+'.join(c['reasons'] or [])}), solved, then")
            if note["refusal"]:
                r = note["refusal"]
                what.append(f"refused {r['label']}" + (f" (score {r['score']}: {'+'.join(r['reasons'] or [])})"
                                                       if r["reasons"] else ""))
            elif note["result"] == "held":
                what.append(f"held ({describe(records.get(note['claim']))})")
            else:
                what.append("admitted")
            age = "new account" if note["days"] == 0 else f"{note['days']} days old"
            print(f"  {name} {note['user']} ({age}) {note['action']} at +{note['hours']:.2f} h: {' '.join(what)}")

    print("\nattack plays admitted (not held), as the gate scored them:")
    for name in ATTACKS:
        passed = [(claim, user, action, hours, grants)
                  for claim, user, action, hours, held, grants in tallies[name].passed if not held]
        if not passed:
            print(f"  {name}: none")
            continue
        users = Counter(p[1] for p in passed)
        actions = Counter(p[2] for p in passed)
        scores = Counter(describe(records.get(p[0])) for p in passed)
        print(f"  {name}: {len(passed)} plays ({', '.join(f'{a} {n}' for a, n in actions.most_common())}; "
              f"{sum(p[4] for p in passed)} rewards granted) by "
              f"{len(users)} accounts ({', '.join(f'{u} x{n}' for u, n in users.most_common(6))}"
              f"{', ...' if len(users) > 6 else ''}) at +{min(p[3] for p in passed):.2f} to "
              f"+{max(p[3] for p in passed):.2f} h; gate: {'; '.join(f'{k}: {v}' for k, v in scores.most_common())}")

    print("\nattack plays refused by the risk score or a ring, by score and reasons:")
    for name in ATTACKS:
        if tallies[name].scored:
            print(f"  {name}: " + "; ".join(f"{k}: {v}" for k, v in tallies[name].scored.most_common()))


if __name__ == "__main__":
    sys.exit(main())
