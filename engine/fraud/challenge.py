"""Challenges: what a player whose play scored in the challenge band must pass to go on, through a provider.

A provider is a plugin (``challenge_providers``, like games and reward adapters): the built-in ``slider``
(challenges/slider.py) for the demo and tests, and ``token`` (challenges/token.py) for a real captcha service
that verifies a token server-side (Alibaba Cloud captcha, Geetest and the like). A policy names its provider
and what happens when the provider cannot answer (``risk.challenge``: ``timeout_ms``, ``on_unavailable``).

The flow: the play is refused with CHALLENGE_REQUIRED and ``details.challenge`` (what ``issue`` answers: what
the mini-program shows, never the answer); the player solves it and plays again with ``X-Challenge-Id`` and
``X-Challenge-Answer``. Before the gate scores that play, ``answer`` has the provider verify it (each
challenge once); a pass lets the player through the challenge band for the policy's ``pass_minutes`` (a key
the claim script reads), a failure leaves the play to be challenged again. A provider that times out or
answers nonsense follows the policy's fail mode: ``closed`` (a failure) or ``open`` (a pass), and is counted.
A malformed answer is refused (422 CHALLENGE_ANSWER_INVALID) before anything is used up.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar

import redis

from ..config import Settings
from ..errors import ValidationError
from ..keys import CampaignKeys
from ..registry import Registry

log = logging.getLogger(__name__)

ID_HEADER = "X-Challenge-Id"
ANSWER_HEADER = "X-Challenge-Answer"
MAX_ANSWER = 8192  # characters of X-Challenge-Answer (a drag trace, a provider's token)
LIFETIME_SECONDS = 120


class UnknownChallengeProviderError(ValidationError):
    code = "UNKNOWN_CHALLENGE_PROVIDER"
    default_message = "No such challenge provider."


class ChallengeAnswerInvalidError(ValidationError):
    code = "CHALLENGE_ANSWER_INVALID"
    default_message = (f"{ANSWER_HEADER} is not an answer this challenge takes; nothing was used up, "
                       "answer again.")


class ProviderUnavailableError(Exception):
    """The provider could not say (a timeout, an error, an answer it does not document)."""


@dataclass(frozen=True)
class ChallengeContext:
    """What a provider may use: Redis (decoding answers), the campaign's keys, the settings, the policy's
    ``risk.challenge`` section."""

    client: redis.Redis
    keys: CampaignKeys
    settings: Settings
    options: dict[str, Any]


class ChallengeProvider(ABC):
    """A challenge plugin. ``issue`` answers what the player is shown; ``verify`` says whether an answer
    passes (True), fails (False) or raises ``ProviderUnavailableError``; ``parse`` refuses a malformed answer
    (``ChallengeAnswerInvalidError``) before ``verify`` uses the challenge up."""

    name: ClassVar[str]

    def __init__(self, context: ChallengeContext) -> None:
        self.context = context

    @abstractmethod
    def issue(self, user_id: str) -> dict[str, Any]: ...

    @abstractmethod
    def parse(self, answer: str) -> Any: ...

    @abstractmethod
    def verify(self, user_id: str, challenge_id: str, answer: Any) -> bool: ...


challenge_providers: Registry[type[ChallengeProvider]] = Registry("challenge provider",
                                                                   UnknownChallengeProviderError)


def passed_key(keys: CampaignKeys, user_id: str) -> str:
    return keys.fraud("passed", user_id)


def challenge_key(keys: CampaignKeys, challenge_id: str) -> str:
    return keys.fraud("challenge", challenge_id)


def provider_for(context: ChallengeContext) -> ChallengeProvider:
    return challenge_providers.get(context.options["provider"])(context)


def issue(context: ChallengeContext, user_id: str) -> dict[str, Any]:
    """A new challenge for the player, as CHALLENGE_REQUIRED's ``details.challenge`` carries it."""
    shown = provider_for(context).issue(user_id)
    return {"provider": context.options["provider"], "expires_in_seconds": LIFETIME_SECONDS, **shown,
            "answer": f"play again with {ID_HEADER}: <id> and {ANSWER_HEADER}: <your answer>"}


def answer(context: ChallengeContext, user_id: str, challenge_id: str, text: str, *, now_ms: int,
           pass_ms: int) -> str:
    """Verify the answer a play carries; answers what became of it (``passed``, ``failed``, ``unavailable:
    open`` or ``unavailable: closed``), counted in the campaign's fraud stats as ``challenge:<that>``."""
    provider = provider_for(context)
    parsed = provider.parse(text)  # raises ChallengeAnswerInvalidError: nothing used up
    fail_open = context.options["on_unavailable"] == "open"
    try:
        passed = provider.verify(user_id, challenge_id, parsed)
        outcome = "passed" if passed else "failed"
    except ProviderUnavailableError as exc:
        log.warning("challenge provider %s unavailable: %s", provider.name, exc)
        passed, outcome = fail_open, f"unavailable_{'open' if fail_open else 'closed'}"
    with context.client.pipeline(transaction=False) as pipe:
        if passed:
            pipe.set(passed_key(context.keys, user_id), now_ms + pass_ms, px=pass_ms)
        pipe.hincrby(context.keys.fraud_stats, f"challenge:{outcome}", 1)
        pipe.execute()
    return outcome


def answer_text(raw: str) -> str:
    """X-Challenge-Answer as the gate takes it (a longer one is refused before any provider sees it)."""
    if len(raw) > MAX_ANSWER:
        raise ChallengeAnswerInvalidError(f"{ANSWER_HEADER} is longer than {MAX_ANSWER} characters.")
    return raw

