"""JSON in and out: request bodies are refused, not crashed on, when malformed or too deeply nested."""

from __future__ import annotations

import json
from typing import Any

from flask import Request, request
from flask.json.provider import DefaultJSONProvider

from engine.errors import MalformedRequestError

MAX_DEPTH = 32


class StrictJSONProvider(DefaultJSONProvider):
    sort_keys = False
    ensure_ascii = False

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        try:
            value = json.loads(s, **kwargs)
        except RecursionError:
            raise ValueError("JSON nested too deeply") from None
        if _depth_exceeds(value, MAX_DEPTH):
            raise ValueError("JSON nested too deeply")
        return value


def _depth_exceeds(value: Any, limit: int) -> bool:
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False


def json_body(req: Request | None = None, *, required_object: bool = True) -> dict[str, Any]:
    """The request's JSON object; an empty body counts as {}. Anything else is a 400 MALFORMED_REQUEST."""
    req = req or request
    raw = req.get_data(cache=True)
    if not raw.strip():
        return {}
    try:
        value = req.json_module.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise MalformedRequestError() from None
    if required_object and not isinstance(value, dict):
        raise MalformedRequestError("The request body must be a JSON object.")
    return value
