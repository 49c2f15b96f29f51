"""Signing in to the admin page: hashed passwords, lockout, CSRF on every form and API call from the page,
cookie flags, the Content-Security-Policy, roles, and a complete zh-CN catalogue."""

from __future__ import annotations

import io
import re
from pathlib import Path

from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po
from sqlalchemy import select

from campaigns.models import AdminUser, AuditEntry
from campaigns.users import MAX_FAILED_LOGINS
from tests.support.browser import PASSWORD
from tests.web.test_bad_input import error_of
from web import create_app

CATALOGUE = Path(__file__).resolve().parents[2] / "web" / "translations"


def csrf_of(client, path: str = "/admin/login") -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', client.get(path).get_data(as_text=True)).group(1)


def sign_in(client, email: str, password: str = PASSWORD, *, csrf: str | None = None):
    return client.post("/admin/login", data={"email": email, "password": password,
                                             "csrf_token": csrf if csrf is not None else csrf_of(client)})


def test_a_password_is_stored_hashed_and_signs_in_once_right(user, client, db_session):
    email = user()
    stored = db_session.scalars(select(AdminUser)).one()
    assert stored.password_hash.startswith("scrypt:") and PASSWORD not in stored.password_hash
    assert sign_in(client, email, "wrong password!").status_code == 401
    signed = sign_in(client, email)
    assert signed.status_code == 302 and signed.headers["Location"].endswith("/admin/")
    assert client.get("/admin/").status_code == 200


def test_the_session_cookie_is_http_only_same_site_lax_and_secure_when_asked(user, client, settings, container):
    email = user()
    cookie = sign_in(client, email).headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Path=/admin" in cookie and "Secure" not in cookie
    secure = create_app(settings.__class__(**{**settings.__dict__, "secure_cookies": True}))
    secure.extensions["huodong.container"] = container
    with secure.test_client() as https:
        assert "Secure" in sign_in(https, email).headers["Set-Cookie"]


def test_repeated_wrong_passwords_lock_the_account_even_against_the_right_one(user, client, db_session):
    email = user()
    answers = [sign_in(client, email, f"guess {i}").status_code for i in range(MAX_FAILED_LOGINS)]
    assert answers == [401] * MAX_FAILED_LOGINS
    locked = sign_in(client, email)
    assert locked.status_code == 429 and 'data-testid="login-error"' in locked.get_data(as_text=True)
    db_session.rollback()
    assert db_session.scalars(select(AuditEntry.action)).all() == ["admin_user.create", "admin_user.locked"]


def test_an_unknown_email_answers_like_a_wrong_password(user, client):
    user()
    assert sign_in(client, "nobody@huodong.test").status_code == 401


def test_forms_and_page_api_calls_without_the_sessions_csrf_token_are_refused(user, client, factory):
    email = user()
    assert sign_in(client, email, csrf="forged").status_code == 403
    assert sign_in(client, email).status_code == 302
    campaign = factory.campaign()
    error_of(client.post(f"/admin/api/v1/campaigns/{campaign}/pause"), 403, "CSRF_FAILED")
    error_of(client.post(f"/admin/api/v1/campaigns/{campaign}/pause", headers={"X-CSRF-Token": "forged"}), 403,
             "CSRF_FAILED")
    token = csrf_of(client, "/admin/")
    paused = client.post(f"/admin/api/v1/campaigns/{campaign}/pause", headers={"X-CSRF-Token": token})
    assert paused.status_code == 200 and paused.json["status"] == "paused"
    assert client.post("/admin/logout", data={"csrf_token": "forged"}).status_code == 403
    assert client.post("/admin/logout", data={"csrf_token": token}).status_code == 302
    error_of(client.get("/admin/api/v1/campaigns"), 401, "UNAUTHORIZED")


