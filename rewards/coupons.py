"""coupon_code: codes from a pool the merchant uploaded (CSV), each handed to exactly one grant.

Issuing takes the lowest free code of the pool and writes the grant id on it
in one statement guarded by ``grant_id IS NULL``; the unique constraint on
``grant_id`` makes a second code for the same grant impossible, and a retried
issue finds the code it already took. An empty pool keeps the grant pending
(retried, then a dead letter) until codes are uploaded: the pool is stock.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from marshmallow import RAISE, Schema, fields, validate
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from campaigns.db import insert_for
from campaigns.models import CouponCode, Grant
from campaigns.uploads import csv_rows
from engine.errors import ValidationError
from engine.reward_types import reward_types

from .base import RetryableIssueError, RewardAdapter

POOL_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
CODE = re.compile(r"^[\x21-\x7e]{1,128}$")  # printable ASCII, no spaces
MAX_CODES = 200_000


class CouponCodeParams(Schema):
    class Meta:
        unknown = RAISE

    pool = fields.String(required=True, validate=validate.Regexp(POOL_NAME, error="1 to 64 letters, digits, _ or -."))
    title = fields.String(load_default="", validate=validate.Length(max=100))


@reward_types.register("coupon_code")
class CouponCodeAdapter(RewardAdapter):
    type_name = "coupon_code"
    params_schema = CouponCodeParams

    def issue(self, grant: Grant) -> str:
        pool = grant.reward["pool"]
        with self.context.session_factory() as session, session.begin():
            code = _code_of(session, grant.id) or _take(session, pool, grant.id, self.context.clock.now())
        if code is None:
            raise RetryableIssueError(f"coupon pool {pool!r} is empty; upload codes and retry")
        return f"coupon:{code}"

    def query(self, grant: Grant) -> str | None:
        with self.context.session_factory() as session:
            code = _code_of(session, grant.id)
        return f"coupon:{code}" if code else None


def _code_of(session: Session, grant_id: str) -> str | None:
    return session.scalar(select(CouponCode.code).where(CouponCode.grant_id == grant_id))


def _take(session: Session, pool: str, grant_id: str, now: datetime) -> str | None:
    """Assign the pool's first free code to the grant; a racer that took it first makes us try the next."""
    for _ in range(20):
        free = session.scalar(select(CouponCode.id).where(CouponCode.pool == pool, CouponCode.grant_id.is_(None))
                              .order_by(CouponCode.id).limit(1))
        if free is None:
            return None
        taken = session.execute(update(CouponCode).where(CouponCode.id == free, CouponCode.grant_id.is_(None))
                                .values(grant_id=grant_id, assigned_at=now))
        if taken.rowcount == 1:
            return session.scalar(select(CouponCode.code).where(CouponCode.id == free))
    raise RetryableIssueError(f"coupon pool {pool!r} is contended; retry")


@dataclass(frozen=True)
class PoolCounts:
    pool: str
    total: int
    assigned: int

    def to_dict(self) -> dict[str, Any]:
        return {"pool": self.pool, "total": self.total, "assigned": self.assigned,
                "available": self.total - self.assigned}


def upload(session: Session, pool: str, text: str, *, now: datetime) -> dict[str, Any]:
    """Add codes (one per line, or a CSV whose first column is the code; a ``code`` header is skipped).
    Codes already in the pool are counted as duplicates and left as they are. All or nothing on bad input."""
    if not POOL_NAME.match(pool):
        raise ValidationError("Bad pool name.", fields={"pool": ["1 to 64 letters, digits, _ or -."]})
    codes, bad = [], {}
    for number, row in enumerate(csv_rows(text), start=1):
        if not row or not row[0].strip() or (number == 1 and row[0].strip().lower() == "code"):
            continue
        code = row[0].strip()
        if not CODE.match(code):
            bad[str(number)] = ["A code is 1 to 128 printable ASCII characters without spaces."]
        codes.append(code)
    if bad:
        raise ValidationError("Some codes are not valid; nothing was uploaded.", fields={"rows": dict(list(
            bad.items())[:20])})
    if not codes:
        raise ValidationError("No codes in the upload.", fields={"body": ["No codes."]})
    if len(codes) > MAX_CODES:
        raise ValidationError(f"Upload at most {MAX_CODES} codes at once.", fields={"body": ["Too many codes."]})
    before = _total(session, pool)
    for start in range(0, len(codes), 1000):
        rows = [{"pool": pool, "code": c, "uploaded_at": now} for c in dict.fromkeys(codes[start:start + 1000])]
        session.execute(insert_for(session, CouponCode).values(rows).on_conflict_do_nothing(
            index_elements=["pool", "code"]))
    session.commit()
    added = _total(session, pool) - before
    return {**counts(session, pool).to_dict(), "added": added, "duplicates": len(codes) - added}


def counts(session: Session, pool: str) -> PoolCounts:
    total, assigned = session.execute(select(func.count(CouponCode.id), func.count(CouponCode.grant_id))
                                      .where(CouponCode.pool == pool)).one()
    return PoolCounts(pool, int(total), int(assigned))


def pools(session: Session) -> list[PoolCounts]:
    rows = session.execute(select(CouponCode.pool, func.count(CouponCode.id), func.count(CouponCode.grant_id))
                           .group_by(CouponCode.pool).order_by(CouponCode.pool)).all()
    return [PoolCounts(pool, int(total), int(assigned)) for pool, total, assigned in rows]


def _total(session: Session, pool: str) -> int:
    return int(session.scalar(select(func.count(CouponCode.id)).where(CouponCode.pool == pool)) or 0)
