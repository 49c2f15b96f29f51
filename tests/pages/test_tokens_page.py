"""API tokens on the admin page: an admin makes one, sees its secret once and revokes it; the name is text."""

from __future__ import annotations

import re

from campaigns.users import AdminUserService
from tests.support.browser import PASSWORD, XSS, expect, shot, sign_in


def test_an_admin_makes_a_token_sees_it_once_and_revokes_it(server, browser, users, container, client):
    with container.session_factory() as session:
        AdminUserService(session, clock=container.clock).create(email="admin@huodong.test", password=PASSWORD,
                                                                role="admin", actor="test")
    page = sign_in(browser, server, "admin@huodong.test")
    page.click("text=API tokens")
    page.fill("[data-testid=token-name]", XSS)
    page.select_option("select[name=role]", "marketer")
    page.click("[data-testid=make-token]")
    secret = page.locator("[data-testid=new-token] code")
    expect(secret).to_have_text(re.compile(r"^hda_"))
    token = secret.inner_text()
    assert client.get("/admin/api/v1/campaigns", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    page.reload()
    assert token not in page.content() and XSS in page.inner_text("[data-testid=tokens]")
    assert page.evaluate("window.__xss") is None
    shot(page, "api-tokens")
    page.locator("[data-action=revoke]").last.click()  # confirmed by the page's dialog handler
    expect(page.locator("[data-action=revoke]")).to_have_count(0)
    assert client.get("/admin/api/v1/campaigns", headers={"Authorization": f"Bearer {token}"}).status_code == 401
    assert not page.errors

    publisher = sign_in(browser, server, users["publisher"])
    assert publisher.locator("text=API tokens").count() == 0
    assert publisher.goto(f"{server}/admin/tokens").status == 403
