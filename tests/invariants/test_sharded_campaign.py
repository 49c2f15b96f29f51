"""A campaign spread over K key groups ("shards": K): every play touches its player's group only, each group
sells from its own slice, slices move between groups, and the campaign as a whole never sells more stock or
spends more budget than it has, nor stops selling while any group has some left."""

from __future__ import annotations

import json
import uuid
from collections import Counter
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from campaigns.models import ClaimRecord, Grant, GrantStatus
from engine.clock import to_ms
from engine.errors import CampaignNotLiveError, SoldOutError
from engine.shards import Shards, shard_of, slices
from engine.slices import BUDGET, allotment, used
from tests.games.test_lottery import definition as wheel_definition
from tests.games.test_lottery import points, wheel

from ..support.factories import flash_sale_definition
from ..support.racers import distinct_buyers, race, tally

SKU = "sku:C50"


def sharded(shards: int = 3, **options) -> dict:
    return {**flash_sale_definition(**options), "shards": shards}


def groups(container, campaign_id: int) -> Shards:
    return container.live_state.shards(campaign_id)


def per_group(container, campaign_id: int, key_of) -> list[int]:
    return [int(container.redis.hget(*key_of(keys)) or 0) for keys in groups(container, campaign_id)]


def players_of(group: int, count: int, shards: int = 3, prefix: str = "g") -> list[str]:
    """``count`` player ids whose key group is ``group``."""
    found, i = [], 0
    while len(found) < count:
        if shard_of(f"{prefix}{i}", shards) == group:
            found.append(f"{prefix}{i}")
        i += 1
    return found


def test_a_published_sharded_campaign_splits_its_stock_and_budget_over_its_groups(factory, container):
    campaign = factory.campaign(sharded(shards=3, stock=100, budget_fen=10_000))

    shards = groups(container, campaign)
    assert len(shards) == 3 and len({keys.meta for keys in shards}) == 3
    assert per_group(container, campaign, lambda k: allotment(k, SKU)) == slices(100, 3) == [34, 33, 33]
    assert per_group(container, campaign, lambda k: allotment(k, BUDGET)) == [3334, 3333, 3333]
    stats = container.live_state.stats(campaign)
    assert (stats.stock[SKU], stats.budget_fen, stats.shards) == ({"total": 100, "taken": 0, "left": 100}, 10_000, 3)
    player = players_of(2, 1)[0]
    factory.play(campaign, player)
    taken = per_group(container, campaign, lambda k: used(k, SKU))
    assert taken == [0, 0, 1]  # the play touched its player's group only


def test_racing_players_buy_every_unit_exactly_once_though_their_groups_run_dry_unevenly(
        settings, factory, container, settle, db_session):
    campaign = factory.campaign(sharded(shards=3, stock=90))
    # Group 0's players come first and drain its slice: the rest must come from the other groups.
    for player in players_of(0, 40, prefix="early"):
        factory.play(campaign, player)
    assert per_group(container, campaign, lambda k: used(k, SKU))[0] == 40

    outcomes = race(settings, campaign, distinct_buyers(300), processes=4, threads=6)

    assert tally(outcomes) == {"OK": 50, "SOLD_OUT": 250}
    allotted = per_group(container, campaign, lambda k: allotment(k, SKU))
    taken = per_group(container, campaign, lambda k: used(k, SKU))
    assert sum(allotted) == 90 and taken == allotted  # every group sold exactly what it holds: all of it
    assert container.live_state.stats(campaign).stock[SKU] == {"total": 90, "taken": 90, "left": 0}
    settle()
    issued = db_session.scalar(select(func.count()).select_from(Grant).where(
        Grant.campaign_id == campaign, Grant.status == GrantStatus.ISSUED))
    assert issued == 90


def test_the_budget_is_sliced_too_and_a_group_short_of_it_borrows_before_refusing(factory, container):
    campaign = factory.campaign(sharded(shards=3, stock=100, budget_fen=1_000, reward_cost_fen=100))
    # Ten wins of 100 fen: more than any group's slice (334, 333, 333) covers, all by players of one group.
    for player in players_of(1, 10):
        factory.play(campaign, player)
    with pytest.raises(Exception) as refused:
        factory.play(campaign, players_of(1, 11)[-1])
    assert refused.value.code == "BUDGET_EXHAUSTED"
    spent = per_group(container, campaign, lambda k: used(k, BUDGET))
    assert spent == [0, 1_000, 0]
    assert sum(per_group(container, campaign, lambda k: allotment(k, BUDGET))) == 1_000


