"""Provably fair draws: every random outcome is seeded by HMAC(version secret, player, sequence number).

At publish a version gets a fresh secret and shows only its SHA-256
commitment; once the campaign ends the secret is revealed, and anyone can
re-derive each recorded outcome from it and the claim log (``huodong verify``).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets


def new_secret() -> str:
    return secrets.token_hex(32)


def commitment(secret: str) -> str:
    """What a version shows before the reveal: sha256 of the secret's bytes, hex."""
    return hashlib.sha256(bytes.fromhex(secret)).hexdigest()


def draw_seed(secret: str, user_id: str, seq: int) -> int:
    """The seed of one player's ``seq``-th play (a 128-bit integer for numpy's SeedSequence)."""
    mac = hmac.new(bytes.fromhex(secret), f"{user_id}:{seq}".encode(), hashlib.sha256).digest()
    return int.from_bytes(mac[:16], "big")
