"""The admin JSON API: a campaign's whole life through HTTP, behind role-checked tokens."""

from __future__ import annotations

import pytest

from campaigns.tokens import AdminTokenService

from ..support.factories import flash_sale_definition


@pytest.fixture
def admin_headers(container):
    def make(role: str = "marketer") -> dict[str, str]:
        with container.session_factory() as session:
            _row, token = AdminTokenService(session, clock=container.clock).create(role=role, name=role, actor="test")
        return {"Authorization": f"Bearer {token}"}

    return make


def test_a_publisher_creates_publishes_edits_pauses_resumes_and_ends_a_campaign(client, admin_headers, factory):
    headers = admin_headers("publisher")
    definition = flash_sale_definition(stock=20)
    created = client.post("/admin/api/v1/campaigns", json=definition, headers=headers)
    assert created.status_code == 201, created.json
    campaign_id = created.json["id"]
    assert created.json["status"] == "draft" and created.json["live"] is None

    published = client.post(f"/admin/api/v1/campaigns/{campaign_id}/publish", headers=headers)
    assert published.status_code == 200 and published.json["version"] == 1
    factory.play(campaign_id, "buyer")

    definition["config"]["skus"][0]["stock"] = 30
    edited = client.put(f"/admin/api/v1/campaigns/{campaign_id}", json=definition, headers=headers)
    assert edited.status_code == 200
    assert edited.json["live"]["stock"]["sku:C50"] == {"total": 20, "taken": 1, "left": 19}  # draft not live yet
    assert client.post(f"/admin/api/v1/campaigns/{campaign_id}/publish", headers=headers).json["version"] == 2

    read = client.get(f"/admin/api/v1/campaigns/{campaign_id}", headers=headers).json
    assert read["live_version"] == 2
    assert read["live"]["stock"]["sku:C50"] == {"total": 30, "taken": 1, "left": 29}
    assert read["live"]["spent_fen"] == 100

    for action, status in (("pause", "paused"), ("resume", "live"), ("end", "ended")):
        response = client.post(f"/admin/api/v1/campaigns/{campaign_id}/{action}", headers=headers)
        assert response.status_code == 200 and response.json["status"] == status
        assert response.json["live"]["status"] == status

    versions = client.get(f"/admin/api/v1/campaigns/{campaign_id}/versions", headers=headers).json
    assert [v["version"] for v in versions] == [1, 2]
    assert {"op": "replace", "path": "/config/skus/0/stock", "value": 30} in versions[1]["diff"]
    assert [c["id"] for c in client.get("/admin/api/v1/campaigns", headers=headers).json] == [campaign_id]


def test_a_viewer_may_read_but_not_change(client, admin_headers, factory):
    campaign_id = factory.campaign()
    viewer = admin_headers("viewer")
    assert client.get(f"/admin/api/v1/campaigns/{campaign_id}", headers=viewer).status_code == 200
    refused = client.post(f"/admin/api/v1/campaigns/{campaign_id}/pause", headers=viewer)
    assert refused.status_code == 403 and refused.json["error"]["code"] == "FORBIDDEN"


def test_player_tokens_and_unknown_tokens_do_not_open_the_admin_api(client, factory):
    player = {"Authorization": f"Bearer {factory.token('p')}"}
    for headers in (player, {"Authorization": "Bearer hda_nope"}, {}):
        response = client.get("/admin/api/v1/campaigns", headers=headers)
        assert response.status_code == 401 and response.json["error"]["code"] == "UNAUTHORIZED"


def test_the_create_token_command_prints_a_working_token(app, client):
    from web.cli import main

    runner = app.test_cli_runner()
    result = runner.invoke(main, ["admin", "create-token", "--role", "viewer"], obj=app.extensions[
        "huodong.container"].settings)
    assert result.exit_code == 0, result.output
    token = result.output.strip()
    assert client.get("/admin/api/v1/campaigns", headers={"Authorization": f"Bearer {token}"}).status_code == 200
