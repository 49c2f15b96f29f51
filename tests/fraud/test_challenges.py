"""Challenges through a provider: the slider keeps its answer on the server and wants a hand's drag, a
captcha service's token is verified server-side with a timeout and the policy's fail mode, a malformed
answer is a coded 422 that uses nothing up, and a provider is a plugin."""

from __future__ import annotations

import base64
import io
import json
import re
from typing import Any

import pytest
from PIL import Image

from engine.fraud.challenge import LIFETIME_SECONDS, ChallengeProvider, challenge_providers
from tests.support import slider
from tests.support.captcha_service import SECRET, CaptchaService
from tests.support.services import serving
from tests.web.test_bad_input import error_of

from .conftest import ManualClock, make_world
from .test_risk import Phone, campaign_under, risk_only


def challenged(world: dict[str, Any], clock: ManualClock, campaign: int, user: str = "guest") -> tuple[Phone, Any]:
    """A second player on a shared phone: the shared_device signal (50) asks for a challenge."""
    Phone(world, clock, f"owner-of-{user}", device=f"shared-{user}").buy(campaign)
    guest = Phone(world, clock, user, device=f"shared-{user}")
    refused = guest.buy(campaign)
    error_of(refused, 403, "CHALLENGE_REQUIRED")
    return guest, refused.json["error"]["details"]["challenge"]


def answered(guest: Phone, campaign: int, asked: dict[str, Any], answer: str) -> Any:
    return guest.buy(campaign, **{"X-Challenge-Id": asked["id"], "X-Challenge-Answer": answer})


def test_the_slider_sends_pictures_and_never_the_answer(world, clock):
    campaign = campaign_under(world, risk_only())
    guest, asked = challenged(world, clock, campaign)
    offset = guest.seen[asked["id"]]
    assert asked["provider"] == "slider" and asked["kind"] == "slider"
    assert set(asked) == {"provider", "kind", "id", "image", "piece", "piece_top", "width", "height",
                          "expires_in_seconds", "answer"}
    for name in ("image", "piece"):
        assert asked[name].startswith("data:image/png;base64,")
        picture = Image.open(io.BytesIO(base64.b64decode(asked[name].partition(",")[2])))
        assert picture.format == "PNG"
    assert Image.open(io.BytesIO(base64.b64decode(asked["image"].partition(",")[2]))).size == (300, 150)
    # Besides the pixels the client gets constants, a random id and the piece's height on the picture:
    # nothing that depends on the gap's horizontal offset (a substring search would trip on 120 s).
    assert {k: v for k, v in asked.items() if k not in ("image", "piece", "id", "piece_top")} == {
        "provider": "slider", "kind": "slider", "width": 300, "height": 150,
        "expires_in_seconds": LIFETIME_SECONDS,
        "answer": "play again with X-Challenge-Id: <id> and X-Challenge-Answer: <your answer>"}
    assert re.fullmatch(r"[0-9a-f]{24}", asked["id"])
    assert isinstance(asked["piece_top"], int) and 0 <= asked["piece_top"] < 150 and 0 < offset < 300


def test_a_hand_drag_onto_the_gap_passes_and_a_script_drag_or_a_miss_does_not(world, clock, admin):
    campaign = campaign_under(world, risk_only())
    guest, asked = challenged(world, clock, campaign, "scripted")
    x = guest.seen[asked["id"]]
    straight = answered(guest, campaign, asked, slider.answer(x, slider.straight_drag(x)))
    asked = error_of(straight, 403, "CHALLENGE_REQUIRED")["details"]["challenge"]  # used up; a new one
    x = guest.seen[asked["id"]]
    missed = answered(guest, campaign, asked, slider.answer(x + 30, slider.hand_drag(x + 30)))
    asked = error_of(missed, 403, "CHALLENGE_REQUIRED")["details"]["challenge"]
    x = guest.seen[asked["id"]]
    assert answered(guest, campaign, asked, slider.answer(x, slider.hand_drag(x))).status_code == 200
    stats = world["client"].get(f"/admin/api/v1/campaigns/{campaign}/fraud", headers=admin).json
    assert stats["challenges"] == {"failed": 2, "passed": 1}


