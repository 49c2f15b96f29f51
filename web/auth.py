"""Who is calling: signed, expiring player tokens and hashed admin tokens with roles."""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import wraps
from typing import Any

from flask import current_app, g, request
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from sqlalchemy import select
from sqlalchemy.orm import Session

from campaigns.models import AdminRole, AdminToken
from engine.errors import ForbiddenError, UnauthorizedError

from .requestctx import db

ROLE_RANK = {AdminRole.VIEWER: 0, AdminRole.MARKETER: 1, AdminRole.ADMIN: 2}


class TokenExpiredError(UnauthorizedError):
    code = "TOKEN_EXPIRED"
    default_message = "The token has expired; log in again."


@dataclass(frozen=True)
class PlayerToken:
    token: str
    user_id: str
    expires_at: datetime


@dataclass(frozen=True)
class PlayerClaims:
    """What a verified token says: the player, the device it was issued to, when the player registered."""

    user_id: str
    device: str | None = None
    registered_ms: int | None = None


class PlayerTokens:
    """Signed (HMAC), expiring player tokens. A verified token is remembered, so a player's next
    request skips the signature check (the hot path); its expiry is still checked every time."""

    CACHE_SIZE = 50_000

    def __init__(self, secret: str, ttl_seconds: int, *, seconds: Callable[[], float] = time.time) -> None:
        self._serializer = URLSafeTimedSerializer(secret, salt="huodong.player")
        self.ttl_seconds = ttl_seconds
        self._seconds = seconds  # itsdangerous signs with time.time(); tests move it
        self._verified: dict[str, tuple[PlayerClaims, float]] = {}

    def issue(self, user_id: str, now: datetime, *, device: str | None = None,
              registered_at: datetime | None = None) -> PlayerToken:
        """A token for the player; bound to the device it was issued to, when the login named one."""
        data: dict[str, Any] = {"u": user_id}
        if device:
            data["d"] = device
        if registered_at is not None:
            data["r"] = int(registered_at.timestamp() * 1000)
        return PlayerToken(self._serializer.dumps(data), user_id, now + timedelta(seconds=self.ttl_seconds))

    def verify(self, token: str) -> str:
        return self.claims(token).user_id

    def claims(self, token: str) -> PlayerClaims:
        known = self._verified.get(token)
        if known is not None:
            claims, signed_at = known
            if self._seconds() - signed_at > self.ttl_seconds:
                raise TokenExpiredError()
            return claims
        try:
            data, signed_at = self._serializer.loads(token, max_age=self.ttl_seconds, return_timestamp=True)
        except SignatureExpired:
            raise TokenExpiredError() from None
        except BadSignature:
            raise UnauthorizedError("The token is not valid.") from None
        if not isinstance(data, dict) or not isinstance(data.get("u"), str):
            raise UnauthorizedError("The token is not valid.")
        claims = PlayerClaims(data["u"], data.get("d"), data.get("r"))
        if len(self._verified) >= self.CACHE_SIZE:
            self._verified.clear()
        self._verified[token] = (claims, signed_at.timestamp())
        return claims


def bearer_token() -> str:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise UnauthorizedError("Send Authorization: Bearer <token>.")
    return token.strip()


def require_player(view: Callable[..., Any]) -> Callable[..., Any]:
    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        g.player = current_app.extensions["huodong.player_tokens"].claims(bearer_token())
        g.user_id = g.player.user_id
        return view(*args, **kwargs)

    return wrapper


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_admin_token(session: Session, *, role: str, name: str, now: datetime) -> str:
    """A new admin token; only its hash is stored, so this is the one time it can be read."""
    AdminRole(role)
    token = "hda_" + secrets.token_urlsafe(32)
    session.add(AdminToken(token_hash=_hash(token), role=role, name=name, created_at=now))
    session.commit()
    return token


def admin_for(session: Session, token: str) -> AdminToken:
    row = session.scalar(select(AdminToken).where(AdminToken.token_hash == _hash(token),
                                                  AdminToken.revoked_at.is_(None)))
    if row is None:
        raise UnauthorizedError("The admin token is not valid.")
    return row


def require_admin(role: AdminRole) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    def decorator(view: Callable[..., Any]) -> Callable[..., Any]:
        @wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            admin = admin_for(db(), bearer_token())
            if ROLE_RANK[AdminRole(admin.role)] < ROLE_RANK[role]:
                raise ForbiddenError(f"This needs the {role} role.", role=admin.role, needed=str(role))
            g.actor = f"token:{admin.id}:{admin.name}"
            return view(*args, **kwargs)

        return wrapper

    return decorator
