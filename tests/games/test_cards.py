"""cards (集卡): draws by rarity with a scarce stock, gifts and asks that conserve cards, and the pool split.

Pure plan tests build the state by hand; integration tests play through the
engine and HTTP on real Redis and SQL; the race tests play across threads
and processes and count the cards afterwards from Redis.
"""

from __future__ import annotations

import threading
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, timedelta
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from marshmallow import ValidationError
from sqlalchemy import select

from engine.chances import NoChancesError
from engine.claims import Take
from engine.clock import SystemClock, iso
from engine.errors import HuodongError
from engine.game import PlayContext
from engine.simulation import BehaviourSchema
from engine.state import GameState
from engine.tasks import TaskTokenError, UnknownTaskError
from games.cards import (
    CardAskLimitError,
    CardGiftLimitError,
    CardNotHeldError,
    CardRequestClosedError,
    CardRequestNotFoundError,
    CardRequestNotYoursError,
    Cards,
    CardsConfig,
    CardSelfTransferError,
    UnknownCardError,
    card_index,
    cumulative_weights,
    split_pool,
)
from tests.support.footprint import footprint
from tests.support.racers import race

DAY = date(2026, 1, 28)
NOW = datetime(2026, 1, 28, 4, tzinfo=UTC)
CLAIM = "0190abcdef0123456789abcd"
GAME = Cards()


def cards_config(**overrides: Any) -> dict[str, Any]:
    """A raw config: two common cards and a scarce one, an equal pool paid in points."""
    config = {
        "cards": [
            {"card": "a", "name": "Card A", "weight": 60},
            {"card": "b", "name": "Card B", "weight": 30},
            {"card": "s", "name": "Scarce", "weight": 10, "stock": 50},
        ],
        "chances": {"free_per_day": 2},
        "tasks": [{"task": "visit", "kind": "visit", "title": "Visit", "chances": 1, "daily_cap": 2}],
        "gifts_per_day": 5,
        "asks_per_day": 3,
        "pool": {"pool_fen": 1000, "split": "equal", "min_share_fen": 1, "reward": {"type": "points"}},
    }
    config.update(overrides)
    return config


CONFIG = CardsConfig().load(cards_config())


def ctx(user: str = "me", hashes: dict[str, dict[str, Any]] | None = None, *, stock_left: int = 50, seed: int = 0,
        claim_id: str = CLAIM) -> PlayContext:
    hashes = {key: {f: str(v) for f, v in fields.items()} for key, fields in (hashes or {}).items()}
    state = GameState(user, stock_left={"card:s": stock_left}, hashes=hashes)
    return PlayContext(campaign_id=1, version=1, user_id=user, claim_id=claim_id, now=NOW, day=DAY, seed=seed,
                       state=state)


def hand_of(**counts: int) -> dict[str, int]:
    return {f"c:{card}": n for card, n in counts.items()}


# -- config ------------------------------------------------------------------------------------------------------


def test_the_demo_config_loads_and_its_pool_is_a_reward_with_the_amount_filled_in():
    demo = GAME.demo_definitions("2026-01-20T00:00:00Z", "2026-02-20T00:00:00Z")
    config = CardsConfig().load(demo[0]["config"])
    assert GAME.stock(config) == {"card:jingye": 2000}
    assert GAME.rewards(config)[0] == {"type": "points", "amount": 888_800, "cost_fen": 888_800}


@pytest.mark.parametrize(("change", "where"), [
    ({"cards": [{"card": "a", "name": "A", "weight": 1}, {"card": "a", "name": "A2", "weight": 1, "stock": 1}]},
     "cards"),
    ({"cards": [{"card": "a", "name": "A", "weight": 1}, {"card": "b", "name": "B", "weight": 1}]}, "cards"),
    ({"cards": [{"card": "a", "name": "A", "weight": 1, "stock": 5}, {"card": "b", "name": "B", "weight": 1,
                                                                       "stock": 5}]}, "cards"),
    ({"cards": [{"card": "a", "name": "A", "weight": 0}, {"card": "s", "name": "S", "weight": 1, "stock": 1}]},
     "cards"),
    ({"cards": [{"card": "A!", "name": "A", "weight": 1}, {"card": "s", "name": "S", "weight": 1, "stock": 1}]},
     "cards"),
    ({"chances": {"free_per_day": 1, "points_per_chance": 10}}, "chances"),
    ({"chances": {"free_per_day": 0}, "tasks": []}, "chances"),
    # 50 players can complete the set (the scarce stock) but 40 fen cannot pay each of them 1 fen.
    ({"pool": {"pool_fen": 40, "min_share_fen": 1, "reward": {"type": "points"}}}, "pool"),
    ({"pool": {"pool_fen": 1000, "reward": {"type": "points", "amount": 5}}}, "pool"),
    ({"pool": {"pool_fen": 1000, "reward": {"type": "nope"}}}, "pool"),
    ({"pool": {"pool_fen": 1000, "split": "lucky", "reward": {"type": "points"}}}, "pool"),
    # a single completer would be paid more points than the points reward allows
    ({"pool": {"pool_fen": 200_000_000, "reward": {"type": "points"}}}, "pool"),
    ({"gifts_per_day": 0}, "gifts_per_day"),
    ({"surprise": 1}, "surprise"),
])
def test_configs_that_cannot_run_are_refused_where_they_go_wrong(change, where):
    with pytest.raises(ValidationError) as refused:
        CardsConfig().load(cards_config(**change))
    assert where in refused.value.normalized_messages()


