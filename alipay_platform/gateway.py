"""The Alipay gateway client: the official SDK's ``DefaultAlipayClient``, configured from settings.

The SDK signs requests (RSA2) and verifies answers. What it does not decide is
what an answer means: ``is_success()`` only checks that ``sub_code`` is absent,
so callers here decide on ``code == "10000"``. A socket timeout, a refused
connection or a non-200 status (which the SDK reports as a ``TypeError`` while
formatting its own error) all mean "outcome unknown" (``AlipayUnavailableError``).

One gateway per process and settings (``gateway_for``): the SDK client, the
parsed keys and the certificates checked against their root are built once.
``preload`` builds them before an RQ worker forks, so every work horse inherits
them instead of parsing them again.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, NamedTuple

from alipay.aop.api.AlipayClientConfig import AlipayClientConfig
from alipay.aop.api.DefaultAlipayClient import DefaultAlipayClient
from alipay.aop.api.exception.Exception import RequestException, ResponseException
from alipay.aop.api.request.AlipaySystemOauthTokenRequest import AlipaySystemOauthTokenRequest
from alipay.aop.api.response.AlipaySystemOauthTokenResponse import AlipaySystemOauthTokenResponse
from sqlalchemy import select
from sqlalchemy.orm import sessionmaker

from campaigns.models import Player
from engine.config import Settings
from engine.errors import HuodongError, UnauthorizedError

from . import sdk_edge  # noqa: F401  (gateway URLs with a port, OpenSSL signing)
from .certs import CertMode
from .sdk_edge import post_signed, verified_cert_answer
from .signing import private_key, public_key

SUCCESS = "10000"
# A read timeout, a refused connection, the SDK's own exceptions, and the TypeError it raises formatting a
# non-200 status: the request may or may not have been acted on.
UNKNOWN_OUTCOME = (TimeoutError, OSError, RequestException, ResponseException, TypeError)
INVALID_CODES = {"isv.code-invalid", "isv.code-expired", "isv.code-used"}
# Answers that mean "try again" rather than "no": the service is busy or failed inside.
RETRYABLE_CODES = {"20000", "20001"}
RETRYABLE_SUB_CODES = {"SYSTEM_ERROR", "aop.SYSTEM_ERROR", "isp.unknow-error", "ACQ.SYSTEM_ERROR"}


# Parsing the certificates and checking Alipay's against the root, once per process.
_cert_mode = functools.lru_cache(maxsize=4)(CertMode.from_pems)


class AlipayNotConfiguredError(HuodongError):
    code = "ALIPAY_NOT_CONFIGURED"
    http_status = 503
    default_message = "Alipay is not configured on this server."


class AlipayUnavailableError(HuodongError):
    code = "ALIPAY_UNAVAILABLE"
    http_status = 503
    default_message = "Alipay did not answer; try again."


class AuthCodeInvalidError(UnauthorizedError):
    code = "AUTH_CODE_INVALID"
    default_message = "The Alipay auth code is invalid, expired or already used; get a new one."


@dataclass(frozen=True)
class AlipayUser:
    user_id: str
    open_id: str | None


class AlipayGateway:
    def __init__(self, settings: Settings) -> None:
        self.configured = bool(settings.alipay_gateway_url and settings.alipay_app_id)
        self._settings = settings
        self._cert_mode: CertMode | None = None
        config = AlipayClientConfig()
        config.server_url = settings.alipay_gateway_url
        config.app_id = settings.alipay_app_id
        config.app_private_key = settings.alipay_app_private_key
        config.alipay_public_key = settings.alipay_public_key
        config.sign_type = "RSA2"
        config.timeout = settings.alipay_timeout_seconds
        self._client = DefaultAlipayClient(config)

    def execute(self, request: object) -> str:
        """The answer's inner JSON, signature verified; AlipayUnavailableError when the outcome is unknown."""
        if not self.configured:
            raise AlipayNotConfiguredError()
        try:
            return self._client.execute(request)
        except UNKNOWN_OUTCOME as exc:
            raise AlipayUnavailableError(reason=type(exc).__name__) from None

    @property
    def cert_mode(self) -> CertMode:
        if self._cert_mode is None:
            s = self._settings
            if not (s.alipay_app_cert and s.alipay_cert and s.alipay_root_cert):
                raise AlipayNotConfiguredError("Fund transfers need certificate mode: configure the app, Alipay "
                                               "and root certificates.")
            self._cert_mode = _cert_mode(s.alipay_app_cert, s.alipay_cert, s.alipay_root_cert)
        return self._cert_mode

    def execute_cert(self, request: Any) -> str:
        """A call in public-key certificate mode: the serial numbers signed with the other parameters, and the
        answer (which the SDK's parser does not accept) parsed and verified here with Alipay's certificate."""
        if not self.configured:
            raise AlipayNotConfiguredError()
        mode = self.cert_mode
        request.add_other_text_param("app_cert_sn", mode.app_cert_sn)
        request.add_other_text_param("alipay_root_cert_sn", mode.root_cert_sn)
        try:
            raw = post_signed(self._client, request, self._settings.alipay_gateway_url,
                              self._settings.alipay_timeout_seconds)
        except UNKNOWN_OUTCOME as exc:
            raise AlipayUnavailableError(reason=type(exc).__name__) from None
        try:
            return verified_cert_answer(raw.decode("utf-8"), request.get_params()["method"], mode.alipay_keys)
        except ValueError as exc:
            raise AlipayUnavailableError(reason="ResponseException", detail=str(exc)) from None

    def user_for_auth_code(self, auth_code: str) -> AlipayUser:
        """alipay.system.oauth.token: the user an auth code (from my.getAuthCode) stands for."""
        request = AlipaySystemOauthTokenRequest()
        request.grant_type = "authorization_code"
        request.code = auth_code
        response = AlipaySystemOauthTokenResponse()
        response.parse_response_content(self.execute(request))
        if response.code == SUCCESS and response.user_id:
            return AlipayUser(user_id=response.user_id, open_id=response.open_id)
        if response.sub_code in INVALID_CODES:
            raise AuthCodeInvalidError(sub_code=response.sub_code)
        raise AlipayUnavailableError(code=response.code, sub_code=response.sub_code)


