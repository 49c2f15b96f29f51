"""The engine's stateful plays: guarded ops, sequence numbers, re-planning on stale state, fair seeds."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest

from engine.clock import SystemClock, iso
from engine.errors import CampaignNotLiveError, ConflictError, IdempotencyKeyReusedError
from engine.fairness import draw_seed
from tests.support import ops_game
from tests.support.ops_game import OverLimitError


def definition(limit: int = 3) -> dict:
    now = SystemClock().now()
    return {"name": "ops", "game": "test_ops", "starts_at": iso(now - timedelta(minutes=1)),
            "ends_at": iso(now + timedelta(days=1)), "config": {"limit": limit}}


@pytest.fixture
def campaign(factory) -> int:
    assert ops_game.OpsGame.name == "test_ops"
    return factory.campaign(definition())


def test_a_bounded_increment_is_refused_whole_with_the_games_error(factory, campaign, redis, container):
    factory.play(campaign, "u1", "count", {"by": 2})
    with pytest.raises(OverLimitError):
        factory.play(campaign, "u1", "count", {"by": 2})
    factory.play(campaign, "u1", "count", {"by": 1})
    keys = container.live_state.keys(campaign)
    assert redis.hget(keys.user("u1"), "n") in (b"3", "3")
    assert redis.hget(keys.user("u1"), "seq") in (b"2", "2")  # the refused play used no sequence number


def test_racing_increments_never_pass_the_bound(factory, campaign, container):
    def attempt(i: int) -> bool:
        while True:
            try:
                factory.play(campaign, "racer", "count", {"by": 1})
                return True
            except OverLimitError:
                return False
            except ConflictError:  # busy: the player's own plays kept racing; ask again
                continue

    with ThreadPoolExecutor(8) as pool:
        admitted = sum(pool.map(attempt, range(24)))
    assert admitted == 3
    state = factory.client.get(f"/api/v1/campaigns/{campaign}",
                               headers={"Authorization": f"Bearer {factory.token('racer')}"}).json["me"]
    assert state["n"] == 3


def test_a_bit_is_set_once(factory, campaign):
    factory.play(campaign, "u1", "bit", {"bit": 5})
    with pytest.raises(OverLimitError):
        factory.play(campaign, "u1", "bit", {"bit": 5})
    factory.play(campaign, "u1", "bit", {"bit": 0})
    view = factory.client.get(f"/api/v1/campaigns/{campaign}",
                              headers={"Authorization": f"Bearer {factory.token('u1')}"}).json["me"]
    assert view["bits"] == [0, 5]


def test_a_transfer_moves_between_two_players_atomically(factory, campaign, container, redis):
    keys = container.live_state.keys(campaign)
    redis.hset(keys.user("a"), "cards", 5)
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda i: _gives(factory, campaign, "a", "b"), range(12)))
    given = int(redis.hget(keys.user("b"), "cards") or 0)
    assert results.count("given") == given >= 1
    assert int(redis.hget(keys.user("a"), "cards")) + given == 5  # conserved, whatever raced
    assert results.count("given") + results.count("none left") + results.count("busy") == 12


def _gives(factory, campaign, giver, taker) -> str:
    try:
        factory.play(campaign, giver, "give", {"to": taker})
        return "given"
    except OverLimitError:
        return "none left"
    except ConflictError as exc:
        assert exc.details["reason"] == "busy"
        return "busy"


def test_draws_are_seeded_by_the_version_secret_player_and_sequence(factory, campaign, db_session):
    from sqlalchemy import select

    from campaigns.models import CampaignVersion

    first = factory.play(campaign, "p", "draw", {})
    second = factory.play(campaign, "p", "draw", {})
    secret = db_session.scalar(select(CampaignVersion.secret).where(CampaignVersion.campaign_id == campaign))
    import numpy as np

    assert first.outcome["seq"] == 0 and second.outcome["seq"] == 1
    assert first.outcome["value"] == float(np.random.default_rng(draw_seed(secret, "p", 0)).random())
    assert second.outcome["value"] == float(np.random.default_rng(draw_seed(secret, "p", 1)).random())


def test_a_replayed_key_answers_the_first_outcome_before_planning_again(factory, campaign):
    first = factory.play(campaign, "p", "draw", {}, key="k1")
    again = factory.play(campaign, "p", "draw", {}, key="k1")
    assert again.replayed and again.outcome == first.outcome
    with pytest.raises(IdempotencyKeyReusedError):
        factory.play(campaign, "p", "count", {"by": 1}, key="k1")


def test_the_finale_pays_each_winner_once_when_the_campaign_ends(factory, campaign, container, settle, db_session):
    from sqlalchemy import select

    from campaigns.models import Grant

    factory.play(campaign, "w1", "win", {})
    factory.play(campaign, "w2", "win", {})
    with pytest.raises(CampaignNotLiveError):  # still live: the script refuses, nothing is paid
        container.play_service.finale(campaign)
    with container.session_factory() as session:
        container.campaign_service(session).transition(campaign, "end", actor="test")
    assert container.play_service.finale(campaign) is None  # the end transition ran it already
    settle()
    db_session.rollback()
    grants = db_session.scalars(select(Grant).where(Grant.campaign_id == campaign)).all()
    assert sorted((g.user_id, g.reward["amount"], g.status) for g in grants) == [
        ("w1", 7, "issued"), ("w2", 7, "issued")]
