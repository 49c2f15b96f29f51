"""slider (滑块): drag a puzzle piece into the gap of a picture, the built-in challenge of the demo and tests.

What the mini-program receives is two PNGs (the picture with the gap and two decoy holes of other shapes,
and the piece) and the piece's row: no offset anywhere, the server keeps it. The player drags the piece;
the mini-program sends ``{"x": where the piece was let go, "trace": [[ms, x, y], ...]}``, the drag as it
happened. It passes when the piece is within ``TOLERANCE_PX`` of the gap and the trace looks like a hand:
at least ``MIN_POINTS`` samples over ``MIN_MS`` to ``MAX_MS``, starting at the left edge and ending where
it was let go, a speed that changes along the way (a hand speeds up and slows down; a script that slides
at one speed does not) and some vertical wobble. Each challenge is answered once.

This stops a script that reads answers from markup or drags in a straight line; a script with computer
vision and a synthetic trace can solve any slider. Against that, use a captcha service (``token``).
"""

from __future__ import annotations

import base64
import io
import json
import math
import secrets
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from engine.fraud.challenge import (
    LIFETIME_SECONDS,
    ChallengeAnswerInvalidError,
    ChallengeProvider,
    challenge_key,
    challenge_providers,
)

WIDTH_PX, HEIGHT_PX, PIECE_PX, TAB_PX = 300, 150, 40, 8
TOLERANCE_PX = 6
MIN_POINTS, MIN_MS, MAX_MS = 8, 300, 15_000
MIN_SPEED_CV = 0.2  # the speeds' standard deviation over their mean, along the drag
MIN_WOBBLE_PX = 1.0


@challenge_providers.register("slider")
class SliderProvider(ChallengeProvider):
    name = "slider"

    def issue(self, user_id: str) -> dict[str, Any]:
        rng = np.random.default_rng(secrets.randbits(64))
        offset = int(rng.integers(PIECE_PX + 20, WIDTH_PX - PIECE_PX - TAB_PX - 10))
        top = int(rng.integers(10, HEIGHT_PX - PIECE_PX - 10))
        challenge_id = secrets.token_hex(12)
        key = challenge_key(self.context.keys, challenge_id)
        with self.context.client.pipeline(transaction=False) as pipe:
            pipe.hset(key, mapping={"user": user_id, "x": offset})
            pipe.expire(key, LIFETIME_SECONDS)
            pipe.execute()
        picture, piece = _draw(rng, offset, top)
        return {"id": challenge_id, "kind": "slider", "image": picture, "piece": piece, "piece_top": top,
                "width": WIDTH_PX, "height": HEIGHT_PX}

    def parse(self, answer: str) -> dict[str, Any]:
        try:
            document = json.loads(answer)
            x, trace = document["x"], document["trace"]
            points = [(float(t), float(px), float(py)) for t, px, py in trace]
        except (ValueError, TypeError, KeyError):
            raise ChallengeAnswerInvalidError(
                'Answer {"x": <px>, "trace": [[<ms>, <x>, <y>], ...]}, the drag as it happened.') from None
        if not isinstance(x, int) or isinstance(x, bool) or not 0 <= x <= WIDTH_PX or not 2 <= len(points) <= 500 \
                or not all(math.isfinite(v) and abs(v) <= 100_000 for point in points for v in point):
            raise ChallengeAnswerInvalidError("x is 0 to 300 px; the trace has 2 to 500 [ms, x, y] points.")
        return {"x": x, "trace": points}

    def verify(self, user_id: str, challenge_id: str, answer: dict[str, Any]) -> bool:
        key = challenge_key(self.context.keys, challenge_id)
        # Read and used up at once: one answer. HMGET, not HGETALL: in a transaction on a Redis Cluster redis-py
        # hands HGETALL's reply back unparsed.
        with self.context.client.pipeline(transaction=True) as pipe:
            pipe.hmget(key, "user", "x")
            pipe.delete(key)
            (user, offset), _ = pipe.execute()
        if user != user_id or offset is None:
            return False
        return abs(int(offset) - answer["x"]) <= TOLERANCE_PX and human_drag(answer["trace"], answer["x"])