# -- draw --------------------------------------------------------------------------------------------------------


def test_a_draw_spends_a_free_chance_first_and_adds_the_card_to_the_hand():
    claim = GAME.plan(CONFIG, "draw", {}, ctx())
    card = claim.outcome["card"]
    assert claim.units == 1 and claim.outcome["fallback_from"] is None
    assert ("incr", "user:me", "fd:20260128", 1) in [(o.kind, o.key, o.field, o.value) for o in claim.ops]
    assert ("incr", "user:me", f"c:{card}", 1) in [(o.kind, o.key, o.field, o.value) for o in claim.ops]
    assert claim.takes == ((Take("card:s", 1),) if card == "s" else ())


def test_a_draw_without_free_chances_spends_an_earned_one_and_without_any_is_refused():
    used_up = {"user:me": {"fd:20260128": 2, "ch": 1}}
    claim = GAME.plan(CONFIG, "draw", {}, ctx(hashes=used_up))
    assert ("incr", "ch", -1, 0) in [(o.kind, o.field, o.value, o.low) for o in claim.ops]
    with pytest.raises(NoChancesError):
        GAME.plan(CONFIG, "draw", {}, ctx(hashes={"user:me": {"fd:20260128": 2}}))


def test_a_draw_is_the_card_its_seed_picks_by_weight():
    cumulative = cumulative_weights(CONFIG["cards"])
    for seed in range(50):
        claim = GAME.plan(CONFIG, "draw", {}, ctx(seed=seed))
        expected = CONFIG["cards"][int(card_index(cumulative, np.random.default_rng(seed).random()))]["card"]
        assert claim.outcome["card"] == expected
        assert GAME.plan(CONFIG, "draw", {}, ctx(seed=seed)) == claim


def test_when_the_scarce_card_is_out_the_draw_falls_back_by_the_remaining_weights_and_says_so():
    scarce_seeds = [s for s in range(200) if GAME.plan(CONFIG, "draw", {}, ctx(seed=s)).outcome["card"] == "s"]
    assert scarce_seeds
    for seed in scarce_seeds:
        claim = GAME.plan(CONFIG, "draw", {}, ctx(seed=seed, stock_left=0))
        assert claim.outcome["fallback_from"] == "s" and claim.outcome["card"] in ("a", "b")
        assert claim.takes == ()


def test_one_million_draws_follow_the_weights_with_and_without_the_scarce_card():
    """Chi-square over the function the live draw picks with (1e6 uniforms from one seeded generator)."""
    rng = np.random.default_rng(20260128)
    for cards in (CONFIG["cards"], CONFIG["cards"][:2]):  # the full set, and the fallback's table
        weights = np.array([c["weight"] for c in cards], dtype=float)
        picked = card_index(cumulative_weights(cards), rng.random(1_000_000))
        observed = np.bincount(picked, minlength=len(cards))
        expected = 1_000_000 * weights / weights.sum()
        chi2 = float(((observed - expected) ** 2 / expected).sum())
        # 99.9% quantiles of chi-square with 2 and 1 degrees of freedom
        assert chi2 < {3: 13.816, 2: 10.828}[len(cards)], (observed, expected)


def test_a_draw_that_brings_the_last_missing_card_redeems_the_set_and_enters_the_pool_once():
    holder = {"user:me": hand_of(a=2, b=1, s=1)}
    claim = GAME.plan(CONFIG, "draw", {}, ctx(hashes=holder))
    assert claim.outcome["completed"]
    ops = [(o.kind, o.key, o.field, o.value) for o in claim.ops]
    for card in ("a", "b", "s"):
        assert ("incr", "user:me", f"c:{card}", -1) in ops
    assert ("put", "completers", "me", CLAIM) in ops and ("absent", "user:me", "set", None) in ops
    again = GAME.plan(CONFIG, "draw", {}, ctx(hashes={"user:me": {**hand_of(a=2, b=1, s=1), "set": "x"}}))
    assert not again.outcome["completed"] and not any(o.key == "completers" for o in again.ops)


