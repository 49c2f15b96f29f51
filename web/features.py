"""The fraud gate's request features, read from the mini-program's headers and the connection.

The client's address is ``request.remote_addr``: behind a reverse proxy, set
``HUODONG_TRUSTED_PROXIES`` to the number of proxies in front, and werkzeug's
ProxyFix takes it from their ``X-Forwarded-For`` (never trust that header
otherwise: a client can write anything there).
"""

from __future__ import annotations

from flask import Request, g, request

from engine.fraud.challenge import ANSWER_HEADER, ID_HEADER
from engine.fraud.features import DEVICE_HEADER, NONCE_HEADER, TIMESTAMP_HEADER, RequestFeatures

MAX_DEVICE = 128


def device_of(req: Request) -> str | None:
    device = req.headers.get(DEVICE_HEADER, "").strip()
    return device[:MAX_DEVICE] if device else None


def request_features() -> RequestFeatures:
    """What this request tells the gate; a malformed timestamp or nonce counts as missing."""
    timestamp = request.headers.get(TIMESTAMP_HEADER, "")
    nonce = request.headers.get(NONCE_HEADER, "").strip()
    challenge_id = request.headers.get(ID_HEADER, "").strip()
    answer = request.headers.get(ANSWER_HEADER, "").strip()
    claims = g.player
    return RequestFeatures(
        device_id=device_of(request),
        ip=request.remote_addr,
        user_agent=request.headers.get("User-Agent", "")[:256] or None,
        timestamp_ms=int(timestamp) if timestamp.isdigit() and len(timestamp) <= 15 else None,
        nonce=nonce if 8 <= len(nonce) <= 64 else None,
        token_device=claims.device,
        registered_ms=claims.registered_ms,
        # The provider parses the answer (and refuses a malformed one, using nothing up).
        challenge_id=challenge_id[:64] if challenge_id.isalnum() else None,
        challenge_answer=answer or None,
    )
