"""The card game over three key groups ("shards": 3): draws in every group, and gifts, asks and accepts
between players of two groups carried exactly once (this player's half in the claim, the other's carried to
their group by the engine at once, or by settlement when the process died first), and a finale that pays the
completers of every group."""

from __future__ import annotations

import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pytest
from sqlalchemy import select

from campaigns.models import ClaimRecord, Grant
from engine.errors import HuodongError
from engine.shards import shard_of

from ..invariants.test_sharded_campaign import players_of
from .test_cards import cards_config, hand_of
from .test_cards import definition as cards_definition

SHARDS = 3


def definition(config: dict[str, Any] | None = None, **options: Any) -> dict[str, Any]:
    return {**cards_definition(config, **options), "shards": SHARDS}


def keys_of(container, campaign_id: int, user: str):
    return container.live_state.shards(campaign_id).for_user(user)


def give_hand(redis, container, campaign_id: int, user: str, **counts: int) -> None:
    redis.hset(keys_of(container, campaign_id, user).user(user), mapping=hand_of(**counts))


def cards_of(redis, container, campaign_id: int, user: str) -> dict[str, int]:
    held = redis.hgetall(keys_of(container, campaign_id, user).user(user))
    return {k[2:]: int(v) for k, v in held.items() if k.startswith("c:")}


def one_of_each_group(prefix: str) -> list[str]:
    return [players_of(group, 1, SHARDS, prefix=f"{prefix}{group}-")[0] for group in range(SHARDS)]


def play(factory, campaign_id: int, user: str, action: str, body: dict[str, Any]) -> str:
    try:
        factory.play(campaign_id, user, action, body)
        return "OK"
    except HuodongError as exc:
        return exc.code


def test_players_of_every_group_draw_and_the_scarce_card_never_exceeds_its_stock(factory, container):
    config = cards_config(cards=[{"card": "a", "name": "A", "weight": 1},
                                 {"card": "s", "name": "S", "weight": 1_000_000, "stock": 4}])
    campaign_id = factory.campaign(definition(config))
    players = [p for group in range(SHARDS) for p in players_of(group, 2, SHARDS, prefix=f"d{group}-")]

    drawn = Counter(factory.play(campaign_id, p, "draw", {}).outcome["card"] for p in players for _ in range(2))

    assert drawn == {"s": 4, "a": 8}  # the scarce card's slices moved to the groups whose players drew it
    assert container.live_state.stats(campaign_id).stock["card:s"] == {"total": 4, "taken": 4, "left": 0}


def test_racing_gifts_between_players_of_three_groups_conserve_every_card(factory, redis, container, settle):
    campaign_id = factory.campaign(definition(cards_config(gifts_per_day=1000)))
    ring = [p for group in range(SHARDS) for p in players_of(group, 2, SHARDS, prefix=f"r{group}-")]
    assert len({shard_of(p, SHARDS) for p in ring}) == SHARDS
    for user in ring:
        give_hand(redis, container, campaign_id, user, a=5)
    rng = np.random.default_rng(7)
    gifts = [(ring[i], ring[(i + int(rng.integers(1, len(ring)))) % len(ring)])
             for i in rng.integers(0, len(ring), size=150)]

    with ThreadPoolExecutor(12) as pool:
        codes = list(pool.map(lambda pair: play(factory, campaign_id, pair[0], "gift",
                                                {"card": "a", "to_user": pair[1]}), gifts))

    assert set(codes) <= {"OK", "CARD_NOT_HELD", "CONFLICT"} and codes.count("OK") > 50
    expected = dict.fromkeys(ring, 5)
    for (giver, receiver), code in zip(gifts, codes, strict=True):
        if code == "OK":
            expected[giver] -= 1
            expected[receiver] += 1
    hands = {user: cards_of(redis, container, campaign_id, user)["a"] for user in ring}
    assert hands == expected and sum(hands.values()) == 5 * len(ring)
    settle(worker=False)  # settlement finds every carry done: nothing moves twice
    assert {user: cards_of(redis, container, campaign_id, user)["a"] for user in ring} == expected


def test_a_carry_the_admitting_process_never_made_is_made_once_by_settlement(
        factory, redis, container, settle, db_session, monkeypatch):
    campaign_id = factory.campaign(definition())
    giver, friend = players_of(0, 1, SHARDS, prefix="cg")[0], players_of(1, 1, SHARDS, prefix="cf")[0]
    give_hand(redis, container, campaign_id, giver, a=2)
    service = container.play_service
    with monkeypatch.context() as patched:  # the process dies right after the claim is admitted
        patched.setattr(service, "_carry_all", lambda *args: None)
        answer = factory.play(campaign_id, giver, "gift", {"card": "a", "to_user": friend})
    assert answer.outcome["to_user_completed"] is None  # decided in the friend's group
    assert cards_of(redis, container, campaign_id, giver) == {"a": 1}
    assert cards_of(redis, container, campaign_id, friend) == {}

    settle(worker=False)
    settle(worker=False)
    assert cards_of(redis, container, campaign_id, friend) == {"a": 1}
    service.carry_event({"campaign_id": campaign_id, "claim_id": answer.outcome["claim_id"],
                         "carries": [{"user_id": friend, "payload": {"kind": "gift", "card": "a",
                                                                     "from_user": giver}}]})
    assert cards_of(redis, container, campaign_id, friend) == {"a": 1}  # a late second run moves nothing
    db_session.rollback()
    received = db_session.scalars(select(ClaimRecord).where(ClaimRecord.user_id == friend)).all()
    assert [(r.action, r.outcome["received"], r.outcome["from_user"]) for r in received] == [("carry", "a", giver)]


