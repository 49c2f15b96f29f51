"""referral (裂变红包/助力): the split, the pure plan, plays through the engine and HTTP, and races.

Races: helpers racing a packet's target (threads and processes), helpers
racing its deadline, one helper twice at once, one helper over their daily
cap, the owner cashing out twice at once and opening twice at once. Each is
counted afterwards from Redis and the outbox, not from the answers alone.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from marshmallow import ValidationError
from sqlalchemy import select

from campaigns.fairness import verify
from campaigns.models import Grant
from engine.clock import FrozenClock, SystemClock, business_day, iso, parse_instant, to_ms
from engine.config import Settings
from engine.errors import BudgetExhaustedError, HuodongError
from engine.game import PlayContext, ViewContext
from engine.runtime import PlayRequest, PlayService
from engine.simulation import BehaviourSchema, summarize
from engine.state import GameState
from games.referral import (
    AlreadyAssistedError,
    AssistLimitError,
    Packet,
    PacketAlreadyOpenError,
    PacketClosedError,
    PacketExpiredError,
    PacketFullError,
    PacketLimitError,
    PacketNotFoundError,
    PacketNotFullError,
    PacketNotYoursError,
    Referral,
    ReferralConfig,
    SelfAssistError,
    is_new_user,
    poisson_pmf,
    split_target,
)
from tests.support import racers
from tests.support.footprint import footprint
from tests.web.test_bad_input import error_of, field_messages

GAME = Referral()
NOW = datetime(2026, 11, 11, 4, 0, tzinfo=UTC)
HOUR_MS = 3_600_000
PACKET_ID = "0123456789ab0123456789ab"
WELCOME = {"type": "points", "amount": 20, "cost_fen": 20}
CONSOLATION = {"type": "points", "amount": 5, "cost_fen": 5}


def config(**overrides: Any) -> dict[str, Any]:
    return ReferralConfig().load({"target_fen": 600, "max_assists": 4, "packet_hours": 24, "packets_per_user": 2,
                                  "assists_per_day": 3, "welcome_reward": WELCOME, **overrides})


# -- split_target ------------------------------------------------------------------------------

@settings(max_examples=300, deadline=None)
@given(target=st.integers(1, 10_000_000), slots=st.integers(1, 100), seed=st.integers(0, 2**64))
def test_a_split_sums_exactly_to_the_target_in_bounded_non_increasing_parts_of_at_least_one_fen(target, slots,
                                                                                                   seed):
    amounts = split_target(target, slots, np.random.default_rng(seed))

    assert sum(amounts) == target
    assert all(isinstance(a, int) and a >= 1 for a in amounts)
    assert all(a >= b for a, b in zip(amounts, amounts[1:], strict=False))
    assert len(amounts) == min(slots, target) <= slots


@settings(max_examples=100, deadline=None)
@given(target=st.integers(1, 1_000_000), slots=st.integers(1, 100), seed=st.integers(0, 2**64))
def test_a_split_is_the_same_for_the_same_seed(target, slots, seed):
    assert split_target(target, slots, np.random.default_rng(seed)) == split_target(
        target, slots, np.random.default_rng(seed))


def test_splits_vary_with_the_seed_and_the_first_assists_add_most():
    splits = {tuple(split_target(10_000, 8, np.random.default_rng(seed))) for seed in range(50)}
    assert len(splits) == 50
    first_shares = [s[0] / 10_000 for s in splits]
    last_shares = [s[-1] / 10_000 for s in splits]
    assert min(first_shares) > 0.25 and max(last_shares) < 0.05


@pytest.mark.parametrize(("target", "slots"), [(0, 3), (5, 0), (-1, 1)])
def test_a_split_of_nothing_is_a_programming_error(target, slots):
    with pytest.raises(ValueError):
        split_target(target, slots, np.random.default_rng(0))


# -- config ------------------------------------------------------------------------------------

def test_amount_mode_defaults_its_bound_and_fills_in_the_cash_reward():
    loaded = ReferralConfig().load({"target_fen": 500})
    assert loaded["target_assists"] is None and GAME.public_view(loaded)["assists_needed"] == 10
    cash = {"type": "points", "amount": 500, "expires_in_days": None, "cost_fen": 500}
    assert GAME.rewards(loaded) == [cash]
    assert ReferralConfig().load(ReferralConfig().dump(loaded)) == loaded  # the stored form loads the same


def test_count_mode_takes_exactly_that_many_friends():
    loaded = ReferralConfig().load({"target_fen": 500, "target_assists": 5})
    assert GAME.public_view(loaded)["mode"] == "assists" and GAME.public_view(loaded)["assists_needed"] == 5
    assert len(split_target(500, 5, np.random.default_rng(1))) == 5


BAD_CONFIGS = [
    pytest.param({}, "target_fen", id="no-target"),
    pytest.param({"target_fen": 0}, "target_fen", id="target-zero"),
    pytest.param({"target_fen": 1.5}, "target_fen", id="target-float"),
    pytest.param({"target_fen": 10**8}, "target_fen", id="target-huge"),
    pytest.param({"target_fen": 5, "target_assists": 6}, "target_assists", id="more-assists-than-fen"),
    pytest.param({"target_fen": 5, "target_assists": 2, "max_assists": 3}, "max_assists", id="both-modes"),
    pytest.param({"target_fen": 5, "max_assists": 0}, "max_assists", id="bound-zero"),
    pytest.param({"target_fen": 5, "max_assists": 101}, "max_assists", id="bound-over-max"),
    pytest.param({"target_fen": 5, "packet_hours": 0}, "packet_hours", id="no-time"),
    pytest.param({"target_fen": 5, "assists_per_day": 0}, "assists_per_day", id="no-assists"),
    pytest.param({"target_fen": 5, "new_user_days": 0}, "new_user_days", id="no-new-users"),
    pytest.param({"target_fen": 5, "cash_reward": {"type": "nope"}}, "cash_reward", id="cash-unknown-type"),
    pytest.param({"target_fen": 5, "cash_reward": {"type": "points", "amount": 9}}, "cash_reward",
                 id="cash-amount-given"),
    pytest.param({"target_fen": 5, "cash_reward": {"type": "points", "bogus": 1}}, "cash_reward",
                 id="cash-unknown-param"),
    pytest.param({"target_fen": 5, "welcome_reward": {"type": "points", "amount": 1}}, "welcome_reward",
                 id="welcome-without-cost"),
    pytest.param({"target_fen": 5, "consolation": "5 fen"}, "consolation", id="consolation-not-a-reward"),
    pytest.param({"target_fen": 5, "surprise": 1}, "surprise", id="unknown-field"),
]


@pytest.mark.parametrize(("raw", "field"), BAD_CONFIGS)
def test_a_bad_config_is_refused_naming_its_field(raw, field):
    with pytest.raises(ValidationError) as refused:
        ReferralConfig().load(raw)
    assert field in refused.value.messages


# -- the pure plan -----------------------------------------------------------------------------

def ctx(user: str = "owner", *, hashes: dict[str, dict[str, str]] | None = None, now: datetime = NOW,
        attributes: dict[str, Any] | None = None, seed: int = 7, claim_id: str = PACKET_ID) -> PlayContext:
    state = GameState(user, hashes=hashes or {}, attributes=attributes or {})
    return PlayContext(campaign_id=1, version=1, user_id=user, claim_id=claim_id, now=now,
                       day=business_day(now, "Asia/Shanghai"), seed=seed, state=state)


def packet(*, progress: int = 0, assists: int = 0, amounts: Sequence[int] = (300, 200, 60, 40),
           status: str = "open", deadline: datetime = NOW + timedelta(hours=1), helpers: Sequence[str] = ()
           ) -> dict[str, str]:
    fields = Packet(id=PACKET_ID, owner="owner", target_fen=sum(amounts), progress_fen=progress, assists=assists,
                    deadline_ms=to_ms(deadline), amounts=tuple(amounts), status=status).fields()
    return {**fields, **{f"h:{h}": str(i) for i, h in enumerate(helpers)}}


def owner_mirror(**fields: str) -> dict[str, str]:
    return {"rp:id": PACKET_ID, "rp:due": str(to_ms(NOW + timedelta(hours=1))), "rp:tgt": "600", "rp:need": "4",
            "rp:prog": "0", "rp:as": "0", "rp:st": "open", "rp:n": "1", **fields}


def test_open_fixes_the_amounts_from_the_plays_generator_and_answers_the_share_code():
    claim = GAME.plan(config(), "open", {}, ctx())
    expected = split_target(600, 4, np.random.default_rng(7))

    assert claim.outcome["packet_id"] == claim.outcome["share_code"] == PACKET_ID
    view = claim.outcome["packet"]
    assert view["amounts"] == expected and view["target_fen"] == 600 and view["needed_assists"] == 4
    assert parse_instant(view["deadline"]) == NOW + timedelta(hours=24) and view["status"] == "open"
    assert claim.units == 1 and claim.grants == ()
    puts = {(op.key, op.field): op.value for op in claim.ops if op.kind == "put"}
    assert json.loads(puts[(f"packet:{PACKET_ID}", "amounts")]) == expected
    assert puts[(f"packet:{PACKET_ID}", "deadline_ms")] == str(to_ms(NOW) + 24 * HOUR_MS)
    assert puts[("user:owner", "rp:id")] == PACKET_ID
    again = GAME.plan(config(), "open", {}, ctx())  # pure: the same inputs plan the same claim
    assert (again.outcome, again.ops, again.grants) == (claim.outcome, claim.ops, claim.grants)


def test_count_mode_opens_a_packet_of_exactly_that_many_assists():
    claim = GAME.plan(config(max_assists=None, target_assists=6), "open", {}, ctx())
    assert len(claim.outcome["packet"]["amounts"]) == 6 and sum(claim.outcome["packet"]["amounts"]) == 600


def test_a_second_packet_waits_until_the_first_is_paid_or_past_its_deadline():
    with pytest.raises(PacketAlreadyOpenError):
        GAME.plan(config(), "open", {}, ctx(hashes={"user:owner": owner_mirror()}))
    assert GAME.plan(config(), "open", {}, ctx(hashes={"user:owner": owner_mirror(**{"rp:st": "paid"})}))
    after = NOW + timedelta(hours=1)
    assert GAME.plan(config(), "open", {}, ctx(hashes={"user:owner": owner_mirror()}, now=after))
    with pytest.raises(PacketLimitError):
        GAME.plan(config(), "open", {}, ctx(hashes={"user:owner": owner_mirror(**{"rp:n": "2"})}, now=after))


def test_an_assist_adds_the_next_amount_and_counts_against_the_helpers_day():
    hashes = {f"packet:{PACKET_ID}": packet(progress=300, assists=1, helpers=["f0"])}
    claim = GAME.plan(config(), "assist", {"share_code": PACKET_ID}, ctx("f1", hashes=hashes))

    assert claim.outcome == {"packet_id": PACKET_ID, "assist": 2, "amount_fen": 200, "progress_fen": 500,
                             "target_fen": 600, "full": False, "welcome": False}
    assert claim.grants == () and claim.units == 0
    incrs = {(op.key, op.field): (op.value, op.high) for op in claim.ops if op.kind == "incr"}
    assert incrs[(f"packet:{PACKET_ID}", "progress_fen")] == (200, 600)
    assert incrs[("user:f1", "as:20261111")] == (1, 3)
    assert incrs[("user:owner", "rp:prog")] == (200, None)
    expects = {(op.key, op.field): op.value for op in claim.ops if op.kind in ("expect", "absent")}
    assert expects[(f"packet:{PACKET_ID}", "assists")] == "1" and expects[(f"packet:{PACKET_ID}", "h:f1")] is None


def test_the_last_assist_fills_the_packet():
    hashes = {f"packet:{PACKET_ID}": packet(progress=560, assists=3, helpers=["a", "b", "c"])}
    claim = GAME.plan(config(), "assist", {"share_code": PACKET_ID}, ctx("d", hashes=hashes))
    assert claim.outcome["amount_fen"] == 40 and claim.outcome["full"] and claim.outcome["progress_fen"] == 600


ASSIST_REFUSALS = [
    pytest.param("f1", {}, NOW, PacketNotFoundError, id="unknown-share-code"),
    pytest.param("owner", {"packet": packet()}, NOW, SelfAssistError, id="self-assist"),
    pytest.param("f1", {"packet": packet(progress=300, assists=1, helpers=["f1"])}, NOW, AlreadyAssistedError,
                 id="twice"),
    pytest.param("f1", {"packet": packet(progress=600, assists=4, helpers=list("abcd"))}, NOW, PacketFullError,
                 id="full"),
    pytest.param("f1", {"packet": packet(progress=600, assists=4, status="paid")}, NOW, PacketClosedError,
                 id="paid"),
    pytest.param("f1", {"packet": packet()}, NOW + timedelta(hours=1), PacketExpiredError, id="at-the-deadline"),
    pytest.param("f1", {"packet": packet(), "me": {"as:20261111": "3"}}, NOW, AssistLimitError, id="daily-cap"),
]


@pytest.mark.parametrize(("helper", "stored", "now", "error"), ASSIST_REFUSALS)
def test_an_assist_is_refused_with_its_error(helper, stored, now, error):
    hashes = {}
    if "packet" in stored:
        hashes[f"packet:{PACKET_ID}"] = stored["packet"]
    if "me" in stored:
        hashes[f"user:{helper}"] = stored["me"]
    with pytest.raises(error):
        GAME.plan(config(), "assist", {"share_code": PACKET_ID}, ctx(helper, hashes=hashes, now=now))


def test_an_assist_a_millisecond_before_the_deadline_counts():
    hashes = {f"packet:{PACKET_ID}": packet()}
    claim = GAME.plan(config(), "assist", {"share_code": PACKET_ID},
                      ctx("f1", hashes=hashes, now=NOW + timedelta(hours=1) - timedelta(milliseconds=1)))
    assert claim.outcome["amount_fen"] == 300


@pytest.mark.parametrize(("registered_at", "new"), [
    pytest.param(NOW - timedelta(days=2), True, id="two-days-old"),
    pytest.param(iso(NOW - timedelta(days=2)), True, id="as-recorded-json"),
    pytest.param(NOW - timedelta(days=7), True, id="exactly-the-window"),
    pytest.param(NOW - timedelta(days=7, seconds=1), False, id="just-outside"),
    pytest.param(None, False, id="no-attribute"),
    pytest.param("not a date", False, id="garbage"),
])
def test_a_new_user_is_one_registered_within_the_window(registered_at, new):
    attributes = {} if registered_at is None else {"registered_at": registered_at}
    assert is_new_user(attributes, NOW, 7) is new


def test_a_new_helper_gets_the_welcome_reward_once_per_campaign():
    hashes = {f"packet:{PACKET_ID}": packet()}
    fresh = {"registered_at": NOW - timedelta(days=1)}
    claim = GAME.plan(config(), "assist", {"share_code": PACKET_ID}, ctx("f1", hashes=hashes, attributes=fresh))
    assert claim.outcome["welcome"]
    assert [g.reward for g in claim.grants] == [{"type": "points", "amount": 20, "expires_in_days": None}]
    assert claim.cost_fen == 20

    hashes["user:f1"] = {"rp:wel": "another-packet"}
    again = GAME.plan(config(), "assist", {"share_code": PACKET_ID}, ctx("f1", hashes=hashes, attributes=fresh))
    assert not again.outcome["welcome"] and again.grants == ()
    old = GAME.plan(config(), "assist", {"share_code": PACKET_ID},
                    ctx("f2", hashes=hashes, attributes={"registered_at": NOW - timedelta(days=30)}))
    assert old.grants == ()


def test_a_full_packet_cashes_out_its_target_to_its_owner():
    hashes = {f"packet:{PACKET_ID}": packet(progress=600, assists=4), "user:owner": owner_mirror()}
    claim = GAME.plan(config(), "cashout", {"packet_id": PACKET_ID}, ctx(hashes=hashes))
    assert [(g.reward, g.cost_fen) for g in claim.grants] == [
        ({"type": "points", "amount": 600, "expires_in_days": None}, 600)]
    assert claim.outcome["paid"] == "paid"
    puts = {(op.key, op.field): op.value for op in claim.ops if op.kind == "put"}
    assert puts == {(f"packet:{PACKET_ID}", "status"): "paid", ("user:owner", "rp:st"): "paid"}


def test_an_expired_packet_pays_the_consolation_or_nothing():
    hashes = {f"packet:{PACKET_ID}": packet(progress=500, assists=2)}
    late = NOW + timedelta(hours=2)
    claim = GAME.plan(config(consolation=CONSOLATION), "cashout", {"packet_id": PACKET_ID},
                      ctx(hashes=hashes, now=late))
    assert claim.outcome["paid"] == "consoled" and [g.cost_fen for g in claim.grants] == [5]
    with pytest.raises(PacketExpiredError):
        GAME.plan(config(), "cashout", {"packet_id": PACKET_ID}, ctx(hashes=hashes, now=late))


CASHOUT_REFUSALS = [
    pytest.param("owner", None, PacketNotFoundError, id="unknown-packet"),
    pytest.param("owner", packet(progress=500, assists=2), PacketNotFullError, id="before-the-target"),
    pytest.param("f1", packet(progress=600, assists=4), PacketNotYoursError, id="not-the-owner"),
    pytest.param("owner", packet(progress=600, assists=4, status="paid"), PacketClosedError, id="twice"),
    pytest.param("owner", packet(progress=100, assists=1, status="consoled"), PacketClosedError,
                 id="after-its-consolation"),
]


@pytest.mark.parametrize(("user", "stored", "error"), CASHOUT_REFUSALS)
def test_a_cashout_is_refused_with_its_error(user, stored, error):
    hashes = {f"packet:{PACKET_ID}": stored} if stored else {}
    with pytest.raises(error):
        GAME.plan(config(consolation=CONSOLATION), "cashout", {"packet_id": PACKET_ID}, ctx(user, hashes=hashes))


def test_the_view_shows_the_latest_packet_and_the_helpers_counters():
    view_ctx = ViewContext(campaign_id=1, user_id="owner", now=NOW, day=NOW.date())
    state = GameState("owner", hashes={"user:owner": owner_mirror(**{"rp:prog": "600", "rp:as": "4",
                                                                     "as:20261111": "2", "rp:helped": "2"})})
    me = GAME.player_state(config(), state, view_ctx)
    assert me["packet"]["status"] == "full" and me["packet"]["can_cashout"] and me["packet"]["progress_fen"] == 600
    assert me["can_open"] is False and me["packets_left"] == 1
    assert (me["assists_today"], me["assists_per_day"], me["assists_total"]) == (2, 3, 2)
    empty = GAME.player_state(config(), GameState("new"), view_ctx)
    assert empty["packet"] is None and empty["can_open"] and empty["packets_left"] == 2


# -- forecast ----------------------------------------------------------------------------------

def poisson_tail(mean: float, at_least: int) -> float:
    return 1.0 - float(poisson_pmf(mean, at_least).sum())


def test_the_forecast_fills_packets_as_often_as_the_fanout_reaches_the_assists_needed():
    loaded = config(consolation=CONSOLATION)
    behaviour = BehaviourSchema().load({"players": 20_000, "participation_rate": 0.2, "plays_per_day": 1,
                                        "referral_fanout": 4.0, "runs": 300, "seed": 1})
    forecast = GAME.forecast(loaded, behaviour, 5, np.random.default_rng(1))

    full, consoled, welcomed = (forecast.wins[k] for k in ("cashout", "consolation", "welcome"))
    p_full = poisson_tail(4.0, 4)  # a packet of 4 assists fills when Poisson(4) friends come: 56.7%
    assert abs(full.sum() / (full + consoled).sum() - p_full) < 0.01
    assert np.all(forecast.plays > 4 * full)  # every open, the assists that filled packets, every payout
    assert np.array_equal(forecast.cost_fen, full * 600 + consoled * 5 + welcomed * 20)
    packets = 20_000 * 0.2 * 5
    assert abs(np.mean(full + consoled) - packets) / packets < 0.02
    summary = summarize(forecast, 2_000_000, behaviour)
    assert summary["cost_fen"]["p50"] <= summary["cost_fen"]["p99"]
    assert summary["expected_wins"]["cashout"] == pytest.approx(packets * p_full, rel=0.02)


def test_the_forecast_caps_packets_at_what_each_player_may_open():
    behaviour = BehaviourSchema().load({"players": 100, "participation_rate": 1.0, "plays_per_day": 5,
                                        "referral_fanout": 100, "runs": 20})
    forecast = GAME.forecast(config(packet_hours=1, packets_per_user=2), behaviour, 10, np.random.default_rng(2))
    assert np.all(forecast.wins["cashout"] == 200)  # a fan-out of 100 fills every packet
    assert np.all(forecast.wins["consolation"] == 0)


def test_the_demo_campaign_publishes_and_plays(factory):
    now = SystemClock().now()
    (demo,) = GAME.demo_definitions(iso(now - timedelta(minutes=1)), iso(now + timedelta(days=7)))
    campaign_id = factory.campaign(demo)
    code = factory.play(campaign_id, "demo-owner", "open", {}).outcome["share_code"]
    assert factory.play(campaign_id, "demo-friend", "assist", {"share_code": code}).outcome["assist"] == 1


def test_the_admin_simulate_endpoint_forecasts_a_referral_draft(client, admin_token):
    headers = {"Authorization": f"Bearer {admin_token('marketer')}"}
    created = client.post("/admin/api/v1/campaigns", headers=headers,
                          json=definition(budget_fen=1_000_000, consolation=CONSOLATION))
    assert created.status_code == 201, created.json
    response = client.post(f"/admin/api/v1/campaigns/{created.json['id']}/simulate", headers=headers,
                           json={"players": 1000, "participation_rate": 0.2, "plays_per_day": 1, "days": 2,
                                 "referral_fanout": 4.0, "runs": 200, "seed": 1})
    assert response.status_code == 200, response.json
    wins = response.json["expected_wins"]
    assert wins["cashout"] + wins["consolation"] == pytest.approx(400, rel=0.05)  # 1000 x 0.2 x 2 days
    assert wins["cashout"] == pytest.approx(400 * poisson_tail(4.0, 4), rel=0.1)


# -- through the engine --------------------------------------------------------------------------

def definition(*, now: datetime | None = None, budget_fen: int | None = None, **overrides: Any) -> dict[str, Any]:
    now = now or SystemClock().now()
    return {"name": f"Red packet {uuid.uuid4().hex[:6]}", "game": "referral",
            "starts_at": iso(now - timedelta(minutes=1)), "ends_at": iso(now + timedelta(days=3)),
            "budget_fen": budget_fen,
            "config": {"target_fen": 600, "max_assists": 4, "packet_hours": 24, "packets_per_user": 2,
                       "assists_per_day": 3, "welcome_reward": WELCOME, **overrides}}


def texts(mapping: dict[Any, Any]) -> dict[str, str]:
    return {(k.decode() if isinstance(k, bytes) else k): (v.decode() if isinstance(v, bytes) else v)
            for k, v in mapping.items()}


def stored_packet(container: Any, campaign_id: int, packet_id: str) -> dict[str, str]:
    keys = container.live_state.keys(campaign_id)
    return texts(container.redis.hgetall(keys.game(f"packet:{packet_id}")))


def player_hash(container: Any, campaign_id: int, user_id: str) -> dict[str, str]:
    return texts(container.redis.hgetall(container.live_state.keys(campaign_id).user(user_id)))


def campaign_footprint(container: Any, campaign_id: int) -> dict[str, Any]:
    """Every key of the campaign and what it holds, but the gate's attempt counts (tests/support/footprint.py)."""
    return footprint(container.redis, container.live_state.keys(campaign_id).all_keys_pattern())


