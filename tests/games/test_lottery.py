"""lottery: the pure draw, its fairness, its forecast, and plays through the engine and HTTP under races."""

from __future__ import annotations

import itertools
import math
import threading
import uuid
from collections import Counter
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

import marshmallow
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from campaigns.fairness import verify
from campaigns.models import ClaimRecord, Grant, PointsEntry
from engine.chances import NoChancesError, NotEnoughPointsError
from engine.claims import Claim, Op, Take
from engine.clock import SystemClock, iso
from engine.errors import HuodongError
from engine.fairness import draw_seed
from engine.game import PlayContext, ViewContext
from engine.state import GameState
from engine.tasks import TaskTokenError, UnknownTaskError
from games.lottery import (
    BoughtChancesLimitError,
    ChancesNotSoldError,
    Lottery,
    LotteryConfig,
    pick,
    probability_table,
)
from tests.support.racers import race, tally
from tests.web.test_bad_input import error_of, field_messages

DAY = date(2026, 11, 11)
NOW = datetime(2026, 11, 11, 4, tzinfo=UTC)
SECRET = "ab" * 32
_names = itertools.count(1)


def points(amount: int, cost_fen: int | None = None) -> dict[str, Any]:
    return {"type": "points", "amount": amount, "cost_fen": amount if cost_fen is None else cost_fen}


def wheel(**overrides: Any) -> dict[str, Any]:
    """A wheel: a scarce BIG prize falling back to SMALL, an unlimited SMALL, and a thanks slot."""
    return {
        "prizes": [
            {"id": "BIG", "name": "500 points", "weight": 1, "stock": 2, "per_user_limit": 1,
             "reward": points(500), "fallback": "SMALL"},
            {"id": "SMALL", "name": "5 points", "weight": 4, "reward": points(5)},
            {"id": "THANKS", "name": "Thanks for playing", "weight": 5},
        ],
        "chances": {"free_per_day": 1, "points_per_chance": 10, "max_bought_per_day": 3},
        "tasks": [{"task": "visit", "kind": "visit", "title": "Visit the shop", "chances": 2, "daily_cap": 2}],
        **overrides,
    }


def load(config: dict[str, Any]) -> dict[str, Any]:
    return LotteryConfig().load(config)


def state(player: dict[str, Any] | None = None, stock: dict[str, int] | None = None, points_balance: int = 0
          ) -> GameState:
    return GameState("u", stock_left={"prize:BIG": 2} if stock is None else stock,
                     hashes={"user:u": {k: str(v) for k, v in (player or {}).items()}},
                     attributes={"points": points_balance})


def ctx(game_state: GameState | None = None, seq: int = 0) -> PlayContext:
    return PlayContext(campaign_id=1, version=1, user_id="u", claim_id="c0ffee" * 4, now=NOW, day=DAY,
                       seed=draw_seed(SECRET, "u", seq), state=game_state or state())


def draw(config: dict[str, Any], times: int = 1, game_state: GameState | None = None, seq: int = 0) -> Claim:
    return Lottery().plan(load(config), "draw", {"times": times}, ctx(game_state, seq))


def only(prize_id: str) -> list[dict[str, Any]]:
    """The wheel's prizes with all the weight on one of them."""
    return [{**p, "weight": int(p["id"] == prize_id)} for p in wheel()["prizes"]]


# --- the probability table and the pure draw ---------------------------------------------------------------

def test_the_table_lists_every_prize_then_the_miss_slot_with_probabilities_summing_to_one():
    ids, probabilities = probability_table(load(wheel(miss_weight=10)))
    assert ids == ("BIG", "SMALL", "THANKS", None)
    assert probabilities.tolist() == [0.05, 0.2, 0.25, 0.5]


def test_pick_never_lands_on_a_slot_without_weight_even_at_the_edges_of_the_unit_interval():
    probabilities = np.array([0.0, 0.1, 0.0, 0.9, 0.0])
    edges = np.array([0.0, 0.1 - 1e-17, 0.1, 0.5, np.nextafter(1.0, 0.0)])
    assert pick(probabilities, edges).tolist() == [1, 1, 3, 3, 3]


def test_a_draw_spends_free_chances_first_then_earned_ones_and_counts_one_unit_per_spin():
    claim = draw(wheel(), 10, state({"ch": 12}))
    assert claim.units == 10
    assert claim.ops[:2] == (Op.incr("user:u", "fd:20261111", 1, high=1), Op.incr("user:u", "ch", -9, low=0))
    assert claim.outcome["times"] == 10 and len(claim.outcome["draws"]) == 10
    assert claim.outcome["chances_left"] == 3