def test_an_ask_across_groups_is_listed_for_the_friend_and_accepted_once(factory, redis, container):
    campaign_id = factory.campaign(definition())
    asker, owner = players_of(2, 1, SHARDS, prefix="aa")[0], players_of(0, 1, SHARDS, prefix="ao")[0]
    give_hand(redis, container, campaign_id, owner, b=3)
    request_id = factory.play(campaign_id, asker, "ask", {"card": "b", "from_user": owner}).outcome["request_id"]
    view = factory.client.get(f"/api/v1/campaigns/{campaign_id}", headers=factory.headers(owner))
    assert view.json["me"]["asks"] == [{"request_id": request_id, "card": "b", "from_user": asker}]
    start = threading.Barrier(5)

    def accept(_: int) -> str:
        start.wait()
        return play(factory, campaign_id, owner, "accept", {"request_id": request_id})

    with ThreadPoolExecutor(5) as pool:
        codes = Counter(pool.map(accept, range(5)))

    # The ask is taken off the owner's list by the one accept: an accept that read the list before is refused as
    # closed, one that reads it after finds no such open request (the request itself is in the asker's group).
    assert codes["OK"] == 1 and set(codes) - {"OK"} <= {"CARD_REQUEST_CLOSED", "CARD_REQUEST_NOT_FOUND"}
    assert sum(codes.values()) == 5
    assert cards_of(redis, container, campaign_id, owner) == {"b": 2}
    assert cards_of(redis, container, campaign_id, asker) == {"b": 1}
    request = redis.hgetall(keys_of(container, campaign_id, asker).game(f"req:{request_id}"))
    assert request["status"] == "accepted"
    assert play(factory, campaign_id, owner, "accept", {"request_id": "0" * 24 + "-nobody"}) == \
        "CARD_REQUEST_NOT_FOUND"


def test_gifts_from_other_groups_racing_into_one_player_complete_their_set_once(factory, redis, container):
    campaign_id = factory.campaign(definition())
    target = players_of(1, 1, SHARDS, prefix="tg")[0]
    givers = [players_of(group, 1, SHARDS, prefix=f"gv{card}")[0] for group, card in ((0, "a"), (2, "b"), (0, "s"))]
    for giver, card in zip(givers, "abs", strict=True):
        give_hand(redis, container, campaign_id, giver, **{card: 1})
    start = threading.Barrier(3)

    def gift(pair: tuple[str, str]) -> str:
        start.wait()
        return play(factory, campaign_id, pair[0], "gift", {"card": pair[1], "to_user": target})

    with ThreadPoolExecutor(3) as pool:
        assert list(pool.map(gift, zip(givers, "abs", strict=True))) == ["OK"] * 3
    completers = redis.hgetall(keys_of(container, campaign_id, target).game("completers"))
    assert list(completers) == [target]
    assert cards_of(redis, container, campaign_id, target) == {"a": 0, "b": 0, "s": 0}


@pytest.mark.parametrize("split", ["equal", "random"])
def test_the_finale_pays_the_completers_of_every_group_the_pool_exactly(
        factory, redis, container, settle, db_session, split):
    config = cards_config(pool={"pool_fen": 1000, "split": split, "min_share_fen": 10, "reward": {"type": "points"}},
                          chances={"free_per_day": 1})
    campaign_id = factory.campaign(definition(config, budget_fen=1000))
    completers = one_of_each_group("fin") + [players_of(1, 2, SHARDS, prefix="fin1-")[1]]
    for user in completers:
        give_hand(redis, container, campaign_id, user, a=1, b=1, s=1)
        assert factory.play(campaign_id, user, "draw", {}).outcome["completed"]
    with container.session_factory() as session:
        container.campaign_service(session).transition(campaign_id, "end", actor="test")

    settle()

    db_session.rollback()
    grants = db_session.scalars(select(Grant).where(Grant.campaign_id == campaign_id)).all()
    assert sorted(g.user_id for g in grants) == sorted(completers)
    assert sum(g.cost_fen for g in grants) == 1000 and all(g.status == "issued" for g in grants)
    assert container.play_service.finale(campaign_id) is None  # once
    assert container.live_state.stats(campaign_id).spent_fen == 1000
