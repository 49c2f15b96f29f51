"""With ``appendfsync everysec`` a crash can lose claims Redis had acknowledged; the claim journal finds them.

Redis writes its append-only file before it answers, and syncs it to disk once a second (everysec) or
before every answer (always). A killed redis-server loses nothing either way (the bytes are in the page
cache); a machine that loses power loses what was not synced yet. The test makes that power cut by
hand: it notes the file's size once everything so far is synced, lets players win more, kills Redis, and
cuts the file back to the noted size. Redis comes back without the last claims and without their outbox
entries; settlement never sees them; the daily reconciliation finds each in the claim journal and settles
it. (The fault-injection proof runs with ``always``, where the same cut would lose nothing answered.) It runs
twice: with the journal in a local file, and with it in a Redis stream on another server (the run's Redis:
``HUODONG_CLAIM_JOURNAL_REDIS_URL``), where no web host keeps anything settlement needs.
"""

from __future__ import annotations

import os
import time
import uuid
from datetime import UTC, timedelta

import pytest
from rq import SimpleWorker
from rq.serializers import JSONSerializer
from sqlalchemy import func, select

from campaigns.models import ClaimRecord, Grant, GrantStatus, PointsEntry
from engine import jobs
from rewards.reconcile import daily_reconciliation

from ..support.chaos import OwnRedis, own_server
from ..support.client import mini_program_app
from ..support.factories import Factory, flash_sale_definition
from ..support.services import purge_redis

pytestmark = [pytest.mark.slow, own_server]


@pytest.fixture(params=["file", "stream"])
def everysec(request, tmp_path, settings, redis_url):
    server = OwnRedis(tmp_path / "redis", appendfsync="everysec")
    server.start()
    journal = {"claim_journal_redis_url": redis_url} if request.param == "stream" else {}
    app = mini_program_app(settings.replace(**server.settings, **journal, instance_path=str(tmp_path / "instance"),
                                            redis_namespace=f"{settings.redis_namespace}e"))
    yield server, app
    server.stop()
    if journal:
        container = app.extensions["huodong.container"]
        purge_redis(container.journal_redis, container.settings.redis_namespace, container.settle_queue.name)


def _buy(client, campaign_id: int, user: str) -> str:
    token = client.post("/api/v1/auth/dev", json={"user_id": user, "registered_days_ago": 30}).json["token"]
    answer = client.post(f"/api/v1/campaigns/{campaign_id}/actions/buy", json={"sku": "C50", "quantity": 1},
                         headers={"Authorization": f"Bearer {token}", "Idempotency-Key": str(uuid.uuid4())})
    assert answer.status_code == 200, answer.json
    return answer.json["outcome"]["claim_id"]


def _settle(container, *, worker: bool = True) -> None:
    settlement = container.settlement(consumer="loss-test")
    while settlement.step(block_ms=10).entries:
        pass
    if worker:
        jobs.install(container.adapter_context)
        SimpleWorker([container.settle_queue], connection=container.rq_redis, serializer=JSONSerializer,
                     name=f"loss-{uuid.uuid4().hex[:8]}").work(burst=True)


def test_claims_an_everysec_crash_lost_are_found_in_the_journal_and_settled_once(everysec, db_session):
    server, app = everysec
    container = app.extensions["huodong.container"]
    client = app.test_client()
    campaign_id = Factory(container, client).campaign(flash_sale_definition(stock=100))

    kept = [_buy(client, campaign_id, f"early{i}") for i in range(20)]
    _settle(container)
    time.sleep(2.5)  # everysec has synced all of that by now
    synced = server.incr_aof().stat().st_size
    lost = [_buy(client, campaign_id, f"late{i}") for i in range(15)]  # each answered 200 to its player
    server.kill()
    with server.incr_aof().open("r+b") as aof:  # the power cut: the unsynced tail never reached the disk
        aof.truncate(synced)
        os.fsync(aof.fileno())
    server.start()

    assert container.live_state.stats(campaign_id).stock["sku:C50"]["taken"] == 20  # Redis forgot the last 15
    _settle(container)
    db_session.rollback()
    assert set(db_session.scalars(select(ClaimRecord.id))) == set(kept)  # settlement never saw them

    day = container.clock.now().astimezone(UTC).date()
    journaled = {e["claim_id"] for e in container.journal_reader.events(day)}
    assert journaled == set(kept) | set(lost)
    found = daily_reconciliation(container.adapter_context, container.settlement(), day, fix=False,
                                 grace=timedelta(0))
    assert sorted(found["journal"]["recovered"]) == sorted(lost) and found["clean"] is False
    fixed = daily_reconciliation(container.adapter_context, container.settlement(), day, grace=timedelta(0))
    assert fixed["journal"]["grants_enqueued"] == 15
    _settle(container)

    again = daily_reconciliation(container.adapter_context, container.settlement(), day, grace=timedelta(0))
    assert again["journal"]["recovered"] == [] and again["clean"] is True
    db_session.rollback()
    assert set(db_session.scalars(select(ClaimRecord.id))) == set(kept) | set(lost)
    issued = db_session.scalar(select(func.count()).select_from(Grant).where(Grant.status == GrantStatus.ISSUED))
    ledger = list(db_session.scalars(select(PointsEntry.grant_id)))
    assert issued == 35 and len(ledger) == len(set(ledger)) == 35
