"""Per-request collaborators: the container and a lazily opened SQL session."""

from __future__ import annotations

from flask import current_app, g
from sqlalchemy.orm import Session

from .container import Container


def container() -> Container:
    return current_app.extensions["huodong.container"]


def db() -> Session:
    if "db" not in g:
        g.db = container().session_factory()
    return g.db


def close_db(_error: BaseException | None = None) -> None:
    session = g.pop("db", None)
    if session is not None:
        session.close()
