"""Alipay's asynchronous notifications: form-encoded, RSA2-verified, answered with the literal word Alipay expects."""

from __future__ import annotations

from flask import current_app, request

from ..requestctx import container
from . import blp


@blp.route("/notify/alipay", methods=["POST"])
@blp.doc(requestBody={"required": True, "content": {"application/x-www-form-urlencoded": {
    "schema": {"type": "object", "additionalProperties": {"type": "string"}}}}},
    responses={"200": {"description": "success: handled (also a repeat)"},
               "400": {"description": "failure: not genuine or not ours; Alipay sends it again"}})
def alipay_notify() -> object:
    """A payment notification. No token, no cookie: the RSA2 signature is the authentication."""
    handled = container().payments.notify(request.form.to_dict())
    return current_app.response_class("success" if handled else "failure", status=200 if handled else 400,
                                      mimetype="text/plain")
