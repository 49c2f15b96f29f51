"""The huodong command: seed, and the settlement loop as the process operators run."""

from __future__ import annotations

import subprocess
import sys
from datetime import timedelta
from pathlib import Path

from sqlalchemy import select

from campaigns.models import Campaign, Grant, Order
from engine.clock import FrozenClock, SystemClock
from engine.runtime import PlayRequest, PlayService
from web.cli import main
from web.demo import demo_definitions

from ..support.factories import flash_sale_definition
from ..support.services import child_env

ROOT = Path(__file__).resolve().parents[2]


def test_seed_publishes_the_demo_campaigns_once(app, db_session):
    runner = app.test_cli_runner()
    settings = app.extensions["huodong.container"].settings
    first = runner.invoke(main, ["seed"], obj=settings)
    second = runner.invoke(main, ["seed"], obj=settings)
    assert first.exit_code == 0 and second.exit_code == 0, first.output + second.output
    assert "nothing seeded" in second.output
    games = sorted(c.game for c in db_session.scalars(select(Campaign)) if c.status == "live")
    assert games == sorted(d["game"] for d in demo_definitions(SystemClock().now()))
    assert {"flash_sale"} <= set(games)


def test_the_settle_command_expires_due_holds_and_settles_the_outbox(factory, container, settings, db_session):
    started_long_ago = SystemClock().now() - timedelta(minutes=10)
    campaign_id = factory.campaign(flash_sale_definition(stock=3, price_fen=500, window=60, now=started_long_ago))
    factory.play(campaign_id, "free-rider")  # a held order, due in a minute
    past = FrozenClock(SystemClock().now() - timedelta(minutes=5))
    long_ago = PlayService(scripts=container.scripts, snapshots=container.snapshots, clock=past,
                           namespace=settings.redis_namespace, idempotency_ttl=60)
    coupon_id = factory.campaign(stock=3)
    due = long_ago.play(PlayRequest(campaign_id, "late-payer", "buy", {"sku": "C50"}, "k")).outcome["order"]["id"]
    factory.play(coupon_id, "grabber")

    env = child_env(settings)
    done = subprocess.run([sys.executable, "-m", "web.cli", "settle", "--once"], cwd=ROOT, env=env, timeout=60,
                          capture_output=True)
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    done = subprocess.run([sys.executable, "-m", "web.cli", "settle", "--once"], cwd=ROOT, env=env, timeout=60,
                          capture_output=True)  # the release event the first run appended
    assert done.returncode == 0

    stats = container.live_state.stats(campaign_id)
    assert stats.stock["sku:C50"]["taken"] == 1 and stats.held_orders == 1
    statuses = {o.user_id: o.status for o in db_session.scalars(select(Order))}
    assert statuses == {"free-rider": "held", "late-payer": "expired", "grabber": "confirmed"}
    assert db_session.get(Order, due).status == "expired"
    assert [g.status for g in db_session.scalars(select(Grant))] == ["pending"]  # enqueued for a worker
    yesterday = (SystemClock().now() - timedelta(days=1, minutes=30)).date()
    queued = sorted(container.settle_queue.job_ids)  # the grant's batch, and housekeeping's daily reconciliation
    assert queued == sorted([db_session.scalar(select(Grant.batch_id)), f"reconcile-{yesterday.isoformat()}"])