def test_ten_spins_with_nine_chances_are_refused_whole():
    with pytest.raises(NoChancesError) as refused:
        draw(wheel(), 10, state({"ch": 8}))
    assert refused.value.details == {"needed": 10, "available": 9}


def test_each_win_is_one_grant_without_its_cost_and_a_miss_is_none():
    claim = draw(wheel(prizes=only("SMALL")), 10, state({"ch": 9}))
    assert [d["given"] for d in claim.outcome["draws"]] == ["SMALL"] * 10
    assert [(g.reward, g.cost_fen) for g in claim.grants] == [({"type": "points", "amount": 5,
                                                               "expires_in_days": None}, 5)] * 10
    assert claim.takes == ()  # SMALL is unlimited: no stock to take
    missed = draw(wheel(prizes=only("THANKS")))
    assert missed.outcome["draws"] == [{"drawn": "THANKS", "given": "THANKS"}] and missed.grants == ()


def test_a_sold_out_prize_gives_its_fallback_and_the_outcome_records_the_substitution():
    claim = draw(wheel(prizes=only("BIG")), 1, state(stock={"prize:BIG": 0}))
    assert claim.outcome["draws"] == [{"drawn": "BIG", "given": "SMALL", "reason": "sold_out"}]
    assert claim.takes == () and [g.reward["amount"] for g in claim.grants] == [5]


def test_the_last_unit_goes_to_the_first_spin_of_ten_and_the_rest_fall_back():
    claim = draw(wheel(prizes=[{**p, "per_user_limit": None} for p in only("BIG")]), 10,
                 state({"ch": 9}, stock={"prize:BIG": 1}))
    assert [d["given"] for d in claim.outcome["draws"]] == ["BIG"] + ["SMALL"] * 9
    assert {d.get("reason") for d in claim.outcome["draws"][1:]} == {"sold_out"}
    assert claim.takes == (Take("prize:BIG", 1),)
    assert claim.cost_fen == 500 + 9 * 5


def test_a_prize_the_player_has_won_up_to_its_cap_gives_the_config_wide_fallback():
    prizes = [{**p, "fallback": None} for p in only("BIG")]
    claim = draw(wheel(prizes=prizes, fallback="THANKS"), 1, state({"won:BIG": 1}))
    assert claim.outcome["draws"] == [{"drawn": "BIG", "given": "THANKS", "reason": "user_limit"}]
    assert claim.grants == () and claim.takes == ()


def test_a_fallback_chain_of_unavailable_prizes_ends_in_nothing_given():
    prizes = [{"id": "A", "name": "a", "weight": 1, "stock": 1, "reward": points(1), "fallback": "B"},
              {"id": "B", "name": "b", "weight": 0, "stock": 1, "reward": points(1), "fallback": "A"}]
    claim = draw({"prizes": prizes, "chances": {"free_per_day": 1}}, 1,
                 state(stock={"prize:A": 0, "prize:B": 0}))
    assert claim.outcome["draws"] == [{"drawn": "A", "given": None, "reason": "sold_out"}]
    assert claim.grants == ()


def test_the_pity_prize_comes_exactly_after_n_misses_in_a_row_and_the_counter_resets():
    config = wheel(prizes=only("THANKS"), pity={"after_misses": 3, "prize": "SMALL"})
    claim = draw(config, 10, state({"ch": 9, "pity": 1}))
    pity = [d.get("pity", False) for d in claim.outcome["draws"]]
    assert pity == [False, False, True, False, False, False, True, False, False, False]
    assert [d["given"] for d in claim.outcome["draws"] if d.get("pity")] == ["SMALL", "SMALL"]
    assert claim.outcome["misses"] == 3
    assert Op.expect("user:u", "pity", "1") in claim.ops and Op.put("user:u", "pity", 3) in claim.ops


def test_a_first_draw_expects_no_pity_counter_and_a_win_resets_it():
    claim = draw(wheel(prizes=only("SMALL"), pity={"after_misses": 3, "prize": "SMALL"}))
    assert Op.expect("user:u", "pity", None) in claim.ops and Op.put("user:u", "pity", 0) in claim.ops


def test_a_won_prize_is_counted_in_the_players_hash_bounded_by_its_cap():
    claim = draw(wheel(prizes=only("BIG")))
    assert Op.incr("user:u", "won:BIG", 1, high=1) in claim.ops
    assert claim.takes == (Take("prize:BIG", 1),)