def test_a_transfer_cut_short_between_its_halves_is_counted_in_flight_and_finished_once(factory, container):
    campaign = factory.campaign(sharded(shards=3, stock=30))
    shards = groups(container, campaign)
    donor = shards.keys(0)
    entry = json.dumps({"to": 2, "resource": SKU, "at_ms": to_ms(container.clock.now()) - 60_000})
    taken = container.scripts.transfer_out(donor, allotment=allotment(donor, SKU), used=used(donor, SKU), wanted=6,
                                           least=1, transfer_id="t-crashed", entry=entry)
    assert (taken.code, taken.body) == ("OK", "6")  # ... and the process died here

    assert per_group(container, campaign, lambda k: allotment(k, SKU)) == [4, 10, 10]
    assert container.live_state.stats(campaign).stock[SKU]["total"] == 30  # the six are in flight, not lost
    assert container.live_state.finish_transfers(to_ms(container.clock.now())) == 1
    assert per_group(container, campaign, lambda k: allotment(k, SKU)) == [4, 10, 16]
    assert container.live_state.finish_transfers(to_ms(container.clock.now())) == 0
    replay = container.scripts.transfer_in(shards.keys(2), allotment=allotment(shards.keys(2), SKU), amount=6,
                                           transfer_id="t-crashed", ttl=60)
    assert replay.code == "REPLAY"  # a late second half counts nothing twice
    assert container.live_state.stats(campaign).stock[SKU] == {"total": 30, "taken": 0, "left": 30}


def test_a_republish_moves_each_group_by_its_new_share_and_settles_a_group_that_sold_past_it(factory, container):
    campaign = factory.campaign(sharded(shards=3, stock=30))
    for player in players_of(0, 12):  # group 0 sells 12: its own 10 and 2 from another group
        factory.play(campaign, player)
    with container.session_factory() as session:
        service = container.campaign_service(session)
        service.update(campaign, sharded(shards=3, stock=15), actor="test")
        service.publish(campaign, actor="test")

    free = [a - u for a, u in zip(per_group(container, campaign, lambda k: allotment(k, SKU)),
                                  per_group(container, campaign, lambda k: used(k, SKU)), strict=True)]
    assert min(free) >= 0 and sum(free) == 3  # no group owes the others; three units are left in all
    assert container.live_state.stats(campaign).stock[SKU] == {"total": 15, "taken": 12, "left": 3}
    sold = 0
    for player in [f"late{i}" for i in range(10)]:
        try:
            factory.play(campaign, player)
            sold += 1
        except SoldOutError:
            pass
    assert sold == 3


def test_a_sharded_wheel_gives_its_scarce_prize_exactly_its_stock_to_players_of_every_group(
        settings, factory, container, settle, db_session):
    config = wheel(prizes=[
        {"id": "BIG", "name": "scarce", "weight": 1, "stock": 6, "reward": points(500), "fallback": "SMALL"},
        {"id": "SMALL", "name": "fallback", "weight": 0, "reward": points(5)},
        {"id": "T", "name": "thanks", "weight": 1},
    ])
    campaign = factory.campaign({**wheel_definition(config), "shards": 3})
    plays = [(f"w{i}", {"times": 1}, uuid.uuid4().hex) for i in range(150)]

    outcomes = race(settings, campaign, plays, processes=3, threads=4, action="draw")

    assert tally(outcomes) == {"OK": 150}
    assert container.live_state.stats(campaign).stock["prize:BIG"] == {"total": 6, "taken": 6, "left": 0}
    settle(worker=False)
    db_session.rollback()
    draws = [d for r in db_session.scalars(select(ClaimRecord).where(ClaimRecord.campaign_id == campaign))
             for d in r.outcome["draws"]]
    given = Counter(d["given"] for d in draws)
    assert given["BIG"] == 6 and given["SMALL"] == sum(d["drawn"] == "BIG" for d in draws) - 6


