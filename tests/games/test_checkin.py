"""checkin: one check-in a business day, the ladder and streak bonuses, make-up days and the task wall.

Pure plan tests play the game against an in-memory copy of its state (the ops of each claim applied as
claim.lua would); integration tests play through the engine on real Redis, at frozen instants where the
business day matters, and a few through HTTP.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import marshmallow
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from campaigns.models import Grant
from engine.chances import NoChancesError, NotEnoughPointsError
from engine.claims import Claim
from engine.clock import FrozenClock, SystemClock, iso
from engine.errors import HuodongError
from engine.game import PlayContext
from engine.reward_types import RewardField
from engine.runtime import PlayRequest, PlayService
from engine.state import GameState
from engine.streaks import streak_ending
from engine.tasks import TaskLimitError, TaskTokenError, TaskTooSoonError, UnknownTaskError
from games.checkin import (
    AlreadyCheckedInError,
    Checkin,
    CheckinConfig,
    MakeupLimitError,
    MakeupNotOfferedError,
    MakeupNotPastError,
    MakeupOutOfWindowError,
    calendar_key,
    forecast_checkins,
    live_streak,
    runs_of,
    with_day,
)
from tests.web.test_bad_input import error_of

SHANGHAI = ZoneInfo("Asia/Shanghai")
GAME = Checkin()


def points(amount: int, cost_fen: int | None = None) -> dict[str, Any]:
    return {"type": "points", "amount": amount, "cost_fen": amount if cost_fen is None else cost_fen}


def shown(amount: int, kind: str = "points") -> dict[str, Any]:
    """A reward as players see it: normalised by its type, without its cost."""
    if kind == "points_debit":  # made by the engine, never configured: no RewardField to normalise it
        return {"type": kind, "amount": amount}
    loaded = RewardField().deserialize({"type": kind, "amount": amount, "cost_fen": 0})
    return {k: v for k, v in loaded.items() if k != "cost_fen"}


def raw_config(**overrides: Any) -> dict[str, Any]:
    config = {
        "ladder": [points(1), points(2), points(3)],
        "streak_bonuses": [{"days": 2, "reward": points(20)}, {"days": 5, "reward": points(50)}],
        "makeup": {"window_days": 3, "cost": {"chances": 1}, "max_per_month": 2},
        "tasks": [
            {"task": "visit", "kind": "visit", "title": "Visit the mall", "min_dwell_seconds": 15, "chances": 1},
            {"task": "share", "kind": "share", "title": "Share", "chances": 2, "daily_cap": 2},
            {"task": "pay", "kind": "pay", "title": "Pay an order", "reward": points(7)},
        ],
    }
    config.update(overrides)
    return config


CONFIG = CheckinConfig().load(raw_config())


def shanghai(day: date, hour: int = 12, minute: int = 0, second: int = 0, micro: int = 0) -> datetime:
    """An instant given by its wall-clock time in Asia/Shanghai, as the aware UTC datetime the engine uses."""
    return datetime(day.year, day.month, day.day, hour, minute, second, micro, tzinfo=SHANGHAI).astimezone(UTC)


# -- the game's state in memory, changed by each claim's ops as claim.lua changes it --------------------------

class Store:
    """One player's hash and calendar bitmaps; ``play`` plans on them and applies the claim's ops."""

    def __init__(self, user_id: str = "u", *, chances: int = 0, points_balance: int = 0,
                 starts_on: date | None = None) -> None:
        self.user_id = user_id
        self.hashes: dict[str, dict[str, str]] = defaultdict(dict)
        self.bits: dict[str, int] = defaultdict(int)
        self.points = points_balance
        self.starts_on = starts_on
        if chances:
            self.hashes[f"user:{user_id}"]["ch"] = str(chances)

    @property
    def player(self) -> dict[str, str]:
        return self.hashes[f"user:{self.user_id}"]

    def state(self) -> GameState:
        return GameState(self.user_id, {}, {k: dict(v) for k, v in self.hashes.items()}, dict(self.bits),
                         {"points": self.points})

    def ctx(self, day: date, at: datetime | None = None, claim_id: str | None = None) -> PlayContext:
        return PlayContext(campaign_id=1, version=1, user_id=self.user_id, claim_id=claim_id or uuid.uuid4().hex[:24],
                           now=at or shanghai(day), day=day, seed=0, state=self.state(), starts_on=self.starts_on)

    def play(self, action: str, request: dict[str, Any] | None, day: date, config=CONFIG, **ctx: Any) -> Claim:
        payload = GAME.actions[action]().load(request or {})
        claim = GAME.plan(config, action, payload, self.ctx(day, **ctx))
        self.apply(claim)
        return claim

    def apply(self, claim: Claim) -> None:
        for op in claim.ops:
            if op.kind == "setbit":
                mask = 1 << (31 - int(op.value))
                assert not self.bits[op.key] & mask, f"bit {op.value} of {op.key} was set already"
                self.bits[op.key] |= mask
                continue
            fields = self.hashes[op.key]
            if op.kind == "incr":
                value = int(fields.get(op.field, 0)) + int(op.value)
                assert (op.low is None or value >= op.low) and (op.high is None or value <= op.high), op
                fields[op.field] = str(value)
            elif op.kind == "put":
                fields[op.field] = str(op.value)
            elif op.kind == "delete":
                fields.pop(op.field, None)
            elif op.kind == "expect":
                assert fields.get(op.field) == op.value, op
            elif op.kind == "absent":
                assert op.field not in fields, op
        self.player["seq"] = str(int(self.player.get("seq", 0)) + 1)

    def checked_days(self) -> set[date]:
        days = set()
        for key, bits in self.bits.items():
            month = datetime.strptime(key.rsplit(":", 1)[1], "%Y%m").date()
            days |= {month + timedelta(days=i) for i in range(31) if bits >> (31 - i) & 1
                     and (month + timedelta(days=i)).month == month.month}
        return days


D = date(2026, 3, 10)


def rewards_of(claim: Claim) -> list[dict[str, Any]]:
    return [dict(g.reward) for g in claim.grants]


# -- check-in -------------------------------------------------------------------------------------------------

def test_a_first_check_in_pays_the_first_rung_and_marks_the_day_in_the_months_calendar():
    store = Store()
    claim = store.play("checkin", {}, D)
    assert claim.outcome == {"date": "2026-03-10", "streak": 1, "cycle_day": 1, "reward": shown(1), "bonus_days": []}
    assert rewards_of(claim) == [shown(1)] and claim.cost_fen == 1
    assert claim.units == 1 and claim.takes == ()
    assert store.checked_days() == {D}
    assert calendar_key("u", D) == "cal:u:202603" and store.bits["cal:u:202603"] == 1 << (31 - 9)


def test_consecutive_days_climb_the_ladder_cycle_back_to_its_first_rung_and_pay_bonuses_on_the_exact_day():
    store = Store()
    claims = [store.play("checkin", {}, D + timedelta(days=i)) for i in range(7)]
    assert [c.outcome["streak"] for c in claims] == [1, 2, 3, 4, 5, 6, 7]
    assert [c.outcome["cycle_day"] for c in claims] == [1, 2, 3, 1, 2, 3, 1]
    assert [c.outcome["bonus_days"] for c in claims] == [[], [2], [], [], [5], [], []]
    assert [c.cost_fen for c in claims] == [1, 2 + 20, 3, 1, 2 + 50, 3, 1]


def test_a_missed_day_restarts_the_streak():
    store = Store()
    store.play("checkin", {}, D)
    store.play("checkin", {}, D + timedelta(days=1))
    claim = store.play("checkin", {}, D + timedelta(days=3))
    assert claim.outcome["streak"] == 1 and claim.outcome["cycle_day"] == 1


def test_a_streak_runs_across_months_and_beyond_what_one_calendar_read_covers():
    store = Store()
    first = date(2026, 1, 1)
    claims = [store.play("checkin", {}, first + timedelta(days=i)) for i in range(100)]
    assert claims[-1].outcome["streak"] == 100 and claims[-1].outcome["cycle_day"] == (100 - 1) % 3 + 1
    # Only the current run and runs a make-up could still join are kept in the player's hash.
    assert [f for f in store.player if f.startswith("run:")] == ["run:20260410"]


def test_checking_in_twice_on_one_day_is_refused_with_nothing_planned():
    store = Store()
    store.play("checkin", {}, D)
    with pytest.raises(AlreadyCheckedInError) as refused:
        store.play("checkin", {}, D, at=shanghai(D, 23, 59, 59))
    assert refused.value.details == {"date": "2026-03-10"}


def test_the_same_inputs_always_plan_the_same_claim():
    store = Store()
    store.play("checkin", {}, D)
    ctx = store.ctx(D + timedelta(days=1), claim_id="a" * 24)
    first = GAME.plan(CONFIG, "checkin", {}, ctx)
    again = GAME.plan(CONFIG, "checkin", {}, ctx)
    assert dataclasses.replace(again, refusals={}) == dataclasses.replace(first, refusals={})
    assert {k: v.to_dict() for k, v in again.refusals.items()} == {k: v.to_dict() for k, v in first.refusals.items()}


# -- make-up ----------------------------------------------------------------------------------------------------

def test_a_make_up_restores_the_streak_pays_no_reward_and_spends_one_earned_chance():
    store = Store(chances=3)
    store.play("checkin", {}, D - timedelta(days=2))
    store.play("checkin", {}, D)
    claim = store.play("makeup", {"date": (D - timedelta(days=1)).isoformat()}, D)
    assert claim.grants == () and claim.cost_fen == 0 and claim.units == 0
    assert claim.outcome == {"date": "2026-03-09", "streak": 3, "paid": {"chances": 1}}
    assert store.player["ch"] == "2" and store.player["mk:202603"] == "1"
    assert store.checked_days() == {D - timedelta(days=2), D - timedelta(days=1), D}
    assert store.play("checkin", {}, D + timedelta(days=1)).outcome["streak"] == 4


def test_making_up_yesterday_before_checking_in_lets_todays_check_in_reach_the_bonus():
    store = Store(chances=1)
    store.play("checkin", {}, D - timedelta(days=2))
    store.play("makeup", {"date": (D - timedelta(days=1)).isoformat()}, D)
    claim = store.play("checkin", {}, D)
    assert claim.outcome["streak"] == 3
    store2 = Store(chances=1)
    store2.play("checkin", {}, D - timedelta(days=1))
    store2.play("makeup", {"date": (D - timedelta(days=2)).isoformat()}, D)
    assert store2.play("checkin", {}, D).outcome["bonus_days"] == []  # streak 3: the 2-day bonus was not reached
    assert store2.play("checkin", {}, D + timedelta(days=2)).outcome["streak"] == 1


def test_a_make_up_can_be_paid_with_points_as_a_debit_grant():
    config = CheckinConfig().load(raw_config(makeup={"window_days": 3, "cost": {"points": 30}}))
    store = Store(points_balance=50)
    claim = store.play("makeup", {"date": (D - timedelta(days=1)).isoformat()}, D, config=config)
    assert rewards_of(claim) == [shown(30, "points_debit")] and claim.cost_fen == 0
    assert store.player["pts"] == "30"
    with pytest.raises(NotEnoughPointsError):
        store.play("makeup", {"date": (D - timedelta(days=2)).isoformat()}, D, config=config)


@pytest.mark.parametrize(("offset", "error"), [
    (0, MakeupNotPastError),        # today is a check-in
    (-1, MakeupNotPastError),       # tomorrow
    (4, MakeupOutOfWindowError),    # the window is 3 days
])
def test_a_make_up_outside_the_past_window_is_refused(offset, error):
    with pytest.raises(error):
        Store(chances=5).play("makeup", {"date": (D - timedelta(days=offset)).isoformat()}, D)


def test_a_make_up_of_a_day_before_the_campaign_started_is_refused():
    store = Store(chances=5, starts_on=D - timedelta(days=1))
    store.play("makeup", {"date": (D - timedelta(days=1)).isoformat()}, D)
    with pytest.raises(MakeupOutOfWindowError) as refused:
        store.play("makeup", {"date": (D - timedelta(days=2)).isoformat()}, D)
    assert refused.value.details["reason"] == "before_start"


def test_a_make_up_of_a_checked_day_without_chances_or_past_the_monthly_limit_is_refused():
    store = Store(chances=2)
    store.play("checkin", {}, D - timedelta(days=1))
    with pytest.raises(AlreadyCheckedInError):
        store.play("makeup", {"date": (D - timedelta(days=1)).isoformat()}, D)
    store.play("makeup", {"date": (D - timedelta(days=2)).isoformat()}, D)
    store.play("makeup", {"date": (D - timedelta(days=3)).isoformat()}, D)
    with pytest.raises(MakeupLimitError):  # two a month
        store.play("makeup", {"date": D.isoformat()}, D + timedelta(days=1))
    with pytest.raises(NoChancesError):  # a new month, but both chances are spent
        store.play("makeup", {"date": date(2026, 3, 31).isoformat()}, date(2026, 4, 1))


def test_a_campaign_without_make_up_refuses_it():
    config = CheckinConfig().load(raw_config(makeup=None))
    with pytest.raises(MakeupNotOfferedError):
        Store(chances=1).play("makeup", {"date": (D - timedelta(days=1)).isoformat()}, D, config=config)


def test_free_daily_chances_do_not_pay_for_make_ups():
    with pytest.raises(NoChancesError):
        Store().play("makeup", {"date": (D - timedelta(days=1)).isoformat()}, D)


# -- tasks --------------------------------------------------------------------------------------------------------

def test_a_completed_task_earns_chances_a_make_up_can_spend():
    store = Store()
    started = store.play("task_start", {"task": "visit"}, D, at=shanghai(D, 9))
    token = started.outcome["token"]
    with pytest.raises(TaskTooSoonError):
        store.play("task_complete", {"task": "visit", "token": token}, D, at=shanghai(D, 9, 0, 14))
    with pytest.raises(TaskTokenError):
        store.play("task_complete", {"task": "visit", "token": "f" * 24}, D, at=shanghai(D, 9, 1))
    done = store.play("task_complete", {"task": "visit", "token": token}, D, at=shanghai(D, 9, 0, 15))
    assert done.outcome == {"task": "visit", "chances": 1, "chances_earned": 1} and done.grants == ()
    assert store.play("makeup", {"date": (D - timedelta(days=1)).isoformat()}, D).outcome["streak"] == 1
    assert store.player["ch"] == "0"


def test_a_task_pays_its_reward_and_stops_at_its_daily_cap():
    store = Store()
    token = store.play("task_start", {"task": "pay"}, D).outcome["token"]
    done = store.play("task_complete", {"task": "pay", "token": token}, D)
    assert rewards_of(done) == [shown(7)] and done.cost_fen == 7
    with pytest.raises(TaskLimitError):
        store.play("task_start", {"task": "pay"}, D)
    with pytest.raises(UnknownTaskError):
        store.play("task_start", {"task": "dance"}, D)


# -- properties of the streak and the ladder ---------------------------------------------------------------------

@st.composite
def calendars(draw: Any) -> tuple[list[bool], list[list[int]]]:
    """Per day: whether the player checks in, and which days back (1..window) they try to make up."""
    days = draw(st.integers(min_value=1, max_value=75))
    checkins = draw(st.lists(st.booleans(), min_size=days, max_size=days))
    makeups = draw(st.lists(st.lists(st.integers(min_value=1, max_value=6), max_size=2), min_size=days,
                            max_size=days))
    return checkins, makeups


PROPERTY_CONFIG = CheckinConfig().load(raw_config(
    ladder=[points(1), points(2), points(3), points(4)],
    streak_bonuses=[{"days": 3, "reward": points(30)}, {"days": 10, "reward": points(100)}],
    makeup={"window_days": 6, "cost": {"chances": 1}},
))


def oracle_streak(checked: set[date], day: date) -> int:
    return streak_ending(lambda d: d in checked, day, longest=10_000)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(calendars())
def test_the_streak_is_always_the_trailing_run_of_the_calendar_whatever_the_make_ups(calendar):
    checkins, makeups = calendar
    store = Store(chances=10_000)
    first = date(2026, 1, 20)
    checked: set[date] = set()
    for i, (checks, backs) in enumerate(zip(checkins, makeups, strict=True)):
        today = first + timedelta(days=i)
        for back in backs:
            day = today - timedelta(days=back)
            if day < first or day in checked:
                continue
            claim = store.play("makeup", {"date": day.isoformat()}, today, config=PROPERTY_CONFIG)
            checked.add(day)
            assert claim.grants == ()
            assert claim.outcome["streak"] == (oracle_streak(checked, today) or oracle_streak(checked, today
                                                                                               - timedelta(days=1)))
        if checks:
            claim = store.play("checkin", {}, today, config=PROPERTY_CONFIG)
            checked.add(today)
            streak = oracle_streak(checked, today)
            rung = (streak - 1) % 4
            bonuses = [b for b in (3, 10) if b == streak]
            assert claim.outcome["streak"] == streak and claim.outcome["cycle_day"] == rung + 1
            assert claim.outcome["bonus_days"] == bonuses
            assert [g.cost_fen for g in claim.grants] == [rung + 1] + [{3: 30, 10: 100}[b] for b in bonuses]
        assert store.checked_days() == checked
        assert live_streak(runs_of(store.player), today) == (
            oracle_streak(checked, today) or oracle_streak(checked, today - timedelta(days=1)))


@settings(max_examples=150, deadline=None)
@given(st.lists(st.booleans(), min_size=1, max_size=120))
def test_without_make_ups_each_run_pays_each_bonus_exactly_once_if_it_is_long_enough(days):
    store = Store()
    first = date(2026, 5, 1)
    paid: Counter[int] = Counter()
    rungs = []
    for i, checks in enumerate(days):
        if checks:
            claim = store.play("checkin", {}, first + timedelta(days=i), config=PROPERTY_CONFIG)
            paid.update(claim.outcome["bonus_days"])
            rungs.append(claim.outcome["cycle_day"])
    runs = [len(r) for r in "".join("x" if d else " " for d in days).split()]
    assert paid[3] == sum(1 for r in runs if r >= 3) and paid[10] == sum(1 for r in runs if r >= 10)
    # The rungs climb 1..4 and start again within each run, and at 1 after each break.
    assert rungs == [(k % 4) + 1 for r in runs for k in range(r)]


@settings(max_examples=200, deadline=None)
@given(st.sets(st.integers(min_value=0, max_value=60), max_size=60).flatmap(
    lambda s: st.permutations(sorted(s))))
def test_runs_joined_day_by_day_in_any_order_are_the_maximal_runs_of_the_days(order):
    runs: dict[date, date] = {}
    base = date(2026, 1, 1)
    for n in order:
        runs = with_day(runs, base + timedelta(days=n))
    expected, start = {}, None
    for n in range(62):
        if n in order and start is None:
            start = n
        if n in order and n + 1 not in order:
            expected[base + timedelta(days=n)] = base + timedelta(days=start)
            start = None
    assert runs == expected


# -- configuration -------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("override", [
    {"ladder": []},
    {"ladder": [points(1)] * 32},
    {"ladder": [None]},
    {"ladder": [{"type": "points", "amount": 1}]},  # no cost_fen
    {"streak_bonuses": [{"days": 7, "reward": points(1)}, {"days": 7, "reward": points(2)}]},
    {"streak_bonuses": [{"days": 0, "reward": points(1)}]},
    {"makeup": {"window_days": 29, "cost": {"chances": 1}}},
    {"makeup": {"window_days": 3, "cost": {"chances": 1, "points": 5}}},
    {"makeup": {"window_days": 3, "cost": {}}},
    {"makeup": {"window_days": 3, "cost": {"chances": 1}}, "tasks": []},  # chances nobody can earn
    {"cycle_days": 7},
])
def test_a_config_that_cannot_run_is_refused(override):
    with pytest.raises(marshmallow.ValidationError):
        CheckinConfig().load(raw_config(**override))


def test_the_public_rules_show_the_ladder_bonuses_make_up_and_tasks_without_costs():
    rules = GAME.public_view(CONFIG)
    assert rules["cycle_days"] == 3 and rules["ladder"][2] == shown(3)
    assert rules["streak_bonuses"][1] == {"days": 5, "reward": shown(50)}
    assert rules["makeup"] == {"window_days": 3, "cost": {"chances": 1}, "max_per_month": 2}
    assert [t["task"] for t in rules["tasks"]] == ["visit", "share", "pay"]
    assert "cost_fen" not in repr(rules)
    assert len(GAME.rewards(CONFIG)) == 3 + 2 + 1 and GAME.stock(CONFIG) == {}


# -- forecast -------------------------------------------------------------------------------------------------------

def direct_cost(config: dict[str, Any], players: int, p: float, days: int, runs: int, seed: int) -> np.ndarray:
    """Every player's every day, drawn one by one: the cost the forecast's streak distribution stands for."""
    rng = np.random.default_rng(seed)
    ladder = np.array([r["cost_fen"] for r in config["ladder"]])
    bonus = {b["days"]: b["reward"]["cost_fen"] for b in config["streak_bonuses"]}
    costs = np.zeros(runs)
    for run in range(runs):
        streak = np.zeros(players, dtype=np.int64)
        for _ in range(days):
            today = rng.random(players) < p
            streak = np.where(today, streak + 1, 0)
            costs[run] += ladder[(streak[today] - 1) % len(ladder)].sum()
            costs[run] += sum(cost * np.count_nonzero(streak == n) for n, cost in bonus.items())
    return costs


def test_the_forecast_cost_matches_players_drawn_one_by_one():
    behaviour = {"players": 2000, "participation_rate": 0.6, "runs": 300}
    forecast = forecast_checkins(CONFIG, behaviour, 12, np.random.default_rng(7))
    direct = direct_cost(CONFIG, 2000, 0.6, 12, 100, 8)
    assert forecast.cost_fen.shape == (300,)
    assert forecast.cost_fen.mean() == pytest.approx(direct.mean(), rel=0.02)
    # Every check-in pays exactly one rung; bonuses: players * P(streak = n on a day).
    rung_wins = sum(forecast.wins[f"ladder_day_{i}"] for i in (1, 2, 3))
    assert np.array_equal(rung_wins, forecast.plays)
    assert forecast.plays.mean() == pytest.approx(2000 * 0.6 * 12, rel=0.01)
    expected_5 = 2000 * sum(0.6 ** 5 * (0.4 if t > 5 else 1) for t in range(5, 13))
    assert forecast.wins["streak_bonus_5"].mean() == pytest.approx(expected_5, rel=0.03)


def test_the_forecast_of_everyone_every_day_pays_the_whole_ladder_and_every_bonus():
    forecast = forecast_checkins(CONFIG, {"players": 10, "participation_rate": 1.0, "runs": 3}, 6,
                                 np.random.default_rng(1))
    assert list(forecast.cost_fen) == [10 * (1 + 2 + 3 + 1 + 2 + 3 + 20 + 50)] * 3
    assert list(forecast.wins["streak_bonus_2"]) == [10] * 3


# -- through the engine -------------------------------------------------------------------------------------------

CAMPAIGN_START = shanghai(date(2026, 1, 1), 0)


def definition(**config: Any) -> dict[str, Any]:
    return {"name": "Check-in", "game": "checkin", "starts_at": iso(CAMPAIGN_START),
            "ends_at": iso(SystemClock().now() + timedelta(days=2)), "budget_fen": 100_000,
            "config": raw_config(**config)}


@pytest.fixture
def campaign(factory) -> int:
    return factory.campaign(definition())


@pytest.fixture
def service_at(container, settings):
    """A PlayService whose clock stands at the given instant."""
    def build(at: datetime) -> PlayService:
        return PlayService(scripts=container.scripts, snapshots=container.snapshots, clock=FrozenClock(at),
                           namespace=settings.redis_namespace, idempotency_ttl=60, attributes=container.attributes)

    return build


def play(service: PlayService, campaign_id: int, user: str, action: str, payload: dict | None = None,
         key: str | None = None):
    return service.play(PlayRequest(campaign_id, user, action, payload or {}, key or uuid.uuid4().hex))


def calendar(redis, container, campaign_id: int, user: str, month: str) -> list[int]:
    key = container.live_state.keys(campaign_id).game(f"cal:{user}:{month}")
    return [day for day in range(1, 32) if redis.getbit(key, day - 1)]


def campaign_dump(redis, container, campaign_id: int) -> dict[str, Any]:
    """Every live key of the campaign and its value: what a refused play must leave as it was."""
    def string(key: str) -> Any:
        if ":g:cal:" in key:  # a calendar bitmap: binary, not text
            return redis.bitfield(key).get("u32", 0).execute()
        return redis.get(key)

    dump = {}
    for key in redis.scan_iter(match=container.live_state.keys(campaign_id).all_keys_pattern()):
        kind = redis.type(key)
        kind = kind.decode() if isinstance(kind, bytes) else kind
        dump[key] = {"hash": redis.hgetall, "string": string, "stream": redis.xlen,
                     "zset": lambda k: redis.zrange(k, 0, -1)}[kind](key)
    return dump


def test_a_check_in_a_tenth_of_a_second_before_midnight_and_its_retry_after_count_once_on_the_first_day(
        campaign, service_at, redis, container):
    before = service_at(shanghai(date(2026, 1, 31), 23, 59, 59, 900_000))
    after = service_at(shanghai(date(2026, 2, 1), 0, 0, 0, 100_000))
    first = play(before, campaign, "tapper", "checkin", key="tap-1")
    retry = play(after, campaign, "tapper", "checkin", key="tap-1")
    assert first.outcome["date"] == "2026-01-31" and first.outcome["streak"] == 1
    assert retry.replayed and retry.outcome == first.outcome and retry.grants == first.grants
    assert calendar(redis, container, campaign, "tapper", "202601") == [31]
    assert calendar(redis, container, campaign, "tapper", "202602") == []


def test_two_taps_either_side_of_midnight_count_on_their_two_days_as_a_streak_of_two(
        campaign, service_at, redis, container):
    before = service_at(shanghai(date(2026, 1, 31), 23, 59, 59, 900_000))
    after = service_at(shanghai(date(2026, 2, 1), 0, 0, 0, 100_000))
    first = play(before, campaign, "tapper", "checkin", key="tap-1")
    second = play(after, campaign, "tapper", "checkin", key="tap-2")
    assert (first.outcome["date"], second.outcome["date"]) == ("2026-01-31", "2026-02-01")
    assert second.outcome["streak"] == 2 and second.outcome["bonus_days"] == [2]
    assert calendar(redis, container, campaign, "tapper", "202601") == [31]
    assert calendar(redis, container, campaign, "tapper", "202602") == [1]


def test_many_threads_checking_in_on_one_day_admit_exactly_one(campaign, service_at, redis, container):
    service = service_at(shanghai(date(2026, 2, 14), 20))

    def attempt(i: int) -> str:
        try:
            return "OK" if not play(service, campaign, "eager", "checkin").replayed else "REPLAY"
        except HuodongError as refused:
            return refused.code

    with ThreadPoolExecutor(8) as pool:
        codes = Counter(pool.map(attempt, range(40)))
    assert codes == {"OK": 1, "ALREADY_CHECKED_IN": 39}
    assert calendar(redis, container, campaign, "eager", "202602") == [14]
    stats = container.live_state.stats(campaign)
    assert stats.outbox_entries == 1 and stats.spent_fen == 1  # one claim appended, one rung paid


def test_racing_make_ups_of_one_day_spend_one_chance(campaign, service_at, redis, container):
    keys = container.live_state.keys(campaign)
    redis.hset(keys.user("racer"), "ch", 5)
    service = service_at(shanghai(date(2026, 2, 14), 20))

    def attempt(i: int) -> str:
        try:
            play(service, campaign, "racer", "makeup", {"date": "2026-02-13"})
            return "OK"
        except HuodongError as refused:
            return refused.code

    with ThreadPoolExecutor(8) as pool:
        codes = Counter(pool.map(attempt, range(16)))
    assert codes == {"OK": 1, "ALREADY_CHECKED_IN": 15}
    assert int(redis.hget(keys.user("racer"), "ch")) == 4


def test_a_week_of_check_ins_with_a_made_up_day_settles_as_points_and_re_derives(
        campaign, service_at, settle, db_session, container):
    from campaigns.fairness import verify

    first = date(2026, 3, 1)
    for i in (0, 1, 3):
        play(service_at(shanghai(first + timedelta(days=i), 8)), campaign, "wei", "checkin")
    day4 = service_at(shanghai(first + timedelta(days=4), 8))
    token = play(day4, campaign, "wei", "task_start", {"task": "share"}).outcome["token"]
    play(day4, campaign, "wei", "task_complete", {"task": "share", "token": token})
    made_up = play(day4, campaign, "wei", "makeup", {"date": "2026-03-03"})
    assert made_up.outcome["streak"] == 4 and made_up.grants == []
    fifth = play(day4, campaign, "wei", "checkin")
    assert fifth.outcome["streak"] == 5 and fifth.outcome["bonus_days"] == [5]
    settle()
    db_session.rollback()
    amounts = sorted(g.reward["amount"] for g in db_session.scalars(select(Grant).where(Grant.user_id == "wei")))
    assert amounts == sorted([1, 2, 20, 1, 2, 50]) and all(
        g.status == "issued" for g in db_session.scalars(select(Grant)))
    with container.session_factory() as session:
        report = verify(session, campaign)
    assert report.ok and report.checked == 7, report.to_dict()


def test_a_make_up_paid_with_points_debits_the_players_ledger(factory, service_at, container):
    campaign_id = factory.campaign(definition(makeup={"window_days": 3, "cost": {"points": 40}}))
    container.attributes.write({"rich": {"points": "100"}, "poor": {"points": "10"}}, {})
    service = service_at(shanghai(date(2026, 3, 10)))
    paid = play(service, campaign_id, "rich", "makeup", {"date": "2026-03-09"})
    assert [g["reward"] for g in paid.grants] == [shown(40, "points_debit")]
    with pytest.raises(NotEnoughPointsError):
        play(service, campaign_id, "poor", "makeup", {"date": "2026-03-09"})


def test_a_make_up_before_the_campaigns_first_day_is_refused(campaign, service_at, redis, container):
    redis.hset(container.live_state.keys(campaign).user("early"), "ch", 5)
    with pytest.raises(MakeupOutOfWindowError) as refused:
        play(service_at(shanghai(date(2026, 1, 2))), campaign, "early", "makeup", {"date": "2025-12-31"})
    assert refused.value.details["reason"] == "before_start"


BAD_PLAYS = [
    ("checkin", {}, AlreadyCheckedInError),
    ("makeup", {"date": "2026-03-10"}, MakeupNotPastError),            # today
    ("makeup", {"date": "2026-03-11"}, MakeupNotPastError),            # the future
    ("makeup", {"date": "2026-03-06"}, MakeupOutOfWindowError),        # 4 days back, window 3
    ("makeup", {"date": "2026-03-09"}, AlreadyCheckedInError),
    ("makeup", {"date": "2026-03-08"}, NoChancesError),
    ("task_start", {"task": "dance"}, UnknownTaskError),
    ("task_complete", {"task": "visit", "token": "f" * 24}, TaskTokenError),
    ("task_complete", {"task": "share", "token": "e" * 24}, TaskTokenError),  # never started
]


def test_every_refused_play_answers_its_code_and_changes_nothing(campaign, service_at, redis, container):
    service = service_at(shanghai(date(2026, 3, 10), 9))
    play(service, campaign, "bad", "checkin")
    play(service_at(shanghai(date(2026, 3, 9), 9)), campaign, "bad", "checkin")
    play(service, campaign, "bad", "task_start", {"task": "visit"})  # 15 s dwell: too soon below
    before = campaign_dump(redis, container, campaign)
    for action, payload, error in BAD_PLAYS:
        with pytest.raises(error):
            play(service, campaign, "bad", action, payload)
    token = redis.hget(container.live_state.keys(campaign).user("bad"), "ts:visit")
    token = (token.decode() if isinstance(token, bytes) else token).split(":")[0]
    with pytest.raises(TaskTooSoonError):
        play(service, campaign, "bad", "task_complete", {"task": "visit", "token": token})
    assert campaign_dump(redis, container, campaign) == before


def test_the_monthly_make_up_limit_and_a_tasks_daily_cap_refuse_with_their_codes(campaign, service_at, redis,
                                                                                   container):
    redis.hset(container.live_state.keys(campaign).user("busy"), "ch", 5)
    service = service_at(shanghai(date(2026, 3, 10), 9))
    play(service, campaign, "busy", "makeup", {"date": "2026-03-09"})
    play(service, campaign, "busy", "makeup", {"date": "2026-03-08"})
    with pytest.raises(MakeupLimitError):
        play(service, campaign, "busy", "makeup", {"date": "2026-03-07"})
    for _ in range(2):
        token = play(service, campaign, "busy", "task_start", {"task": "share"}).outcome["token"]
        play(service, campaign, "busy", "task_complete", {"task": "share", "token": token})
    with pytest.raises(TaskLimitError):
        play(service, campaign, "busy", "task_start", {"task": "share"})


def test_the_players_view_shows_streak_calendar_next_reward_make_up_days_chances_and_tasks(
        campaign, service_at, container, redis):
    from campaigns.public import campaign_view

    for day in (date(2026, 2, 27), date(2026, 3, 1), date(2026, 3, 2)):
        play(service_at(shanghai(day, 10)), campaign, "viewer", "checkin")
    redis.hset(container.live_state.keys(campaign).user("viewer"), "ch", 3)
    now = shanghai(date(2026, 3, 3), 10)
    me = campaign_view(container.snapshots, container.live_state, campaign, "viewer", now)["me"]
    assert me["today"] == "2026-03-03" and me["checked_in_today"] is False
    assert me["streak"] == 2 and me["cycle_day"] == 2
    assert me["next"] == {"date": "2026-03-03", "streak": 3, "reward": shown(3), "bonus_days": []}
    assert me["calendar"] == {"2026-03": [1, 2], "2026-02": [27]}
    assert me["makeup"] == {"days": ["2026-02-28"], "cost": {"chances": 1}, "window_days": 3,
                            "used_this_month": 0, "max_per_month": 2}
    assert me["chances"] == {"free": 0, "earned": 3, "total": 3}
    assert [(t["task"], t["done_today"]) for t in me["tasks"]] == [("visit", 0), ("share", 0), ("pay", 0)]
    play(service_at(now), campaign, "viewer", "checkin")
    me = campaign_view(container.snapshots, container.live_state, campaign, "viewer", now)["me"]
    assert me["checked_in_today"] is True and me["streak"] == 3
    assert me["next"]["date"] == "2026-03-04" and me["next"]["streak"] == 4


# -- through HTTP -------------------------------------------------------------------------------------------------

def action_url(campaign_id: int, action: str) -> str:
    return f"/api/v1/campaigns/{campaign_id}/actions/{action}"


def test_a_player_checks_in_over_http_and_sees_the_day_in_their_view(client, factory, campaign):
    response = client.post(action_url(campaign, "checkin"), json={}, headers=factory.headers("http"))
    assert response.status_code == 200, response.json
    body = response.json
    assert body["outcome"]["streak"] == 1 and [g["reward"] for g in body["grants"]] == [shown(1)]
    view = client.get(f"/api/v1/campaigns/{campaign}", headers=factory.headers("http")).json
    assert view["rules"]["cycle_days"] == 3
    assert view["me"]["checked_in_today"] is True and view["me"]["streak"] == 1
    again = client.post(action_url(campaign, "checkin"), json={}, headers=factory.headers("http"))
    assert error_of(again, 409, "ALREADY_CHECKED_IN")["details"]["date"] == body["outcome"]["date"]


@pytest.mark.parametrize(("action", "payload", "status", "code"), [
    ("checkin", {"date": "2026-03-01"}, 422, "VALIDATION_ERROR"),
    ("makeup", {}, 422, "VALIDATION_ERROR"),
    ("makeup", {"date": "2026-13-40"}, 422, "VALIDATION_ERROR"),
    ("makeup", {"date": "yesterday"}, 422, "VALIDATION_ERROR"),
    ("makeup", {"date": 20260301}, 422, "VALIDATION_ERROR"),
    ("makeup", {"date": "2099-01-01"}, 422, "MAKEUP_NOT_PAST"),
    ("makeup", {"date": "2000-01-01"}, 422, "MAKEUP_OUT_OF_WINDOW"),
    ("task_start", {}, 422, "VALIDATION_ERROR"),
    ("task_start", {"task": "Visit!"}, 422, "VALIDATION_ERROR"),
    ("task_start", {"task": "dance"}, 422, "UNKNOWN_TASK"),
    ("task_complete", {"task": "visit"}, 422, "VALIDATION_ERROR"),
    ("task_complete", {"task": "visit", "token": "not-a-token"}, 422, "VALIDATION_ERROR"),
    ("task_complete", {"task": "visit", "token": "a" * 24}, 409, "TASK_TOKEN_INVALID"),
    ("task_complete", {"task": "dance", "token": "a" * 24}, 422, "UNKNOWN_TASK"),
    ("dance", {}, 404, "UNKNOWN_ACTION"),
])
def test_bad_input_over_http_gets_its_stable_code(client, factory, campaign, action, payload, status, code):
    response = client.post(action_url(campaign, action), json=payload, headers=factory.headers("bad"))
    error_of(response, status, code)


def test_completing_a_task_too_early_over_http_is_refused_until_its_dwell_time_passes(client, factory):
    campaign_id = factory.campaign(definition(tasks=[
        {"task": "visit", "kind": "visit", "title": "Stay a while", "min_dwell_seconds": 3600, "chances": 1}]))
    started = client.post(action_url(campaign_id, "task_start"), json={"task": "visit"},
                          headers=factory.headers("hasty"))
    assert started.status_code == 200 and started.json["outcome"]["complete_after_seconds"] == 3600
    early = client.post(action_url(campaign_id, "task_complete"),
                        json={"task": "visit", "token": started.json["outcome"]["token"]},
                        headers=factory.headers("hasty"))
    assert error_of(early, 409, "TASK_TOO_SOON")["details"]["seconds_left"] > 3500


def test_a_campaign_without_make_up_refuses_it_over_http(client, factory):
    campaign_id = factory.campaign(definition(makeup=None))
    response = client.post(action_url(campaign_id, "makeup"), json={"date": "2026-03-01"},
                           headers=factory.headers("late"))
    error_of(response, 409, "MAKEUP_NOT_OFFERED")


def test_the_demo_campaign_publishes_and_its_forecast_stays_within_budget(factory):
    from campaigns.forecasts import simulate

    now = SystemClock().now()
    (demo,) = GAME.demo_definitions(iso(now - timedelta(minutes=1)), iso(now + timedelta(days=30)))
    assert factory.campaign(demo)
    summary = simulate(demo, {"players": 1000, "participation_rate": 0.5, "runs": 50, "seed": 3})
    assert summary["days"] == 31 and summary["expected_plays"] == pytest.approx(1000 * 0.5 * 31, rel=0.02)
    assert 0 < summary["cost_fen"]["p99"] < demo["budget_fen"]
    assert summary["expected_wins"]["streak_bonus_21"] < summary["expected_wins"]["streak_bonus_7"]