def human_drag(trace: list[tuple[float, float, float]], let_go: int) -> bool:
    """Whether the drag looks like a hand's (the module's docstring)."""
    if len(trace) < MIN_POINTS:
        return False
    times = np.array([t for t, _, _ in trace])
    xs = np.array([x for _, x, _ in trace])
    ys = np.array([y for _, _, y in trace])
    steps = np.diff(times)
    if np.any(steps <= 0) or not MIN_MS <= times[-1] - times[0] <= MAX_MS:
        return False
    if xs[0] > 10 or abs(xs[-1] - let_go) > 3:
        return False
    speeds = np.abs(np.diff(xs)) / steps
    mean = float(speeds.mean())
    return mean > 0 and float(speeds.std()) / mean >= MIN_SPEED_CV and float(np.ptp(ys)) >= MIN_WOBBLE_PX


def _piece_mask(size: tuple[int, int], left: int, top: int) -> Image.Image:
    """The piece's shape: a rounded square with a round tab on its right side."""
    mask = Image.new("L", size, 0)
    draw = ImageDraw.Draw(mask)
    draw.rounded_rectangle((left, top, left + PIECE_PX, top + PIECE_PX), radius=6, fill=255)
    middle = top + PIECE_PX // 2
    draw.ellipse((left + PIECE_PX - TAB_PX, middle - TAB_PX, left + PIECE_PX + TAB_PX, middle + TAB_PX), fill=255)
    return mask


def _draw(rng: np.random.Generator, offset: int, top: int) -> tuple[str, str]:
    """The picture (a noisy landscape of soft blobs, the gap and two decoy holes) and the piece, as PNG data
    URLs."""
    base = rng.integers(90, 200, size=3)
    gradient = np.linspace(0, 1, WIDTH_PX)[None, :, None] * rng.integers(-60, 60, size=3)
    pixels = np.clip(base + gradient + rng.normal(0, 9, (HEIGHT_PX, WIDTH_PX, 3)), 0, 255).astype(np.uint8)
    picture = Image.fromarray(pixels, "RGB")
    draw = ImageDraw.Draw(picture, "RGBA")
    for _ in range(18):
        x, y, r = int(rng.integers(0, WIDTH_PX)), int(rng.integers(0, HEIGHT_PX)), int(rng.integers(8, 40))
        colour = tuple(int(c) for c in rng.integers(0, 255, size=3)) + (int(rng.integers(40, 110)),)
        draw.ellipse((x - r, y - r, x + r, y + r), fill=colour)
    picture = picture.filter(ImageFilter.GaussianBlur(1.2))
    piece_mask = _piece_mask(picture.size, offset, top)
    piece = Image.new("RGBA", (PIECE_PX + TAB_PX + 2, PIECE_PX + 2))
    piece.paste(picture.crop((offset, top, offset + PIECE_PX + TAB_PX + 2, top + PIECE_PX + 2)),
                mask=piece_mask.crop((offset, top, offset + PIECE_PX + TAB_PX + 2, top + PIECE_PX + 2)))
    holes = [piece_mask]
    for _ in range(2):  # decoys: a circle and a diamond, away from the gap
        x = int(rng.integers(10, WIDTH_PX - PIECE_PX - 10))
        while abs(x - offset) < PIECE_PX + TAB_PX:
            x = int(rng.integers(10, WIDTH_PX - PIECE_PX - 10))
        y = int(rng.integers(5, HEIGHT_PX - PIECE_PX - 5))
        decoy = Image.new("L", picture.size, 0)
        shape = ImageDraw.Draw(decoy)
        if len(holes) == 1:
            shape.ellipse((x, y, x + PIECE_PX, y + PIECE_PX), fill=255)
        else:
            half = PIECE_PX // 2
            shape.polygon([(x + half, y), (x + PIECE_PX, y + half), (x + half, y + PIECE_PX), (x, y + half)], fill=255)
        holes.append(decoy)
    shade = Image.new("RGB", picture.size, (30, 30, 30))
    for hole in holes:
        picture = Image.composite(Image.blend(picture, shade, 0.45), picture, hole)
    return _png(picture), _png(piece)


def _png(image: Image.Image) -> str:
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=True)
    return "data:image/png;base64," + base64.b64encode(out.getvalue()).decode()