def make_new(container: Any, *users: str, days_ago: float = 1) -> None:
    registered = json.dumps(iso(SystemClock().now() - timedelta(days=days_ago)))
    container.attributes.write({u: {"registered_at": registered} for u in users}, {})


def final_code(play: Callable[[], Any]) -> str:
    """The answer's code ("OK" when admitted); a busy answer (the state kept changing) is retried, as a client does."""
    while True:
        try:
            play()
            return "OK"
        except HuodongError as exc:
            if exc.code != "CONFLICT":
                return exc.code


def race(play: Callable[[str], Any], players: Sequence[str], threads: int = 8) -> list[tuple[str, str]]:
    """Each play's final code, from ``threads`` threads that start together: (player, code) pairs."""
    threads = min(threads, len(players))
    start = threading.Barrier(threads)
    answers: list[tuple[str, str]] = []
    lock = threading.Lock()

    def run(chunk: Sequence[str]) -> None:
        start.wait(timeout=60)
        for player in chunk:
            code = final_code(lambda player=player: play(player))
            with lock:
                answers.append((player, code))

    workers = [threading.Thread(target=run, args=(players[i::threads],)) for i in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert len(answers) == len(players)
    return answers


def tally(answers: list[tuple[str, str]]) -> Counter[str]:
    return Counter(code for _player, code in answers)


@pytest.fixture
def campaign(factory: Any) -> int:
    return factory.campaign(definition())


def open_packet(factory: Any, campaign_id: int, owner: str = "owner") -> dict[str, Any]:
    return factory.play(campaign_id, owner, "open", {}).outcome


def test_friends_fill_a_packet_and_its_owner_cashes_it_out(factory, campaign, container, settle, db_session):
    make_new(container, "f0")
    opened = open_packet(factory, campaign)
    code = opened["share_code"]
    amounts = opened["packet"]["amounts"]

    answers = [factory.play(campaign, f"f{i}", "assist", {"share_code": code}).outcome for i in range(4)]
    assert [a["amount_fen"] for a in answers] == amounts
    assert [a["progress_fen"] for a in answers] == list(np.cumsum(amounts))
    assert answers[-1]["full"] and [a["welcome"] for a in answers] == [True, False, False, False]
    with pytest.raises(PacketFullError):
        factory.play(campaign, "f4", "assist", {"share_code": code})

    paid = factory.play(campaign, "owner", "cashout", {"packet_id": code})
    assert paid.outcome["paid"] == "paid"
    assert paid.grants[0]["reward"] == {"type": "points", "amount": 600, "expires_in_days": None}
    stored = stored_packet(container, campaign, code)
    assert (stored["status"], stored["progress_fen"], stored["assists"]) == ("paid", "600", "4")
    assert {k: v for k, v in stored.items() if k.startswith("h:")} == {f"h:f{i}": str(i) for i in range(4)}

    settle()
    db_session.rollback()
    grants = db_session.scalars(select(Grant).where(Grant.campaign_id == campaign)).all()
    assert sorted((g.user_id, g.reward["amount"], g.cost_fen, g.status) for g in grants) == [
        ("f0", 20, 20, "issued"), ("owner", 600, 600, "issued")]
    assert container.live_state.stats(campaign).spent_fen == 620


def test_every_recorded_play_re_derives_from_the_secret(factory, campaign, settle, db_session):
    code = open_packet(factory, campaign)["share_code"]
    for i in range(4):
        factory.play(campaign, f"f{i}", "assist", {"share_code": code})
    factory.play(campaign, "owner", "cashout", {"packet_id": code})
    settle(worker=False)
    db_session.rollback()

    report = verify(db_session, campaign)

    assert report.ok, report.to_dict()
    assert report.checked == 6


def test_a_welcome_reward_re_derives_from_the_recorded_attributes(factory, campaign, container, settle, db_session):
    make_new(container, "f0")
    code = open_packet(factory, campaign)["share_code"]
    assert factory.play(campaign, "f0", "assist", {"share_code": code}).outcome["welcome"]
    settle(worker=False)
    db_session.rollback()

    assert verify(db_session, campaign).ok


def test_the_campaign_view_shows_the_owner_their_packet_and_a_helper_their_assists(factory, campaign, client):
    code = open_packet(factory, campaign)["share_code"]
    factory.play(campaign, "f1", "assist", {"share_code": code})

    owner = client.get(f"/api/v1/campaigns/{campaign}", headers={"Authorization": f"Bearer {factory.token('owner')}"})
    helper = client.get(f"/api/v1/campaigns/{campaign}", headers={"Authorization": f"Bearer {factory.token('f1')}"})

    assert owner.status_code == 200 and owner.json["rules"]["target_fen"] == 600
    packet_view = owner.json["me"]["packet"]
    assert (packet_view["share_code"], packet_view["assists"], packet_view["status"]) == (code, 1, "open")
    assert packet_view["progress_fen"] > 0 and not owner.json["me"]["can_open"]
    assert helper.json["me"]["packet"] is None and helper.json["me"]["assists_today"] == 1
    assert helper.json["me"]["welcome_received"] is False


def test_a_cashout_over_budget_is_refused_and_leaves_the_packet_open(factory, container):
    campaign_id = factory.campaign(definition(budget_fen=500, welcome_reward=None))
    code = open_packet(factory, campaign_id)["share_code"]
    for i in range(4):
        factory.play(campaign_id, f"f{i}", "assist", {"share_code": code})
    before = campaign_footprint(container, campaign_id)

    with pytest.raises(BudgetExhaustedError):
        factory.play(campaign_id, "owner", "cashout", {"packet_id": code})

    assert campaign_footprint(container, campaign_id) == before
    assert stored_packet(container, campaign_id, code)["status"] == "open"


def frozen(container: Any, settings: Settings, at: datetime) -> PlayService:
    return PlayService(scripts=container.scripts, snapshots=container.snapshots, clock=FrozenClock(at),
                       namespace=settings.redis_namespace, idempotency_ttl=60, attributes=container.attributes)


def play_at(service: PlayService, campaign_id: int, user: str, action: str, payload: dict[str, Any]) -> Any:
    return service.play(PlayRequest(campaign_id, user, action, payload, uuid.uuid4().hex))


def test_a_player_opens_again_after_the_deadline_up_to_their_packet_limit(factory, container, settings):
    t0 = SystemClock().now()
    campaign_id = factory.campaign(definition(now=t0, packet_hours=1))
    first = play_at(frozen(container, settings, t0), campaign_id, "owner", "open", {}).outcome
    deadline = parse_instant(first["packet"]["deadline"])

    with pytest.raises(PacketAlreadyOpenError):
        play_at(frozen(container, settings, deadline - timedelta(milliseconds=1)), campaign_id, "owner", "open", {})
    later = frozen(container, settings, deadline)
    second = play_at(later, campaign_id, "owner", "open", {}).outcome
    assert second["packet_id"] != first["packet_id"]
    with pytest.raises(PacketExpiredError):
        play_at(later, campaign_id, "f1", "assist", {"share_code": first["share_code"]})
    with pytest.raises(PacketLimitError):
        play_at(frozen(container, settings, deadline + timedelta(hours=1)), campaign_id, "owner", "open", {})


# -- bad input through HTTP ----------------------------------------------------------------------

def action_url(campaign_id: int, action: str) -> str:
    return f"/api/v1/campaigns/{campaign_id}/actions/{action}"


@pytest.fixture
def played(factory: Any, container: Any) -> dict[str, Any]:
    """A campaign with a full packet (cashed out), a half-full one and a helper at their daily cap."""
    campaign_id = factory.campaign(definition(assists_per_day=2, packets_per_user=1))
    full = open_packet(factory, campaign_id, "rich")["share_code"]
    for i in range(4):
        factory.play(campaign_id, f"f{i}", "assist", {"share_code": full})
    factory.play(campaign_id, "rich", "cashout", {"packet_id": full})
    half = open_packet(factory, campaign_id, "owner")["share_code"]
    factory.play(campaign_id, "f0", "assist", {"share_code": half})
    other = open_packet(factory, campaign_id, "third")["share_code"]
    return {"campaign": campaign_id, "paid": full, "half": half, "other": other}


BAD_PLAYS = [
    # (player, action, body: a callable of the fixture's ids, status, code)
    pytest.param("f9", "assist", lambda p: {"share_code": "f" * 24}, 404, "PACKET_NOT_FOUND", id="unknown-code"),
    pytest.param("owner", "assist", lambda p: {"share_code": p["half"]}, 422, "SELF_ASSIST", id="self-assist"),
    pytest.param("f0", "assist", lambda p: {"share_code": p["half"]}, 409, "ALREADY_ASSISTED", id="assist-twice"),
    pytest.param("f0", "assist", lambda p: {"share_code": p["other"]}, 409, "ASSIST_LIMIT_REACHED",
                 id="over-the-daily-cap"),
    pytest.param("f9", "assist", lambda p: {"share_code": p["paid"]}, 409, "PACKET_CLOSED", id="assist-paid"),
    pytest.param("owner", "cashout", lambda p: {"packet_id": p["half"]}, 409, "PACKET_NOT_FULL",
                 id="cashout-before-target"),
    pytest.param("f0", "cashout", lambda p: {"packet_id": p["half"]}, 403, "PACKET_NOT_YOURS",
                 id="cashout-by-a-friend"),
    pytest.param("rich", "cashout", lambda p: {"packet_id": p["paid"]}, 409, "PACKET_CLOSED", id="cashout-twice"),
    pytest.param("owner", "cashout", lambda p: {"packet_id": "e" * 24}, 404, "PACKET_NOT_FOUND",
                 id="cashout-unknown"),
    pytest.param("owner", "open", lambda p: {}, 409, "PACKET_ALREADY_OPEN", id="open-while-open"),
    pytest.param("rich", "open", lambda p: {}, 409, "PACKET_LIMIT_REACHED", id="open-over-the-limit"),
    pytest.param("f9", "assist", lambda p: {}, 422, "VALIDATION_ERROR", id="no-share-code"),
    pytest.param("f9", "assist", lambda p: {"share_code": 5}, 422, "VALIDATION_ERROR", id="share-code-number"),
    pytest.param("f9", "assist", lambda p: {"share_code": "ABC"}, 422, "VALIDATION_ERROR", id="share-code-malformed"),
    pytest.param("f9", "assist", lambda p: {"share_code": p["half"].upper()}, 422, "VALIDATION_ERROR",
                 id="share-code-upper-case"),
    pytest.param("f9", "assist", lambda p: {"share_code": p["half"], "amount_fen": 600}, 422, "VALIDATION_ERROR",
                 id="assist-unknown-field"),
    pytest.param("owner", "cashout", lambda p: {"packet_id": None}, 422, "VALIDATION_ERROR", id="packet-id-null"),
    pytest.param("owner", "cashout", lambda p: {"share_code": p["half"]}, 422, "VALIDATION_ERROR",
                 id="cashout-with-share-code"),
    pytest.param("f9", "open", lambda p: {"target_fen": 1}, 422, "VALIDATION_ERROR", id="open-with-a-target"),
    pytest.param("f9", "withdraw", lambda p: {}, 404, "UNKNOWN_ACTION", id="unknown-action"),
]


@pytest.mark.parametrize(("player", "action", "body", "status", "code"), BAD_PLAYS)
def test_a_bad_play_gets_its_stable_code_and_changes_nothing(client, factory, container, played, player, action,
                                                            body, status, code):
    campaign_id = played["campaign"]
    before = campaign_footprint(container, campaign_id)

    error = error_of(client.post(action_url(campaign_id, action), json=body(played),
                                 headers=factory.headers(player)), status, code)

    if code == "VALIDATION_ERROR":
        assert error["details"]["fields"]
    assert campaign_footprint(container, campaign_id) == before


def test_a_malformed_share_code_names_its_field(client, factory, played):
    error = error_of(client.post(action_url(played["campaign"], "assist"), json={"share_code": "x"},
                                 headers=factory.headers("f9")), 422, "VALIDATION_ERROR")
    assert field_messages(error, "share_code") == ["Not a share code."]


def test_assist_and_cashout_over_http_answer_the_packets_progress(client, factory, campaign):
    opened = client.post(action_url(campaign, "open"), json={}, headers=factory.headers("owner"))
    assert opened.status_code == 200, opened.json
    code = opened.json["outcome"]["share_code"]
    for i in range(4):
        helped = client.post(action_url(campaign, "assist"), json={"share_code": code},
                             headers=factory.headers(f"h{i}"))
        assert helped.status_code == 200 and helped.json["outcome"]["assist"] == i + 1
    paid = client.post(action_url(campaign, "cashout"), json={"packet_id": code}, headers=factory.headers("owner"))
    assert paid.status_code == 200
    assert paid.json["grants"][0]["status"] == "pending" and paid.json["grants"][0]["reward"]["amount"] == 600


def test_the_consolation_is_paid_once_for_an_expired_packet(factory, container, settings):
    t0 = SystemClock().now()
    campaign_id = factory.campaign(definition(now=t0, packet_hours=1, consolation=CONSOLATION))
    code = play_at(frozen(container, settings, t0), campaign_id, "owner", "open", {}).outcome["share_code"]
    play_at(frozen(container, settings, t0), campaign_id, "f1", "assist", {"share_code": code})
    late = frozen(container, settings, t0 + timedelta(hours=1, milliseconds=1))

    consoled = play_at(late, campaign_id, "owner", "cashout", {"packet_id": code})

    assert consoled.outcome["paid"] == "consoled" and consoled.grants[0]["reward"]["amount"] == 5
    with pytest.raises(PacketClosedError):
        play_at(late, campaign_id, "owner", "cashout", {"packet_id": code})
    assert stored_packet(container, campaign_id, code)["status"] == "consoled"


# -- races ---------------------------------------------------------------------------------------

def check_packet_consistent(container: Any, campaign_id: int, code: str, winners: set[str]) -> dict[str, str]:
    """The packet's counters agree with who was admitted: one field per helper, amounts in order, <= target."""
    stored = stored_packet(container, campaign_id, code)
    amounts = json.loads(stored["amounts"])
    assists, progress = int(stored["assists"]), int(stored["progress_fen"])
    helpers = {k[2:]: int(v) for k, v in stored.items() if k.startswith("h:")}
    assert set(helpers) == winners and len(winners) == assists
    assert sorted(helpers.values()) == list(range(assists))
    assert progress == sum(amounts[:assists]) <= int(stored["target_fen"])
    owner = player_hash(container, campaign_id, stored["owner"])
    assert (int(owner["rp:prog"]), int(owner["rp:as"])) == (progress, assists)
    return stored


def test_helpers_racing_the_target_never_pass_it_and_each_counts_once(factory, container, campaign):
    code = open_packet(factory, campaign)["share_code"]
    helpers = [f"h{i}" for i in range(30)]

    codes = dict(race(lambda h: factory.play(campaign, h, "assist", {"share_code": code}), helpers))

    assert Counter(codes.values()) == {"OK": 4, "PACKET_FULL": 26}
    stored = check_packet_consistent(container, campaign, code, {h for h, c in codes.items() if c == "OK"})
    assert stored["progress_fen"] == stored["target_fen"] == "600"


def test_helpers_in_many_processes_racing_the_target_fill_it_exactly(factory, container, settings):
    campaign_id = factory.campaign(definition(target_fen=5000, max_assists=12, welcome_reward=None))
    code = open_packet(factory, campaign_id)["share_code"]
    helpers = [f"p{i}" for i in range(48)]
    plays = [(helper, {"share_code": code}, uuid.uuid4().hex) for helper in helpers]
    codes = dict(racers.race(settings, campaign_id, plays, processes=4, threads=4, action="assist"))

    assert Counter(codes.values()) == {"OK": 12, "PACKET_FULL": 36}
    stored = check_packet_consistent(container, campaign_id, code, {h for h, c in codes.items() if c == "OK"})
    assert stored["progress_fen"] == "5000"


def test_helpers_racing_the_deadline_count_before_it_and_are_refused_after(factory, container, settings):
    t0 = SystemClock().now()
    campaign_id = factory.campaign(definition(now=t0, packet_hours=1, target_fen=1000, max_assists=20,
                                              assists_per_day=5, welcome_reward=None))
    opened = play_at(frozen(container, settings, t0), campaign_id, "owner", "open", {}).outcome
    code, deadline = opened["share_code"], parse_instant(opened["packet"]["deadline"])
    early = frozen(container, settings, deadline - timedelta(milliseconds=1))
    on_time = frozen(container, settings, deadline)
    late = frozen(container, settings, deadline + timedelta(milliseconds=1))
    clocks = {"e": early, "d": on_time, "l": late}
    helpers = [f"{kind}{i}" for i in range(8) for kind in clocks]

    codes = dict(race(lambda h: play_at(clocks[h[0]], campaign_id, h, "assist", {"share_code": code}), helpers))

    assert {h: c for h, c in codes.items() if h[0] == "e"} == {f"e{i}": "OK" for i in range(8)}
    assert {c for h, c in codes.items() if h[0] != "e"} == {"PACKET_EXPIRED"}
    check_packet_consistent(container, campaign_id, code, {f"e{i}" for i in range(8)})
    with pytest.raises(PacketNotFullError):
        play_at(early, campaign_id, "owner", "cashout", {"packet_id": code})
    with pytest.raises(PacketExpiredError):  # no consolation configured: nothing to pay
        play_at(late, campaign_id, "owner", "cashout", {"packet_id": code})


def test_a_late_consolation_and_early_assists_racing_agree_on_the_progress_paid(factory, container, settings):
    t0 = SystemClock().now()
    campaign_id = factory.campaign(definition(now=t0, packet_hours=1, target_fen=1000, max_assists=20,
                                              welcome_reward=None, consolation=CONSOLATION))
    opened = play_at(frozen(container, settings, t0), campaign_id, "owner", "open", {}).outcome
    code, deadline = opened["share_code"], parse_instant(opened["packet"]["deadline"])
    early = frozen(container, settings, deadline - timedelta(milliseconds=1))
    late = frozen(container, settings, deadline + timedelta(milliseconds=1))
    consolation: list[Any] = []

    def play(user: str) -> Any:
        if user == "owner":
            consolation.append(play_at(late, campaign_id, "owner", "cashout", {"packet_id": code}))
            return consolation[-1]
        return play_at(early, campaign_id, user, "assist", {"share_code": code})

    codes = dict(race(play, ["owner", *(f"f{i}" for i in range(10))]))

    assert codes["owner"] == "OK"
    admitted = {h for h, c in codes.items() if c == "OK" and h != "owner"}
    assert {c for h, c in codes.items() if h not in admitted and h != "owner"} <= {"PACKET_CLOSED"}
    stored = check_packet_consistent(container, campaign_id, code, admitted)
    assert stored["status"] == "consoled"
    assert consolation[0].outcome["progress_fen"] == int(stored["progress_fen"])  # no assist after the payout


def test_one_helper_tapping_twice_at_once_assists_once(factory, container, campaign):
    code = open_packet(factory, campaign)["share_code"]
    answers = race(lambda helper: factory.play(campaign, helper, "assist", {"share_code": code}), ["same"] * 8)

    assert tally(answers) == {"OK": 1, "ALREADY_ASSISTED": 7}
    check_packet_consistent(container, campaign, code, {"same"})
    assert player_hash(container, campaign, "same")["rp:helped"] == "1"


def test_one_helper_racing_over_many_packets_stops_at_the_daily_cap(factory, container, campaign):
    owners = [f"o{i}" for i in range(8)]
    codes_by_owner = {o: open_packet(factory, campaign, o)["share_code"] for o in owners}

    answers = race(lambda owner: factory.play(campaign, "busy", "assist", {"share_code": codes_by_owner[owner]}),
                   owners)

    assert tally(answers) == {"OK": 3, "ASSIST_LIMIT_REACHED": 5}
    day = business_day(SystemClock().now(), "Asia/Shanghai")
    assert player_hash(container, campaign, "busy")[f"as:{day:%Y%m%d}"] == "3"
    assisted = [o for o in owners if "h:busy" in stored_packet(container, campaign, codes_by_owner[o])]
    assert len(assisted) == 3


def test_an_owner_cashing_out_twice_at_once_is_paid_once(factory, container, campaign, settle, db_session):
    code = open_packet(factory, campaign)["share_code"]
    for i in range(4):
        factory.play(campaign, f"f{i}", "assist", {"share_code": code})

    answers = race(lambda owner: factory.play(campaign, owner, "cashout", {"packet_id": code}), ["owner"] * 6)

    assert tally(answers) == {"OK": 1, "PACKET_CLOSED": 5}
    settle(worker=False)
    db_session.rollback()
    paid = db_session.scalars(select(Grant).where(Grant.campaign_id == campaign, Grant.user_id == "owner")).all()
    assert [g.cost_fen for g in paid] == [600]


def test_an_owner_opening_twice_at_once_gets_one_packet(factory, container, campaign):
    answers = race(lambda owner: factory.play(campaign, owner, "open", {}), ["owner"] * 6)

    assert tally(answers) == {"OK": 1, "PACKET_ALREADY_OPEN": 5}
    assert player_hash(container, campaign, "owner")["rp:n"] == "1"
