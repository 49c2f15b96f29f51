"""Idempotency-Key handling (IETF draft-ietf-httpapi-idempotency-key-header): key checks and request fingerprints."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from .errors import IdempotencyKeyRequiredError, ValidationError

MAX_KEY_LENGTH = 255


def require_key(key: str | None) -> str:
    if key is None or key == "":
        raise IdempotencyKeyRequiredError()
    if len(key) > MAX_KEY_LENGTH or not key.isascii() or not key.isprintable():
        raise ValidationError("The Idempotency-Key must be 1 to 255 printable ASCII characters.",
                              field="Idempotency-Key")
    return key


def is_attempt_mark(record: str) -> bool:
    """A stored Idempotency-Key record that holds no answer, only the mark a counted attempt left
    ("<fingerprint>\n", scripts/lib/idempotency.lua): the key is still new."""
    return record.endswith("\n") and record.count("\n") == 1


def fingerprint(action: str, payload: Mapping[str, Any]) -> str:
    """The same action and body (whatever its key order, spacing or omitted defaults) give the same fingerprint."""
    canonical = json.dumps([action, payload], sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                           default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()
