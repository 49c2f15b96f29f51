"""Fixtures: real Redis, real SQL, the app, a real RQ worker, and factories for campaigns and players."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from rq import SimpleWorker
from rq.serializers import JSONSerializer

from alipay_sandbox.server import RunningSandbox, start_for_merchant
from engine import jobs
from engine.config import Settings, load_settings
from engine.journal import journal_dir
from web import create_app
from web.container import Container

from .support.client import MiniProgramClient
from .support.cluster import LocalCluster
from .support.factories import Factory
from .support.services import (
    TEST_REDIS_CLUSTER,
    cluster_redis,
    database,
    new_run_id,
    purge_redis,
    redis_server,
    serving,
    truncate_tables,
)


@pytest.fixture(scope="session")
def run_id() -> str:
    return new_run_id()


@pytest.fixture(scope="session")
def services_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("services")


@pytest.fixture(scope="session")
def redis_url(services_dir: Path) -> Iterator[str]:
    """The plain Redis of the run: the engine's, and RQ's (in the cluster pass, RQ's only)."""
    with redis_server(services_dir) as url:
        yield url


@pytest.fixture(scope="session")
def cluster(services_dir: Path) -> Iterator[LocalCluster]:
    """The run's local Redis Cluster (three primaries, a replica each), started once, when a test first needs it."""
    running = LocalCluster(services_dir / "cluster")
    running.start()
    yield running
    running.stop()


@pytest.fixture(scope="session")
def redis_settings(request: pytest.FixtureRequest, redis_url: str) -> dict[str, str]:
    """The engine's Redis: the plain one, or in the cluster pass the run's cluster (RQ stays on the plain one)."""
    if not TEST_REDIS_CLUSTER:
        return {"redis_url": redis_url}
    return cluster_redis(request.getfixturevalue("cluster").url, redis_url)


@pytest.fixture(scope="session")
def cluster_settings(settings: Settings, cluster: LocalCluster, redis_url: str) -> Settings:
    """The run's settings with the engine on the cluster, in any pass."""
    return settings.replace(**cluster_redis(cluster.url, redis_url))


@pytest.fixture(scope="session")
def database_url(services_dir: Path, run_id: str) -> Iterator[str]:
    with database(services_dir, run_id) as url:
        yield url


@pytest.fixture(scope="session")
def alipay_sandbox() -> Iterator[RunningSandbox]:
    """The sandbox gateway on 127.0.0.1 with fresh keys: this run's merchant app is the only one it knows."""
    # A "timeout" fault answers after 1.5 s, past the client's 1 s socket timeout (settings below).
    running = start_for_merchant(late_seconds=1.5)
    yield running
    running.stop()


@pytest.fixture(scope="session")
def settings(services_dir: Path, redis_settings: dict[str, str], database_url: str, run_id: str,
             alipay_sandbox: RunningSandbox) -> Settings:
    """Settings for the whole run, never read from this machine's environment."""
    return load_settings({
        **alipay_sandbox.client_settings(),
        "alipay_timeout_seconds": 1,
        "instance_path": str(services_dir / "instance"),
        **redis_settings,
        "database_url": database_url,
        "redis_namespace": f"hdt{run_id}",
        "secret_key": "test-secret",
        "dev_login": True,
        "log_format": "console",
        "log_level": "WARNING",
        "job_retry_intervals": "0,0,0",
        "outbox_claim_idle_ms": 30000,
        "settle_linger_ms": 0,  # tests settle what they made at once (test_batches.py shows the linger)
    }, environ={})


@pytest.fixture(scope="session")
def session_container(settings: Settings) -> Container:
    return Container.build(settings)


@pytest.fixture(autouse=True)
def _clean(session_container: Container, settings: Settings) -> Iterator[None]:
    """Every test starts and ends with this run's keys, rows and journaled claims gone."""
    session_container.play_service.refusals.flush()  # an earlier test's refusals go out now, then are purged
    purge_run(session_container, settings)
    truncate_tables(session_container.sql_engine)
    shutil.rmtree(journal_dir(settings), ignore_errors=True)
    if session_container.play_service.journal is not None:
        session_container.play_service.journal.close()
    session_container.snapshots._entries.clear()
    session_container.attributes.forget()
    session_container.fraud_policies.forget()
    session_container.play_service.blocks.forget()  # campaign ids start again at 1
    session_container.play_service.known_members.forget()
    session_container.play_service.forget_groups()
    session_container.shard_directory.forget()
    session_container.live_state.stock_view.forget()
    yield
    purge_run(session_container, settings)


def purge_run(container: Container, settings: Settings) -> None:
    """This run's keys: RQ's and, on a cluster, the engine's there too."""
    purge_redis(container.rq_redis, settings.redis_namespace, container.settle_queue.name)
    if settings.queue_redis_url:
        purge_redis(container.redis, settings.redis_namespace, container.settle_queue.name)


@pytest.fixture
def container(session_container: Container) -> Container:
    return session_container


@pytest.fixture
def app(settings: Settings, session_container: Container) -> Any:
    app = create_app(settings)
    app.extensions["huodong.container"] = session_container
    app.config["TESTING"] = True
    app.test_client_class = MiniProgramClient
    return app


@pytest.fixture
def client(app: Any) -> Any:
    return app.test_client()


@pytest.fixture
def live_url(app: Any) -> Iterator[str]:
    """The app on a real port (a browser, or the Alipay sandbox posting its notifications, calls it)."""
    with serving(app) as url:
        yield url


@pytest.fixture
def redis(container: Container) -> Any:
    return container.redis


@pytest.fixture
def db_session(container: Container) -> Iterator[Any]:
    with container.read_session_factory() as session:
        yield session


@pytest.fixture
def factory(container: Container, client: Any) -> Factory:
    return Factory(container, client)


@pytest.fixture
def settle(container: Container) -> Any:
    """Settle everything waiting: outbox -> rows -> jobs, then a real RQ worker in burst mode."""
    jobs.install(container.adapter_context)

    def run(*, worker: bool = True, **overrides: Any) -> None:
        settlement = container.settlement(consumer="test-settlement", **overrides)
        while settlement.step(block_ms=10).entries:
            pass
        if worker:
            SimpleWorker([container.settle_queue], connection=container.rq_redis, serializer=JSONSerializer,
                         name=f"{container.settings.redis_namespace}-{uuid.uuid4().hex[:8]}").work(burst=True)

    return run


@pytest.fixture
def admin_token(container: Container) -> Any:
    """Makes an admin API token of a role: ``admin_token("marketer")``."""
    from campaigns.tokens import AdminTokenService

    def make(role: str = "admin") -> str:
        with container.session_factory() as session:
            return AdminTokenService(session, clock=container.clock).create(role=role, name=f"test {role}",
                                                                               actor="test")[1]

    return make


@pytest.fixture
def user(container: Container) -> Any:
    """Makes an admin page user of a role (password ``tests.support.browser.PASSWORD``): ``user("viewer")``."""
    from campaigns.users import AdminUserService
    from tests.support.browser import PASSWORD

    def make(role: str = "publisher", email: str = "ops@huodong.test") -> str:
        with container.session_factory() as session:
            AdminUserService(session, clock=container.clock).create(email=email, password=PASSWORD, role=role,
                                                                    actor="test")
        return email

    return make
