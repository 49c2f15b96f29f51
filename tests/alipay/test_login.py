"""POST /api/v1/auth/alipay: an auth code exchanged through the official SDK at the sandbox gateway."""

from __future__ import annotations

from datetime import timedelta

import pytest
import requests
from sqlalchemy import select

from alipay_platform.gateway import AlipayGateway, AlipayNotConfiguredError, AlipayUnavailableError
from alipay_sandbox.keys import generate
from alipay_sandbox.server import Sandbox
from campaigns.models import Player
from engine.config import load_settings
from tests.web.test_bad_input import error_of


def auth_code(sandbox, user_id: str) -> str:
    return requests.post(f"{sandbox.url}/sandbox/auth_codes", json={"user_id": user_id}, timeout=5).json()["auth_code"]


def test_an_auth_code_logs_the_alipay_user_in_once(client, alipay_sandbox, db_session):
    code = auth_code(alipay_sandbox, "2088000000000001")
    response = client.post("/api/v1/auth/alipay", json={"auth_code": code})
    assert response.status_code == 200, response.json
    assert response.json["user_id"] == "2088000000000001"
    me = client.get("/api/v1/me/grants", headers={"Authorization": f"Bearer {response.json['token']}"})
    assert me.status_code == 200
    player = db_session.scalar(select(Player).where(Player.alipay_user_id == "2088000000000001"))
    assert player is not None and player.id == "2088000000000001"

    again = client.post("/api/v1/auth/alipay", json={"auth_code": code})
    assert error_of(again, 401, "AUTH_CODE_INVALID")["details"]["sub_code"] == "isv.code-invalid"
    second = client.post("/api/v1/auth/alipay", json={"auth_code": auth_code(alipay_sandbox, "2088000000000001")})
    assert second.json["user_id"] == "2088000000000001"  # the same player, found by the Alipay user id
    assert len(db_session.scalars(select(Player)).all()) == 1


def test_an_expired_or_unknown_code_is_refused(client, alipay_sandbox):
    code = auth_code(alipay_sandbox, "2088000000000002")
    with alipay_sandbox.sandbox.state.lock:
        alipay_sandbox.sandbox.state.auth_codes[code].expires_at -= timedelta(minutes=10)
    error_of(client.post("/api/v1/auth/alipay", json={"auth_code": code}), 401, "AUTH_CODE_INVALID")
    error_of(client.post("/api/v1/auth/alipay", json={"auth_code": "nope"}), 401, "AUTH_CODE_INVALID")
    error_of(client.post("/api/v1/auth/alipay", json={}), 422, "VALIDATION_ERROR")
    error_of(client.post("/api/v1/auth/alipay", json={"auth_code": ""}), 422, "VALIDATION_ERROR")
    error_of(client.post("/api/v1/auth/alipay", json={"auth_code": "x", "extra": 1}), 422, "VALIDATION_ERROR")


def test_the_sandbox_refuses_a_request_signed_with_another_key(settings, alipay_sandbox):
    forged = AlipayGateway(settings.replace(alipay_app_private_key=generate().private_key))
    code = auth_code(alipay_sandbox, "2088000000000003")
    with pytest.raises(AlipayUnavailableError) as refused:
        forged.user_for_auth_code(code)
    assert refused.value.details["sub_code"] == "isv.invalid-signature"
    assert not alipay_sandbox.sandbox.state.auth_codes[code].used  # the forged call never reached the method


def test_an_answer_not_signed_by_the_gateway_is_not_believed(settings, alipay_sandbox):
    """A man in the middle with its own key: the SDK's verification refuses its answer."""
    impostor = Sandbox(generate(), {settings.alipay_app_id: alipay_sandbox.merchant_keys.public_key}).serve()
    try:
        gateway = AlipayGateway(settings.replace(alipay_gateway_url=impostor.gateway_url))
        with pytest.raises(AlipayUnavailableError) as refused:
            gateway.user_for_auth_code(auth_code(impostor, "2088000000000004"))
        assert refused.value.details["reason"] == "ResponseException"
    finally:
        impostor.stop()


def test_an_unreachable_gateway_or_none_configured_is_a_503(client, settings):
    unreachable = AlipayGateway(settings.replace(alipay_gateway_url="http://127.0.0.1:9/gateway.do"))
    with pytest.raises(AlipayUnavailableError):
        unreachable.user_for_auth_code("any")
    unconfigured = AlipayGateway(load_settings({"instance_path": settings.instance_path}, environ={}))
    with pytest.raises(AlipayNotConfiguredError) as refused:
        unconfigured.user_for_auth_code("any")
    assert refused.value.http_status == 503