def test_the_same_seed_and_state_always_plan_the_same_claim_and_another_seq_another_draw():
    config = wheel()
    first = draw(config, 10, state({"ch": 9}), seq=4)
    assert draw(config, 10, state({"ch": 9}), seq=4) == first
    others = [draw(config, 10, state({"ch": 9}), seq=s).outcome["draws"] for s in range(5, 10)]
    assert any(o != first.outcome["draws"] for o in others)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(stock=st.lists(st.integers(0, 3), min_size=3, max_size=3),
       won=st.lists(st.integers(0, 2), min_size=3, max_size=3),
       caps=st.lists(st.one_of(st.none(), st.integers(1, 2)), min_size=3, max_size=3),
       times=st.sampled_from([1, 10]), seq=st.integers(0, 10_000),
       fallback=st.sampled_from([None, "P0", "P1", "P2", "T"]))
def test_a_claim_never_gives_more_than_the_stock_read_or_a_players_cap(stock, won, caps, times, seq, fallback):
    prizes = [{"id": f"P{i}", "name": "p", "weight": 1 + i, "stock": stock[i], "per_user_limit": caps[i],
               "reward": points(1 + i)} for i in range(3)] + [{"id": "T", "name": "t", "weight": 3}]
    game_state = state({"ch": 10, **{f"won:P{i}": won[i] for i in range(3)}},
                       stock={f"prize:P{i}": stock[i] for i in range(3)})
    claim = draw({"prizes": prizes, "fallback": fallback, "chances": {"free_per_day": 0}}, times, game_state, seq)
    given = Counter(d["given"] for d in claim.outcome["draws"])
    for i in range(3):
        assert given[f"P{i}"] <= stock[i]
        if caps[i] is not None:
            assert given[f"P{i}"] == 0 if won[i] >= caps[i] else won[i] + given[f"P{i}"] <= caps[i]
    assert {t.item: t.quantity for t in claim.takes} == {f"prize:{p}": n for p, n in given.items() if p and p != "T"}
    assert len(claim.grants) == sum(n for p, n in given.items() if p and p != "T")
    for entry in claim.outcome["draws"]:
        assert ("reason" in entry) == (entry["given"] != entry["drawn"])


@pytest.mark.slow
def test_one_million_spins_of_the_pure_plan_follow_the_configured_probabilities():
    """Fairness (invariant 8): a chi-square goodness-of-fit test over 1,000,000 spins with stock to spare."""
    config = load({
        "prizes": [{"id": f"P{i}", "name": f"prize {i}", "weight": w, "stock": 10**9, "reward": points(1)}
                   for i, w in enumerate([1, 5, 20, 74, 150, 250])] + [{"id": "T", "name": "thanks", "weight": 200}],
        "miss_weight": 300,
        "chances": {"free_per_day": 0},
    })
    ids, probabilities = probability_table(config)
    game, base = Lottery(), ctx(state({"ch": 10}, stock={f"prize:P{i}": 10**9 for i in range(6)}))
    counts = Counter()
    for seq in range(100_000):
        claim = game.plan(config, "draw", {"times": 10}, replace(base, seed=draw_seed(SECRET, "u", seq)))
        counts.update(d["drawn"] for d in claim.outcome["draws"])
    observed = np.array([counts[i] for i in ids], dtype=np.float64)
    assert observed.sum() == 1_000_000
    expected = probabilities * 1_000_000
    statistic = float(((observed - expected) ** 2 / expected).sum())
    dof = len(ids) - 1
    # Upper 0.1 % point of chi-square by the Wilson-Hilferty approximation (z = 3.0902 is the normal's 99.9 %
    # quantile); for 7 degrees of freedom it gives 24.53, a little above the table's 24.32.
    critical = dof * (1 - 2 / (9 * dof) + 3.0902 * math.sqrt(2 / (9 * dof))) ** 3
    print(f"\nchi-square over 1,000,000 spins: {statistic:.2f} (dof {dof}, critical at p=0.001: {critical:.2f})")
    assert statistic < critical


# --- buying chances and tasks, pure ------------------------------------------------------------------------

def test_buying_chances_debits_points_and_earns_them_within_the_daily_cap():
    config = load(wheel())
    claim = Lottery().plan(config, "buy_chances", {"count": 2}, ctx(state({"bought:20261111": 1}, points_balance=50)))
    assert claim.units == 0
    assert [(g.reward, g.cost_fen) for g in claim.grants] == [({"type": "points_debit", "amount": 20}, 0)]
    assert claim.ops == (Op.incr("user:u", "bought:20261111", 2, high=3, refuse="BOUGHT_CAP"),
                         Op.incr("user:u", "pts", 20, high=50), Op.incr("user:u", "ch", 2))
    assert claim.outcome == {"bought": 2, "points_spent": 20, "chances_left": 3}
    assert isinstance(claim.refusals["BOUGHT_CAP"], BoughtChancesLimitError)


