"""The editor's API: every game's form schema (built from its config schema, rewards marked for their own
forms) and a draft checked without saving (the errors by field, or the rules players would see)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from campaigns.models import Campaign
from engine.clock import iso
from engine.game import games
from tests.web.test_bad_input import error_of


@pytest.fixture
def headers(admin_token):
    return {"Authorization": f"Bearer {admin_token('viewer')}"}


def demo(game: str, container) -> dict:
    now = container.clock.now()
    return games.get(game)().demo_definitions(iso(now), iso(now + timedelta(days=7)))[0]


def reward_paths(schema: dict, path: str = "") -> set[str]:
    found = {path} if schema.get("x-reward") else set()
    for name, child in (schema.get("properties") or {}).items():
        found |= reward_paths(child, f"{path}.{name}".lstrip("."))
    if "items" in schema:
        found |= reward_paths(schema["items"], f"{path}.*")
    return found


@pytest.mark.parametrize("game", ["cards", "checkin", "flash_sale", "lottery", "referral"])
def test_every_game_has_a_form_with_each_field_of_its_config(client, container, headers, game):
    form = client.get(f"/admin/api/v1/forms/campaign/{game}", headers=headers)
    assert form.status_code == 200, form.json
    schema = form.json["schema"]
    assert schema["properties"]["game"]["enum"] == [game]
    assert schema["properties"]["fraud"]["properties"]["policy"]["enum"] == ["default"]
    config = schema["properties"]["config"]
    assert set(demo(game, container)["config"]) <= set(config["properties"])
    assert reward_paths(config), "each game pays rewards through fields its form renders as rewards"
    rewards = form.json["rewards"]
    assert "points" in rewards and "points_debit" not in rewards  # only what a marketer may configure
    assert all("cost_fen" in r["required"] for r in rewards.values())


def test_the_lottery_form_marks_each_prize_reward_and_lists_saved_policies(client, headers, admin_token):
    admin = {"Authorization": f"Bearer {admin_token('admin')}"}
    assert client.put("/admin/api/v1/fraud-policies/strict", json={"description": "tight"},
                      headers=admin).status_code == 200
    schema = client.get("/admin/api/v1/forms/campaign/lottery", headers=headers).json["schema"]
    assert {"config.prizes.*.reward", "config.tasks.*.reward"} <= reward_paths(schema)
    assert schema["properties"]["fraud"]["properties"]["policy"]["enum"] == ["default", "strict"]
    assert schema["properties"]["variants"]["items"]["properties"]["config"]["x-overrides"] == "config"


def test_the_fraud_policy_form(client, headers):
    schema = client.get("/admin/api/v1/forms/fraud-policy", headers=headers).json["schema"]
    assert schema["properties"]["replay"]["properties"]["mode"]["enum"] == ["enforce", "shadow", "off"]
    assert schema["additionalProperties"] is False


def test_forms_refuse_unknown_games_and_strangers(client, headers):
    error_of(client.get("/admin/api/v1/forms/campaign/poker", headers=headers), 404, "NOT_FOUND")
    error_of(client.get("/admin/api/v1/forms/campaign/lottery"), 401, "UNAUTHORIZED")


def test_a_draft_is_checked_without_saving_it(client, container, headers, db_session):
    before = db_session.scalar(select(func.count()).select_from(Campaign))
    lottery = demo("lottery", container)
    checked = client.post("/admin/api/v1/campaigns/check", json=lottery, headers=headers)
    assert checked.status_code == 200, checked.json
    rules = checked.json["rules"]
    assert [p["id"] for p in rules["prizes"]] == [p["id"] for p in lottery["config"]["prizes"]]
    assert sum(p["probability"] for p in rules["prizes"]) + rules["miss_probability"] == pytest.approx(1)
    assert checked.json["definition"]["rollout_percent"] == 100  # the canonical form, defaults in

    broken = {**lottery, "config": {**lottery["config"], "prizes": [
        {**lottery["config"]["prizes"][0], "weight": -1}, *lottery["config"]["prizes"][1:]]}}
    error = error_of(client.post("/admin/api/v1/campaigns/check", json=broken, headers=headers), 422,
                     "VALIDATION_ERROR")
    assert "weight" in error["details"]["fields"]["config"]["prizes"]["0"]
    error_of(client.post("/admin/api/v1/campaigns/check", json=[1], headers=headers), 400, "MALFORMED_REQUEST")
    error_of(client.post("/admin/api/v1/campaigns/check", data="{", headers={**headers,
             "Content-Type": "application/json"}), 400, "MALFORMED_REQUEST")
    db_session.rollback()
    assert db_session.scalar(select(func.count()).select_from(Campaign)) == before
