"""Builds every long-lived collaborator of a process from its settings, once.

Web processes, the settlement loop and the benchmark build their services
here, so they are wired the same way everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import redis
from rq import Queue
from rq.serializers import JSONSerializer
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from alipay_platform.gateway import AlipayGateway, gateway_for
from alipay_platform.payments import PaymentService
from campaigns.db import make_engine, make_session_factory
from campaigns.fraud import FraudPolicyService
from campaigns.live import LiveState
from campaigns.services import CampaignService
from engine.attributes import AttributeStore
from engine.clock import Clock, SystemClock
from engine.config import Settings
from engine.connections import connect, connect_queue
from engine.fraud.store import PolicyCache
from engine.holds import HoldSweeper
from engine.jobs import JobContext
from engine.journal import ClaimJournal, StreamJournal, journal_for
from engine.keys import GlobalKeys
from engine.plugins import load_plugins
from engine.refusals import RefusalTally
from engine.runtime import PlayService
from engine.scripts import Scripts
from engine.shards import ShardDirectory
from engine.snapshot import SnapshotCache
from rewards.review import ReviewService
from rewards.services import GrantService
from rewards.settlement import Settlement


@dataclass
class Container:
    settings: Settings
    clock: Clock

    @classmethod
    def build(cls, settings: Settings, clock: Clock | None = None) -> Container:
        load_plugins(settings)
        return cls(settings=settings, clock=clock or SystemClock())

    @cached_property
    def redis(self) -> redis.Redis:
        return connect(self.settings)

    @cached_property
    def rq_redis(self) -> redis.Redis:
        """RQ's: the queues' plain Redis (the engine's own unless it is a cluster)."""
        return connect_queue(self.settings)

    @cached_property
    def scripts(self) -> Scripts:
        return Scripts(self.redis, replica_acks=self.settings.redis_replica_acks,
                       replica_wait_ms=self.settings.redis_replica_wait_ms)

    @cached_property
    def sql_engine(self) -> Engine:
        return make_engine(self.settings.resolved_database_url())

    @cached_property
    def session_factory(self) -> sessionmaker:
        return make_session_factory(self.sql_engine)

    @cached_property
    def read_session_factory(self) -> sessionmaker:
        """Sessions that only read (history pages, tests): on SQLite they never hold the write lock."""
        if self.sql_engine.dialect.name != "sqlite":
            return self.session_factory
        return make_session_factory(make_engine(self.settings.resolved_database_url(), for_writes=False))

    @cached_property
    def snapshots(self) -> SnapshotCache:
        return SnapshotCache(self.redis, namespace=self.settings.redis_namespace,
                             ttl_seconds=self.settings.snapshot_cache_seconds)

    @cached_property
    def alipay(self) -> AlipayGateway:
        return gateway_for(self.settings)

    @cached_property
    def payments(self) -> PaymentService:
        return PaymentService(client=self.redis, scripts=self.scripts, namespace=self.settings.redis_namespace,
                              settings=self.settings, clock=self.clock, session_factory=self.session_factory,
                              queue=self.settle_queue, groups=self.shard_directory)

    @cached_property
    def journal_redis(self) -> redis.Redis | None:
        """The Redis that keeps the claim journal's streams (claim_journal_redis_url), if any."""
        url = self.settings.claim_journal_redis_url
        return redis.Redis.from_url(url, decode_responses=True) if url else None

    @cached_property
    def journal_reader(self) -> ClaimJournal | StreamJournal:
        """The claim journal as the settings place it (the play service writes to it, reconciliation reads it)."""
        return journal_for(self.settings, self.journal_redis)

    @cached_property
    def shard_directory(self) -> ShardDirectory:
        """Each campaign's key groups (engine/shards.py), for everything that reads or sweeps all of them."""
        return ShardDirectory(self.redis, self.settings.redis_namespace)

    @cached_property
    def attributes(self) -> AttributeStore:
        return AttributeStore(self.redis, namespace=self.settings.redis_namespace)

    @cached_property
    def play_service(self) -> PlayService:
        return PlayService(scripts=self.scripts, snapshots=self.snapshots, clock=self.clock,
                           attributes=self.attributes,
                           journal=self.journal_reader if self.settings.claim_journal else None,
                           policies=self.fraud_policies,
                           refusals=RefusalTally(self.redis, namespace=self.settings.redis_namespace),
                           namespace=self.settings.redis_namespace,
                           idempotency_ttl=self.settings.idempotency_ttl_seconds, settings=self.settings)

    @cached_property
    def fraud_policies(self) -> PolicyCache:
        return PolicyCache(self.redis, self.settings.redis_namespace, ttl_seconds=self.settings.snapshot_cache_seconds)

    @cached_property
    def live_state(self) -> LiveState:
        return LiveState(self.redis, scripts=self.scripts, namespace=self.settings.redis_namespace,
                         directory=self.shard_directory)

    def campaign_service(self, session: Session) -> CampaignService:
        return CampaignService(session, live=self.live_state, clock=self.clock, finisher=self.play_service.finale,
                               fraud_policies=self.fraud_policy_service(session))

    def fraud_policy_service(self, session: Session) -> FraudPolicyService:
        return FraudPolicyService(session, client=self.redis, namespace=self.settings.redis_namespace,
                                  clock=self.clock)

    def grant_service(self, session: Session) -> GrantService:
        return GrantService(session, settlement=self.settlement(), clock=self.clock)

    def review_service(self, session: Session) -> ReviewService:
        return ReviewService(session, settlement=self.settlement(), scripts=self.scripts,
                             namespace=self.settings.redis_namespace, clock=self.clock)

    @cached_property
    def settle_queue(self) -> Queue:
        name = GlobalKeys(self.settings.redis_namespace).queue(self.settings.settle_queue)
        return Queue(name, connection=self.rq_redis, serializer=JSONSerializer)

    @cached_property
    def adapter_context(self) -> JobContext:
        """What RQ jobs run with (reward adapters, the Alipay jobs): ``engine.jobs.install`` it in a worker."""
        return JobContext(settings=self.settings, session_factory=self.session_factory, clock=self.clock,
                          redis=self.redis)

    def settlement(self, **overrides: object) -> Settlement:
        return Settlement.configured(self.settings, client=self.redis, queue=self.settle_queue,
                                     session_factory=self.session_factory, clock=self.clock,
                                     **{"carrier": self.play_service.carry_event, **overrides})

    @cached_property
    def hold_sweeper(self) -> HoldSweeper:
        return HoldSweeper(self.redis, scripts=self.scripts, namespace=self.settings.redis_namespace,
                           groups=self.shard_directory)