@pytest.mark.parametrize(("config", "player", "balance", "error"), [
    (wheel(chances={"points_per_chance": None}), {}, 100, ChancesNotSoldError),
    (wheel(), {"bought:20261111": 2}, 100, BoughtChancesLimitError),
    (wheel(), {"pts": 95}, 100, NotEnoughPointsError),
])
def test_buying_chances_is_refused_when_not_sold_over_the_cap_or_without_points(config, player, balance, error):
    with pytest.raises(error):
        Lottery().plan(load(config), "buy_chances", {"count": 2}, ctx(state(player, points_balance=balance)))


def test_completing_a_task_earns_its_chances():
    config = load(wheel())
    started = Lottery().plan(config, "task_start", {"task": "visit"}, ctx())
    record = started.ops[0].value
    claim = Lottery().plan(config, "task_complete", {"task": "visit", "token": started.outcome["token"]},
                           ctx(state({"ts:visit": record})))
    assert claim.ops[-1] == Op.incr("user:u", "ch", 2) and claim.outcome == {"task": "visit", "chances_earned": 2}
    with pytest.raises(TaskTokenError):
        Lottery().plan(config, "task_complete", {"task": "visit", "token": "f" * 24}, ctx(state({"ts:visit": record})))
    with pytest.raises(UnknownTaskError):
        Lottery().plan(config, "task_start", {"task": "nope"}, ctx())


# --- config validation -------------------------------------------------------------------------------------

@pytest.mark.parametrize(("config", "path"), [
    (wheel(prizes=[{"id": "T", "name": "t", "weight": 1, "stock": 5}]), "prizes.0.stock"),
    (wheel(prizes=[{"id": "T", "name": "t", "weight": 1, "per_user_limit": 1}]), "prizes.0.per_user_limit"),
    (wheel(prizes=[{"id": "A", "name": "a", "weight": 1, "reward": points(1), "stock": 1, "fallback": "A"}]),
     "prizes.0.fallback"),
    (wheel(prizes=[{"id": "A", "name": "a", "weight": 1, "reward": points(1), "fallback": "Z"}]), "prizes.0.fallback"),
    (wheel(fallback="Z"), "fallback"),
    (wheel(pity={"after_misses": 3, "prize": "THANKS"}), "pity.prize"),
    (wheel(pity={"after_misses": 0, "prize": "SMALL"}), "pity.after_misses"),
    (wheel(prizes=[{"id": "A", "name": "a", "weight": 0}]), "prizes"),
    (wheel(prizes=[{"id": "A", "name": "a", "weight": 1}, {"id": "A", "name": "b", "weight": 1}]), "prizes"),
    (wheel(prizes=[{"id": "A", "name": "a", "weight": 1.5}]), "prizes.0.weight"),
    (wheel(prizes=[]), "prizes"),
    (wheel(surprise=1), "surprise"),
    (wheel(chances={"free_per_day": -1}), "chances.free_per_day"),
])
def test_a_bad_config_is_refused_naming_the_field(config, path):
    with pytest.raises(marshmallow.ValidationError) as refused:
        load(config)
    node: Any = refused.value.normalized_messages()
    for part in path.split("."):
        node = node[int(part) if part.isdigit() and isinstance(node, dict) and int(part) in node else part]
    assert node


# --- the public rules, the player's state and the forecast -------------------------------------------------

def test_the_rules_show_each_prizes_probability_from_the_same_table_without_costs():
    config = load(wheel(miss_weight=10, pity={"after_misses": 5, "prize": "SMALL"}))
    rules = Lottery().public_view(config)
    assert [(p["id"], p["probability"]) for p in rules["prizes"]] == [("BIG", 0.05), ("SMALL", 0.2), ("THANKS", 0.25)]
    assert rules["miss_probability"] == 0.5
    assert rules["prizes"][0]["fallback"] == "SMALL" and rules["prizes"][1]["fallback"] is None
    assert "cost_fen" not in rules["prizes"][0]["reward"]
    assert rules["pity"] == {"after_misses": 5, "prize": "SMALL"} and rules["draw_times"] == [1, 10]