def test_held_orders_live_in_their_players_groups_and_are_released_there(factory, container):
    campaign = factory.campaign(sharded(shards=3, stock=9, price_fen=500))
    buyers = [players_of(group, 2, prefix=f"h{group}x")[i] for group in range(3) for i in range(2)]
    for buyer in buyers:
        factory.play(campaign, buyer)
    assert container.live_state.stats(campaign).held_orders == 6
    later = container.clock.now() + timedelta(hours=1)

    released = container.hold_sweeper.sweep_campaign(campaign, later)

    assert len(released) == 6
    stats = container.live_state.stats(campaign)
    assert (stats.held_orders, stats.stock[SKU]) == (0, {"total": 9, "taken": 0, "left": 9})


def test_players_see_the_campaigns_stock_as_one_number(factory, container, client):
    campaign = factory.campaign(sharded(shards=3, stock=30))
    buyer = players_of(1, 1)[0]
    answer = factory.play(campaign, buyer)

    assert json.loads(answer.state_json)["remaining"] == {SKU: 29}
    view = client.get(f"/api/v1/campaigns/{campaign}", headers=factory.headers(buyer))
    assert view.status_code == 200, view.json
    assert view.json["me"]["skus"]["C50"]["stock_left"] == 29


def test_every_group_is_paused_and_resumed_together(factory, container):
    campaign = factory.campaign(sharded(shards=3, stock=30))
    with container.session_factory() as session:
        container.campaign_service(session).transition(campaign, "pause", actor="test")
    for group in range(3):
        with pytest.raises(CampaignNotLiveError):
            factory.play(campaign, players_of(group, 1, prefix="paused")[0])
    with container.session_factory() as session:
        container.campaign_service(session).transition(campaign, "resume", actor="test")
    assert [json.loads(factory.play(campaign, players_of(group, 1, prefix="back")[0]).state_json)["used"]["all"]
            for group in range(3)] == [1, 1, 1]


@pytest.mark.parametrize(("document", "field"), [
    ({"game": "referral"}, "shards"),
    ({"shards": 0}, "shards"),
    ({"shards": 1025}, "shards"),
    ({"shards": "3"}, "shards"),
])
def test_a_definition_that_cannot_shard_is_refused_with_the_field_named(client, admin_token, document, field):
    from tests.games.test_referral import definition as referral_definition

    base = referral_definition() if document.get("game") == "referral" else flash_sale_definition()
    body = {**base, "shards": 2, **{k: v for k, v in document.items() if k != "game"}}
    response = client.post("/admin/api/v1/campaigns", json=body,
                           headers={"Authorization": f"Bearer {admin_token()}"})
    assert response.status_code == 422, response.json
    assert response.json["error"]["code"] == "VALIDATION_ERROR"
    assert field in response.json["error"]["details"]["fields"]


def test_the_number_of_shards_is_fixed_at_the_first_publish(factory, container):
    campaign = factory.campaign(flash_sale_definition(stock=10))
    with container.session_factory() as session:
        service = container.campaign_service(session)
        service.update(campaign, sharded(shards=2, stock=10), actor="test")
        with pytest.raises(Exception) as refused:
            service.publish(campaign, actor="test")
    assert refused.value.code == "VALIDATION_ERROR" and "shards" in refused.value.details["fields"]
    assert len(groups(container, campaign)) == 1


def test_players_of_every_group_check_in_once_a_day_with_the_budget_sliced(factory, container):
    from tests.games.test_checkin import definition as checkin_definition

    campaign = factory.campaign({**checkin_definition(), "shards": 3})
    players = [players_of(group, 2, prefix=f"ci{group}-")[i] for group in range(3) for i in range(2)]
    for player in players:
        factory.play(campaign, player, "checkin", {})
        with pytest.raises(Exception) as again:
            factory.play(campaign, player, "checkin", {})
        assert again.value.code == "ALREADY_CHECKED_IN"
    assert sum(per_group(container, campaign, lambda k: used(k, BUDGET))) == container.live_state.stats(
        campaign).spent_fen > 0
    assert sum(per_group(container, campaign, lambda k: allotment(k, BUDGET))) == 100_000