def test_a_draw_that_does_not_complete_guards_the_cards_it_saw_missing():
    claim = GAME.plan(CONFIG, "draw", {}, ctx(hashes={"user:me": hand_of(a=0)}, seed=1))
    guarded = {(o.kind, o.field, o.value) for o in claim.ops if o.kind in ("expect", "absent")}
    missing = {"a", "b", "s"} - {claim.outcome["card"]}
    assert guarded == {("expect", "c:a", "0") if c == "a" else ("absent", f"c:{c}", None) for c in missing}


# -- gift, ask, accept -------------------------------------------------------------------------------------------


def test_a_gift_moves_one_card_from_my_hand_to_the_friends_under_my_daily_cap():
    claim = GAME.plan(CONFIG, "gift", {"card": "a", "to_user": "f"}, ctx(hashes={"user:me": hand_of(a=1)}))
    ops = [(o.kind, o.key, o.field, o.value, o.low) for o in claim.ops]
    assert ops[:3] == [("incr", "user:me", "c:a", -1, 0), ("incr", "user:me", "gift:20260128", 1, None),
                       ("incr", "user:f", "c:a", 1, None)]
    assert claim.units == 0 and claim.grants == () and claim.takes == ()
    assert isinstance(claim.refusals["NO_CARD"], CardNotHeldError)


def test_a_gift_that_completes_the_friends_set_enters_the_friend():
    friend = {"user:me": hand_of(s=1), "user:f": hand_of(a=1, b=1)}
    claim = GAME.plan(CONFIG, "gift", {"card": "s", "to_user": "f"}, ctx(hashes=friend))
    assert claim.outcome["to_user_completed"]
    assert ("put", "completers", "f") in [(o.kind, o.key, o.field) for o in claim.ops]


@pytest.mark.parametrize(("request_body", "hashes", "error"), [
    ({"card": "zz", "to_user": "f"}, {}, UnknownCardError),
    ({"card": "a", "to_user": "me"}, {"user:me": hand_of(a=1)}, CardSelfTransferError),
    ({"card": "a", "to_user": "f"}, {"user:me": hand_of(b=3)}, CardNotHeldError),
    ({"card": "a", "to_user": "f"}, {"user:me": {**hand_of(a=3), "gift:20260128": 5}}, CardGiftLimitError),
])
def test_a_gift_is_refused_for(request_body, hashes, error):
    with pytest.raises(error):
        GAME.plan(CONFIG, "gift", request_body, ctx(hashes=hashes))


def test_an_ask_opens_a_request_listed_for_the_asked_player():
    claim = GAME.plan(CONFIG, "ask", {"card": "s", "from_user": "f"}, ctx())
    request_id = f"{CLAIM}-me"
    assert claim.outcome == {"request_id": request_id, "card": "s", "from_user": "f", "status": "open"}
    puts = {(o.key, o.field): o.value for o in claim.ops if o.kind == "put"}
    assert puts == {(f"req:{request_id}", "from"): "me", (f"req:{request_id}", "to"): "f",
                    (f"req:{request_id}", "card"): "s", (f"req:{request_id}", "status"): "open",
                    ("asks:f", request_id): "s"}


@pytest.mark.parametrize(("request_body", "hashes", "error"), [
    ({"card": "zz", "from_user": "f"}, {}, UnknownCardError),
    ({"card": "a", "from_user": "me"}, {}, CardSelfTransferError),
    ({"card": "a", "from_user": "f"}, {"user:me": {"ask:20260128": 3}}, CardAskLimitError),
])
def test_an_ask_is_refused_for(request_body, hashes, error):
    with pytest.raises(error):
        GAME.plan(CONFIG, "ask", request_body, ctx(hashes=hashes))


def open_request(to: str = "me", status: str = "open", card: str = "a", asker: str = "f") -> dict[str, Any]:
    return {f"req:{CLAIM}-{asker}": {"from": asker, "to": to, "card": card, "status": status}}


def test_accepting_moves_the_card_to_the_asker_and_closes_the_request():
    hashes = {**open_request(), "user:me": hand_of(a=1)}
    claim = GAME.plan(CONFIG, "accept", {"request_id": f"{CLAIM}-f"}, ctx(hashes=hashes))
    ops = [(o.kind, o.key, o.field, o.value) for o in claim.ops]
    assert ops[:6] == [("expect", f"req:{CLAIM}-f", "status", "open"), ("put", f"req:{CLAIM}-f", "status", "accepted"),
                       ("delete", "asks:me", f"{CLAIM}-f", None), ("incr", "user:me", "c:a", -1),
                       ("incr", "user:me", "gift:20260128", 1), ("incr", "user:f", "c:a", 1)]
    assert isinstance(claim.refusals["CLOSED"], CardRequestClosedError)


