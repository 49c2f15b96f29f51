"""Player attributes: the catalogue audience rules may name, and the CSV import that sets them."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.attributes import AttributeStore
from engine.audience import ATTRIBUTE_TYPES, BUILTIN_ATTRIBUTES
from engine.clock import iso, parse_instant
from engine.errors import ValidationError

from . import audit
from .models import AttributeDefinition, Player
from .uploads import csv_rows


def attribute_types(session: Session) -> dict[str, str]:
    imported = dict(session.execute(select(AttributeDefinition.name, AttributeDefinition.type)).tuples().all())
    return {**imported, **BUILTIN_ATTRIBUTES}


MAX_ROWS = 100_000
MAX_COLUMNS = 50
MAX_ERRORS = 20
ATTRIBUTE_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
USER_ID = re.compile(r"^[A-Za-z0-9_.:@-]{1,64}$")


@dataclass(frozen=True)
class ImportResult:
    rows: int
    attributes: dict[str, str]
    new_players: int

    def to_dict(self) -> dict[str, Any]:
        return {"rows": self.rows, "attributes": self.attributes, "new_players": self.new_players}


def import_csv(session: Session, store: AttributeStore, text: str, *, actor: str, now: datetime) -> ImportResult:
    """Set attributes of many players from CSV: all rows or none.

    The header is ``user_id`` then one column per attribute, ``name`` or ``name:type`` (types: string, int,
    float, bool, list, timestamp; built-in attributes keep their own). Lists are ``|``-separated, timestamps
    ISO 8601 with a zone, an empty cell leaves that attribute as it was.
    """
    known = attribute_types(session)
    columns, rows = _parse(text, known)
    values: dict[str, dict[str, Any]] = {}
    problems: dict[str, Any] = {}
    for number, row in rows:
        user_id = row[0].strip()
        if not USER_ID.match(user_id):
            problems[str(number)] = {"user_id": ["1 to 64 letters, digits or _.:@-."]}
            continue
        parsed = values.setdefault(user_id, {})
        for (name, kind), cell in zip(columns, row[1:], strict=True):
            if cell.strip() == "":
                continue
            try:
                parsed[name] = _convert(kind, cell.strip())
            except ValueError as exc:
                problems.setdefault(str(number), {})[name] = [str(exc)]
        if len(problems) >= MAX_ERRORS:
            break
    if problems:
        raise ValidationError("The import has invalid rows; nothing was imported.", fields={"rows": problems})
    catalogue = {name: kind for name, kind in columns if name not in BUILTIN_ATTRIBUTES}
    for name, kind in catalogue.items():
        if name not in known:
            session.add(AttributeDefinition(name=name, type=kind, created_at=now))
    existing = _players(session, list(values))
    for user_id, attributes in values.items():
        player = existing.get(user_id)
        if player is None:
            session.add(Player(id=user_id, created_at=now, attributes=_stored(attributes)))
        else:
            player.attributes = {**(player.attributes or {}), **_stored(attributes)}
    audit.record(session, at=now, actor=actor, action="attributes.import", subject_type="attributes",
                 subject_id="players", rows=len(rows), attributes=sorted(n for n, _ in columns))
    session.commit()
    # After the commit: SQL is the record; an import that fails here is re-run as it is (it is idempotent).
    store.write({uid: {k: json.dumps(v) for k, v in _stored(a).items()} for uid, a in values.items()}, catalogue)
    return ImportResult(rows=len(rows), attributes=dict(columns), new_players=len(values) - len(existing))


def _parse(text: str, known: dict[str, str]) -> tuple[list[tuple[str, str]], list[tuple[int, list[str]]]]:
    reader = iter(csv_rows(text))
    header = next(reader, None)
    if not header or header[0].strip() != "user_id":
        raise ValidationError("The first column of the header must be user_id.", fields={"header": ["user_id first."]})
    if len(header) < 2 or len(header) > MAX_COLUMNS + 1:
        raise ValidationError(f"Import 1 to {MAX_COLUMNS} attributes.", fields={"header": ["Wrong column count."]})
    columns = [_column(cell, known) for cell in header[1:]]
    names = [name for name, _ in columns]
    if len(set(names)) != len(names):
        raise ValidationError("An attribute appears twice in the header.", fields={"header": ["Duplicate column."]})
    rows = []
    for number, row in enumerate(reader, start=2):
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != len(header):
            raise ValidationError(f"Row {number} has {len(row)} cells, the header {len(header)}.",
                                  fields={"rows": {str(number): ["Wrong cell count."]}})
        rows.append((number, row))
        if len(rows) > MAX_ROWS:
            raise ValidationError(f"Import at most {MAX_ROWS} rows at once.", fields={"rows": ["Too many rows."]})
    if not rows:
        raise ValidationError("The import has no rows.", fields={"rows": ["No rows."]})
    return columns, rows


def _column(cell: str, known: dict[str, str]) -> tuple[str, str]:
    name, _, kind = cell.strip().partition(":")
    if not ATTRIBUTE_NAME.match(name):
        raise ValidationError(f"Bad attribute name {name!r}.", fields={"header": [
            "Attribute names are lowercase letters, digits and _, starting with a letter."]})
    declared = known.get(name)
    kind = kind or declared or "string"
    if kind not in ATTRIBUTE_TYPES:
        raise ValidationError(f"Unknown type {kind!r}.", fields={"header": [f"Types: {', '.join(ATTRIBUTE_TYPES)}."]})
    if declared and kind != declared:
        raise ValidationError(f"{name} is a {declared} attribute, not {kind}.",
                              fields={"header": [f"{name} is {declared}."]})
    return name, kind


def _convert(kind: str, cell: str) -> Any:
    if any(ord(char) < 32 or ord(char) == 127 for char in cell):
        raise ValueError("control characters are not allowed")
    if kind == "int":
        return int(cell)
    if kind == "float":
        return float(cell)
    if kind == "bool":
        if cell.lower() not in ("true", "false", "1", "0"):
            raise ValueError("true or false")
        return cell.lower() in ("true", "1")
    if kind == "list":
        return [item.strip() for item in cell.split("|") if item.strip()]
    if kind == "timestamp":
        try:
            instant = parse_instant(cell)
        except ValueError:
            instant = None
        if instant is None or instant.tzinfo is None:
            raise ValueError("an ISO 8601 instant with a zone, e.g. 2025-01-01T00:00:00+08:00")
        return instant
    return cell


def _stored(attributes: dict[str, Any]) -> dict[str, Any]:
    """JSON-ready: instants as ISO text."""
    return {k: iso(v) if isinstance(v, datetime) else v for k, v in attributes.items()}


def _players(session: Session, user_ids: list[str]) -> dict[str, Player]:
    found: dict[str, Player] = {}
    for start in range(0, len(user_ids), 500):
        chunk = user_ids[start:start + 500]
        found.update({p.id: p for p in session.scalars(select(Player).where(Player.id.in_(chunk)))})
    return found
