"""Coupon-code pools: upload codes (CSV) and see how many are left."""

from __future__ import annotations

from typing import Any

from flask import g

from campaigns import audit
from campaigns.models import AdminRole
from rewards.coupons import pools, upload

from ..api.schemas import ErrorSchema
from ..auth import require_admin
from ..jsonio import csv_body
from ..requestctx import container, db
from . import blp
from .schemas import CouponPoolSchema, CouponUploadSchema


@blp.route("/coupon-pools/<string:pool>/codes", methods=["POST"])
@require_admin(AdminRole.MARKETER)
@blp.doc(requestBody={"required": True, "content": {"text/csv": {"schema": {"type": "string"}}},
                      "description": "One code per line (a first line 'code' is a header); all or nothing."})
@blp.response(200, CouponUploadSchema)
@blp.alt_response(415, schema=ErrorSchema)
@blp.alt_response(422, schema=ErrorSchema)
def upload_codes(pool: str) -> dict[str, Any]:
    """Add codes to a pool; codes already there are counted as duplicates."""
    text = csv_body("text/csv", "text/plain", what="the codes")
    session, now = db(), container().clock.now()
    result = upload(session, pool, text, now=now)
    audit.record(session, at=now, actor=g.actor, action="coupons.upload", subject_type="coupon_pool",
                 subject_id=pool, added=result["added"], duplicates=result["duplicates"])
    session.commit()
    return result


@blp.route("/coupon-pools", methods=["GET"])
@require_admin(AdminRole.VIEWER)
@blp.response(200, CouponPoolSchema(many=True))
def list_pools() -> list[dict[str, Any]]:
    """Every pool with its codes: total, assigned, available."""
    return [p.to_dict() for p in pools(db())]
