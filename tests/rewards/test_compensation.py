"""Compensation grants: an admin makes good, with a reason in the audit log, settled like any grant."""

from __future__ import annotations

from sqlalchemy import select

from campaigns.models import AuditEntry, Grant, GrantStatus
from rewards.points import balance
from tests.web.test_bad_input import error_of

URL = "/admin/api/v1/grants/compensations"


def test_a_compensation_is_paid_once_and_audited_with_its_reason(client, admin_token, factory, settle, db_session,
                                                                 container):
    campaign = factory.campaign(stock=1)
    body = {"campaign_id": campaign, "user_id": "unlucky", "reason": "prize shown but lost in a crash",
            "reward": {"type": "points", "amount": 77, "cost_fen": 77}}
    response = client.post(URL, json=body, headers={"Authorization": f"Bearer {admin_token('marketer')}"})
    assert response.status_code == 201, response.json
    grant_id = response.json["id"]
    settle()
    db_session.rollback()
    grant = db_session.get(Grant, grant_id)
    assert grant.status == GrantStatus.ISSUED and grant.user_id == "unlucky" and grant.cost_fen == 77
    assert balance(db_session, "unlucky", container.clock.now()) == 77
    entry = db_session.scalar(select(AuditEntry).where(AuditEntry.action == "grant.compensation"))
    assert entry.subject_id == grant_id and entry.details["reason"] == "prize shown but lost in a crash"


def test_a_bad_compensation_is_refused_and_writes_nothing(client, admin_token, factory, db_session):
    campaign = factory.campaign(stock=1)
    marketer = {"Authorization": f"Bearer {admin_token('marketer')}"}
    good = {"campaign_id": campaign, "user_id": "u", "reason": "because",
            "reward": {"type": "points", "amount": 1, "cost_fen": 1}}
    error_of(client.post(URL, json={**good, "campaign_id": 999_999}, headers=marketer), 404, "NOT_FOUND")
    error_of(client.post(URL, json={**good, "reward": {"type": "gold", "cost_fen": 1}}, headers=marketer), 422,
             "VALIDATION_ERROR")
    error_of(client.post(URL, json={**good, "reward": {"type": "points", "amount": 0, "cost_fen": 1}},
                         headers=marketer), 422, "VALIDATION_ERROR")
    error_of(client.post(URL, json={**good, "reason": ""}, headers=marketer), 422, "VALIDATION_ERROR")
    error_of(client.post(URL, json=good, headers={"Authorization": f"Bearer {admin_token('viewer')}"}), 403,
             "FORBIDDEN")
    assert db_session.scalars(select(Grant)).all() == []
