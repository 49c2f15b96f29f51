"""JSON in and out: request bodies are refused, not crashed on, when malformed or too deeply nested.

Valid JSON is refused too where storing or echoing it would fail further in:
NaN and Infinity (not JSON, and no column takes them), NUL characters
(PostgreSQL text cannot hold them) and lone surrogates (not encodable as
UTF-8, so neither storable nor printable in an answer).
"""

from __future__ import annotations

import json
from typing import Any

from flask import Request, request
from flask.json.provider import DefaultJSONProvider
from webargs import core
from webargs.flaskparser import FlaskParser

from engine.errors import HuodongError, MalformedRequestError, ValidationError

MAX_DEPTH = 32


class UnsupportedMediaTypeError(HuodongError):
    code = "UNSUPPORTED_MEDIA_TYPE"
    http_status = 415
    default_message = "Send the body as JSON (Content-Type: application/json)."


class UnsafeJSONError(ValueError):
    """Well-formed JSON that is refused all the same; its message says why."""


class StrictJSONProvider(DefaultJSONProvider):
    sort_keys = False
    ensure_ascii = False

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        kwargs.setdefault("parse_constant", _refuse_constant)
        try:
            value = json.loads(s, **kwargs)
        except RecursionError:
            raise UnsafeJSONError("The JSON is nested too deeply.") from None
        # NUL and lone surrogates can only arrive as \u escapes (json.loads refuses raw control characters).
        escaped = "\\u" in s if isinstance(s, str) else b"\\u" in s
        _refuse_unsafe(value, MAX_DEPTH, check_text=escaped)
        return value


def _refuse_constant(name: str) -> Any:
    raise UnsafeJSONError(f"{name} is not a JSON number.")


def _refuse_unsafe(value: Any, limit: int, *, check_text: bool = True) -> None:
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            if check_text:
                _refuse_unsafe_text(item)
            continue
        if isinstance(item, dict):
            if check_text:
                for key in item:
                    _refuse_unsafe_text(key)
            children = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > limit:
            raise UnsafeJSONError("The JSON is nested too deeply.")
        stack.extend((child, depth + 1) for child in children)


def _refuse_unsafe_text(text: str) -> None:
    if "\x00" in text:
        raise UnsafeJSONError("JSON strings may not contain NUL characters.")
    try:
        text.encode()
    except UnicodeEncodeError:
        raise UnsafeJSONError("JSON strings may not contain lone surrogates.") from None


def json_body(req: Request | None = None, *, required_object: bool = True) -> dict[str, Any]:
    """The request's JSON object; an empty body counts as {}.

    A body sent as anything but JSON is a 415 UNSUPPORTED_MEDIA_TYPE; one that
    is not valid JSON (or not an object) a 400 MALFORMED_REQUEST.
    """
    req = req or request
    raw = req.get_data(cache=True)
    if not raw.strip():
        return {}
    if not req.is_json:
        raise UnsupportedMediaTypeError(content_type=req.mimetype)
    try:
        value = req.json_module.loads(raw)
    except UnsafeJSONError as exc:
        raise MalformedRequestError(str(exc)) from None
    except (ValueError, UnicodeDecodeError):
        raise MalformedRequestError() from None
    if required_object and not isinstance(value, dict):
        raise MalformedRequestError("The request body must be a JSON object.")
    return value


class ArgumentsParser(FlaskParser):
    """webargs' parser for flask-smorest's ``@blp.arguments``, reading bodies with ``json_body``.

    So a body parsed by webargs is checked like every other one (depth, media
    type, NUL), instead of webargs' own plain ``json.loads``.
    """

    def _raw_load_json(self, req: Request) -> Any:
        if not req.get_data(cache=True).strip():
            return core.missing
        return json_body(req, required_object=False)


MAX_UPLOAD_BYTES = 16 * 1024 * 1024


def csv_body(*mimetypes: str, what: str = "the file") -> str:
    """A text upload (CSV) as text: 415 for another media type, 422 if not UTF-8; up to 16 MiB."""
    if request.mimetype not in (mimetypes or ("text/csv",)):
        raise UnsupportedMediaTypeError(f"Send {what} as text/csv.", content_type=request.mimetype)
    request.max_content_length = MAX_UPLOAD_BYTES
    try:
        return request.get_data().decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ValidationError("The CSV must be UTF-8.", fields={"body": ["Not UTF-8."]}) from None


def refuse_nul_in_query() -> None:
    """Before every request: a NUL character in the query string is refused (400 MALFORMED_REQUEST), as in a
    JSON body: no column can store it (PostgreSQL refuses it in text), so a filter holding one is never sent on."""
    if any("\x00" in key or "\x00" in value for key, value in request.args.items(multi=True)):
        raise MalformedRequestError("The query string may not contain NUL characters.")
