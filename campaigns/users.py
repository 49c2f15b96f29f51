"""Admin users: the people who sign in to the admin page, with a role each.

Passwords are hashed with werkzeug's scrypt. After ``MAX_FAILED_LOGINS``
wrong passwords in a row an account is locked for ``LOCKOUT``; a right
password while locked is refused too, so guessing gains nothing. A wrong
email and a wrong password answer the same error.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash, generate_password_hash

from engine.clock import Clock
from engine.errors import ConflictError, HuodongError, NotFoundError, UnauthorizedError, ValidationError

from . import audit
from .models import AdminRole, AdminUser

MAX_FAILED_LOGINS = 5
LOCKOUT = timedelta(minutes=15)
MIN_PASSWORD = 10
# Checked against when the email is unknown, so a wrong email takes as long as a wrong password.
_DUMMY_HASH = generate_password_hash("not a password of anyone")


class InvalidCredentialsError(UnauthorizedError):
    code = "INVALID_CREDENTIALS"
    default_message = "The email or the password is wrong."


class AccountLockedError(HuodongError):
    code = "ACCOUNT_LOCKED"
    http_status = 429
    default_message = "Too many wrong passwords: this account is locked for a while."


class EmailTakenError(ConflictError):
    code = "EMAIL_TAKEN"
    default_message = "An admin user has this email already."


class AdminUserService:
    def __init__(self, session: Session, *, clock: Clock) -> None:
        self._session = session
        self._clock = clock

    def create(self, *, email: str, password: str, role: str, name: str = "", actor: str) -> AdminUser:
        email = normalized(email)
        check_new_password(password)
        role = admin_role(role)
        now = self._clock.now()
        user = AdminUser(email=email, name=name or email.partition("@")[0], role=role, failed_logins=0,
                         password_hash=generate_password_hash(password), created_at=now)
        self._session.add(user)
        try:
            self._session.flush()
        except IntegrityError:
            self._session.rollback()
            raise EmailTakenError(email=email) from None
        audit.record(self._session, at=now, actor=actor, action="admin_user.create", subject_type="admin_user",
                     subject_id=user.id, before=None, after={"email": email, "role": str(role)})
        self._session.commit()
        return user

    def authenticate(self, email: str, password: str) -> AdminUser:
        """The user this email and password belong to; counts a wrong password against the account."""
        now = self._clock.now()
        user = self._session.scalar(select(AdminUser).where(AdminUser.email == normalized(email),
                                                            AdminUser.disabled_at.is_(None)))
        if user is None:
            check_password_hash(_DUMMY_HASH, password)
            raise InvalidCredentialsError()
        if user.locked_until is not None and user.locked_until > now:
            raise AccountLockedError(retry_after_seconds=int((user.locked_until - now).total_seconds()) + 1)
        if not check_password_hash(user.password_hash, password):
            # Counted in SQL, so that racing guesses each count.
            self._session.execute(update(AdminUser).where(AdminUser.id == user.id)
                                  .values(failed_logins=AdminUser.failed_logins + 1))
            self._session.flush()
            self._session.refresh(user)
            if user.failed_logins >= MAX_FAILED_LOGINS:
                user.locked_until, user.failed_logins = now + LOCKOUT, 0
                audit.record(self._session, at=now, actor=f"user:{user.id}:{user.email}", action="admin_user.locked",
                             subject_type="admin_user", subject_id=user.id, until=user.locked_until.isoformat())
            self._session.commit()
            raise InvalidCredentialsError()
        user.failed_logins, user.locked_until, user.last_login_at = 0, None, now
        self._session.commit()
        return user

    def get(self, user_id: int) -> AdminUser:
        user = self._session.get(AdminUser, user_id)
        if user is None or user.disabled_at is not None:
            raise NotFoundError("No such admin user.", user_id=user_id)
        return user

    def list(self) -> list[AdminUser]:
        return list(self._session.scalars(select(AdminUser).order_by(AdminUser.email)))

    def set_role(self, user_id: int, role: str, *, actor: str) -> AdminUser:
        user = self.get(user_id)
        before = user.role
        user.role = admin_role(role)
        audit.record(self._session, at=self._clock.now(), actor=actor, action="admin_user.role",
                     subject_type="admin_user", subject_id=user.id, before={"role": before}, after={"role": role})
        self._session.commit()
        return user


def normalized(email: str) -> str:
    email = (email or "").strip().lower()
    if "@" not in email or len(email) > 254:
        raise ValidationError("Not an email address.", fields={"email": ["Not an email address."]})
    return email


def check_new_password(password: str) -> None:
    if len(password or "") < MIN_PASSWORD:
        raise ValidationError(f"A password needs at least {MIN_PASSWORD} characters.",
                              fields={"password": [f"At least {MIN_PASSWORD} characters."]})


def admin_role(value: str) -> AdminRole:
    """A role by its name; 422 naming the roles there are (an admin user's or an API token's)."""
    try:
        return AdminRole(value)
    except ValueError:
        raise ValidationError("No such role.", fields={"role": [f"One of {', '.join(AdminRole)}."]}) from None


def view(user: AdminUser) -> dict[str, Any]:
    return {"id": user.id, "email": user.email, "name": user.name, "role": user.role,
            "last_login_at": user.last_login_at, "locked": user.locked_until is not None}
