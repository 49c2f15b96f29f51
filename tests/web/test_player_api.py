"""The player API end to end: login, see a campaign, buy, settle, see the reward."""

from __future__ import annotations

from sqlalchemy import func, select

from campaigns.models import Grant, PointsEntry


def test_a_coupon_grab_ends_as_points_in_the_players_ledger(client, factory, settle, db_session):
    campaign_id = factory.campaign(stock=5)
    headers = factory.headers("alice")

    response = client.post(f"/api/v1/campaigns/{campaign_id}/actions/buy", json={"sku": "C50", "quantity": 1},
                           headers=headers)

    assert response.status_code == 200, response.json
    assert "Set-Cookie" not in response.headers  # bearer tokens, no cookie session
    body = response.json
    assert body["outcome"]["order"]["status"] == "confirmed"
    assert [g["status"] for g in body["grants"]] == ["pending"]
    assert body["state"]["remaining"] == {"sku:C50": 4}
    settle()
    grants = client.get("/api/v1/me/grants", headers=headers).json
    assert [(g["id"], g["status"]) for g in grants] == [(body["grants"][0]["id"], "issued")]
    assert client.get("/api/v1/me/points", headers=headers).json["balance"] == 50
    orders = client.get("/api/v1/me/orders", headers=headers).json
    assert [o["status"] for o in orders] == ["confirmed"]
    assert db_session.scalar(select(func.count()).select_from(PointsEntry)) == 1
    assert db_session.scalar(select(Grant.external_id)) == grants[0]["external_id"]


def test_the_campaign_view_shows_rules_stock_and_the_players_own_purchases(client, factory):
    campaign_id = factory.campaign(stock=3, per_user_limit=2)
    factory.play(campaign_id, "bob")
    view = client.get(f"/api/v1/campaigns/{campaign_id}", headers=factory.headers("bob")).json
    assert view["status"] == "live"
    assert view["rules"]["skus"][0]["sku"] == "C50"
    assert "cost_fen" not in view["rules"]["skus"][0]["reward"]
    assert view["me"] == {"bought": 1, "skus": {"C50": {"stock_left": 2, "bought": 1}}}


def test_live_campaigns_are_listed_and_drafts_are_not(client, factory, container):
    live_id = factory.campaign()
    with container.session_factory() as session:
        from tests.support.factories import flash_sale_definition

        container.campaign_service(session).create(flash_sale_definition(), actor="test")
    listed = client.get("/api/v1/campaigns", headers=factory.headers("carol")).json
    assert [c["id"] for c in listed] == [live_id]


def test_a_priced_sku_is_held_until_paid_and_the_player_can_cancel_it(client, factory, settle):
    campaign_id = factory.campaign(stock=1, price_fen=990)
    held = client.post(f"/api/v1/campaigns/{campaign_id}/actions/buy", json={"sku": "C50"},
                       headers=factory.headers("dave"))
    assert held.status_code == 200
    order = held.json["outcome"]["order"]
    assert order["status"] == "held" and order["amount_fen"] == 990 and "pay_before" in order
    assert held.json["grants"] == []

    sold_out = client.post(f"/api/v1/campaigns/{campaign_id}/actions/buy", json={"sku": "C50"},
                           headers=factory.headers("erin"))
    assert sold_out.status_code == 409 and sold_out.json["error"]["code"] == "SOLD_OUT"

    cancelled = client.post(f"/api/v1/campaigns/{campaign_id}/actions/cancel", json={"order_id": order["id"]},
                            headers=factory.headers("dave"))
    assert cancelled.status_code == 200 and cancelled.json["outcome"]["order"]["status"] == "cancelled"

    again = client.post(f"/api/v1/campaigns/{campaign_id}/actions/buy", json={"sku": "C50"},
                        headers=factory.headers("erin"))
    assert again.status_code == 200
    settle()
    orders = client.get("/api/v1/me/orders", headers=factory.headers("dave")).json
    assert [o["status"] for o in orders] == ["cancelled"]


def test_dev_login_does_not_exist_unless_switched_on(settings):
    from web import create_app

    closed = create_app(settings.replace(dev_login=False)).test_client()
    response = closed.post("/api/v1/auth/dev", json={"user_id": "mallory"})
    assert response.status_code == 404 and response.json["error"]["code"] == "NOT_FOUND"