@functools.lru_cache(maxsize=8)
def gateway_for(settings: Settings) -> AlipayGateway:
    """The process's gateway for these settings (thread-safe to share: the SDK keeps no state per call)."""
    return AlipayGateway(settings)


def preload(settings: Settings) -> None:
    """Parse the keys and check the certificates now, in this process, so that forked children inherit them."""
    gateway = gateway_for(settings)
    if not gateway.configured:
        return
    private_key(settings.alipay_app_private_key)
    public_key(settings.alipay_public_key)
    if settings.alipay_app_cert and settings.alipay_cert and settings.alipay_root_cert:
        for key in gateway.cert_mode.alipay_keys.values():
            public_key(key)


class Refusal(NamedTuple):
    """What a refusing answer says: whether trying again may help, and the provider's words."""

    retryable: bool
    problem: str


def refusal(response: Any) -> Refusal:
    return Refusal(retryable=response.code in RETRYABLE_CODES or response.sub_code in RETRYABLE_SUB_CODES,
                   problem=f"{response.code} {response.sub_code}: {response.sub_msg or response.msg}")


def yuan(fen: int) -> str:
    """Integer fen as Alipay's amount string: 88 -> "0.88"."""
    return f"{fen // 100}.{fen % 100:02d}"


def alipay_user_ids(session_factory: sessionmaker, player_ids: list[str]) -> dict[str, str]:
    """The Alipay user id of each player who logged in with Alipay (one query); the others are absent."""
    found: dict[str, str] = {}
    unique = sorted(set(player_ids))
    with session_factory() as session:
        for start in range(0, len(unique), 500):
            found.update(session.execute(select(Player.id, Player.alipay_user_id).where(
                Player.id.in_(unique[start:start + 500]), Player.alipay_user_id.is_not(None))).all())
    return found
