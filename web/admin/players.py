"""Player attributes for audience rules: the CSV import and the catalogue."""

from __future__ import annotations

from typing import Any

from flask import g

from campaigns.attributes import attribute_types, import_csv
from campaigns.models import AdminRole

from ..api.schemas import ErrorSchema
from ..auth import require_admin
from ..jsonio import csv_body
from ..requestctx import container, db
from . import blp
from .schemas import AttributeImportSchema, AttributeSchema


@blp.route("/players/attributes", methods=["POST"])
@require_admin(AdminRole.MARKETER)
@blp.doc(requestBody={"required": True, "content": {"text/csv": {"schema": {"type": "string"}}},
                      "description": "user_id,tier,city,vip_level:int,...; lists |-separated; all rows or none."})
@blp.response(200, AttributeImportSchema)
@blp.alt_response(415, schema=ErrorSchema)
@blp.alt_response(422, schema=ErrorSchema)
def import_attributes() -> dict[str, Any]:
    """Import player attributes (CSV) that audience rules read: all rows or none."""
    text = csv_body(what="the attributes")
    c = container()
    return import_csv(db(), c.attributes, text, actor=g.actor, now=c.clock.now()).to_dict()


@blp.route("/players/attributes", methods=["GET"])
@require_admin(AdminRole.VIEWER)
@blp.response(200, AttributeSchema(many=True))
def list_attributes() -> list[dict[str, str]]:
    """Every attribute an audience rule may name, with its type."""
    return [{"name": name, "type": kind} for name, kind in sorted(attribute_types(db()).items())]