@pytest.mark.parametrize(("hashes", "error"), [
    ({}, CardRequestNotFoundError),
    (open_request(asker="g"), CardRequestNotFoundError),  # the id names f, the request was g's
    ({**open_request(to="other"), "user:me": hand_of(a=1)}, CardRequestNotYoursError),
    ({**open_request(status="accepted"), "user:me": hand_of(a=1)}, CardRequestClosedError),
    ({**open_request(), "user:me": hand_of(b=1)}, CardNotHeldError),
    ({**open_request(card="gone"), "user:me": hand_of(a=1)}, UnknownCardError),  # a card a new version dropped
])
def test_an_accept_is_refused_for(hashes, error):
    with pytest.raises(error):
        GAME.plan(CONFIG, "accept", {"request_id": f"{CLAIM}-f"}, ctx(hashes=hashes))


def test_a_completed_task_earns_its_chances():
    hashes = {"user:me": {"ts:visit": f"{CLAIM}:{int(NOW.timestamp() * 1000)}"}}
    claim = GAME.plan(CONFIG, "task_complete", {"task": "visit", "token": CLAIM}, ctx(hashes=hashes))
    assert claim.outcome == {"task": "visit", "chances_earned": 1}
    assert ("incr", "ch", 1) in [(o.kind, o.field, o.value) for o in claim.ops]


# -- the pool ----------------------------------------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(total=st.integers(1, 10**10), n=st.integers(1, 500), mode=st.sampled_from(["equal", "random"]),
       min_share=st.integers(1, 10**6), seed=st.integers(0, 2**32))
def test_a_split_sums_exactly_to_the_pool_and_pays_every_share_its_minimum_when_it_can(total, n, mode, min_share,
                                                                                       seed):
    shares = split_pool(total, n, mode, min_share, np.random.default_rng(seed))
    assert len(shares) == n and sum(shares) == total and all(isinstance(s, int) and s >= 0 for s in shares)
    if total >= n * min_share:
        assert min(shares) >= min_share
    if mode == "equal" or total < n * min_share:  # an infeasible minimum is split equally
        assert max(shares) - min(shares) <= 1
        assert shares == sorted(shares, reverse=True)  # the extra fen go to the first completers
    assert split_pool(total, n, mode, min_share, np.random.default_rng(seed)) == shares


def test_a_random_split_gives_every_position_the_same_expected_share():
    rng = np.random.default_rng(7)
    shares = np.array([split_pool(10_000, 4, "random", 100, rng) for _ in range(20_000)])
    assert np.allclose(shares.mean(axis=0), 2500, rtol=0.02)
    assert shares.min() >= 100 and shares.max() > 5000  # not an equal split in disguise


def test_a_split_needs_a_share_and_a_known_mode():
    with pytest.raises(ValueError):
        split_pool(100, 0, "equal", 1, np.random.default_rng(0))
    with pytest.raises(ValueError):
        split_pool(100, 2, "lucky", 1, np.random.default_rng(0))


def test_the_finale_pays_each_completer_their_share_in_the_pools_reward_type():
    config = CardsConfig().load(cards_config(pool={
        "pool_fen": 1001, "split": "equal", "reward": {"type": "points", "expires_in_days": 30}}))
    completers = {"completers": {"late": "0190b", "early": "0190a", "mid": "0190a5"}}
    claim = GAME.finale(config, ctx("__finale__", completers))
    assert [(g.user_id, g.cost_fen, dict(g.reward)) for g in claim.grants] == [
        ("early", 334, {"type": "points", "expires_in_days": 30, "amount": 334}),
        ("mid", 334, {"type": "points", "expires_in_days": 30, "amount": 334}),
        ("late", 333, {"type": "points", "expires_in_days": 30, "amount": 333}),
    ]
    assert claim.cost_fen == 1001
    assert GAME.finale(config, ctx("__finale__")) is None


# -- forecast ----------------------------------------------------------------------------------------------------


def test_the_forecast_draws_cards_by_weight_runs_out_of_the_scarce_card_and_pays_the_pool_once():
    behaviour = BehaviourSchema().load({"players": 2000, "participation_rate": 0.5, "plays_per_day": 2,
                                        "runs": 100, "seed": 3})
    config = CardsConfig().load(cards_config(
        chances={"free_per_day": 10}, tasks=[],
        cards=[{"card": "a", "name": "A", "weight": 60}, {"card": "b", "name": "B", "weight": 30},
               {"card": "s", "name": "S", "weight": 10, "stock": 500}]))
    forecast = GAME.forecast(config, behaviour, 10, np.random.default_rng(3))

    plays = forecast.plays.mean()
    assert plays == pytest.approx(2000 * 0.5 * 10 * 2, rel=0.02)  # Poisson(2) rarely reaches a cap of 10
    # 10% of ~20,000 draws want the scarce card: its 500 run out in the third day
    assert (forecast.wins["card:s"] == 500).all()
    assert np.median(forecast.stockout_day["card:s"]) == 3
    # the rest of the draws follow the weights, the excess scarce draws falling back 2:1 on a and b
    excess = forecast.plays - 500
    assert forecast.wins["card:a"].mean() == pytest.approx(excess.mean() * 2 / 3, rel=0.02)
    # ~10 draws per player: most hold a and b; about 500 scarce cards honoured for 2000 players
    completers = forecast.wins["completers"]
    assert (completers <= 500).all() and 250 < completers.mean() <= 500
    assert set(forecast.cost_fen) == {1000}  # the pool, paid in full, and no task rewards


