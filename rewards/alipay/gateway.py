"""The Alipay gateway client: the official SDK's ``DefaultAlipayClient``, configured from settings.

The SDK signs requests (RSA2) and verifies answers. What it does not decide is
what an answer means: ``is_success()`` only checks that ``sub_code`` is absent,
so callers here decide on ``code == "10000"``. A socket timeout, a refused
connection or a non-200 status (which the SDK reports as a ``TypeError`` while
formatting its own error) all mean "outcome unknown" (``AlipayUnavailableError``).
"""

from __future__ import annotations

from dataclasses import dataclass

from alipay.aop.api.AlipayClientConfig import AlipayClientConfig
from alipay.aop.api.DefaultAlipayClient import DefaultAlipayClient
from alipay.aop.api.exception.Exception import RequestException, ResponseException
from alipay.aop.api.request.AlipaySystemOauthTokenRequest import AlipaySystemOauthTokenRequest
from alipay.aop.api.response.AlipaySystemOauthTokenResponse import AlipaySystemOauthTokenResponse

from engine.config import Settings
from engine.errors import HuodongError, UnauthorizedError

from . import sdk_edge  # noqa: F401  (gateway URLs with a port)

SUCCESS = "10000"
INVALID_CODES = {"isv.code-invalid", "isv.code-expired", "isv.code-used"}


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
        except (TimeoutError, OSError, RequestException, ResponseException, TypeError) as exc:
            raise AlipayUnavailableError(reason=type(exc).__name__) from None

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
