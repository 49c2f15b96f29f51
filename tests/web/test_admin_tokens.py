"""Admin API tokens from the API: an admin makes one (its secret once), scripts use it with its role, a revoked
one is refused at once; others may not manage tokens; every change is audited."""

from __future__ import annotations

from sqlalchemy import select

from campaigns.models import AdminToken, AuditEntry
from tests.web.test_bad_input import error_of


def test_a_token_is_made_used_and_revoked(client, admin_token, db_session):
    admin = {"Authorization": f"Bearer {admin_token('admin')}"}
    made = client.post("/admin/api/v1/tokens", json={"name": "nightly export", "role": "viewer"}, headers=admin)
    assert made.status_code == 201, made.json
    secret = made.json["token"]
    assert secret.startswith("hda_") and made.json["role"] == "viewer" and made.json["revoked_at"] is None
    script = {"Authorization": f"Bearer {secret}"}
    assert client.get("/admin/api/v1/campaigns", headers=script).status_code == 200
    error_of(client.post("/admin/api/v1/campaigns", json={}, headers=script), 403, "FORBIDDEN")  # a viewer's

    listed = client.get("/admin/api/v1/tokens", headers=admin).json
    assert [t["name"] for t in listed][-1] == "nightly export" and all("token" not in t for t in listed)
    db_session.rollback()
    assert secret not in {t.token_hash for t in db_session.scalars(select(AdminToken))}  # only its hash is kept

    revoked = client.post(f"/admin/api/v1/tokens/{made.json['id']}/revoke", headers=admin)
    assert revoked.status_code == 200 and revoked.json["revoked_at"] is not None
    error_of(client.get("/admin/api/v1/campaigns", headers=script), 401, "UNAUTHORIZED")
    again = client.post(f"/admin/api/v1/tokens/{made.json['id']}/revoke", headers=admin)
    assert again.json["revoked_at"] == revoked.json["revoked_at"]  # the first revocation stands
    db_session.rollback()
    actions = [e.action for e in db_session.scalars(select(AuditEntry).where(
        AuditEntry.subject_type == "admin_token", AuditEntry.subject_id == str(made.json["id"])))]
    assert actions == ["admin_token.create", "admin_token.revoke"]


def test_only_admins_manage_tokens_and_bad_requests_are_refused(client, admin_token):
    publisher = {"Authorization": f"Bearer {admin_token('publisher')}"}
    error_of(client.get("/admin/api/v1/tokens", headers=publisher), 403, "FORBIDDEN")
    error_of(client.post("/admin/api/v1/tokens", json={"name": "x", "role": "admin"}, headers=publisher), 403,
             "FORBIDDEN")
    admin = {"Authorization": f"Bearer {admin_token('admin')}"}
    error_of(client.post("/admin/api/v1/tokens", json={"name": "x", "role": "root"}, headers=admin), 422,
             "VALIDATION_ERROR")
    error_of(client.post("/admin/api/v1/tokens", json={"name": "", "role": "viewer"}, headers=admin), 422,
             "VALIDATION_ERROR")
    error_of(client.post("/admin/api/v1/tokens/99999/revoke", headers=admin), 404, "NOT_FOUND")
    error_of(client.post("/admin/api/v1/tokens/99999999999/revoke", headers=admin), 404, "NOT_FOUND")
