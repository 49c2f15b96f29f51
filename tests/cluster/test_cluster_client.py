"""The engine on a Redis Cluster: ``HUODONG_REDIS_URL`` names any node, the client is redis-py's
``RedisCluster`` (asked or told), RQ's queues stay on a plain Redis, and a campaign's keys share one slot.

These run in every pass; the cluster they need is the run's own (started once, tests/support/cluster.py),
which in the cluster pass (HUODONG_TEST_REDIS_CLUSTER=1) is also the engine's Redis of the whole suite."""

from __future__ import annotations

import pytest
import redis
from redis.cluster import RedisCluster
from redis.exceptions import RedisClusterException

from engine.connections import QueueConfigurationError, connect, connect_queue, is_cluster, queue_url
from engine.keys import CampaignKeys
from engine.scripts import Scripts


def test_a_cluster_is_found_by_asking_or_by_being_told(cluster_settings, redis_url):
    asked = cluster_settings.replace(redis_cluster="auto")
    assert is_cluster(asked) and isinstance(connect(asked), RedisCluster)
    assert isinstance(connect(cluster_settings.replace(redis_cluster="1")), RedisCluster)
    plain = cluster_settings.replace(redis_url=redis_url, redis_cluster="auto", queue_redis_url="")
    if redis_url.startswith("redis://"):  # the embedded server (a unix socket) is no cluster by definition
        assert not is_cluster(plain)
    assert not isinstance(connect(plain.replace(redis_cluster="0")), RedisCluster)


def test_rq_needs_a_plain_redis_beside_a_cluster(cluster_settings, redis_url):
    with pytest.raises(QueueConfigurationError, match="HUODONG_QUEUE_REDIS_URL"):
        queue_url(cluster_settings.replace(queue_redis_url=""))
    assert queue_url(cluster_settings) == redis_url
    queue = connect_queue(cluster_settings)
    assert not isinstance(queue, RedisCluster) and queue.ping()


def test_the_scripts_run_on_every_primary_and_refuse_keys_of_two_slots(cluster, cluster_settings):
    client = connect(cluster_settings)
    scripts = Scripts(client)
    answers = set()
    for campaign in range(1, 40):  # some forty campaigns' slots fall on all three primaries
        keys = CampaignKeys(cluster_settings.redis_namespace, campaign)
        answers.add(client.get_node_from_key(keys.meta).name)
        reply = scripts.set_status(keys, "paused")  # NOSCRIPT on a primary that never saw it: loaded there
        assert reply.code == "MISSING"
    assert len(answers) == 3
    one, other = CampaignKeys("hdx", 1), CampaignKeys("hdx", 2)
    with pytest.raises(RedisClusterException, match="same key slot"):
        client.evalsha(scripts.claim_sha, 2, one.meta, other.meta)
    for key in client.scan_iter(match=f"{cluster_settings.redis_namespace}:*"):
        client.delete(key)


def test_the_suite_runs_on_the_cluster_in_its_cluster_pass(settings, container):
    if settings.queue_redis_url:
        assert isinstance(container.redis, RedisCluster) and not isinstance(container.rq_redis, RedisCluster)
    else:
        assert not isinstance(container.redis, RedisCluster)


def pings(cluster) -> list[int]:
    counts = []
    for node in cluster.primaries():
        client = redis.Redis(port=node.port)
        counts.append(int(client.info("commandstats").get("cmdstat_ping", {}).get("calls", 0)))
        client.close()
    return counts


def test_healthz_asks_every_primary_and_the_queues_redis(cluster, cluster_settings, tmp_path):
    from web import create_app

    before = pings(cluster)
    healthy = create_app(cluster_settings).test_client().get("/healthz")
    assert all(after > then for after, then in zip(pings(cluster), before, strict=True))
    assert healthy.status_code == 200
    assert healthy.json["checks"] == {"redis": "ok", "queue": "ok", "sql": "ok"}
    no_queue = cluster_settings.replace(queue_redis_url=f"unix://{tmp_path}/nothing.sock")
    broken = create_app(no_queue).test_client().get("/healthz")
    assert broken.status_code == 503 and broken.json["checks"]["queue"].startswith("error")
    assert broken.json["checks"]["redis"] == "ok"
