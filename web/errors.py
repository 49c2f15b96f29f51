"""One JSON error envelope for everything: HuodongError, marshmallow and werkzeug errors, and the unexpected."""

from __future__ import annotations

import logging
from typing import Any

import marshmallow
import redis
from flask import Flask, jsonify
from redis.exceptions import SlotNotCoveredError
from sqlalchemy.exc import OperationalError
from werkzeug.exceptions import HTTPException

from engine.errors import HuodongError, MalformedRequestError, ValidationError

log = logging.getLogger(__name__)

HTTP_CODES = {
    400: "BAD_REQUEST",
    401: "UNAUTHORIZED",
    403: "FORBIDDEN",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    409: "CONFLICT",
    413: "PAYLOAD_TOO_LARGE",
    415: "UNSUPPORTED_MEDIA_TYPE",
    422: "VALIDATION_ERROR",
    429: "RATE_LIMITED",
}


def envelope(code: str, message: str, details: dict[str, Any] | None = None, status: int = 400) -> Any:
    response = jsonify({"error": {"code": code, "message": message, "details": details or {}}})
    response.status_code = status
    return response


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(HuodongError)
    def _huodong(error: HuodongError) -> Any:
        if error.http_status >= 500:
            log.error("internal error: %s", error.message)
        response = envelope(error.code, error.message, error.details, error.http_status)
        if error.http_status == 429 and "retry_after_seconds" in error.details:
            response.headers["Retry-After"] = str(error.details["retry_after_seconds"])
        return response

    @app.errorhandler(marshmallow.ValidationError)
    def _marshmallow(error: marshmallow.ValidationError) -> Any:
        return _huodong(ValidationError(fields=error.normalized_messages()))

    @app.errorhandler(HTTPException)
    def _http(error: HTTPException) -> Any:
        status = error.code or 500
        data = getattr(error, "data", None) or {}
        messages = data.get("messages")
        if status == 400 and messages and _is_json_error(messages):
            return _huodong(MalformedRequestError())
        if status == 422 and messages:
            # webargs / flask-smorest parsing: report the body's field errors.
            fields = messages.get("json", messages) if isinstance(messages, dict) else messages
            return _huodong(ValidationError(fields=fields))
        code = HTTP_CODES.get(status, "HTTP_ERROR")
        response = envelope(code, error.description or error.name, {}, status)
        if status == 405 and error.valid_methods:  # type: ignore[attr-defined]
            response.headers["Allow"] = ", ".join(error.valid_methods)  # type: ignore[attr-defined]
        return response

    @app.errorhandler(redis.RedisError)
    @app.errorhandler(SlotNotCoveredError)  # a cluster's failover (engine.connections.REDIS_ERRORS)
    @app.errorhandler(OperationalError)
    def _store_unavailable(error: Exception) -> Any:
        # Redis or the database is away (a restart, a failover): nothing was answered, so the client retries
        # with the same Idempotency-Key and gets the play's one answer, whether or not it was applied.
        log.warning("store unavailable: %r", error)
        response = envelope("SERVICE_UNAVAILABLE", "The service is briefly unavailable; retry the request with the "
                            "same Idempotency-Key.", {}, 503)
        response.headers["Retry-After"] = "1"
        return response

    @app.errorhandler(Exception)
    def _unexpected(error: Exception) -> Any:
        log.exception("unhandled error")
        return envelope("INTERNAL_ERROR", "Something went wrong on our side.", {}, 500)


def _is_json_error(messages: Any) -> bool:
    return isinstance(messages, dict) and "json" in messages and messages["json"] == ["Invalid JSON body."]
