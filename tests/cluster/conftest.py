"""A container whose engine runs on the run's Redis Cluster (in every pass), under a namespace of its own."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from web.container import Container

from ..support.services import purge_redis


@pytest.fixture
def cluster_container(cluster_settings, settings) -> Iterator[Container]:
    container = Container.build(cluster_settings.replace(redis_namespace=f"{settings.redis_namespace}k"))
    namespace, queue = container.settings.redis_namespace, container.settle_queue.name
    yield container
    for client in (container.redis, container.rq_redis):
        purge_redis(client, namespace, queue)
