"""The claim journal: every claim the engine admits, recorded outside the engine's Redis before the player hears
of it.

With ``appendfsync always`` Redis keeps every claim it acknowledged across a
crash. With ``everysec`` (or a failover to a replica that lagged) the last
second of acknowledged claims can be lost, and with them the outbox entries
that carry them to settlement. The journal is the second record: the outbox
event exactly, one per admitted claim. Reconciliation (``rewards.recovery``)
reads it and settles every claim SQL lacks. It is kept in one of two places:

- a local file (the default, one machine): one line per claim, written with
  one ``write(2)`` to a file opened ``O_APPEND``, one file per process and UTC
  day (``claims-YYYYMMDD-<host>-<pid>.jsonl``). A killed process loses nothing
  (the bytes are in the page cache); a crashed machine loses what the OS had
  not flushed. Settlement must be able to read the folder (the same machine,
  or a shared volume).
- a Redis stream per UTC day on another Redis than the engine's
  (``claim_journal_redis_url``, for example the queues' server): one ``XADD``
  before the answer, so no web host keeps anything settlement needs later,
  and any settlement process reads it. That server must not be the one whose
  loss the journal covers.
"""

from __future__ import annotations

import json
import logging
import os
import socket
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from .config import Settings

log = logging.getLogger(__name__)

STREAM_DAYS = 8  # a day's stream outlives the daily reconciliation of it by a week
PAGE = 1000


def journal_dir(settings: Settings) -> Path:
    return Path(settings.claim_journal_dir or Path(settings.instance_path) / "journal")


def journal_for(settings: Settings, stream_client: Any = None) -> ClaimJournal | StreamJournal:
    """The journal the settings name: a stream on ``stream_client`` (a client of ``claim_journal_redis_url``,
    made here when not given) when that is set, else the local files."""
    if settings.claim_journal_redis_url:
        import redis

        client = stream_client or redis.Redis.from_url(settings.claim_journal_redis_url, decode_responses=True)
        return StreamJournal(client, settings.redis_namespace)
    return ClaimJournal(journal_dir(settings))


class ClaimJournal:
    """The journal in local files (see the module's docstring)."""

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        self._open: tuple[int, date, int] | None = None  # (pid, day, fd): a forked child opens its own file

    def record(self, event_json: str, at: datetime) -> None:
        os.write(self._fd(at.astimezone(UTC).date()), event_json.encode() + b"\n")

    def close(self) -> None:
        """Close this process's file; the next record opens it again (or a new one, if it was removed)."""
        if self._open is not None and self._open[0] == os.getpid():
            os.close(self._open[2])
        self._open = None

    def events(self, day: date) -> Iterator[dict[str, Any]]:
        return journaled_events(self.directory, day)

    def _fd(self, day: date) -> int:
        pid = os.getpid()
        if self._open is not None and self._open[:2] == (pid, day):
            return self._open[2]
        if self._open is not None and self._open[0] == pid:
            os.close(self._open[2])
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self.directory / f"claims-{day:%Y%m%d}-{socket.gethostname()}-{pid}.jsonl"
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
        self._open = (pid, day, fd)
        return fd


class StreamJournal:
    """The journal in a Redis stream per UTC day, on a server other than the engine's (see the module's
    docstring). ``client`` decodes responses."""

    def __init__(self, client: Any, namespace: str) -> None:
        self.client = client
        self._namespace = namespace
        self._expiring: date | None = None  # the day whose stream this process has set to expire

    def stream(self, day: date) -> str:
        return f"{self._namespace}:journal:{day:%Y%m%d}"

    def record(self, event_json: str, at: datetime) -> None:
        day = at.astimezone(UTC).date()
        name = self.stream(day)
        if self._expiring == day:
            self.client.xadd(name, {"e": event_json})
            return
        with self.client.pipeline(transaction=False) as pipe:  # the day's first claim here: set its lifetime
            pipe.xadd(name, {"e": event_json})
            pipe.expire(name, STREAM_DAYS * 86400)
            pipe.execute()
        self._expiring = day

    def close(self) -> None:
        self._expiring = None

    def events(self, day: date) -> Iterator[dict[str, Any]]:
        name, after = self.stream(day), "-"
        while True:
            page = self.client.xrange(name, min=after, count=PAGE)
            for _entry_id, fields in page:
                yield json.loads(fields["e"])
            if len(page) < PAGE:
                return
            after = "(" + page[-1][0]


def journaled_events(directory: str | Path, day: date) -> Iterator[dict[str, Any]]:
    """The events journaled on ``day`` in the files of ``directory``, file by file. A line cut short (a machine
    that died mid-write) is skipped: its claim was never answered, because the write comes before the answer."""
    for path in sorted(Path(directory).glob(f"claims-{day:%Y%m%d}-*.jsonl")):
        with path.open("rb") as lines:
            for number, line in enumerate(lines, start=1):
                try:
                    yield json.loads(line)
                except ValueError:
                    log.warning("skipping unreadable journal line %s:%d", path, number)
