"""Settlement on a Redis Cluster: every campaign's outbox stream has a slot of its own, so it is read by an
XREADGROUP of its own (rewards/streams.py); settlement processes share the streams of all campaigns, and one
takes over what a dead one left pending. Every claim becomes one issued grant."""

from __future__ import annotations

import uuid

from rq import SimpleWorker
from rq.serializers import JSONSerializer
from sqlalchemy import func, select

from campaigns.models import Grant, GrantStatus
from engine import jobs
from engine.keys import CampaignKeys, GlobalKeys

from ..support.factories import Factory


def settle_all(container, consumer: str, **overrides) -> int:
    settlement = container.settlement(consumer=consumer, **overrides)
    entries = 0
    while (step := settlement.step(block_ms=10)).entries:
        entries += step.entries
    return entries


def test_claims_of_campaigns_on_every_primary_are_settled_once(cluster_container, client, db_session):
    container = cluster_container
    factory = Factory(container, client)
    campaigns = [factory.campaign(stock=100) for _ in range(8)]
    keys = [CampaignKeys(container.settings.redis_namespace, campaign) for campaign in campaigns]
    assert len({container.redis.get_node_from_key(k.outbox).name for k in keys}) == 3  # eight slots, three primaries
    for campaign in campaigns:
        for i in range(5):
            factory.play(campaign, f"c{campaign}p{i}")  # a refusal raises

    assert settle_all(container, "settlement-a") == 40
    jobs.install(container.adapter_context)
    SimpleWorker([container.settle_queue], connection=container.rq_redis, serializer=JSONSerializer,
                 name=f"{container.settings.redis_namespace}-{uuid.uuid4().hex[:8]}").work(burst=True)

    issued = db_session.scalar(select(func.count()).select_from(Grant).where(Grant.status == GrantStatus.ISSUED))
    assert issued == 40
    group = GlobalKeys(container.settings.redis_namespace).outbox_group
    assert [container.redis.xpending(k.outbox, group)["pending"] for k in keys] == [0] * 8


def test_a_second_settlement_takes_over_what_a_dead_one_left_pending(cluster_container, client, db_session):
    container = cluster_container
    factory = Factory(container, client)
    campaigns = [factory.campaign(stock=100) for _ in range(4)]
    for campaign in campaigns:
        factory.play(campaign, f"d{campaign}")
    group = GlobalKeys(container.settings.redis_namespace).outbox_group
    streams = [CampaignKeys(container.settings.redis_namespace, c).outbox for c in campaigns]
    for stream in streams:  # a consumer reads every stream's entry and dies before it acknowledges any
        container.redis.xreadgroup(group, "dead-settlement", {stream: ">"}, count=10)
    assert sum(container.redis.xpending(s, group)["pending"] for s in streams) == 4

    assert settle_all(container, "settlement-b", claim_idle_ms=0) == 4
    assert sum(container.redis.xpending(s, group)["pending"] for s in streams) == 0
    assert db_session.scalar(select(func.count()).select_from(Grant)) == 4
