"""POST /admin/api/v1/campaigns/<id>/simulate: the forecast of a draft."""

from __future__ import annotations

from datetime import timedelta

from engine.clock import SystemClock, iso
from tests.support import ops_game
from tests.support.factories import flash_sale_definition
from tests.web.test_bad_input import error_of

ADMIN = "/admin/api/v1/campaigns"


def _draft(client, headers, definition) -> int:
    response = client.post(ADMIN, json=definition, headers=headers)
    assert response.status_code == 201, response.json
    return response.json["id"]


def test_a_flash_sale_forecast_sells_out_against_heavy_demand(client, admin_token):
    headers = {"Authorization": f"Bearer {admin_token('marketer')}"}
    campaign = _draft(client, headers, flash_sale_definition(stock=500, budget_fen=40_000, reward_cost_fen=100))
    response = client.post(f"{ADMIN}/{campaign}/simulate", headers=headers,
                           json={"players": 10_000, "participation_rate": 0.1, "plays_per_day": 1, "days": 3,
                                 "runs": 100, "seed": 7})
    assert response.status_code == 200, response.json
    forecast = response.json
    # 1,000 buyers a day against 500 units: sold out on day 1 in every run, costing exactly 500 x 100 fen.
    assert forecast["stockout_day"]["C50"] == {"share_of_runs": 1.0, "median_day": 1}
    assert forecast["cost_fen"]["p50"] == forecast["cost_fen"]["p99"] == 50_000
    assert forecast["cost_histogram"] == {"edges_fen": [50_000, 50_000], "runs": [forecast["runs"]]}
    assert forecast["over_budget_share"] == 1.0 and forecast["expected_wins"]["C50"] == 500


def test_a_light_demand_forecast_matches_its_expectation(client, admin_token):
    headers = {"Authorization": f"Bearer {admin_token('marketer')}"}
    campaign = _draft(client, headers, flash_sale_definition(stock=1_000_000, reward_cost_fen=10))
    forecast = client.post(f"{ADMIN}/{campaign}/simulate", headers=headers,
                           json={"players": 1000, "participation_rate": 0.5, "plays_per_day": 2, "days": 10,
                                 "runs": 400, "seed": 1}).json
    # 1000 x 0.5 x 2 units a day for 10 days = 10,000 units expected, 10 fen each.
    assert abs(forecast["expected_wins"]["C50"] - 10_000) < 150
    assert forecast["cost_fen"]["p50"] < forecast["cost_fen"]["p99"]
    histogram = forecast["cost_histogram"]
    assert sum(histogram["runs"]) == forecast["runs"] and len(histogram["edges_fen"]) == len(histogram["runs"]) + 1
    assert histogram["edges_fen"] == sorted(histogram["edges_fen"])
    assert histogram["edges_fen"][-1] == forecast["cost_fen"]["max"]
    assert forecast["stockout_day"]["C50"]["share_of_runs"] == 0.0


def test_a_seed_out_of_range_is_a_coded_422(client, admin_token):
    """The fuzzed case: numpy refuses a negative seed, which answered 500 before the schema stated the range."""
    headers = {"Authorization": f"Bearer {admin_token('marketer')}"}
    campaign = _draft(client, headers, flash_sale_definition())
    for seed in (-14677, 2**64):
        error = error_of(client.post(f"{ADMIN}/{campaign}/simulate", headers=headers,
                                     json={"seed": seed, "participation_rate": 0.52, "runs": 1178}),
                         422, "VALIDATION_ERROR")
        assert "seed" in error["details"]["fields"]
    largest = client.post(f"{ADMIN}/{campaign}/simulate", headers=headers, json={"seed": 2**63 - 1, "runs": 10})
    assert largest.status_code == 200, largest.json


def test_bad_behaviour_and_games_without_a_forecast_are_refused(client, admin_token):
    headers = {"Authorization": f"Bearer {admin_token('marketer')}"}
    campaign = _draft(client, headers, flash_sale_definition())
    error = error_of(client.post(f"{ADMIN}/{campaign}/simulate", headers=headers, json={"runs": 0}), 422,
                     "VALIDATION_ERROR")
    assert "runs" in error["details"]["fields"]
    assert ops_game.OpsGame.name == "test_ops"
    now = SystemClock().now()
    other = _draft(client, headers, {"name": "ops", "game": "test_ops", "starts_at": iso(now),
                                     "ends_at": iso(now + timedelta(days=1)), "config": {}})
    error_of(client.post(f"{ADMIN}/{other}/simulate", headers=headers, json={}), 422, "SIMULATION_NOT_SUPPORTED")
    viewer = {"Authorization": f"Bearer {admin_token('viewer')}"}
    error_of(client.post(f"{ADMIN}/{campaign}/simulate", headers=viewer, json={}), 403, "FORBIDDEN")
