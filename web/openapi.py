"""The OpenAPI document (generated from the marshmallow schemas by flask-smorest/apispec) and its docs page."""

from __future__ import annotations

from typing import Any

from flask import Flask
from flask_smorest import Api

from .api.schemas import ErrorSchema

OPENAPI_CONFIG = {
    "API_TITLE": "Huodong",
    "API_VERSION": "v1",
    "OPENAPI_VERSION": "3.0.3",
    "OPENAPI_URL_PREFIX": "/api",
    "OPENAPI_JSON_PATH": "v1/openapi.json",
    "OPENAPI_SWAGGER_UI_PATH": "docs",
    "OPENAPI_SWAGGER_UI_URL": "https://cdn.jsdelivr.net/npm/swagger-ui-dist@5/",
}

SECURITY_SCHEMES = {
    "player": {"type": "http", "scheme": "bearer", "description": "POST /api/v1/auth/dev or /auth/alipay"},
    "admin": {"type": "http", "scheme": "bearer", "description": "huodong admin create-token --role ROLE"},
}


class HuodongApi(Api):
    # The error responses flask-smorest documents (default, 422 of @arguments...) are the envelope
    # web/errors.py answers, not flask-smorest's own error body.
    ERROR_SCHEMA = ErrorSchema


def make_api(app: Flask) -> Api:
    app.config.update({k: v for k, v in OPENAPI_CONFIG.items() if k not in app.config})
    return HuodongApi(app, spec_kwargs={"components": {"securitySchemes": SECURITY_SCHEMES}})


# Operations without a token: the two logins, and Alipay's notifications (their signature is the authentication).
PUBLIC_PATHS = ("/auth/dev", "/auth/alipay", "/notify/alipay")


def add_security(paths: dict[str, Any]) -> None:
    """Mark every operation with the token it needs (all but the public ones)."""
    for path, operations in paths.items():
        if path.endswith(PUBLIC_PATHS):
            continue
        scheme = "admin" if path.startswith("/admin/") else "player"
        for operation in operations.values():
            if isinstance(operation, dict):
                operation.setdefault("security", [{scheme: []}])