def test_the_forecast_counts_task_rewards_and_pays_the_pool_only_when_someone_completes():
    config = CardsConfig().load(cards_config(
        chances={"free_per_day": 0},
        tasks=[{"task": "pay", "kind": "pay", "title": "Pay", "chances": 1, "daily_cap": 1,
                "reward": {"type": "points", "amount": 5, "cost_fen": 5}}]))
    busy = BehaviourSchema().load({"players": 10, "participation_rate": 1.0, "plays_per_day": 50, "runs": 200})
    forecast = GAME.forecast(config, busy, 2, np.random.default_rng(1))
    # everyone wants 50 draws a day but has one, paid for by the one task (5 fen)
    assert forecast.plays.mean() == pytest.approx(20, rel=0.1)
    completed = forecast.wins["completers"] > 0
    assert (forecast.cost_fen == 10 * 2 * 5 + np.where(completed, 1000, 0)).all()
    idle = BehaviourSchema().load({"players": 10, "participation_rate": 0.0, "runs": 20})
    nobody = GAME.forecast(config, idle, 2, np.random.default_rng(1))
    assert (nobody.plays == 0).all() and (nobody.wins["completers"] == 0).all() and (nobody.cost_fen == 0).all()


# -- through the engine ------------------------------------------------------------------------------------------


def definition(config: dict[str, Any] | None = None, *, budget_fen: int | None = None) -> dict[str, Any]:
    now = SystemClock().now()
    return {"name": "集卡", "game": "cards", "starts_at": iso(now - timedelta(minutes=1)),
            "ends_at": iso(now + timedelta(days=1)), "budget_fen": budget_fen, "config": config or cards_config()}


@pytest.fixture
def campaign(factory) -> int:
    return factory.campaign(definition())


def url(campaign_id: int, action: str) -> str:
    return f"/api/v1/campaigns/{campaign_id}/actions/{action}"


def give_hand(redis, container, campaign_id: int, user: str, **counts: int) -> None:
    redis.hset(container.live_state.keys(campaign_id).user(user), mapping=hand_of(**counts))


def cards_of(redis, container, campaign_id: int, user: str) -> dict[str, int]:
    held = redis.hgetall(container.live_state.keys(campaign_id).user(user))
    return {_text(k)[2:]: int(v) for k, v in held.items() if _text(k).startswith("c:")}


def game_hash(redis, container, campaign_id: int, name: str) -> dict[str, str]:
    key = container.live_state.keys(campaign_id).game(name)
    return {_text(k): _text(v) for k, v in redis.hgetall(key).items()}


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else value


def me(factory, campaign_id: int, user: str) -> dict[str, Any]:
    response = factory.client.get(f"/api/v1/campaigns/{campaign_id}",
                                  headers={"Authorization": f"Bearer {factory.token(user)}"})
    assert response.status_code == 200, response.json
    return response.json


def test_draws_through_http_show_in_the_players_hand_and_chances(factory, campaign):
    response = factory.client.post(url(campaign, "draw"), json={}, headers=factory.headers("p1"))
    assert response.status_code == 200, response.json
    card = response.json["outcome"]["card"]
    view = me(factory, campaign, "p1")
    assert view["rules"]["cards"][0] == {"card": "a", "name": "Card A", "weight": 60, "probability": 0.6,
                                         "stock": None}
    state = view["me"]
    assert state["cards"][card] == 1 and sum(state["cards"].values()) == 1
    assert state["chances"]["free"] == 1 and state["completed"] is False
    assert state["stock_left"]["s"] == (49 if card == "s" else 50)


def test_an_ask_is_listed_for_the_asked_player_until_they_accept_it(factory, campaign, redis, container):
    give_hand(redis, container, campaign, "bob", a=2)
    asked = factory.client.post(url(campaign, "ask"), json={"card": "a", "from_user": "bob"},
                                headers=factory.headers("amy"))
    assert asked.status_code == 200, asked.json
    request_id = asked.json["outcome"]["request_id"]
    assert me(factory, campaign, "bob")["me"]["asks"] == [{"request_id": request_id, "card": "a",
                                                            "from_user": "amy"}]

    accepted = factory.client.post(url(campaign, "accept"), json={"request_id": request_id},
                                   headers=factory.headers("bob"))
    assert accepted.status_code == 200, accepted.json
    assert accepted.json["outcome"]["status"] == "accepted"
    assert cards_of(redis, container, campaign, "amy") == {"a": 1}
    assert cards_of(redis, container, campaign, "bob") == {"a": 1}
    assert me(factory, campaign, "bob")["me"]["asks"] == []
    assert game_hash(redis, container, campaign, f"req:{request_id}")["status"] == "accepted"
    again = factory.client.post(url(campaign, "accept"), json={"request_id": request_id},
                                headers=factory.headers("bob"))
    assert again.status_code == 409 and again.json["error"]["code"] == "CARD_REQUEST_CLOSED"


