"""Invariants 2 and 3: per-player limits and the budget hold under races."""

from __future__ import annotations

import uuid

from sqlalchemy import func, select

from campaigns.models import Grant, Order

from ..support.racers import distinct_buyers, race, tally


def test_one_player_racing_their_own_limit_from_many_threads_gets_exactly_the_limit(
        settings, factory, settle, db_session):
    campaign_id = factory.campaign(stock=1000, per_user=3, per_user_per_day=3)
    plays = [("greedy", {"sku": "C50", "quantity": 1}, uuid.uuid4().hex) for _ in range(120)]

    outcomes = race(settings, campaign_id, plays, processes=4, threads=10)

    assert tally(outcomes) == {"OK": 3, "LIMIT_REACHED": 117}
    settle(worker=False)
    assert db_session.scalar(select(func.count()).select_from(Order).where(Order.user_id == "greedy")) == 3


def test_the_per_sku_limit_holds_when_a_player_races_with_several_units(settings, factory, settle, db_session):
    campaign_id = factory.campaign(stock=1000, per_user_limit=5)
    plays = [("bulk", {"sku": "C50", "quantity": 2}, uuid.uuid4().hex) for _ in range(60)]

    outcomes = race(settings, campaign_id, plays, processes=3, threads=8)

    assert tally(outcomes) == {"OK": 2, "LIMIT_REACHED": 58}
    settle(worker=False)
    assert db_session.scalar(select(func.count()).select_from(Grant).where(Grant.user_id == "bulk")) == 4


def test_a_budget_that_runs_out_mid_race_is_never_exceeded(settings, factory, settle, db_session, container):
    campaign_id = factory.campaign(stock=10_000, budget_fen=4_950, reward_cost_fen=100)

    outcomes = race(settings, campaign_id, distinct_buyers(600), processes=8, threads=6)

    assert tally(outcomes) == {"OK": 49, "BUDGET_EXHAUSTED": 551}
    settle()
    spent = db_session.scalar(select(func.sum(Grant.cost_fen)).where(Grant.campaign_id == campaign_id))
    assert spent == 4_900 <= 4_950
    assert container.live_state.stats(campaign_id).spent_fen == 4_900