def test_the_players_state_shows_chances_pity_wins_stock_and_tasks():
    config = load(wheel(pity={"after_misses": 5, "prize": "SMALL"}))
    view = Lottery().player_state(config, state({"ch": 4, "pity": 2, "won:BIG": 1, "bought:20261111": 1},
                                                stock={"prize:BIG": 1}),
                                  ViewContext(campaign_id=1, user_id="u", now=NOW, day=DAY))
    assert view["chances"] == {"free": 1, "earned": 4, "total": 5, "points_per_chance": 10, "bought_today": 1,
                               "max_bought_per_day": 3}
    assert view["pity"] == {"misses": 2, "after_misses": 5, "prize": "SMALL", "guaranteed_within": 4}
    assert view["prizes"] == {"BIG": {"won": 1, "stock_left": 1}, "SMALL": {"won": 0, "stock_left": None},
                              "THANKS": {"won": 0, "stock_left": None}}
    assert view["tasks"][0]["task"] == "visit" and view["tasks"][0]["done_today"] == 0


BEHAVIOUR = {"players": 1000, "participation_rate": 0.5, "plays_per_day": 2.0, "runs": 400}


def test_a_forecast_with_stock_to_spare_expects_probability_times_draws_for_every_prize():
    config = load(wheel(prizes=[{**p, "stock": 10**8 if p.get("stock") else None} for p in wheel()["prizes"]]))
    forecast = Lottery().forecast(config, BEHAVIOUR, 10, np.random.default_rng(3))
    plays = forecast.plays.mean()
    assert abs(plays - 10_000) < 100  # 1000 players x 0.5 x 2 draws x 10 days
    assert set(forecast.wins) == {"BIG", "SMALL"} and set(forecast.stockout_day) == {"BIG"}
    assert abs(forecast.wins["BIG"].mean() / plays - 0.1) < 0.002
    assert abs(forecast.wins["SMALL"].mean() / plays - 0.4) < 0.004
    assert np.array_equal(forecast.cost_fen, forecast.wins["BIG"] * 500 + forecast.wins["SMALL"] * 5)
    assert not forecast.stockout_day["BIG"].any()


def test_a_forecast_runs_a_scarce_prize_out_on_day_one_and_gives_the_overflow_to_its_fallback():
    config = load(wheel(prizes=[{**p, "stock": 50} if p["id"] == "BIG" else p for p in wheel()["prizes"]]))
    forecast = Lottery().forecast(config, BEHAVIOUR, 3, np.random.default_rng(4))
    assert (forecast.wins["BIG"] == 50).all() and (forecast.stockout_day["BIG"] == 1).all()
    # Every spin that landed on BIG (10 %) or SMALL (40 %) pays: 50 BIGs and the rest SMALL.
    assert abs((forecast.wins["BIG"] + forecast.wins["SMALL"]).mean() / forecast.plays.mean() - 0.5) < 0.005
    assert np.array_equal(forecast.cost_fen, 50 * 500 + forecast.wins["SMALL"] * 5)


def test_a_forecast_adds_the_pity_prizes_long_run_rate():
    config = load(wheel(prizes=[{"id": "T", "name": "thanks", "weight": 1},
                                {"id": "BIG", "name": "b", "weight": 0, "reward": points(500)}],
                        pity={"after_misses": 4, "prize": "BIG"}))
    forecast = Lottery().forecast(config, BEHAVIOUR, 5, np.random.default_rng(5))
    # Every spin misses, so the guarantee fires on every 5th spin.
    assert abs(forecast.wins["BIG"].mean() / forecast.plays.mean() - 0.2) < 0.003
    assert any("Pity" in note for note in forecast.notes)


def test_the_admin_simulate_endpoint_forecasts_a_lottery_draft(client, admin_token):
    headers = {"Authorization": f"Bearer {admin_token('marketer')}"}
    created = client.post("/admin/api/v1/campaigns", headers=headers, json=definition(budget_fen=10_000))
    assert created.status_code == 201, created.json
    response = client.post(f"/admin/api/v1/campaigns/{created.json['id']}/simulate", headers=headers,
                           json={"players": 1000, "participation_rate": 0.2, "plays_per_day": 1, "days": 2,
                                 "runs": 50, "seed": 1})
    assert response.status_code == 200, response.json
    forecast = response.json
    assert forecast["stockout_day"]["BIG"] == {"share_of_runs": 1.0, "median_day": 1}
    assert forecast["expected_wins"]["BIG"] == 2
    assert 150 < forecast["expected_wins"]["SMALL"] < 250  # 400 spins x 0.4, and the 38 or so BIG could not give


# --- through the engine and HTTP ---------------------------------------------------------------------------