def test_a_gift_that_completes_a_set_redeems_it_and_enters_the_pool(factory, campaign, redis, container):
    give_hand(redis, container, campaign, "giver", s=1)
    give_hand(redis, container, campaign, "friend", a=1, b=2)
    result = factory.play(campaign, "friend", "ask", {"card": "s", "from_user": "giver"})
    factory.play(campaign, "giver", "accept", {"request_id": result.outcome["request_id"]})
    assert cards_of(redis, container, campaign, "friend") == {"a": 0, "b": 1, "s": 0}
    assert cards_of(redis, container, campaign, "giver") == {"s": 0}
    assert list(game_hash(redis, container, campaign, "completers")) == ["friend"]
    assert me(factory, campaign, "friend")["me"]["completed"] is True


def test_draws_fall_back_to_common_cards_once_the_scarce_stock_is_gone(factory, redis, container):
    config = cards_config(cards=[{"card": "a", "name": "A", "weight": 1}, {"card": "b", "name": "B", "weight": 1},
                                 {"card": "s", "name": "S", "weight": 1_000_000, "stock": 2}],
                          chances={"free_per_day": 5})
    campaign_id = factory.campaign(definition(config))
    outcomes = [factory.play(campaign_id, "lucky", "draw", {}).outcome for _ in range(5)]
    assert [o["card"] for o in outcomes].count("s") == 2
    assert [o["fallback_from"] for o in outcomes[2:]] == ["s", "s", "s"]
    assert container.live_state.stats(campaign_id).stock["card:s"] == {"total": 2, "taken": 2, "left": 0}


def test_the_finale_pays_the_pool_to_the_completers_exactly(factory, redis, container, settle, db_session):
    from campaigns.models import Grant

    config = cards_config(pool={"pool_fen": 1000, "split": "random", "min_share_fen": 10,
                                "reward": {"type": "points"}}, chances={"free_per_day": 1})
    campaign_id = factory.campaign(definition(config, budget_fen=1000))
    for user in ("c1", "c2", "c3"):
        give_hand(redis, container, campaign_id, user, a=1, b=1, s=1)
        assert factory.play(campaign_id, user, "draw", {}).outcome["completed"]  # any card completes their set
    give_hand(redis, container, campaign_id, "almost", a=1, b=1)
    with container.session_factory() as session:
        container.campaign_service(session).transition(campaign_id, "end", actor="test")
    settle()
    db_session.rollback()
    grants = db_session.scalars(select(Grant).where(Grant.campaign_id == campaign_id)).all()
    assert sorted(g.user_id for g in grants) == ["c1", "c2", "c3"]
    assert sum(g.cost_fen for g in grants) == 1000 and all(g.cost_fen >= 10 for g in grants)
    assert all(g.reward == {"type": "points", "amount": g.cost_fen} and g.status == "issued" for g in grants)
    assert container.play_service.finale(campaign_id) is None  # once


# -- bad input ---------------------------------------------------------------------------------------------------


def live_state(redis, container, campaign_id: int) -> dict[str, Any]:
    """Every key of the campaign and its content (but the gate's attempt counts): a refused play leaves it as it
    was."""
    return footprint(redis, container.live_state.keys(campaign_id).all_keys_pattern())


