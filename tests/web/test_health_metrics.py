"""/healthz checks Redis and SQL for real; /metrics exposes plays, claim latency and outbox lag."""

from __future__ import annotations

import pytest
from prometheus_client.parser import text_string_to_metric_families

from engine.errors import SoldOutError
from web import create_app


def _samples(client) -> dict[tuple[str, tuple], float]:
    text = client.get("/metrics").data.decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def test_healthz_is_ok_when_redis_and_sql_answer(client, settings):
    response = client.get("/healthz")
    assert response.status_code == 200
    queue = {"queue": "ok"} if settings.queue_redis_url else {}  # the cluster pass: RQ's Redis is another server
    assert response.json == {"status": "ok", "checks": {"redis": "ok", **queue, "sql": "ok"}}


def test_healthz_is_503_when_redis_is_unreachable(settings, tmp_path):
    broken = create_app(settings.replace(redis_url=f"unix://{tmp_path}/nothing.sock", redis_cluster="0",
                                         queue_redis_url=""))
    response = broken.test_client().get("/healthz")
    assert response.status_code == 503
    assert response.json["checks"]["redis"].startswith("error")
    assert response.json["checks"]["sql"] == "ok"


def test_metrics_count_plays_by_outcome_and_report_the_outbox(client, factory):
    campaign_id = factory.campaign(stock=1)
    before = _samples(client)
    factory.play(campaign_id, "m1")
    with pytest.raises(SoldOutError):
        factory.play(campaign_id, "m2")
    after = _samples(client)
    ok = ("huodong_plays_total", (("action", "buy"), ("game", "flash_sale"), ("outcome", "ok")))
    sold_out = ("huodong_plays_total", (("action", "buy"), ("game", "flash_sale"), ("outcome", "SOLD_OUT")))
    assert after[ok] - before.get(ok, 0) == 1
    assert after[sold_out] - before.get(sold_out, 0) == 1
    assert after[("huodong_outbox_entries", (("campaign", str(campaign_id)),))] == 1
    assert after[("huodong_outbox_lag_seconds", (("campaign", str(campaign_id)),))] >= 0
    latency = ("huodong_claim_seconds_count", (("game", "flash_sale"),))
    assert after[latency] - before.get(latency, 0) == 2


def test_metrics_show_what_was_won_and_not_yet_issued_then_the_grants_settled_by_adapter(client, factory, settle,
                                                                                          container):
    campaign_id = factory.campaign(stock=5)
    for player in ("w1", "w2", "w3"):
        factory.play(campaign_id, player)
    campaign = (("campaign", str(campaign_id)),)
    waiting = _samples(client)
    assert waiting[("huodong_outbox_lag_seconds", campaign)] >= 0
    assert ("huodong_grants_unissued", campaign) not in waiting  # not in SQL yet: only the outbox knows
    settle(worker=False)
    written = _samples(client)
    assert written[("huodong_outbox_lag_seconds", campaign)] == 0
    assert written[("huodong_grants_unissued", campaign)] == 3
    assert written[("huodong_grants_unissued_age_seconds", campaign)] >= 0
    settle()
    issued = _samples(client)
    assert ("huodong_grants_unissued", campaign) not in issued
    assert issued[("huodong_grants_settled_total", (("adapter", "points"), ("status", "issued")))] == 3
