"""webhook: a reward the merchant's own system pays -- a signed POST of the grant to the merchant's URL.

The body is the grant as JSON, built only from the grant row, so every retry
sends the same bytes; the receiver deduplicates by ``Idempotency-Key`` (the
grant id). ``Huodong-Signature: t=<unix seconds>,v1=<hex>`` signs
``"<t>.<body>"`` with HMAC-SHA256 and the shared ``HUODONG_WEBHOOK_SECRET``,
as Stripe does; ``verify_signature`` below is the receiver's recipe.

A 2xx answer issues the grant (its external id is the receiver's ``id`` when
it answers JSON with one). A timeout, a refused connection, 408, 429 or any
5xx is retried with backoff; any other answer is a dead letter with the
receiver's status and the start of its body.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import urllib.error
import urllib.request
from typing import Any

from marshmallow import RAISE, Schema, fields, validate

from campaigns.models import Grant
from engine.clock import iso
from engine.reward_types import reward_types

from .base import OutcomeUnknownError, PermanentIssueError, RetryableIssueError, RewardAdapter

SIGNATURE_HEADER = "Huodong-Signature"
RETRYABLE_STATUSES = {408, 429}
TOLERANCE_SECONDS = 300


def sign(secret: str, timestamp: int, body: bytes) -> str:
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def verify_signature(secret: str, header: str, body: bytes, *, now: float | None = None,
                     tolerance: int = TOLERANCE_SECONDS) -> bool:
    """The receiver's check: the header's HMAC matches the raw body, and its timestamp is recent."""
    try:
        parts = dict(item.split("=", 1) for item in header.split(","))
        timestamp = int(parts["t"])
    except (ValueError, KeyError):
        return False
    if abs((time.time() if now is None else now) - timestamp) > tolerance:
        return False
    expected = sign(secret, timestamp, body).split("v1=", 1)[1]
    return hmac.compare_digest(expected, parts.get("v1", ""))


class WebhookParams(Schema):
    class Meta:
        unknown = RAISE

    url = fields.Url(required=True, schemes={"http", "https"}, require_tld=False,
                     metadata={"description": "The merchant's endpoint that pays the reward."})
    event = fields.String(load_default="grant.issued", validate=validate.Length(min=1, max=64))
    data = fields.Dict(load_default=dict, metadata={"description": "Anything the merchant needs (SKU, amount)."})


def body_of(grant: Grant) -> bytes:
    """The delivery's JSON, the same bytes on every attempt."""
    reward = dict(grant.reward)
    document = {"id": grant.id, "event": reward.get("event", "grant.issued"), "campaign_id": grant.campaign_id,
                "user_id": grant.user_id, "data": reward.get("data") or {}, "cost_fen": grant.cost_fen,
                "created_at": iso(grant.created_at)}
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


@reward_types.register("webhook")
class WebhookAdapter(RewardAdapter):
    type_name = "webhook"
    params_schema = WebhookParams
    concurrency = 16  # deliveries of a batch in flight at once

    def issue(self, grant: Grant) -> str:
        settings = self.context.settings
        if not settings.webhook_secret:
            raise PermanentIssueError("HUODONG_WEBHOOK_SECRET is not set: webhook rewards cannot be signed")
        body = body_of(grant)
        request = urllib.request.Request(grant.reward["url"], data=body, method="POST", headers={
            "Content-Type": "application/json", "Idempotency-Key": grant.id,
            SIGNATURE_HEADER: sign(settings.webhook_secret, int(time.time()), body),
        })
        try:
            with urllib.request.urlopen(request, timeout=settings.webhook_timeout_seconds) as response:  # noqa: S310
                return self._issued(grant, response.read(65536))
        except urllib.error.HTTPError as exc:
            problem = f"HTTP {exc.code}: {exc.read(300).decode(errors='replace')}"
            if exc.code >= 500 or exc.code in RETRYABLE_STATUSES:
                raise RetryableIssueError(problem) from None
            raise PermanentIssueError(problem) from None
        except (urllib.error.URLError, TimeoutError, OSError) as exc:
            reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
            if isinstance(reason, TimeoutError):  # it may have been received: the retry sends the same delivery
                raise OutcomeUnknownError(f"outcome unknown: {exc}") from None
            raise RetryableIssueError(f"not delivered: {exc}") from None

    def query(self, grant: Grant) -> str | None:
        return grant.external_id

    @staticmethod
    def _issued(grant: Grant, answer: bytes) -> str:
        try:
            receiver_id: Any = json.loads(answer).get("id")
        except (ValueError, AttributeError):
            receiver_id = None
        return f"webhook:{receiver_id}" if isinstance(receiver_id, str) and receiver_id else f"webhook:{grant.id}"
