"""Settlement: outbox entries become SQL rows, and the grants go out in batches, one RQ job a batch.

At-least-once by construction: entries are read through a consumer group,
rows are written idempotently (primary keys and ON CONFLICT, never a check
in Python), each grant to issue is put in a batch of grants of one reward type
(``grants.batch_id``, in the same transaction), each batch is enqueued as an
RQ job whose id is the batch id (unique), and only then is the entry
acknowledged. An entry a dead consumer left pending is taken over with
XAUTOCLAIM once idle for ``claim_idle_ms``; its grants already name their
batch, which is enqueued (again: a duplicate id is skipped).

A batch job issues the unsettled grants that still name it. When a batch can
no longer run (its job lost, ended, or orphaned in no queue and no registry
after a Redis restart), housekeeping moves its unsettled grants to a new batch
with a compare-and-set on the old batch id, so two housekeepers never both
move a grant, and the old job, should it ever run, finds nothing of theirs.
"""

from __future__ import annotations

import json
import logging
import os
import random
import secrets
import socket
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import redis
from rq import Queue, Retry
from rq.exceptions import DuplicateJobError, InvalidJobOperation, NoSuchJobError
from rq.job import Job, JobStatus
from rq.registry import ScheduledJobRegistry, StartedJobRegistry
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from campaigns.models import Grant, GrantStatus
from engine.clock import Clock
from engine.config import Settings
from engine.errors import ConflictError, HuodongError
from engine.keys import GlobalKeys
from engine.shards import ShardDirectory

from .rows import OutboxRows
from .streams import read_group

# The RQ jobs (rewards/tasks.py) by name: the worker imports them; this module need not.
ISSUE_BATCH = "rewards.tasks.issue_batch"
RECONCILE_DAY = "rewards.tasks.reconcile_day"

log = logging.getLogger(__name__)

ENDED_JOB_STATUSES = {JobStatus.FAILED, JobStatus.FINISHED, JobStatus.STOPPED, JobStatus.CANCELED, None}
# Grants no attempt has settled yet: issued and dead are final.
UNSETTLED = (GrantStatus.PENDING, GrantStatus.FAILED, GrantStatus.UNKNOWN)
SQL_CHUNK = 500


