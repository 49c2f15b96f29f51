"""The fraud policy editor in a real browser: a form built from the policy's schema, saved through the API
(its errors beside their fields), audited; a viewer reads it without a save button."""

from __future__ import annotations

from sqlalchemy import select

from campaigns.models import AuditEntry, FraudPolicy
from tests.support.browser import XSS, expect, shot, sign_in


def test_a_publisher_writes_a_policy_in_the_form_and_a_viewer_reads_it(server, browser, users, db_session):
    page = sign_in(browser, server, users["publisher"])
    page.goto(f"{server}/admin/fraud")
    page.click("[data-testid=new-policy]")
    page.locator('[data-field="replay.mode"]').wait_for()
    page.fill("[data-testid=policy-name]", "strict")
    page.fill("[data-field=description]", XSS)
    page.select_option('[data-field="replay.mode"]', "shadow")
    page.fill('[data-field="lists.deny.users"]', "u-bad-1\nu-bad-2\n")
    page.fill('[data-field="risk.deny_at"]', "40")  # under challenge_at (50): refused beside the field
    page.click("[data-testid=save-policy]")
    expect(page.locator('[data-field="risk.challenge_at"] ~ .field-error')).to_contain_text("deny_at")
    assert db_session.scalars(select(FraudPolicy)).all() == []
    page.fill('[data-field="risk.deny_at"]', "150")
    page.click("[data-testid=save-policy]")
    page.wait_for_url(f"{server}/admin/fraud/policies/strict")
    expect(page.locator('[data-field="replay.mode"]')).to_have_value("shadow")
    shot(page, "fraud-policy")
    assert not page.errors

    db_session.rollback()
    saved = db_session.get(FraudPolicy, "strict").document
    assert saved["replay"]["mode"] == "shadow" and saved["risk"]["deny_at"] == 150
    assert saved["lists"]["deny"]["users"] == ["u-bad-1", "u-bad-2"] and saved["description"] == XSS
    entry = db_session.scalars(select(AuditEntry).where(AuditEntry.action == "fraud_policy.save")).one()
    assert entry.actor.endswith(users["publisher"]) and entry.details["after"]["risk"]["deny_at"] == 150

    viewer = sign_in(browser, server, users["viewer"])
    viewer.goto(f"{server}/admin/fraud")
    assert viewer.locator("[data-testid=new-policy]").count() == 0
    assert XSS in viewer.inner_text("[data-testid=policies]") and viewer.evaluate("window.__xss") is None
    viewer.click("text=strict")
    expect(viewer.locator('[data-field="risk.deny_at"]')).to_have_value("150")
    assert viewer.locator("[data-testid=save-policy]").count() == 0