@pytest.mark.parametrize("bad", [
    "12", "not json", json.dumps({"x": 10}), json.dumps({"x": "10", "trace": []}),
    json.dumps({"x": 10, "trace": "fast"}), json.dumps({"x": 10, "trace": [[1, 2]]}),
    json.dumps({"x": 1000, "trace": [[0, 0, 0], [1, 1, 1]]}), json.dumps({"x": True, "trace": [[0, 0, 0]] * 3}),
    json.dumps({"x": 10, "trace": [[0, 0, 0]] * 501}), "x" * 9000,
])
def test_a_malformed_answer_is_a_coded_422_and_uses_nothing_up(world, clock, bad):
    campaign = campaign_under(world, risk_only())
    guest, asked = challenged(world, clock, campaign)
    error = error_of(answered(guest, campaign, asked, bad), 422, "CHALLENGE_ANSWER_INVALID")
    assert error["message"]
    x = guest.seen[asked["id"]]  # still there: the same challenge is answered next
    assert answered(guest, campaign, asked, slider.answer(x, slider.hand_drag(x))).status_code == 200


@pytest.fixture
def captcha(settings):
    service = CaptchaService()
    with serving(service) as base:
        yield service, settings.replace(captcha_verify_url=f"{base}/siteverify", captcha_secret=SECRET,
                                        captcha_site_key="site-key-1")


@pytest.mark.parametrize(("fault", "mode", "passes"), [
    ("slow", "closed", False), ("slow", "open", True), ("nonsense", "closed", False), ("5xx", "open", True),
])
def test_a_captcha_service_that_cannot_answer_follows_the_fail_mode_and_is_counted(captcha, clock, admin_token,
                                                                                    fault, mode, passes):
    service, captcha_settings = captcha
    world = make_world(captcha_settings, clock, admin_token)
    campaign = campaign_under(world, risk_only(challenge={"provider": "token", "timeout_ms": 300,
                                                          "on_unavailable": mode}))
    guest, asked = challenged(world, clock, campaign)
    assert asked["kind"] == "token" and asked["site_key"] == "site-key-1"
    if fault == "slow":
        service.delay_seconds = 0.8
    elif fault == "nonsense":
        service.answer = "<html>maintenance</html>"
    else:
        service.status = 503
    answer = answered(guest, campaign, asked, "tok-from-the-widget")
    assert (answer.status_code == 200) is passes
    if not passes:
        error_of(answer, 403, "CHALLENGE_REQUIRED")
    stats = world["client"].get(f"/admin/api/v1/campaigns/{campaign}/fraud",
                                headers={"Authorization": f"Bearer {admin_token('admin')}"}).json
    assert stats["challenges"] == {f"unavailable_{mode}": 1}


def test_a_captcha_token_passes_once_and_a_wrong_one_does_not(captcha, clock, admin_token):
    service, captcha_settings = captcha
    world = make_world(captcha_settings, clock, admin_token)
    campaign = campaign_under(world, risk_only(challenge={"provider": "token"}))
    guest, asked = challenged(world, clock, campaign)
    service.tokens.add("good-token")
    wrong = answered(guest, campaign, asked, "forged-token")
    asked = error_of(wrong, 403, "CHALLENGE_REQUIRED")["details"]["challenge"]
    assert answered(guest, campaign, asked, "good-token").status_code == 200
    assert service.calls[-1] == {"secret": SECRET, "response": "good-token"}
    other, asked = challenged(world, clock, campaign, "replayer")
    error_of(answered(other, campaign, asked, "good-token"), 403, "CHALLENGE_REQUIRED")  # spent at the service


def test_a_challenge_provider_is_a_plugin(world, clock):
    """A provider registers by name and a policy names it: nothing in the engine changes."""

    class AlwaysAsks(ChallengeProvider):
        name = "test_riddle"

        def issue(self, user_id: str) -> dict[str, Any]:
            return {"id": "riddle" + user_id.replace("-", ""), "kind": "riddle", "question": "2 + 2?"}

        def parse(self, answer: str) -> str:
            return answer.strip()

        def verify(self, user_id: str, challenge_id: str, answer: str) -> bool:
            return answer == "4"

    if "test_riddle" not in challenge_providers:
        challenge_providers.add("test_riddle", AlwaysAsks)
    campaign = campaign_under(world, risk_only(challenge={"provider": "test_riddle"}))
    guest, asked = challenged(world, clock, campaign, "puzzled")
    assert asked["question"] == "2 + 2?"
    error_of(answered(guest, campaign, asked, "5"), 403, "CHALLENGE_REQUIRED")
    assert answered(guest, campaign, asked, "4").status_code == 200


def test_a_policy_naming_an_unknown_provider_is_refused(client, admin):
    saved = client.put("/admin/api/v1/fraud-policies/odd", json={"risk": {"challenge": {"provider": "nope"}}},
                       headers=admin)
    error = error_of(saved, 422, "VALIDATION_ERROR")
    assert "challenge" in json.dumps(error["details"])
