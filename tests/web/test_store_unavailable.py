"""While Redis is away a play answers 503 SERVICE_UNAVAILABLE (never a 500); the same request with the same
Idempotency-Key, once Redis is back, gets the play's one answer."""

from __future__ import annotations

import pytest

from tests.support.chaos import OwnRedis
from tests.support.client import mini_program_app
from tests.support.factories import Factory, flash_sale_definition


@pytest.fixture
def own_redis(tmp_path):
    server = OwnRedis(tmp_path / "redis")
    server.start()
    yield server
    server.stop()


def test_a_play_while_redis_is_down_is_503_and_the_retry_plays_once(own_redis, settings, tmp_path):
    app = mini_program_app(settings.replace(**own_redis.settings, redis_namespace=f"{settings.redis_namespace}u",
                                            instance_path=str(tmp_path / "instance")))
    container = app.extensions["huodong.container"]
    client = app.test_client()
    campaign_id = Factory(container, client).campaign(flash_sale_definition(stock=5))
    token = client.post("/api/v1/auth/dev", json={"user_id": "waiting", "registered_days_ago": 30}).json["token"]
    headers = {"Authorization": f"Bearer {token}", "Idempotency-Key": "only-once"}
    body = {"sku": "C50", "quantity": 1}
    client.post(f"/api/v1/campaigns/{campaign_id}", headers=headers)  # warm the snapshot cache

    own_redis.kill()
    down = client.post(f"/api/v1/campaigns/{campaign_id}/actions/buy", json=body, headers=headers)
    assert down.status_code == 503 and down.headers["Retry-After"] == "1"
    assert down.json["error"]["code"] == "SERVICE_UNAVAILABLE"

    own_redis.start()
    first = client.post(f"/api/v1/campaigns/{campaign_id}/actions/buy", json=body, headers=headers)
    again = client.post(f"/api/v1/campaigns/{campaign_id}/actions/buy", json=body, headers=headers)
    assert first.status_code == again.status_code == 200 and first.json == again.json
    assert container.live_state.stats(campaign_id).stock["sku:C50"]["taken"] == 1
