"""Who is calling: signed, expiring player tokens; admins by hashed API token or by the admin page's session.

A page session (a signed, HttpOnly cookie set at sign-in) also authenticates
the admin JSON API, so the page calls the same API as scripts do; then every
state-changing request must carry the session's CSRF token in ``X-CSRF-Token``
(a form: the ``csrf_token`` field). A request with a bearer token needs none:
a browser never sends one by itself.
"""

from __future__ import annotations

import hmac
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import wraps
from typing import Any

from flask import current_app, g, request, session
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from sqlalchemy.orm import Session

from campaigns.models import AdminRole, AdminToken, AdminUser
from campaigns.tokens import active_token
from engine.errors import ForbiddenError, UnauthorizedError

from .requestctx import db

ROLE_RANK = {AdminRole.VIEWER: 0, AdminRole.MARKETER: 1, AdminRole.PUBLISHER: 2, AdminRole.ADMIN: 3}
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class CsrfFailedError(ForbiddenError):
    code = "CSRF_FAILED"
    default_message = "The request did not carry this session's CSRF token; reload the page and try again."


@dataclass(frozen=True)
class Admin:
    """Who is acting on the admin side: their role and how the audit log names them."""

    role: AdminRole
    actor: str
    user_id: int | None = None
    email: str | None = None

    def may(self, role: AdminRole) -> bool:
        return ROLE_RANK[self.role] >= ROLE_RANK[role]

    @classmethod
    def of_user(cls, user: AdminUser) -> Admin:
        return cls(AdminRole(user.role), f"user:{user.id}:{user.email}", user.id, user.email)


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


def admin_for(session: Session, token: str) -> AdminToken:
    row = active_token(session, token)
    if row is None:
        raise UnauthorizedError("The admin token is not valid.")
    return row


def session_user(session_db: Session) -> AdminUser | None:
    """The admin user this browser signed in as, if still enabled (the role is read fresh every request)."""
    user_id = session.get("admin_user_id")
    if not isinstance(user_id, int):
        return None
    user = session_db.get(AdminUser, user_id)
    return user if user is not None and user.disabled_at is None else None


def csrf_token() -> str:
    """This session's CSRF token, made on first use."""
    token = session.get("csrf")
    if not isinstance(token, str):
        token = session["csrf"] = secrets.token_urlsafe(32)
    return token


def check_csrf() -> None:
    """Refuse a state-changing request of a session that does not carry the session's token."""
    if request.method in SAFE_METHODS:
        return
    sent = request.headers.get(CSRF_HEADER) or (request.form.get(CSRF_FIELD) if request.form else None) or ""
    expected = session.get("csrf")
    if not isinstance(expected, str) or not hmac.compare_digest(sent.encode(), expected.encode()):
        raise CsrfFailedError()


def current_admin() -> Admin:
    """The bearer token's admin, else the signed-in user's (CSRF checked); unauthorized otherwise."""
    if request.headers.get("Authorization"):
        token = admin_for(db(), bearer_token())
        return Admin(AdminRole(token.role), f"token:{token.id}:{token.name}")
    user = session_user(db())
    if user is None:
        raise UnauthorizedError("Sign in, or send Authorization: Bearer <admin token>.")
    check_csrf()
    return Admin.of_user(user)


def require_admin(role: AdminRole) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    def decorator(view: Callable[..., Any]) -> Callable[..., Any]:
        @wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            admin = current_admin()
            if not admin.may(role):
                raise ForbiddenError(f"This needs the {role} role.", role=str(admin.role), needed=str(role))
            g.actor = admin.actor
            g.admin = admin
            return view(*args, **kwargs)

        return wrapper

    return decorator