def definition(config: dict[str, Any] | None = None, **options: Any) -> dict[str, Any]:
    now = SystemClock().now()
    return {"name": f"Wheel {next(_names)}", "game": "lottery", "starts_at": iso(now - timedelta(minutes=1)),
            "ends_at": iso(now + timedelta(days=1)), "config": config or wheel(), **options}


def draw_url(campaign_id: int, action: str = "draw") -> str:
    return f"/api/v1/campaigns/{campaign_id}/actions/{action}"


def player_hash(redis: Any, container: Any, campaign_id: int, user_id: str) -> dict[str, str]:
    raw = redis.hgetall(container.live_state.keys(campaign_id).user(user_id))
    return {(k.decode() if isinstance(k, bytes) else k): (v.decode() if isinstance(v, bytes) else v)
            for k, v in raw.items()}


def give_chances(redis: Any, container: Any, campaign_id: int, user_id: str, count: int) -> None:
    redis.hset(container.live_state.keys(campaign_id).user(user_id), "ch", count)


def test_the_demo_wheel_publishes_and_plays(factory):
    starts = iso(SystemClock().now() - timedelta(minutes=1))
    ends = iso(SystemClock().now() + timedelta(days=7))
    (demo,) = Lottery().demo_definitions(starts, ends)
    campaign = factory.campaign(demo)
    result = factory.play(campaign, "demo", "draw", {})  # one spin unless told ten
    assert len(result.outcome["draws"]) == 1 and result.outcome["chances_left"] == 2


def test_a_ten_draw_through_http_spends_chances_pays_wins_and_shows_in_the_players_view(
        client, factory, container, redis, settle, db_session):
    campaign = factory.campaign(definition())
    give_chances(redis, container, campaign, "alice", 9)
    response = client.post(draw_url(campaign), json={"times": 10}, headers=factory.headers("alice"))
    assert response.status_code == 200, response.json
    draws = response.json["outcome"]["draws"]
    won = [d["given"] for d in draws if d["given"] in ("BIG", "SMALL")]
    assert len(draws) == 10 and len(response.json["grants"]) == len(won)
    view = client.get(f"/api/v1/campaigns/{campaign}", headers=factory.headers("alice")).json
    assert view["rules"]["prizes"][0]["probability"] == 0.1
    assert view["me"]["chances"]["total"] == 0
    assert view["me"]["prizes"]["BIG"]["won"] == won.count("BIG")
    settle()
    db_session.rollback()
    ledger = db_session.scalars(select(PointsEntry.delta).where(PointsEntry.user_id == "alice")).all()
    assert sorted(ledger) == sorted(500 if p == "BIG" else 5 for p in won)


def test_a_sold_out_prize_is_substituted_and_the_record_says_so(factory, container, redis, settle, db_session):
    config = wheel(prizes=[{**p, "per_user_limit": None} for p in only("BIG")])
    campaign = factory.campaign(definition(config))
    give_chances(redis, container, campaign, "bob", 9)
    result = factory.play(campaign, "bob", "draw", {"times": 10})
    assert [d["given"] for d in result.outcome["draws"]] == ["BIG", "BIG"] + ["SMALL"] * 8
    assert container.live_state.stats(campaign).stock["prize:BIG"]["left"] == 0
    settle(worker=False)
    db_session.rollback()
    record = db_session.scalar(select(ClaimRecord).where(ClaimRecord.campaign_id == campaign))
    assert record.outcome["draws"][2] == {"drawn": "BIG", "given": "SMALL", "reason": "sold_out"}


def test_buying_chances_with_points_and_earning_them_by_a_task(factory, container, redis, settle, db_session):
    campaign = factory.campaign(definition())
    container.attributes.write({"carol": {"points": "25"}}, {})
    bought = factory.play(campaign, "carol", "buy_chances", {"count": 2})
    assert {k: bought.outcome[k] for k in ("bought", "points_spent", "chances_left")} == {
        "bought": 2, "points_spent": 20, "chances_left": 3}
    with pytest.raises(NotEnoughPointsError):
        factory.play(campaign, "carol", "buy_chances", {"count": 1})
    token = factory.play(campaign, "carol", "task_start", {"task": "visit"}).outcome["token"]
    earned = factory.play(campaign, "carol", "task_complete", {"task": "visit", "token": token})
    assert earned.outcome["chances_earned"] == 2
    assert player_hash(redis, container, campaign, "carol")["ch"] == "4"
    result = factory.play(campaign, "carol", "draw", {"times": 1})
    assert result.outcome["chances_left"] == 4  # the free chance went first
    settle()
    db_session.rollback()
    assert db_session.scalars(select(PointsEntry.delta).where(PointsEntry.user_id == "carol",
                                                              PointsEntry.delta < 0)).all() == [-20]


