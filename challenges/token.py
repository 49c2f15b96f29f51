"""token: a captcha service that verifies its own widget's token server-side.

The mini-program shows the service's widget (with ``site_key``); the widget gives the player a token, sent
back as ``X-Challenge-Answer``. ``verify`` POSTs ``secret``, ``response`` (the token) and ``remoteip`` to
``HUODONG_CAPTCHA_VERIFY_URL`` and passes on ``{"success": true}``: the "siteverify" shape of Cloudflare
Turnstile, hCaptcha and reCAPTCHA. A service with another shape (Alibaba Cloud captcha's
VerifyIntelligentCaptcha, Geetest v4's /validate with its HMAC ``sign_token``) is a subclass that overrides
``verify_token`` and registers under its own name (``challenge_providers.register``), nothing else.

The call waits at most the policy's ``risk.challenge.timeout_ms``. A timeout, a connection error, a 5xx or an
answer without a boolean ``success`` raises ``ProviderUnavailableError``: the policy's fail mode decides.
"""

from __future__ import annotations

import json
import secrets
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from engine.fraud.challenge import (
    LIFETIME_SECONDS,
    ChallengeAnswerInvalidError,
    ChallengeProvider,
    ProviderUnavailableError,
    challenge_key,
    challenge_providers,
)

MAX_TOKEN = 4096


@challenge_providers.register("token")
class TokenProvider(ChallengeProvider):
    name = "token"

    def issue(self, user_id: str) -> dict[str, Any]:
        challenge_id = secrets.token_hex(12)
        key = challenge_key(self.context.keys, challenge_id)
        with self.context.client.pipeline(transaction=False) as pipe:
            pipe.hset(key, mapping={"user": user_id})
            pipe.expire(key, LIFETIME_SECONDS)
            pipe.execute()
        return {"id": challenge_id, "kind": "token", "site_key": self.context.settings.captcha_site_key}

    def parse(self, answer: str) -> str:
        token = answer.strip()
        if not token or len(token) > MAX_TOKEN or not token.isprintable():
            raise ChallengeAnswerInvalidError(f"Send the captcha widget's token (1 to {MAX_TOKEN} characters).")
        return token

    def verify(self, user_id: str, challenge_id: str, answer: str) -> bool:
        key = challenge_key(self.context.keys, challenge_id)
        with self.context.client.pipeline(transaction=True) as pipe:  # each challenge answered once
            pipe.hget(key, "user")
            pipe.delete(key)
            asked, _ = pipe.execute()
        if asked != user_id:
            return False
        return self.verify_token(answer)

    def verify_token(self, token: str) -> bool:
        settings = self.context.settings
        if not settings.captcha_verify_url:
            raise ProviderUnavailableError("HUODONG_CAPTCHA_VERIFY_URL is not set")
        body = urllib.parse.urlencode({"secret": settings.captcha_secret, "response": token}).encode()
        request = urllib.request.Request(settings.captcha_verify_url, data=body, method="POST",
                                         headers={"Content-Type": "application/x-www-form-urlencoded"})
        try:
            with urllib.request.urlopen(request, timeout=self.context.options["timeout_ms"] / 1000) as response:
                answer = json.loads(response.read(65_536))
        except (OSError, ValueError) as exc:  # URLError, HTTPError (a 4xx or 5xx), timeouts, not JSON
            raise ProviderUnavailableError(repr(exc)) from None
        success = answer.get("success") if isinstance(answer, dict) else None
        if not isinstance(success, bool):
            raise ProviderUnavailableError(f"an answer without a boolean success: {str(answer)[:200]}")
        return success
