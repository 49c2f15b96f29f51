"""Settlement: outbox entries become SQL rows, and every grant becomes one RQ issuance job.

At-least-once by construction: entries are read through a consumer group,
rows are written idempotently (primary keys and ON CONFLICT, never a check
in Python), jobs are enqueued with the grant id as a unique job id, and only
then is the entry acknowledged. An entry a dead consumer left pending is
taken over with XAUTOCLAIM once idle for ``claim_idle_ms``.
"""

from __future__ import annotations

import json
import logging
import os
import random
import socket
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import redis
from rq import Queue, Retry
from rq.exceptions import DuplicateJobError, NoSuchJobError
from rq.job import Job, JobStatus
from rq.registry import ScheduledJobRegistry, StartedJobRegistry
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from campaigns.db import insert_for
from campaigns.models import ClaimRecord, Grant, GrantStatus, Order, OrderStatus, ReviewStatus
from engine.clock import Clock, from_ms
from engine.config import Settings
from engine.errors import ConflictError
from engine.keys import CampaignKeys, GlobalKeys

# The RQ jobs (rewards/tasks.py) by name: the worker imports them; this module need not.
ISSUE_GRANT = "rewards.tasks.issue_grant"
RECONCILE_DAY = "rewards.tasks.reconcile_day"

log = logging.getLogger(__name__)

ENDED_JOB_STATUSES = {JobStatus.FAILED, JobStatus.FINISHED, JobStatus.STOPPED, JobStatus.CANCELED, None}
# Grants no attempt has settled yet: issued and dead are final.
UNSETTLED = (GrantStatus.PENDING, GrantStatus.FAILED, GrantStatus.UNKNOWN)


class GrantBusyError(ConflictError):
    code = "GRANT_BUSY"
    default_message = "The grant is being issued right now."


@dataclass
class StepReport:
    entries: int = 0
    grants_enqueued: list[str] = field(default_factory=list)


def default_consumer_name() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


