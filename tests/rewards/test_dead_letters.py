"""A grant the provider will not take is retried, then left as a dead letter with its last error."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from campaigns.models import Grant, GrantStatus
from campaigns.tokens import AdminTokenService

from ..support import unreliable_adapters  # noqa: F401  (registers points_down and points_refused)
from ..support.factories import flash_sale_definition


@pytest.mark.parametrize(("reward_type", "attempts", "error"), [
    ("points_down", 4, "provider timed out"),  # the first try and the three retries of the test settings
    ("points_refused", 1, "payee not found"),  # refused for good: no retry
])
def test_a_grant_the_provider_never_accepts_ends_dead_with_its_error(
        reward_type, attempts, error, factory, settle, db_session):
    definition = flash_sale_definition(stock=3)
    definition["config"]["skus"][0]["reward"] = {"type": reward_type, "amount": 5, "cost_fen": 5}
    campaign_id = factory.campaign(definition)
    factory.play(campaign_id, "unlucky")

    settle()

    grant = db_session.scalar(select(Grant))
    assert grant.status == GrantStatus.DEAD
    assert grant.attempts == attempts
    assert error in grant.last_error


@pytest.fixture
def outage(settings):
    flag = Path(settings.instance_path) / "outage"
    flag.parent.mkdir(parents=True, exist_ok=True)
    flag.touch()
    yield flag
    flag.unlink(missing_ok=True)


@pytest.fixture
def admin(container):
    with container.session_factory() as session:
        _row, token = AdminTokenService(session, clock=container.clock).create(role="marketer", name="ops",
                                                                            actor="test")
    return {"Authorization": f"Bearer {token}"}


def test_a_person_retries_a_dead_letter_once_the_provider_is_back(
        outage, admin, client, factory, settle, db_session):
    definition = flash_sale_definition(stock=3)
    definition["config"]["skus"][0]["reward"] = {"type": "points_outage", "amount": 5, "cost_fen": 5}
    campaign_id = factory.campaign(definition)
    factory.play(campaign_id, "patient")
    settle()
    dead = client.get("/admin/api/v1/grants?status=dead", headers=admin).json
    assert [(g["user_id"], g["attempts"], g["last_error"]) for g in dead] == [
        ("patient", 4, "RetryableIssueError('provider unavailable')")]

    outage.unlink()  # the provider is back
    retried = client.post(f"/admin/api/v1/grants/{dead[0]['id']}/retry", headers=admin)
    assert retried.status_code == 200 and retried.json["status"] == "pending"
    settle()

    db_session.rollback()
    grant = db_session.get(Grant, dead[0]["id"])
    assert (grant.status, grant.attempts) == (GrantStatus.ISSUED, 5)
    again = client.post(f"/admin/api/v1/grants/{grant.id}/retry", headers=admin)
    assert again.status_code == 409 and again.json["error"]["code"] == "GRANT_ALREADY_ISSUED"
    assert client.get("/admin/api/v1/grants?status=dead", headers=admin).json == []


def test_a_grant_whose_job_is_still_queued_is_not_retried_twice(admin, client, factory, settle, db_session):
    campaign_id = factory.campaign(stock=3)
    factory.play(campaign_id, "queued")
    settle(worker=False)  # the job waits in the queue
    grant_id = db_session.scalar(select(Grant.id))
    busy = client.post(f"/admin/api/v1/grants/{grant_id}/retry", headers=admin)
    assert busy.status_code == 409 and busy.json["error"]["code"] == "GRANT_BUSY"
    unknown = client.post(f"/admin/api/v1/grants/G{'0' * 26}/retry", headers=admin)
    assert unknown.status_code == 404
