"""What a request tells about itself, as the mini-program and the connection give it."""

from __future__ import annotations

from dataclasses import dataclass

# The headers a mini-program sends on every state-changing request.
DEVICE_HEADER = "X-Device-Id"
TIMESTAMP_HEADER = "X-Request-Timestamp"  # ms since the epoch, the device's clock
NONCE_HEADER = "X-Request-Nonce"  # 16 to 64 characters, new for every request


@dataclass(frozen=True)
class RequestFeatures:
    device_id: str | None = None
    ip: str | None = None
    user_agent: str | None = None
    timestamp_ms: int | None = None
    nonce: str | None = None
    # What the player's token says: the device it was issued to, and when the player registered.
    token_device: str | None = None
    registered_ms: int | None = None
    # An answered challenge (engine/fraud/challenge.py): its id and the answer, as the provider reads it.
    challenge_id: str | None = None
    challenge_answer: str | None = None


NONE = RequestFeatures()
