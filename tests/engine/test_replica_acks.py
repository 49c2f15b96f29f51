"""HUODONG_REDIS_REPLICA_ACKS: a claim is answered only once that many replicas have it (Redis WAIT on the
claim's own connection). On a server without a replica an admitted claim is therefore not answered (the
ReplicaAckError a play answers 503 with); it is in Redis all the same, and the retry with the same
Idempotency-Key gets its one answer. A refusal is answered whatever the replicas have."""

from __future__ import annotations

import time

import pytest

from engine.connections import ReplicaAckError, on_cluster
from engine.errors import SoldOutError
from web.container import Container

from ..support.factories import Factory


@pytest.fixture
def waiting(settings, container) -> Container:
    if on_cluster(container.redis):
        pytest.skip("every primary of the test cluster has a replica: its claims are acknowledged")
    return Container.build(settings.replace(redis_replica_acks=1, redis_replica_wait_ms=40))


def test_a_claim_no_replica_has_is_not_answered_and_its_retry_replays_it(waiting, client, container):
    factory = Factory(waiting, client)
    campaign = factory.campaign(stock=1)
    started = time.monotonic()
    with pytest.raises(ReplicaAckError):
        factory.play(campaign, "w1", key="k-1")
    assert time.monotonic() - started >= 0.04  # it waited for the replica that never came
    assert container.live_state.stats(campaign).stock["sku:C50"]["taken"] == 1  # applied: a failover could lose it

    replayed = Factory(container, client).play(campaign, "w1", key="k-1")
    assert replayed.replayed and replayed.outcome["order"]["status"] == "confirmed"
    with pytest.raises(SoldOutError):  # a refusal is answered at once, acknowledged or not
        factory.play(campaign, "w2", key="k-2")