class Settlement:
    def __init__(
        self,
        *,
        client: redis.Redis,
        queue: Queue,
        session_factory: sessionmaker,
        namespace: str,
        clock: Clock,
        consumer: str | None = None,
        claim_idle_ms: int = 30_000,
        retry_intervals: Iterable[int] = (2, 10, 60, 300),
        job_timeout: int = 120,
        give_up_after: int = 20,
        after_commit: Callable[[list[str]], None] | None = None,
    ) -> None:
        self._client = client
        self._queue = queue
        self._sessions = session_factory
        self._namespace = namespace
        self._global = GlobalKeys(namespace)
        self._clock = clock
        self.consumer = consumer or default_consumer_name()
        self._claim_idle_ms = claim_idle_ms
        self._retry_intervals = [int(i) for i in retry_intervals]
        self._job_timeout = job_timeout
        self._give_up_after = give_up_after
        # Observes the moment rows are committed and jobs not yet enqueued (crash tests use it).
        self._after_commit = after_commit

    @classmethod
    def configured(cls, settings: Settings, *, client: redis.Redis, queue: Queue, session_factory: sessionmaker,
                   clock: Clock, **overrides: Any) -> Settlement:
        """Settlement as the settings say (a test may override any option)."""
        options: dict[str, Any] = dict(
            client=client, queue=queue, session_factory=session_factory, namespace=settings.redis_namespace,
            clock=clock, claim_idle_ms=settings.outbox_claim_idle_ms,
            retry_intervals=[int(i) for i in settings.job_retry_intervals], job_timeout=settings.job_timeout_seconds,
            give_up_after=settings.grant_max_attempts,
        )
        return cls(**{**options, **overrides})

    def streams(self) -> list[str]:
        return [stream for _campaign_id, stream in outbox_streams(self._client, self._namespace)]

    def step(self, *, block_ms: int = 1000, count: int = 200) -> StepReport:
        """Settle what is waiting: entries abandoned by dead consumers first, then new ones."""
        streams = self.streams()
        report = StepReport()
        if not streams:
            return report
        group = self._global.outbox_group
        # Take over what dead consumers left (one pipelined round trip for every stream), then read all of
        # this consumer's pending entries (taken over just now, or left by an error in an earlier step).
        with self._client.pipeline(transaction=False) as pipe:
            for stream in streams:
                pipe.xautoclaim(stream, group, self.consumer, self._claim_idle_ms, start_id="0-0", count=count,
                                justid=True)
            pipe.execute()
        own = self._client.xreadgroup(group, self.consumer, dict.fromkeys(streams, "0"), count=count)
        batches = [(name, entries) for name, entries in own or [] if entries]
        if not batches:
            fresh = self._client.xreadgroup(group, self.consumer, dict.fromkeys(streams, ">"),
                                            count=count, block=block_ms)
            batches = [(name, entries) for name, entries in fresh or [] if entries]
        for stream, entries in batches:
            self._settle(stream, entries, report)
        return report

    def _settle(self, stream: str, entries: list[tuple[str, dict[str, str]]], report: StepReport) -> None:
        events = []
        for entry_id, fields in entries:
            try:
                event = json.loads(fields["e"])
                if "f" in fields:  # what the fraud gate noted on the play (shadow rules, risk, a hold)
                    event["fraud"] = json.loads(fields["f"])
                events.append(event)
            except (KeyError, TypeError, ValueError):
                # Only claim.lua and release.lua write here; anything else would block the stream forever.
                log.error("dropping unreadable outbox entry %s of %s: %r", entry_id, stream, fields)
        with self._sessions() as session, session.begin():
            grant_ids = self._write_rows(session, events)
        if self._after_commit:
            self._after_commit(grant_ids)
        for grant_id in grant_ids:
            if self.enqueue(grant_id):
                report.grants_enqueued.append(grant_id)
        self._client.xack(stream, self._global.outbox_group, *[entry_id for entry_id, _ in entries])
        report.entries += len(entries)

    def _write_rows(self, session: Session, events: list[dict[str, Any]]) -> list[str]:
        grant_ids: list[str] = []
        for event in events:
            if event["type"] == "claim":
                grant_ids += write_claim(session, event, self._clock.now())
            elif event["type"] == "order.released":
                write_release(session, event, self._clock.now())
            elif event["type"] == "order.paid":
                grant_ids += write_paid(session, event, self._clock.now())
            else:
                log.error("unknown outbox event type %r", event["type"])
        return grant_ids

    def enqueue(self, grant_id: str) -> bool:
        """One RQ job per grant; False when its job already exists (a redelivered entry)."""
        try:
            self._queue.enqueue(
                ISSUE_GRANT, grant_id, job_id=grant_id, unique=True,
                retry=Retry(max=len(self._retry_intervals), interval=jittered(self._retry_intervals))
                if self._retry_intervals else None,
                job_timeout=self._job_timeout, result_ttl=86400, failure_ttl=30 * 86400,
            )
        except DuplicateJobError:
            return False
        return True

    def retry(self, grant_id: str) -> None:
        """A person's retry of a grant that was not issued: a fresh job with every retry again.

        Its old job, if it ended (failed, or finished after a permanent refusal),
        is dropped first; one still queued, scheduled or running is left alone.
        """
        busy = self._live_job_status(grant_id)
        if busy is not None:
            raise GrantBusyError("The grant's job is still queued or running.", job_status=busy)
        if not self.enqueue(grant_id):
            raise GrantBusyError("The grant's job was enqueued by someone else just now.")

    def requeue_stalled(self, older_than: timedelta) -> list[str]:
        """Grants left unsettled long after their last change, with no job that will still run them: a fresh job.

        That is a job Redis lost, or one that ended without settling its grant
        (a worker killed on its last retry). A grant that has used up
        ``give_up_after`` attempts becomes a dead letter with that reason instead,
        so nothing stays stuck and nothing is retried for ever.
        """
        cutoff = self._clock.now() - older_than
        with self._sessions() as session:
            stalled = session.execute(select(Grant.id, Grant.attempts).where(
                Grant.status.in_(UNSETTLED), Grant.updated_at < cutoff).limit(1000)).all()
        requeued = []
        for grant_id, attempts in stalled:
            if self._live_job_status(grant_id) is not None:
                continue  # queued, scheduled or running: it will settle the grant
            if attempts >= self._give_up_after:
                self._give_up(grant_id, attempts)
            elif self.enqueue(grant_id):
                requeued.append(grant_id)
        return requeued

    def release_overdue_retries(self, overdue: timedelta, *, now: float | None = None) -> list[str]:
        """Retries still scheduled ``overdue`` after their time go to the queue now.

        RQ moves a scheduled retry to its queue from the scheduler of one worker,
        which holds a lock in Redis. When that scheduler dies with its worker (a
        SIGKILL, a Redis crash under it), another worker takes it over at its
        next maintenance; until then retries wait. This does what the scheduler
        would (a job moved twice by both runs twice, and issuing is idempotent).
        """
        registry = ScheduledJobRegistry(queue=self._queue)
        cutoff = int((now if now is not None else time.time()) - overdue.total_seconds())
        job_ids = registry.get_jobs_to_schedule(cutoff)
        released = []
        for job in Job.fetch_many(job_ids, connection=self._queue.connection, serializer=self._queue.serializer):
            if job is not None and registry.remove(job):
                self._queue.enqueue_job(job)
                released.append(job.id)
        return released

    def recover_abandoned_jobs(self, *, as_of: float | None = None) -> None:
        """Jobs of workers that died (their heartbeat lapsed) go back to the queue with their retries, or fail.

        RQ workers do this in their own maintenance every ten minutes; settlement's
        housekeeping does it every pass, so a killed worker's grant waits seconds.
        ``as_of`` (a Unix time) lets a test look past the heartbeat's expiry.
        """
        StartedJobRegistry(queue=self._queue).cleanup(timestamp=as_of)

    def job(self, grant_id: str) -> Job | None:
        """The RQ job of a grant (its id is the grant id), if Redis has it."""
        try:
            return Job.fetch(grant_id, connection=self._queue.connection, serializer=self._queue.serializer)
        except NoSuchJobError:
            return None

    def _live_job_status(self, grant_id: str) -> str | None:
        """The status of the grant's job if it will still run (queued, scheduled, started); None when it has no
        job or one that ended, which is deleted so that a fresh one can take its id."""
        job = self.job(grant_id)
        if job is None:
            return None
        status = job.get_status()
        if status not in ENDED_JOB_STATUSES:
            return status
        job.delete()
        return None

    def _give_up(self, grant_id: str, attempts: int) -> None:
        now = self._clock.now()
        with self._sessions() as session, session.begin():
            last_error = session.scalar(select(Grant.last_error).where(Grant.id == grant_id)) or ""
            session.execute(update(Grant).where(Grant.id == grant_id, Grant.status.in_(UNSETTLED)).values(
                status=GrantStatus.DEAD, updated_at=now,
                last_error=f"gave up after {attempts} attempts; the last: {last_error}"[:2000]))

    def schedule_reconciliation(self, day: date) -> bool:
        """Enqueue the day's reconciliation job (rewards.tasks.reconcile_day), once per day whichever
        settlement process gets here first; True for the one that did."""
        if not self._client.set(self._global.reconciliation(day.isoformat()), "1", nx=True, ex=7 * 86400):
            return False
        self._queue.enqueue(RECONCILE_DAY, day.isoformat(), job_id=f"reconcile-{day.isoformat()}",
                            job_timeout=3600, result_ttl=7 * 86400, failure_ttl=30 * 86400)
        return True

    def trim(self) -> int:
        """Drop entries every consumer has acknowledged; what is pending or unread stays."""
        dropped = 0
        for stream in self.streams():
            keep_from = first_unsettled_id(self._client, stream, self._global.outbox_group)
            if keep_from is not None:
                dropped += self._client.xtrim(stream, minid=keep_from, approximate=False)
        return dropped


