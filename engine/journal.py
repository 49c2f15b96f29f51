"""The claim journal: every claim the engine admits, appended to a local file before the player hears of it.

With ``appendfsync always`` Redis keeps every claim it acknowledged across a
crash. With ``everysec`` (or a failover to a replica that lagged) the last
second of acknowledged claims can be lost, and with them the outbox entries
that carry them to settlement. The journal is the second record: one line per
admitted claim, the outbox event exactly, written with one ``write(2)`` to a
file opened ``O_APPEND``. A killed process loses nothing (the bytes are in the
page cache); a crashed machine loses what the OS had not flushed. Reconciliation
(``rewards.recovery``) reads the journal and settles every claim SQL lacks.

One file per process and UTC day (``claims-YYYYMMDD-<host>-<pid>.jsonl``), so
writers never share a file; settlement must be able to read the folder (the
same machine, or a shared volume).
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


def journal_dir(settings: Settings) -> Path:
    return Path(settings.claim_journal_dir or Path(settings.instance_path) / "journal")


class ClaimJournal:
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


def journaled_events(directory: str | Path, day: date) -> Iterator[dict[str, Any]]:
    """The events journaled on ``day``, file by file. A line cut short (a machine that died mid-write) is
    skipped: its claim was never answered, because the write comes before the answer."""
    for path in sorted(Path(directory).glob(f"claims-{day:%Y%m%d}-*.jsonl")):
        with path.open("rb") as lines:
            for number, line in enumerate(lines, start=1):
                try:
                    yield json.loads(line)
                except ValueError:
                    log.warning("skipping unreadable journal line %s:%d", path, number)
