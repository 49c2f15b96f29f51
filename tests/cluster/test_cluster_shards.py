"""A sharded campaign on the run's three-primary cluster: publish places its K groups on K distinct primaries,
racing buyers in several processes take exactly the stock through all of them (groups that run dry take slices
from the others across primaries), and settlement reads every group's outbox."""

from __future__ import annotations

import uuid

from rq import SimpleWorker
from rq.serializers import JSONSerializer
from sqlalchemy import func, select

from campaigns.models import Grant, GrantStatus
from engine import jobs
from engine.shards import place

from ..invariants.test_sharded_campaign import SKU, sharded
from ..support.factories import Factory
from ..support.racers import distinct_buyers, race, tally
from .test_cluster_settlement import settle_all


def test_publish_places_the_groups_of_a_campaign_on_distinct_primaries(cluster_container, client):
    container = cluster_container
    primaries = {node.name for node in container.redis.get_primaries()}
    for count in (2, 3):
        tags = place(container.redis, 1000 + count, count)
        assert len({container.redis.get_node_from_key(f"{{{tag}}}").name for tag in tags}) == count
    five = place(container.redis, 77, 5)  # more groups than primaries: round the primaries again
    assert {container.redis.get_node_from_key(f"{{{tag}}}").name for tag in five} == primaries

    campaign = Factory(container, client).campaign(sharded(shards=3, stock=10))
    groups = container.live_state.shards(campaign)
    assert {container.redis.get_node_from_key(keys.meta).name for keys in groups} == primaries


def test_racing_buyers_take_exactly_the_stock_of_a_campaign_spread_over_three_primaries(
        cluster_container, client, db_session):
    container = cluster_container
    campaign = Factory(container, client).campaign(sharded(shards=3, stock=120))

    outcomes = race(container.settings, campaign, distinct_buyers(400), processes=4, threads=6)

    assert tally(outcomes) == {"OK": 120, "SOLD_OUT": 280}
    groups = container.live_state.shards(campaign)
    taken = [int(container.redis.hget(keys.stock_taken, SKU) or 0) for keys in groups]
    assert sum(taken) == 120 and min(taken) > 0
    assert container.live_state.stats(campaign).stock[SKU] == {"total": 120, "taken": 120, "left": 0}

    assert settle_all(container, f"settlement-{uuid.uuid4().hex[:6]}") == 120
    jobs.install(container.adapter_context)
    SimpleWorker([container.settle_queue], connection=container.rq_redis, serializer=JSONSerializer,
                 name=f"{container.settings.redis_namespace}-{uuid.uuid4().hex[:8]}").work(burst=True)
    issued = db_session.scalar(select(func.count()).select_from(Grant).where(
        Grant.campaign_id == campaign, Grant.status == GrantStatus.ISSUED))
    assert issued == 120
