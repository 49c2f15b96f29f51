"""Player tokens: signed, expiring, and still expiring when remembered after a first check."""

from __future__ import annotations

import time

import pytest

from engine.clock import SystemClock
from engine.errors import UnauthorizedError
from web.auth import PlayerTokens, TokenExpiredError


def test_a_remembered_token_still_expires():
    now = [time.time()]
    tokens = PlayerTokens("s3cret", ttl_seconds=60, seconds=lambda: now[0])
    token = tokens.issue("ann", SystemClock().now()).token
    assert tokens.verify(token) == "ann"
    assert tokens.verify(token) == "ann"  # from memory
    now[0] += 61
    with pytest.raises(TokenExpiredError):
        tokens.verify(token)


def test_a_token_signed_with_another_secret_is_refused_even_after_a_good_one():
    good = PlayerTokens("s3cret", ttl_seconds=60)
    forged = PlayerTokens("guess", ttl_seconds=60).issue("ann", SystemClock().now()).token
    good.verify(good.issue("ann", SystemClock().now()).token)
    with pytest.raises(UnauthorizedError):
        good.verify(forged)


def test_the_memory_of_verified_tokens_is_bounded():
    tokens = PlayerTokens("s3cret", ttl_seconds=60)
    tokens.CACHE_SIZE = 3
    for i in range(10):
        tokens.verify(tokens.issue(f"p{i}", SystemClock().now()).token)
    assert len(tokens._verified) <= 3