def outbox_streams(client: redis.Redis, namespace: str) -> list[tuple[int, str]]:
    """(campaign id, outbox stream) of every campaign with live state, in campaign order."""
    ids = sorted(int(i) for i in client.smembers(GlobalKeys(namespace).campaigns))
    return [(i, CampaignKeys(namespace, i).outbox) for i in ids]


def first_unsettled_id(client: redis.Redis, stream: str, group: str) -> str | None:
    """The smallest id settlement has not acknowledged: the oldest pending entry, else the one after the last
    delivered. Everything before it is settled. None when the group does not exist."""
    groups = {g["name"]: g for g in client.xinfo_groups(stream)}
    if group not in groups:
        return None
    first = _next_id(groups[group]["last-delivered-id"])
    pending = client.xpending(stream, group)
    if pending["pending"]:
        first = min(first, pending["min"], key=_id_tuple)
    return first


def jittered(intervals: list[int], spread: float = 0.2) -> list[int]:
    """Each retry delay moved by up to +-20 %, so grants that failed together (a provider outage) do not all
    come back at the same second."""
    return [max(0, round(i * random.uniform(1 - spread, 1 + spread))) for i in intervals]


def write_claim(session: Session, event: dict[str, Any], now: datetime) -> list[str]:
    """The rows of one admitted claim; writing them twice changes nothing. Answers the ids of its grants to
    issue: none when the fraud gate held the play (its grants wait, held, in the review queue)."""
    at = from_ms(event["at_ms"])
    common = {"campaign_id": event["campaign_id"], "version": event["version"], "user_id": event["user_id"]}
    fraud = event.get("fraud")
    held = bool(fraud and fraud.get("held"))
    if held:  # what a rejection gives back
        fraud = {**fraud, "takes": event.get("takes") or []}
    session.execute(insert_for(session, ClaimRecord).values(
        id=event["claim_id"], game=event["game"], action=event["action"], request=event["request"],
        outcome=event["outcome"], created_at=at, variant=event.get("variant"), draw=event.get("draw"),
        fraud=fraud, review=ReviewStatus.HELD if held else None, **common,
    ).on_conflict_do_nothing(index_elements=["id"]))
    order = event.get("order")
    if order:
        session.execute(insert_for(session, Order).values(
            id=order["id"], claim_id=event["claim_id"], status=order["status"], amount_fen=order["amount_fen"],
            lines=order["lines"], deadline_at=from_ms(order["deadline_ms"]) if order.get("deadline_ms") else None,
            created_at=at, updated_at=now, **common,
        ).on_conflict_do_nothing(index_elements=["id"]))
    grant_ids = write_grants(session, event, event.get("grants") or [], at, now,
                             status=GrantStatus.HELD if held else GrantStatus.PENDING)
    return [] if held else grant_ids