def test_every_recorded_draw_re_derives_from_the_secret(factory, container, redis, settle, db_session):
    campaign = factory.campaign(definition(wheel(pity={"after_misses": 2, "prize": "SMALL"})))
    for user in ("v1", "v2"):
        give_chances(redis, container, campaign, user, 20)
        factory.play(campaign, user, "draw", {"times": 10})
        factory.play(campaign, user, "draw", {"times": 1})
    settle(worker=False)
    db_session.rollback()
    report = verify(db_session, campaign)
    assert report.ok and report.checked == 4, report.to_dict()


@pytest.mark.parametrize(("body", "field"), [
    ({"times": 2}, "times"),
    ({"times": "1"}, "times"),
    ({"times": 1.0}, "times"),
    ({"times": None}, "times"),
    ({"times": 1, "prize": "BIG"}, "prize"),
])
def test_a_bad_draw_is_a_validation_error_naming_the_field_with_nothing_applied(
        client, factory, container, redis, body, field):
    campaign = factory.campaign(definition())
    before = player_hash(redis, container, campaign, "eve")
    error = error_of(client.post(draw_url(campaign), json=body, headers=factory.headers("eve")), 422,
                     "VALIDATION_ERROR")
    assert field_messages(error, field)
    assert player_hash(redis, container, campaign, "eve") == before
    assert container.live_state.stats(campaign).outbox_entries == 0


@pytest.mark.parametrize(("action", "body", "status", "code"), [
    ("draw", {"times": 10}, 409, "NO_CHANCES"),
    ("buy_chances", {"count": 1}, 409, "NOT_ENOUGH_POINTS"),
    ("buy_chances", {"count": 0}, 422, "VALIDATION_ERROR"),
    ("buy_chances", {"count": "1"}, 422, "VALIDATION_ERROR"),
    ("buy_chances", {}, 422, "VALIDATION_ERROR"),
    ("buy_chances", {"count": 4}, 409, "BOUGHT_CHANCES_LIMIT"),
    ("task_start", {"task": "nope"}, 422, "UNKNOWN_TASK"),
    ("task_start", {"task": "Bad Name!"}, 422, "VALIDATION_ERROR"),
    ("task_complete", {"task": "nope", "token": "a" * 24}, 422, "UNKNOWN_TASK"),
    ("task_complete", {"task": "visit", "token": "a" * 24}, 409, "TASK_TOKEN_INVALID"),
    ("task_complete", {"task": "visit", "token": "not-a-token"}, 422, "VALIDATION_ERROR"),
    ("spin", {}, 404, "UNKNOWN_ACTION"),
])
def test_every_refused_action_answers_its_stable_code_and_applies_nothing(
        client, factory, container, redis, action, body, status, code):
    campaign = factory.campaign(definition())
    before = player_hash(redis, container, campaign, "eve")
    error_of(client.post(draw_url(campaign, action), json=body, headers=factory.headers("eve")), status, code)
    assert player_hash(redis, container, campaign, "eve") == before
    assert container.live_state.stats(campaign).outbox_entries == 0


def test_a_campaign_that_sells_no_chances_refuses_to_sell_them(client, factory):
    campaign = factory.campaign(definition(wheel(chances={"points_per_chance": None})))
    error_of(client.post(draw_url(campaign, "buy_chances"), json={"count": 1}, headers=factory.headers("eve")),
             409, "CHANCES_NOT_SOLD")


# --- races -------------------------------------------------------------------------------------------------

def _at_once(factory, campaign: int, user: str, payloads: list[dict[str, Any]]) -> list[tuple[int, str]]:
    """Play one draw per payload from threads released together; answers (times, code) pairs."""
    start = threading.Barrier(len(payloads))
    results: list[tuple[int, str]] = []
    lock = threading.Lock()

    def run(payload: dict[str, Any]) -> None:
        start.wait()
        try:
            factory.play(campaign, user, "draw", payload)
            code = "OK"
        except HuodongError as exc:
            code = exc.code
        with lock:
            results.append((payload["times"], code))

    threads = [threading.Thread(target=run, args=(p,)) for p in payloads]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def test_ten_and_one_spins_racing_for_the_last_ten_chances_never_both_win(factory, container, redis):
    campaign = factory.campaign(definition(wheel(chances={"free_per_day": 0})))
    winners = Counter()
    for round_ in range(12):
        user = f"racer{round_}"
        give_chances(redis, container, campaign, user, 10)
        results = sorted(_at_once(factory, campaign, user, [{"times": 10}, {"times": 1}]))
        codes = [code for _times, code in results]
        assert sorted(codes) == ["NO_CHANCES", "OK"], results
        won = next(times for times, code in results if code == "OK")
        winners[won] += 1
        assert player_hash(redis, container, campaign, user)["ch"] == str(10 - won)
        assert int(player_hash(redis, container, campaign, user)["all"]) == won
    assert sum(winners.values()) == 12