def test_every_bad_input_of_every_action_gets_its_stable_code_and_changes_nothing(factory, redis, container):
    campaign_id = factory.campaign(definition(cards_config(gifts_per_day=1, asks_per_day=1)))
    give_hand(redis, container, campaign_id, "amy", a=2)
    give_hand(redis, container, campaign_id, "bob", b=1)
    to_bob = factory.play(campaign_id, "amy", "ask", {"card": "b", "from_user": "bob"}).outcome["request_id"]
    to_cat = factory.play(campaign_id, "bob", "ask", {"card": "a", "from_user": "cat"}).outcome["request_id"]
    factory.play(campaign_id, "amy", "gift", {"card": "a", "to_user": "bob"})
    for _ in range(2):
        factory.play(campaign_id, "dan", "draw", {})
    factory.play(campaign_id, "bob", "gift", {"card": "b", "to_user": "amy"})  # bob's only b, and today's gift
    unknown = f"{'f' * 24}-amy"

    cases = [
        ("amy", "draw", {"times": 10}, 422, "VALIDATION_ERROR"),
        ("dan", "draw", {}, 409, "NO_CHANCES"),
        ("amy", "gift", {"card": "zz", "to_user": "bob"}, 422, "UNKNOWN_CARD"),
        ("amy", "gift", {"card": "s", "to_user": "bob"}, 409, "CARD_NOT_HELD"),
        ("amy", "gift", {"card": "a", "to_user": "amy"}, 422, "CARD_SELF_TRANSFER"),
        ("amy", "gift", {"card": "a", "to_user": "bob"}, 409, "CARD_GIFT_LIMIT_REACHED"),
        ("amy", "gift", {"card": "a", "to_user": "__finale__"}, 422, "VALIDATION_ERROR"),
        ("amy", "gift", {"card": "a"}, 422, "VALIDATION_ERROR"),
        ("amy", "gift", {"card": 7, "to_user": "bob"}, 422, "VALIDATION_ERROR"),
        ("cat", "ask", {"card": "zz", "from_user": "amy"}, 422, "UNKNOWN_CARD"),
        ("cat", "ask", {"card": "a", "from_user": "cat"}, 422, "CARD_SELF_TRANSFER"),
        ("amy", "ask", {"card": "a", "from_user": "cat"}, 409, "CARD_ASK_LIMIT_REACHED"),
        ("cat", "ask", {"card": "a", "from_user": "a b"}, 422, "VALIDATION_ERROR"),
        ("cat", "accept", {"request_id": "nope"}, 422, "VALIDATION_ERROR"),
        ("cat", "accept", {"request_id": unknown}, 404, "CARD_REQUEST_NOT_FOUND"),
        ("cat", "accept", {"request_id": to_bob}, 403, "CARD_REQUEST_NOT_YOURS"),
        ("bob", "accept", {"request_id": to_bob}, 409, "CARD_NOT_HELD"),
        ("cat", "accept", {"request_id": to_cat}, 409, "CARD_NOT_HELD"),
        ("amy", "task_start", {"task": "nope"}, 422, "UNKNOWN_TASK"),
        ("amy", "task_complete", {"task": "visit", "token": "0" * 24}, 409, "TASK_TOKEN_INVALID"),
        ("amy", "cheat", {}, 404, "UNKNOWN_ACTION"),
    ]
    for user, action, body, status, code in cases:
        before = live_state(redis, container, campaign_id)
        response = factory.client.post(url(campaign_id, action), json=body, headers=factory.headers(user))
        assert (response.status_code, response.json["error"]["code"]) == (status, code), (action, body)
        assert live_state(redis, container, campaign_id) == before, (action, body)

    give_hand(redis, container, campaign_id, "cat", a=1)
    factory.play(campaign_id, "cat", "accept", {"request_id": to_cat})
    response = factory.client.post(url(campaign_id, "accept"), json={"request_id": to_cat},
                                   headers=factory.headers("cat"))
    assert (response.status_code, response.json["error"]["code"]) == (409, "CARD_REQUEST_CLOSED")


def test_the_errors_of_this_game_are_documented_types_with_unique_codes():
    from engine.errors import all_error_types

    mine = [CardAskLimitError, CardGiftLimitError, CardNotHeldError, CardRequestClosedError,
            CardRequestNotFoundError, CardRequestNotYoursError, CardSelfTransferError, UnknownCardError,
            UnknownTaskError, TaskTokenError]
    codes = Counter(e.code for e in all_error_types())
    assert all(codes[e.code] == 1 and issubclass(e, HuodongError) and 400 <= e.http_status < 500 for e in mine)


# -- races -------------------------------------------------------------------------------------------------------


def test_racing_draws_in_four_processes_never_issue_more_scarce_cards_than_the_stock(settings, factory, redis,
                                                                                    container):
    config = cards_config(cards=[{"card": "a", "name": "A", "weight": 1}, {"card": "b", "name": "B", "weight": 1},
                                 {"card": "s", "name": "S", "weight": 8, "stock": 20}],
                          chances={"free_per_day": 3})
    campaign_id = factory.campaign(definition(config))
    players = [f"r{i}" for i in range(60)]
    plays = [(user, {}, uuid.uuid4().hex) for user in players for _ in range(3)]

    answers = race(settings, campaign_id, plays, processes=4, threads=4, action="draw", outcomes=True)

    codes = Counter(code for _user, code, _outcome in answers)
    # A draw planned on the last scarce card that another took first is planned again and falls back.
    assert codes == {"OK": 180}
    drawn = Counter(outcome["card"] for _user, code, outcome in answers if code == "OK")
    assert drawn["s"] == 20
    assert container.live_state.stats(campaign_id).stock["card:s"] == {"total": 20, "taken": 20, "left": 0}
    completers = game_hash(redis, container, campaign_id, "completers")
    held = Counter()
    for user in players:
        held.update(cards_of(redis, container, campaign_id, user))
    # conservation: every card drawn is in a hand, or was redeemed with a completed set
    assert {card: held[card] + len(completers) for card in "abs"} == {card: drawn[card] for card in "abs"}