def write_grants(session: Session, claim: dict[str, Any], grants: list[dict[str, Any]], at: datetime,
                 now: datetime, *, status: GrantStatus = GrantStatus.PENDING) -> list[str]:
    """Grant rows of a claim (a grant names its own player, or the claim's); twice changes nothing."""
    for grant in grants:
        session.execute(insert_for(session, Grant).values(
            id=grant["id"], claim_id=claim["claim_id"], reward_type=grant["reward"]["type"], reward=grant["reward"],
            cost_fen=grant["cost_fen"], status=status, attempts=0, created_at=at, updated_at=now,
            campaign_id=claim["campaign_id"], version=claim["version"],
            user_id=grant.get("user_id") or claim["user_id"],
        ).on_conflict_do_nothing(index_elements=["id"]))
    return [grant["id"] for grant in grants]


def write_paid(session: Session, event: dict[str, Any], now: datetime) -> list[str]:
    """A held order was paid: the order row says so and the rewards waiting for the payment become grants."""
    claim = event["claim"]
    write_claim(session, claim, now)
    session.execute(update(Order).where(Order.id == event["order_id"], Order.status == OrderStatus.HELD)
                    .values(status=OrderStatus.PAID, updated_at=now))
    return write_grants(session, claim, event["grants"], from_ms(event["at_ms"]), now)


def write_release(session: Session, event: dict[str, Any], now: datetime) -> None:
    """A held order was cancelled or expired. Also correct if it arrives before its claim (a taken-over entry)."""
    claim = json.loads(event["claim"]) if isinstance(event.get("claim"), str) else event.get("claim")
    if claim:
        write_claim(session, claim, now)
    session.execute(update(Order).where(Order.id == event["order_id"], Order.status == OrderStatus.HELD)
                    .values(status=event["reason"], updated_at=now))


def _id_tuple(stream_id: str) -> tuple[int, int]:
    ms, _, seq = stream_id.partition("-")
    return int(ms), int(seq or 0)


def _next_id(stream_id: str) -> str:
    ms, seq = _id_tuple(stream_id)
    return f"{ms}-{seq + 1}"
