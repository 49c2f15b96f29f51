"""Admin API tokens: for merchants' scripts and CI, each with a role and a name, revocable.

Only a token's SHA-256 is stored, so a new token can be read once, when it is
made; a revoked token stops working at once. Making and revoking are audited.
"""

from __future__ import annotations

import hashlib
import secrets

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.clock import Clock
from engine.errors import NotFoundError

from . import audit
from .models import AdminToken
from .users import admin_role

PREFIX = "hda_"  # recognisable in a leaked config file or a secret scanner


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def active_token(session: Session, token: str) -> AdminToken | None:
    return session.scalar(select(AdminToken).where(AdminToken.token_hash == token_hash(token),
                                                   AdminToken.revoked_at.is_(None)))


class AdminTokenService:
    def __init__(self, session: Session, *, clock: Clock) -> None:
        self._session = session
        self._clock = clock

    def list(self) -> list[AdminToken]:
        return list(self._session.scalars(select(AdminToken).order_by(AdminToken.id)))

    def create(self, *, role: str, name: str, actor: str) -> tuple[AdminToken, str]:
        """A new token and its secret (the one time it can be read)."""
        role = admin_role(role)
        secret = PREFIX + secrets.token_urlsafe(32)
        now = self._clock.now()
        token = AdminToken(token_hash=token_hash(secret), role=str(role), name=name, created_at=now)
        self._session.add(token)
        self._session.flush()
        audit.record(self._session, at=now, actor=actor, action="admin_token.create", subject_type="admin_token",
                     subject_id=token.id, after={"name": name, "role": str(role)})
        self._session.commit()
        return token, secret

    def revoke(self, token_id: int, *, actor: str) -> AdminToken:
        """Revoke a token (again is a no-op: it keeps its first revocation time)."""
        token = self._session.get(AdminToken, token_id, with_for_update=True)
        if token is None:
            raise NotFoundError("No such admin token.", id=token_id)
        if token.revoked_at is None:
            token.revoked_at = self._clock.now()
            audit.record(self._session, at=token.revoked_at, actor=actor, action="admin_token.revoke",
                         subject_type="admin_token", subject_id=token.id, before={"name": token.name,
                                                                                    "role": token.role})
        self._session.commit()
        return token


def view(token: AdminToken) -> dict[str, object]:
    return {"id": token.id, "name": token.name, "role": token.role, "created_at": token.created_at,
            "revoked_at": token.revoked_at}