def test_racing_gifts_between_players_conserve_every_card(factory, redis, container):
    campaign_id = factory.campaign(definition(cards_config(gifts_per_day=1000)))
    ring = ["g0", "g1", "g2", "g3", "g4"]
    for user in ring:
        give_hand(redis, container, campaign_id, user, a=6)
    rng = np.random.default_rng(5)
    gifts = [(ring[i], ring[(i + int(rng.integers(1, 5))) % 5]) for i in rng.integers(0, 5, size=120)]

    def gift(pair: tuple[str, str]) -> tuple[str, str, str]:
        giver, receiver = pair
        try:
            factory.play(campaign_id, giver, "gift", {"card": "a", "to_user": receiver})
            return giver, receiver, "OK"
        except HuodongError as exc:
            return giver, receiver, exc.code

    with ThreadPoolExecutor(12) as pool:
        results = list(pool.map(gift, gifts))

    assert {code for *_pair, code in results} <= {"OK", "CARD_NOT_HELD", "CONFLICT"}
    expected = dict.fromkeys(ring, 6)
    for giver, receiver, code in results:
        if code == "OK":
            expected[giver] -= 1
            expected[receiver] += 1
    hands = {user: cards_of(redis, container, campaign_id, user)["a"] for user in ring}
    assert hands == expected and sum(hands.values()) == 30 and min(hands.values()) >= 0


def test_an_accept_racing_a_gift_of_the_same_last_card_moves_it_once(factory, redis, container):
    campaign_id = factory.campaign(definition(cards_config(gifts_per_day=1000)))
    for round_ in range(15):
        asker, friend = f"ask{round_}", f"fr{round_}"
        give_hand(redis, container, campaign_id, "owner", b=1)
        request_id = factory.play(campaign_id, asker, "ask", {"card": "b", "from_user": "owner"}).outcome[
            "request_id"]
        start = threading.Barrier(2)

        def attempt(action: str, body: dict[str, Any], start: threading.Barrier = start) -> str:
            start.wait()
            try:
                factory.play(campaign_id, "owner", action, body)
                return "OK"
            except HuodongError as exc:
                return exc.code

        with ThreadPoolExecutor(2) as pool:
            accepted = pool.submit(attempt, "accept", {"request_id": request_id})
            gifted = pool.submit(attempt, "gift", {"card": "b", "to_user": friend})
            codes = sorted([accepted.result(), gifted.result()])
        assert codes == ["CARD_NOT_HELD", "OK"]
        moved = cards_of(redis, container, campaign_id, asker).get("b", 0) + cards_of(
            redis, container, campaign_id, friend).get("b", 0)
        assert moved == 1 and cards_of(redis, container, campaign_id, "owner")["b"] == 0
        status = game_hash(redis, container, campaign_id, f"req:{request_id}")["status"]
        assert status == ("accepted" if accepted.result() == "OK" else "open")


def test_two_accepts_of_one_request_racing_move_one_card(factory, redis, container):
    campaign_id = factory.campaign(definition())
    give_hand(redis, container, campaign_id, "owner", a=5)
    request_id = factory.play(campaign_id, "asker", "ask", {"card": "a", "from_user": "owner"}).outcome["request_id"]

    def accept(_: int) -> str:
        try:
            factory.play(campaign_id, "owner", "accept", {"request_id": request_id})
            return "OK"
        except HuodongError as exc:
            return exc.code

    with ThreadPoolExecutor(6) as pool:
        codes = Counter(pool.map(accept, range(6)))
    assert codes == {"OK": 1, "CARD_REQUEST_CLOSED": 5}
    assert cards_of(redis, container, campaign_id, "owner") == {"a": 4}
    assert cards_of(redis, container, campaign_id, "asker") == {"a": 1}


def test_gifts_racing_into_one_player_complete_their_set_exactly_once(factory, redis, container):
    campaign_id = factory.campaign(definition())
    give_hand(redis, container, campaign_id, "ga", a=1)
    give_hand(redis, container, campaign_id, "gb", b=1)
    give_hand(redis, container, campaign_id, "gs", s=1)
    start = threading.Barrier(3)

    def gift(pair: tuple[str, str]) -> None:
        giver, card = pair
        start.wait()
        factory.play(campaign_id, giver, "gift", {"card": card, "to_user": "target"})

    with ThreadPoolExecutor(3) as pool:
        list(pool.map(gift, [("ga", "a"), ("gb", "b"), ("gs", "s")]))
    # whichever gift came last saw the other two: the set is redeemed, no card lost, no completion missed
    assert list(game_hash(redis, container, campaign_id, "completers")) == ["target"]
    assert cards_of(redis, container, campaign_id, "target") == {"a": 0, "b": 0, "s": 0}
