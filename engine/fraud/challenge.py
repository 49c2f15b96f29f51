"""Slider challenges: what a player whose play scored in the challenge band must solve to go on.

The refusal (CHALLENGE_REQUIRED) carries a picture with a gap at a random
offset; the player drags the piece into it and plays again with
``X-Challenge-Id`` and ``X-Challenge-Answer`` (the offset in pixels). The
offset stays in Redis, never in the answer: the claim script compares it
with the player's answer, deletes the challenge (one try each) and, when it
matches within ``TOLERANCE_PX``, lets the player's plays through the
challenge band for the policy's ``pass_minutes``.
"""

from __future__ import annotations

import base64
import secrets
from typing import Any

import redis

from ..keys import CampaignKeys

ID_HEADER = "X-Challenge-Id"
ANSWER_HEADER = "X-Challenge-Answer"
WIDTH_PX, HEIGHT_PX, PIECE_PX = 300, 150, 40
TOLERANCE_PX = 6
LIFETIME_SECONDS = 120


def challenge_key(keys: CampaignKeys, challenge_id: str) -> str:
    return keys.fraud("challenge", challenge_id)


def passed_key(keys: CampaignKeys, user_id: str) -> str:
    return keys.fraud("passed", user_id)


def issue(client: redis.Redis, keys: CampaignKeys, user_id: str) -> dict[str, Any]:
    """A new challenge for this player, stored for LIFETIME_SECONDS; answers what the mini-program shows."""
    challenge_id = secrets.token_hex(12)
    offset = PIECE_PX + secrets.randbelow(WIDTH_PX - 3 * PIECE_PX)
    top = 20 + secrets.randbelow(HEIGHT_PX - PIECE_PX - 40)
    key = challenge_key(keys, challenge_id)
    with client.pipeline(transaction=False) as pipe:
        pipe.hset(key, mapping={"user": user_id, "x": offset})
        pipe.expire(key, LIFETIME_SECONDS)
        pipe.execute()
    return {"id": challenge_id, "kind": "slider", "image": _picture(offset, top), "width": WIDTH_PX,
            "piece_width": PIECE_PX, "piece_top": top, "expires_in_seconds": LIFETIME_SECONDS,
            "answer": f"play again with {ID_HEADER}: <id> and {ANSWER_HEADER}: <offset of the gap, px>"}


def _picture(offset: int, top: int) -> str:
    """An SVG data URL: a striped background with the gap drawn at ``offset``."""
    stripes = "".join(f'<rect x="{x}" y="0" width="10" height="{HEIGHT_PX}" fill="#{secrets.token_hex(3)}" '
                      f'opacity="0.25"/>' for x in range(0, WIDTH_PX, 20))
    svg = (f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH_PX}" height="{HEIGHT_PX}">'
           f'<rect width="{WIDTH_PX}" height="{HEIGHT_PX}" fill="#f2e6d9"/>{stripes}'
           f'<rect x="{offset}" y="{top}" width="{PIECE_PX}" height="{PIECE_PX}" rx="6" fill="#333" '
           f'opacity="0.6"/></svg>')
    return "data:image/svg+xml;base64," + base64.b64encode(svg.encode()).decode()