def new_batch_id() -> str:
    return f"B{secrets.token_hex(12)}"


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
        batch_size: int = 200,
        linger_ms: int = 100,
        after_commit: Callable[[list[str]], None] | None = None,
        carrier: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        self._client = client
        self._queue = queue
        self._sessions = session_factory
        self._namespace = namespace
        self._global = GlobalKeys(namespace)
        self._groups = ShardDirectory(client, namespace)
        self._clock = clock
        self.consumer = consumer or default_consumer_name()
        self._claim_idle_ms = claim_idle_ms
        self._retry_intervals = [int(i) for i in retry_intervals]
        self._job_timeout = job_timeout
        self._give_up_after = give_up_after
        self._batch_size = batch_size
        self._linger_ms = linger_ms
        # Observes the moment rows are committed and jobs not yet enqueued (crash tests use it).
        self._after_commit = after_commit
        # Finishes a claim's carries (engine PlayService.carry_event) before its entry is acknowledged.
        self._carrier = carrier

    @classmethod
    def configured(cls, settings: Settings, *, client: redis.Redis, queue: Queue, session_factory: sessionmaker,
                   clock: Clock, **overrides: Any) -> Settlement:
        """Settlement as the settings say (a test may override any option)."""
        options: dict[str, Any] = dict(
            client=client, queue=queue, session_factory=session_factory, namespace=settings.redis_namespace,
            clock=clock, claim_idle_ms=settings.outbox_claim_idle_ms,
            retry_intervals=[int(i) for i in settings.job_retry_intervals], job_timeout=settings.job_timeout_seconds,
            give_up_after=settings.grant_max_attempts, batch_size=settings.settle_batch_size,
            linger_ms=settings.settle_linger_ms,
        )
        return cls(**{**options, **overrides})

    def streams(self) -> list[str]:
        return [stream for _campaign_id, stream in outbox_streams(self._client, self._namespace, self._groups)]

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
        batches = read_group(self._client, group, self.consumer, streams, "0", count=count)
        if not batches:
            batches = self._read_fresh(streams, count=count, block_ms=block_ms)
        for stream, entries in batches:
            self._settle(stream, entries, report)
        return report

    def _read_fresh(self, streams: list[str], *, count: int, block_ms: int) -> list[tuple[str, list[Any]]]:
        """New entries: waits up to ``block_ms`` for the first, then ``linger_ms`` more for others to join them,
        so that a steady flow of claims settles in batches (rows, jobs) rather than one entry at a time."""
        group = self._global.outbox_group
        read: dict[str, list[Any]] = {}
        for attempt in range(2):
            fresh = read_group(self._client, group, self.consumer, streams, ">", count=count,
                               block_ms=block_ms if attempt == 0 else None)
            for name, entries in fresh:
                read.setdefault(name, []).extend(entries)
            if attempt or not read or not self._linger_ms or max(map(len, read.values())) >= count:
                break
            time.sleep(self._linger_ms / 1000)
        return [(name, entries) for name, entries in read.items() if entries]

    def _settle(self, stream: str, entries: list[tuple[str, dict[str, str]]], report: StepReport) -> None:
        rows = OutboxRows(self._clock.now())
        for entry_id, fields in entries:
            try:
                event = json.loads(fields["e"])
                if "f" in fields:  # what the fraud gate noted on the play (shadow rules, risk, a hold)
                    event["fraud"] = json.loads(fields["f"])
                if not rows.add(event):
                    log.error("unknown outbox event type %r in %s of %s", event.get("type"), entry_id, stream)
                if self._carrier is not None and event.get("carries"):
                    self._carry(event, entry_id, stream)
            except (KeyError, TypeError, ValueError):
                # Only claim.lua and release.lua write here; anything else would block the stream forever.
                log.error("dropping unreadable outbox entry %s of %s: %r", entry_id, stream, fields)
        with self._sessions() as session, session.begin():
            rows.write(session)
            grant_ids = list(dict.fromkeys(rows.to_issue))
            batches = self._batch(session, grant_ids)
        if self._after_commit:
            self._after_commit(grant_ids)
        for batch_id in batches:
            if self._enqueue(batch_id):
                report.grants_enqueued += batches[batch_id]
        self._client.xack(stream, self._global.outbox_group, *[entry_id for entry_id, _ in entries])
        report.entries += len(entries)

    def _carry(self, event: dict[str, Any], entry_id: str, stream: str) -> None:
        """The other players' halves of the claim, made once (done already, normally, by the process that
        admitted it). Redis away: the step fails and the entry is read again. A refusal is logged: the carry
        is planned on the other player's current state and should not be refused."""
        try:
            self._carrier(event)
        except HuodongError:
            log.exception("the carries of outbox entry %s of %s were refused", entry_id, stream)

    def _batch(self, session: Session, grant_ids: list[str]) -> dict[str, list[str]]:
        """Put the unsettled ones of these grants that have no batch yet in new batches (one reward type each);
        answers every batch that now holds an unsettled one of them, with those grants."""
        rows = []
        for start in range(0, len(grant_ids), SQL_CHUNK):
            rows += session.execute(select(Grant.id, Grant.reward_type, Grant.batch_id, Grant.status)
                                    .where(Grant.id.in_(grant_ids[start:start + SQL_CHUNK]))).all()
        unbatched: dict[str, list[str]] = defaultdict(list)
        batches: dict[str, list[str]] = defaultdict(list)
        for grant_id, reward_type, batch_id, status in rows:
            if status not in UNSETTLED:
                continue
            if batch_id is None:
                unbatched[reward_type].append(grant_id)
            else:
                batches[batch_id].append(grant_id)  # an earlier delivery batched it: enqueue that batch (again)
        for ids in unbatched.values():
            for batch_id, moved in self._move(session, ids, from_batch=None):
                batches[batch_id] += moved
        return dict(batches)

    def _move(self, session: Session, grant_ids: list[str], *, from_batch: str | None) -> list[tuple[str, list[str]]]:
        """Move these grants (one reward type) to new batches of at most ``batch_size``, those of them still
        unsettled and still in ``from_batch`` (None: in none): a compare-and-set, so a grant another process
        moved first stays where it went. Answers each new batch with the grants it got."""
        moved = []
        for start in range(0, len(grant_ids), self._batch_size):
            chunk = grant_ids[start:start + self._batch_size]
            batch_id = new_batch_id()
            # A move is a change: the grant is not "stalled" for another housekeeper until its new batch had time.
            session.execute(update(Grant).where(Grant.id.in_(chunk), Grant.status.in_(UNSETTLED),
                                                _in_batch(from_batch))
                            .values(batch_id=batch_id, updated_at=self._clock.now()))
            got = list(session.scalars(select(Grant.id).where(Grant.batch_id == batch_id)))
            if got:
                moved.append((batch_id, got))
        return moved

    def _enqueue(self, batch_id: str) -> bool:
        """The batch's RQ job (its id is the batch id); False when it exists already (a redelivered entry)."""
        try:
            self._queue.enqueue(
                ISSUE_BATCH, batch_id, job_id=batch_id, unique=True,
                retry=Retry(max=len(self._retry_intervals), interval=jittered(self._retry_intervals))
                if self._retry_intervals else None,
                job_timeout=self._job_timeout, result_ttl=86400, failure_ttl=30 * 86400,
            )
        except DuplicateJobError:
            return False
        return True

    def issue(self, grant_ids: list[str]) -> list[str]:
        """Issue these grants (a compensation, an approved review, claims recovered from the journal): those
        without a batch get one, and every batch holding one of them is enqueued; answers the batch ids."""
        with self._sessions() as session, session.begin():
            batches = self._batch(session, grant_ids)
        for batch_id in batches:
            self._enqueue(batch_id)
        return list(batches)

    def in_line(self, grant: Grant) -> bool:
        """Whether the grant's batch will still run (queued, scheduled or running)."""
        return bool(grant.batch_id) and self.batch_status(grant.batch_id) is not None

    def retry(self, grant_id: str) -> str:
        """A person's retry of a grant that was not issued: a batch of its own with every retry again (its old
        batch, with any other grants in it, is left as it is). Answers the new batch id."""
        with self._sessions() as session, session.begin():
            old = session.scalar(select(Grant.batch_id).where(Grant.id == grant_id))
            moved = self._move(session, [grant_id], from_batch=old)
        if not moved:
            raise GrantBusyError("The grant was settled or moved by someone else just now.")
        batch_id = moved[0][0]
        self._enqueue(batch_id)
        return batch_id

    def requeue_stalled(self, older_than: timedelta) -> list[str]:
        """Grants left unsettled long after their last change whose batch cannot run: a new batch.

        A batch cannot run when its job is gone (Redis lost it), ended without
        settling them (a worker killed on its last retry), or exists but sits in
        no queue and no registry a worker reads (orphaned across a Redis restart:
        queued but in no queue, scheduled but not in the schedule, started but
        not in the started registry). Such an orphan is deleted, so that it runs
        never rather than twice. A grant that has used up ``give_up_after``
        attempts becomes a dead letter with that reason instead, so nothing stays
        stuck and nothing is retried for ever. Answers the grants requeued.
        """
        cutoff = self._clock.now() - older_than
        with self._sessions() as session:
            stalled = session.execute(select(Grant.id, Grant.batch_id, Grant.reward_type, Grant.attempts).where(
                Grant.status.in_(UNSETTLED), Grant.updated_at < cutoff).limit(1000)).all()
        by_batch: dict[str | None, list[Any]] = defaultdict(list)
        for row in stalled:
            by_batch[row.batch_id].append(row)
        requeued: list[str] = []
        for old, grants in by_batch.items():
            if old is not None and self.batch_status(old) is not None:
                continue  # queued, scheduled or running: it will settle them
            spent = [g.id for g in grants if g.attempts >= self._give_up_after]
            for grant_id in spent:
                self._give_up(grant_id, old)
            by_type: dict[str, list[str]] = defaultdict(list)
            for g in grants:
                if g.attempts < self._give_up_after:
                    by_type[g.reward_type].append(g.id)
            with self._sessions() as session, session.begin():
                moved = [batch for ids in by_type.values() for batch in self._move(session, ids, from_batch=old)]
            for batch_id, ids in moved:
                if self._enqueue(batch_id):
                    requeued += ids
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

    def job(self, batch_id: str) -> Job | None:
        """The RQ job of a batch (its id is the batch id), if Redis has it."""
        try:
            return Job.fetch(batch_id, connection=self._queue.connection, serializer=self._queue.serializer)
        except NoSuchJobError:
            return None

    def batch_status(self, batch_id: str) -> str | None:
        """The status of the batch's job if a worker will still run it; None when it has no job, one that ended,
        or one orphaned where no worker looks (which is deleted, so that it can never run late)."""
        job = self.job(batch_id)
        if job is None:
            return None
        try:
            status = job.get_status()
        except InvalidJobOperation:  # deleted since it was fetched (another housekeeper found it orphaned)
            return None
        if status in ENDED_JOB_STATUSES:
            return None
        connection = self._queue.connection
        if status == JobStatus.QUEUED:
            waiting = connection.lpos(self._queue.key, batch_id) is not None or connection.lpos(
                self._queue.intermediate_queue_key, batch_id) is not None
        elif status == JobStatus.SCHEDULED:
            waiting = batch_id in ScheduledJobRegistry(queue=self._queue)
        elif status == JobStatus.STARTED:
            waiting = batch_id in StartedJobRegistry(queue=self._queue)
        else:
            waiting = False  # deferred: settlement never makes dependent jobs
        if waiting:
            return status
        log.warning("batch %s is %s in no queue or registry: deleted, its grants move to a new batch",
                    batch_id, status)
        with suppress(InvalidJobOperation):  # another housekeeper deleted it first
            job.delete()
        return None

    def _give_up(self, grant_id: str, batch_id: str | None) -> None:
        """A dead letter saying so, unless the grant moved or settled meanwhile."""
        now = self._clock.now()
        with self._sessions() as session, session.begin():
            attempts, last_error = session.execute(select(Grant.attempts, Grant.last_error)
                                                   .where(Grant.id == grant_id)).one()
            session.execute(update(Grant).where(Grant.id == grant_id, Grant.status.in_(UNSETTLED),
                                                _in_batch(batch_id)).values(
                status=GrantStatus.DEAD, updated_at=now,
                last_error=f"gave up after {attempts} attempts; the last: {last_error or ''}"[:2000]))

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


def _in_batch(batch_id: str | None) -> Any:
    """The SQL condition "in this batch" (None: in none yet)."""
    return Grant.batch_id.is_(None) if batch_id is None else Grant.batch_id == batch_id


def outbox_streams(client: redis.Redis, namespace: str, groups: ShardDirectory | None = None
                   ) -> list[tuple[int, str]]:
    """(campaign id, outbox stream) of every key group of every campaign with live state, in campaign order
    (a sharded campaign has one stream per group)."""
    groups = groups or ShardDirectory(client, namespace)
    ids = sorted(int(i) for i in client.smembers(GlobalKeys(namespace).campaigns))
    return [(i, keys.outbox) for i in ids for keys in groups.get(i)]


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


def _id_tuple(stream_id: str) -> tuple[int, int]:
    ms, _, seq = stream_id.partition("-")
    return int(ms), int(seq or 0)


def _next_id(stream_id: str) -> str:
    ms, seq = _id_tuple(stream_id)
    return f"{ms}-{seq + 1}"