def test_roles_rank_viewer_marketer_publisher_admin(user, app, factory):
    campaign = factory.campaign()
    for role, may_publish in (("viewer", False), ("marketer", False), ("publisher", True), ("admin", True)):
        client = app.test_client()  # a browser of their own
        sign_in(client, user(role, f"{role}@huodong.test"))
        token = csrf_of(client, "/admin/")
        page = client.get(f"/admin/campaigns/{campaign}").get_data(as_text=True)
        action = "pause" if 'data-testid="pause"' in page else "resume"
        assert (f'data-testid="{action}"' in page) is may_publish, role
        answer = client.post(f"/admin/api/v1/campaigns/{campaign}/{action}", headers={"X-CSRF-Token": token})
        assert answer.status_code == (200 if may_publish else 403), (role, answer.json)


def test_every_page_sends_a_strict_content_security_policy(user, client):
    policy = client.get("/admin/login").headers["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy and "frame-ancestors 'none'" in policy
    sign_in(client, user())
    page = client.get("/admin/")
    assert page.headers["Content-Security-Policy"] == policy and page.headers["X-Frame-Options"] == "DENY"
    assert "<script>" not in page.get_data(as_text=True)  # no inline script: only JSON data blocks and files


def test_user_text_is_escaped_in_pages(user, client, factory):
    sign_in(client, user())
    campaign = factory.campaign()
    client.put(f"/admin/api/v1/campaigns/{campaign}", headers={"X-CSRF-Token": csrf_of(client, "/admin/")},
               json={**_draft(client, campaign), "name": "</script><script>alert(1)</script>"})
    for path in ("/admin/", f"/admin/campaigns/{campaign}", f"/admin/campaigns/{campaign}/edit"):
        text = client.get(path).get_data(as_text=True)
        assert "<script>alert(1)</script>" not in text, path


def _draft(client, campaign: int) -> dict:
    return client.get(f"/admin/api/v1/campaigns/{campaign}").json["draft"]


def test_the_zh_cn_catalogue_is_complete_and_compiled():
    with open(CATALOGUE / "messages.pot", "rb") as f:
        template = read_po(f)
    with open(CATALOGUE / "zh_Hans_CN" / "LC_MESSAGES" / "messages.po", "rb") as f:
        chinese = read_po(f)
    with open(CATALOGUE / "zh_Hans_CN" / "LC_MESSAGES" / "messages.mo", "rb") as f:
        compiled = read_mo(io.BytesIO(f.read()))
    wanted = {m.id for m in template if m.id}
    assert wanted <= {m.id for m in chinese if m.id and m.string}, wanted - {m.id for m in chinese if m.string}
    assert {m.id: m.string for m in chinese if m.id} == {m.id: m.string for m in compiled if m.id}


def test_the_page_follows_accept_language(client):
    assert "登录" in client.get("/admin/login", headers={"Accept-Language": "zh-CN,zh;q=0.9"}).get_data(as_text=True)
    assert "Sign in" in client.get("/admin/login", headers={"Accept-Language": "en-US"}).get_data(as_text=True)


def test_pending_changes_are_the_diff_from_the_latest_version(user, client, factory, admin_token):
    campaign = factory.campaign()
    headers = {"Authorization": f"Bearer {admin_token('marketer')}"}
    assert client.get(f"/admin/api/v1/campaigns/{campaign}/changes", headers=headers).json == []
    draft = client.get(f"/admin/api/v1/campaigns/{campaign}", headers=headers).json["draft"]
    client.put(f"/admin/api/v1/campaigns/{campaign}", json={**draft, "name": "Renamed"}, headers=headers)
    assert client.get(f"/admin/api/v1/campaigns/{campaign}/changes", headers=headers).json == [
        {"op": "replace", "path": "/name", "value": "Renamed"}]


def test_an_audience_rule_is_checked_with_its_positions(client, admin_token):
    headers = {"Authorization": f"Bearer {admin_token('viewer')}"}
    checked = client.post("/admin/api/v1/audience/check", json={"expression": "user.tier in ["}, headers=headers)
    assert checked.status_code == 200 and checked.json["ok"] is False
    assert checked.json["problems"][0]["line"] == 1 and checked.json["problems"][0]["column"] >= 1
    fine = client.post("/admin/api/v1/audience/check", json={"expression": "user.tier == 'gold'"}, headers=headers)
    assert fine.json == {"ok": True, "problems": []}
    error_of(client.post("/admin/api/v1/audience/check", json={"expr": "x"}, headers=headers), 422,
             "VALIDATION_ERROR")


def test_any_two_versions_compare(client, factory, admin_token):
    campaign = factory.campaign()
    headers = {"Authorization": f"Bearer {admin_token('publisher')}"}
    draft = client.get(f"/admin/api/v1/campaigns/{campaign}", headers=headers).json["draft"]
    for name in ("Second", "Third"):
        client.put(f"/admin/api/v1/campaigns/{campaign}", json={**draft, "name": name}, headers=headers)
        assert client.post(f"/admin/api/v1/campaigns/{campaign}/publish", headers=headers).status_code == 200
    diff = client.get(f"/admin/api/v1/campaigns/{campaign}/versions/diff?from=1&to=3", headers=headers)
    assert diff.json == [{"op": "replace", "path": "/name", "value": "Third"}]
    error_of(client.get(f"/admin/api/v1/campaigns/{campaign}/versions/diff?from=1&to=9", headers=headers), 404,
             "NOT_FOUND")
    error_of(client.get(f"/admin/api/v1/campaigns/{campaign}/versions/diff?from=x&to=2", headers=headers), 422,
             "VALIDATION_ERROR")


def test_admins_add_users_and_change_roles_and_no_one_else_may(client, admin_token, db_session):
    admin = {"Authorization": f"Bearer {admin_token('admin')}"}
    publisher = {"Authorization": f"Bearer {admin_token('publisher')}"}
    body = {"email": "New@Huodong.test", "password": PASSWORD, "role": "viewer", "name": "New"}
    error_of(client.post("/admin/api/v1/users", json=body, headers=publisher), 403, "FORBIDDEN")
    created = client.post("/admin/api/v1/users", json=body, headers=admin)
    assert created.status_code == 201 and created.json["email"] == "new@huodong.test"
    assert "password" not in created.json and "password_hash" not in created.json
    error_of(client.post("/admin/api/v1/users", json=body, headers=admin), 409, "EMAIL_TAKEN")
    error_of(client.post("/admin/api/v1/users", json={**body, "email": "b@h.test", "password": "short"},
                         headers=admin), 422, "VALIDATION_ERROR")
    error_of(client.post("/admin/api/v1/users", json={**body, "email": "c@h.test", "role": "root"}, headers=admin),
             422, "VALIDATION_ERROR")
    user_id = created.json["id"]
    changed = client.put(f"/admin/api/v1/users/{user_id}/role", json={"role": "publisher"}, headers=admin)
    assert changed.json["role"] == "publisher"
    error_of(client.put("/admin/api/v1/users/999999/role", json={"role": "viewer"}, headers=admin), 404,
             "NOT_FOUND")
    db_session.rollback()
    entry = db_session.scalars(select(AuditEntry).where(AuditEntry.action == "admin_user.role")).one()
    assert entry.details["before"] == {"role": "viewer"} and entry.details["after"] == {"role": "publisher"}
    assert [u["email"] for u in client.get("/admin/api/v1/users", headers=admin).json] == ["new@huodong.test"]


def test_only_admins_see_the_users_page(user, app):
    for role, sees in (("publisher", False), ("admin", True)):
        browser = app.test_client()
        sign_in(browser, user(role, f"{role}@huodong.test"))
        assert ('href="/admin/users"' in browser.get("/admin/").get_data(as_text=True)) is sees
        assert browser.get("/admin/users").status_code == (200 if sees else 403)


def test_a_page_for_a_campaign_that_cannot_exist_is_404(user, client):
    sign_in(client, user())
    for path in ("/admin/campaigns/99999999999999999999", "/admin/campaigns/99999999999/edit",
                 "/admin/campaigns/2147483647/review"):
        assert client.get(path).status_code == 404, path
