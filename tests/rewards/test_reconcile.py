"""Reconciliation finds what the providers and the grant rows disagree on, and fixes what it can."""

from __future__ import annotations

import json

from click.testing import CliRunner
from sqlalchemy import delete, select

from campaigns.models import AuditEntry, Grant, GrantStatus, PointsEntry
from campaigns.players import find_or_create_alipay
from rewards.alipay_cash import AlipayCashAdapter
from rewards.reconcile import reconcile
from tests.support.factories import flash_sale_definition
from web.cli import main


def _points_grants(factory, settle, count: int) -> int:
    campaign = factory.campaign(stock=count)
    for i in range(count):
        factory.play(campaign, f"r{i}")
    settle()
    return campaign


def test_a_day_where_everything_agrees_is_clean(factory, settle, container):
    _points_grants(factory, settle, 3)
    report = reconcile(container.adapter_context, container.clock.now().date())
    assert report.clean and report.checked == report.matched == 3


def test_a_lost_ledger_entry_is_missing_and_an_orphan_entry_is_extra(factory, settle, container):
    _points_grants(factory, settle, 2)
    now = container.clock.now()
    with container.session_factory() as session, session.begin():
        lost = session.scalars(select(Grant.id)).first()
        session.execute(delete(PointsEntry).where(PointsEntry.grant_id == lost))
        session.add(PointsEntry(user_id="ghost", delta=5, reason="?", grant_id="Gghost", created_at=now))
    report = reconcile(container.adapter_context, now.date())
    assert report.missing == [lost] and report.extra == ["Gghost"] and not report.clean


def test_money_that_moved_while_the_row_says_pending_is_found_and_marked(factory, container, db_session, settle,
                                                                         settings):
    with container.session_factory() as session:
        player = find_or_create_alipay(session, "2088000000000901", clock=container.clock).id
    campaign = factory.campaign(flash_sale_definition(skus=[{
        "sku": "RP", "name": "Red packet", "price_fen": 0, "stock": 5,
        "reward": {"type": "alipay_cash", "amount_fen": 66, "cost_fen": 66}}]))
    factory.play(campaign, player, "buy", {"sku": "RP", "quantity": 1})
    settle(worker=False)  # rows written, the job never ran
    db_session.rollback()
    grant = db_session.scalar(select(Grant).where(Grant.campaign_id == campaign))
    grant.attempts = 1
    paid = AlipayCashAdapter(container.adapter_context).issue(grant)  # the worker paid, then died

    day = container.clock.now().date()
    found = reconcile(container.adapter_context, day)
    assert found.unmarked == [{"grant_id": grant.id, "status": "pending", "provider": paid}]
    result = CliRunner().invoke(main, ["reconcile", "--day", day.isoformat(), "--fix"], obj=settings)
    assert result.exit_code == 1 and json.loads(result.output)["grants"]["fixed"] == 1
    db_session.rollback()
    assert db_session.get(Grant, grant.id).status == GrantStatus.ISSUED
    assert db_session.get(Grant, grant.id).external_id == paid
    again = CliRunner().invoke(main, ["reconcile", "--day", day.isoformat()], obj=settings)
    assert again.exit_code == 0 and json.loads(again.output)["clean"] is True


def test_housekeeping_enqueues_each_days_reconciliation_once_and_the_job_audits_its_report(
        factory, settle, container, db_session):
    _points_grants(factory, settle, 2)
    day = container.clock.now().date()
    first, second = container.settlement(), container.settlement(consumer="another")
    assert first.schedule_reconciliation(day) is True
    assert second.schedule_reconciliation(day) is False  # the other settlement process got there first
    assert container.settle_queue.count == 1
    settle()  # the worker runs rewards.tasks.reconcile_day

    db_session.rollback()
    [entry] = db_session.scalars(select(AuditEntry).where(AuditEntry.action == "reconcile.day"))
    assert (entry.actor, entry.subject_id) == ("reconciliation", day.isoformat())
    assert entry.details["clean"] is True and entry.details["grants"]["checked"] == 2
    assert entry.details["journal"]["recovered"] == []
