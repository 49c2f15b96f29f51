"""Fair draws: the commitment before, the reveal after the end, and every draw re-derived from the log."""

from __future__ import annotations

import hashlib
from datetime import timedelta

from click.testing import CliRunner
from sqlalchemy import update

from campaigns.fairness import verify
from campaigns.models import ClaimRecord
from engine.clock import SystemClock, iso
from tests.support import ops_game
from web.cli import main


def _campaign(factory) -> int:
    assert ops_game.OpsGame.name == "test_ops"
    now = SystemClock().now()
    return factory.campaign({"name": "fair", "game": "test_ops", "starts_at": iso(now - timedelta(minutes=1)),
                             "ends_at": iso(now + timedelta(days=1)), "config": {}})


def test_the_secret_is_committed_at_publish_and_revealed_only_after_the_end(factory, container, client):
    campaign = _campaign(factory)
    headers = {"Authorization": f"Bearer {factory.token('p')}"}
    before = client.get(f"/api/v1/campaigns/{campaign}/fairness", headers=headers).json
    assert before["revealed"] is False and before["versions"][0]["secret"] is None
    commitment = before["versions"][0]["commitment"]
    assert len(commitment) == 64

    with container.session_factory() as session:
        container.campaign_service(session).transition(campaign, "end", actor="test")
    after = client.get(f"/api/v1/campaigns/{campaign}/fairness", headers=headers).json
    secret = after["versions"][0]["secret"]
    assert after["revealed"] is True and hashlib.sha256(bytes.fromhex(secret)).hexdigest() == commitment


def test_verify_re_derives_every_draw_and_reports_a_tampered_one(factory, container, settle, settings):
    campaign = _campaign(factory)
    for user in ("a", "b", "c"):
        for _ in range(3):
            factory.play(campaign, user, "draw", {})
    factory.play(campaign, "a", "count", {"by": 1})
    settle()
    with container.read_session_factory() as session:
        report = verify(session, campaign)
    assert report.ok and report.checked == 10 and report.skipped == 0

    with container.session_factory() as session, session.begin():
        session.execute(update(ClaimRecord).where(ClaimRecord.user_id == "b", ClaimRecord.action == "draw")
                        .values(outcome={"value": 0.5, "seq": 0}))
    result = CliRunner().invoke(main, ["verify", str(campaign)], obj=settings)
    assert result.exit_code == 1
    assert "10 draws re-derived" in result.output and result.output.count("MISMATCH") == 3