def test_ten_and_one_spins_racing_for_ten_earned_and_one_free_chance_both_win(factory, container, redis):
    campaign = factory.campaign(definition(wheel(chances={"free_per_day": 1})))
    for round_ in range(6):
        user = f"pair{round_}"
        give_chances(redis, container, campaign, user, 10)
        results = _at_once(factory, campaign, user, [{"times": 10}, {"times": 1}])
        assert sorted(code for _times, code in results) == ["OK", "OK"], results
        left = player_hash(redis, container, campaign, user)
        assert left["ch"] == "0" and [v for k, v in left.items() if k.startswith("fd:")] == ["1"]
        assert int(left["all"]) == 11


def test_racing_spins_of_one_player_fire_the_guarantee_exactly_when_due(factory, container, redis, settle, db_session):
    after = 3
    config = wheel(prizes=[{"id": "T", "name": "thanks", "weight": 1},
                           {"id": "PITY", "name": "guaranteed", "weight": 0, "reward": points(50)}],
                   pity={"after_misses": after, "prize": "PITY"}, chances={"free_per_day": 0})
    campaign = factory.campaign(definition(config))
    give_chances(redis, container, campaign, "lucky", 100)
    results = _at_once(factory, campaign, "lucky", [{"times": 1}] * 20 + [{"times": 10}] * 4)
    assert {code for _times, code in results} <= {"OK", "CONFLICT"}
    spins = sum(times for times, code in results if code == "OK")
    assert spins >= 2 * (after + 1)
    settle(worker=False)
    db_session.rollback()
    records = sorted(db_session.scalars(select(ClaimRecord).where(ClaimRecord.campaign_id == campaign)),
                     key=lambda r: r.draw["seq"])
    assert [r.draw["seq"] for r in records] == list(range(len(records)))
    misses = 0
    for record in records:
        for entry in record.outcome["draws"]:
            due = misses >= after
            assert entry.get("pity", False) == due and entry["given"] == ("PITY" if due else "T")
            misses = 0 if due else misses + 1
        assert record.outcome["misses"] == misses
    assert player_hash(redis, container, campaign, "lucky")["pity"] == str(spins % (after + 1))
    grants = db_session.scalars(select(Grant).where(Grant.campaign_id == campaign)).all()
    assert len(grants) == spins // (after + 1)


@pytest.mark.slow
def test_players_in_many_processes_never_oversell_a_scarce_prize_and_get_its_fallback(
        settings, factory, container, settle, db_session):
    config = wheel(prizes=[
        {"id": "BIG", "name": "scarce", "weight": 1, "stock": 5, "reward": points(500), "fallback": "SMALL"},
        {"id": "SMALL", "name": "fallback", "weight": 0, "reward": points(5)},
        {"id": "T", "name": "thanks", "weight": 1},
    ])
    campaign = factory.campaign(definition(config))
    plays = [(f"p{i}", {"times": 1}, uuid.uuid4().hex) for i in range(160)]

    outcomes = race(settings, campaign, plays, processes=4, threads=4, action="draw")

    assert tally(outcomes) == {"OK": 160}
    assert container.live_state.stats(campaign).stock["prize:BIG"] == {"total": 5, "taken": 5, "left": 0}
    settle(worker=False)
    db_session.rollback()
    entries = [d for r in db_session.scalars(select(ClaimRecord).where(ClaimRecord.campaign_id == campaign))
               for d in r.outcome["draws"]]
    given = Counter(d["given"] for d in entries)
    drawn_big = sum(d["drawn"] == "BIG" for d in entries)
    assert given["BIG"] == 5 and given["SMALL"] == drawn_big - 5 > 0
    assert all(d == {"drawn": "BIG", "given": "SMALL", "reason": "sold_out"} for d in entries
               if d["given"] == "SMALL")
    amounts = Counter(g.reward["amount"] for g in db_session.scalars(select(Grant).where(
        Grant.campaign_id == campaign)))
    assert amounts == {500: 5, 5: drawn_big - 5}
