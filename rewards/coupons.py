"""coupon_code: codes from a pool the merchant uploaded (CSV), each handed to exactly one grant.

A batch is one transaction: the codes its grants already hold (a retried
batch finds them), then, per pool, the lowest free codes for the others,
locked with ``FOR UPDATE SKIP LOCKED`` on PostgreSQL so that racing batches
take different codes (SQLite's write lock serialises them anyway), each
written with its grant id in an UPDATE guarded by ``grant_id IS NULL``. The
unique constraint on ``grant_id`` makes a second code for the same grant
impossible. A grant whose pool ran out stays pending (retried, then a dead
letter) until codes are uploaded: the pool is stock.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from marshmallow import RAISE, Schema, fields, validate
from sqlalchemy import bindparam, func, select, update
from sqlalchemy.orm import Session

from campaigns.db import insert_for
from campaigns.models import CouponCode, Grant
from campaigns.uploads import csv_rows
from engine.errors import ValidationError
from engine.reward_types import reward_types

from .base import Issued, RetryableIssueError, RewardAdapter, one_of

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
        return one_of(self._assign([grant]), grant)

    def issue_many(self, grants: list[Grant]) -> Issued:
        return self._assign(grants)

    def _assign(self, grants: list[Grant]) -> Issued:
        now = self.context.clock.now()
        with self.context.session_factory() as session, session.begin():
            codes = _codes_of(session, [g.id for g in grants])
            waiting: dict[str, list[str]] = {}
            for grant in grants:
                if grant.id not in codes:
                    waiting.setdefault(grant.reward["pool"], []).append(grant.id)
            for pool, grant_ids in waiting.items():
                codes.update(_take(session, pool, grant_ids, now))
        pools = {g.id: g.reward["pool"] for g in grants}
        return {grant_id: f"coupon:{codes[grant_id]}" if grant_id in codes else
                RetryableIssueError(f"coupon pool {pools[grant_id]!r} is empty; upload codes and retry")
                for grant_id in pools}

    def query(self, grant: Grant) -> str | None:
        with self.context.session_factory() as session:
            code = _codes_of(session, [grant.id]).get(grant.id)
        return f"coupon:{code}" if code else None


def _codes_of(session: Session, grant_ids: list[str]) -> dict[str, str]:
    return dict(session.execute(select(CouponCode.grant_id, CouponCode.code)
                                .where(CouponCode.grant_id.in_(grant_ids))).all())


def _take(session: Session, pool: str, grant_ids: list[str], now: datetime) -> dict[str, str]:
    """Assign the pool's first free codes to the grants, one each, as far as the pool goes."""
    free = list(session.execute(
        select(CouponCode.id, CouponCode.code).where(CouponCode.pool == pool, CouponCode.grant_id.is_(None))
        .order_by(CouponCode.id).limit(len(grant_ids)).with_for_update(skip_locked=True)).all())
    pairs = list(zip(grant_ids, free, strict=False))
    if pairs:
        session.execute(update(CouponCode.__table__).where(CouponCode.id == bindparam("code_id"),
                                                           CouponCode.grant_id.is_(None))
                        .values(grant_id=bindparam("grant"), assigned_at=now),
                        [{"code_id": code_id, "grant": grant_id} for grant_id, (code_id, _code) in pairs])
    return _codes_of(session, [grant_id for grant_id, _free in pairs])  # what the rows now say, not what we meant


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
