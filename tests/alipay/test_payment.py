"""Paying a held flash-sale order through Alipay: trade, notification, confirmation, forgeries, late payments."""

from __future__ import annotations

import time
from typing import Any

import pytest
import requests
from sqlalchemy import select

from alipay_platform.payments import OrderNotPayableError, PaymentService
from alipay_platform.signing import sign_content, sign_rsa2
from alipay_sandbox.server import Trade
from campaigns.models import AuditEntry, Grant, Order, OrderStatus
from campaigns.players import find_or_create_alipay
from rewards.points import balance
from tests.support.factories import flash_sale_definition

NOTIFY = "/api/v1/notify/alipay"


@pytest.fixture
def payments(container, settings, live_url) -> PaymentService:
    return PaymentService(client=container.redis, scripts=container.scripts, namespace=settings.redis_namespace,
                          settings=settings.replace(alipay_notify_url=live_url + NOTIFY), clock=container.clock,
                          session_factory=container.session_factory, queue=container.settle_queue)


@pytest.fixture
def held(factory, container) -> dict[str, Any]:
    with container.session_factory() as session:
        player = find_or_create_alipay(session, "2088000000000777", clock=container.clock).id
    campaign = factory.campaign(flash_sale_definition(stock=5, price_fen=990))
    order = factory.play(campaign, player).outcome["order"]
    return {"campaign": campaign, "player": player, "order_id": order["id"]}


def notifications_for(alipay_sandbox, order_id: str, answer: str, timeout: float = 10.0) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with alipay_sandbox.sandbox.state.lock:
            seen = [n for n in alipay_sandbox.sandbox.state.notifications if n["out_trade_no"] == order_id]
        if any(n["answer"] == answer for n in seen):
            return seen
        time.sleep(0.05)
    raise AssertionError(f"no {answer!r} answer for {order_id}: {seen}")


def test_a_paid_order_is_confirmed_by_the_notification_and_its_reward_settled(
        payments, held, alipay_sandbox, settle, db_session, container):
    trade = payments.pay(held["campaign"], held["order_id"], held["player"])
    assert trade["amount_fen"] == 990 and trade["trade_no"]
    assert payments.pay(held["campaign"], held["order_id"], held["player"])["trade_no"] == trade["trade_no"]
    requests.post(f"{alipay_sandbox.url}/sandbox/trades/{held['order_id']}/pay", timeout=5).raise_for_status()
    notifications_for(alipay_sandbox, held["order_id"], "success")
    settle()
    db_session.rollback()
    assert db_session.get(Order, held["order_id"]).status == OrderStatus.PAID
    assert balance(db_session, held["player"], container.clock.now()) == 50  # the SKU's reward, once paid

    # Alipay repeats itself: a second delivery of the same notification changes nothing.
    sandbox_trade = alipay_sandbox.sandbox.state.trades[held["order_id"]]
    alipay_sandbox.sandbox.notify(sandbox_trade).join(timeout=10)
    settle()
    db_session.rollback()
    assert len(db_session.scalars(select(Grant).where(Grant.user_id == held["player"])).all()) == 1
    with pytest.raises(OrderNotPayableError):
        payments.pay(held["campaign"], held["order_id"], held["player"])


def _forged(alipay_sandbox, held, **changes: str) -> dict[str, str]:
    trade = Trade(held["order_id"], "2026fake", "9.90", "Tea", "2088000000000777", "", "")
    form = alipay_sandbox.sandbox.notification(trade)
    form.update(trade_status="TRADE_SUCCESS", **changes)
    params = {k: v for k, v in form.items() if k != "sign"}
    form["sign"] = sign_rsa2(alipay_sandbox.sandbox.keys.private_key,
                             sign_content(params, skip=("sign", "sign_type"), skip_empty=True).encode())
    return form


def test_forged_or_wrong_notifications_are_refused_and_change_nothing(client, payments, held, alipay_sandbox,
                                                                      container, settle, db_session):
    payments.pay(held["campaign"], held["order_id"], held["player"])
    genuine = _forged(alipay_sandbox, held)
    cases = {
        "bad signature": {**genuine, "sign": genuine["sign"][:-8] + "AAAAAAA="},
        "wrong app": _forged(alipay_sandbox, held, app_id="2021999999999999"),
        "wrong amount": _forged(alipay_sandbox, held, total_amount="0.01"),
        "unknown order": _forged(alipay_sandbox, held, out_trade_no="O" + "0" * 24),
        "sha1": {**genuine, "sign_type": "RSA"},
    }
    for name, form in cases.items():
        answer = client.post(NOTIFY, data=form)
        assert (answer.status_code, answer.get_data(as_text=True)) == (400, "failure"), name
    keys = container.live_state.keys(held["campaign"])
    assert container.redis.hget(keys.order(held["order_id"]), "status") in ("held", b"held")
    answer = client.post(NOTIFY, data=genuine)  # the same, signed by the gateway's key: accepted
    assert answer.get_data(as_text=True) == "success"
    assert container.redis.hget(keys.order(held["order_id"]), "status") in ("paid", b"paid")


def test_a_payment_after_the_order_was_released_is_refunded_and_audited(client, factory, payments, held,
                                                                       alipay_sandbox, db_session, settle,
                                                                       container):
    payments.pay(held["campaign"], held["order_id"], held["player"])
    factory.play(held["campaign"], held["player"], "cancel", {"order_id": held["order_id"]})
    requests.post(f"{alipay_sandbox.url}/sandbox/trades/{held['order_id']}/pay", timeout=5).raise_for_status()
    notifications_for(alipay_sandbox, held["order_id"], "success")
    # The notification was answered at once; the refund is a job (the endpoint never waits on Alipay for it).
    assert f"R{held['order_id']}" not in alipay_sandbox.sandbox.state.refunds
    assert container.settle_queue.job_ids == [f"refund-{held['order_id']}"]
    settle()
    assert alipay_sandbox.sandbox.state.refunds[f"R{held['order_id']}"]["refund_fee"] == "9.90"
    assert alipay_sandbox.sandbox.state.trades[held["order_id"]].status == "TRADE_CLOSED"
    repeat = client.post(NOTIFY, data=_forged(alipay_sandbox, held))  # Alipay says it again: one refund, one entry
    assert repeat.get_data(as_text=True) == "success"
    settle()
    db_session.rollback()
    [entry] = db_session.scalars(select(AuditEntry).where(AuditEntry.action == "order.refunded_late")).all()
    assert entry.subject_id == held["order_id"] and entry.details["order_status"] == "cancelled"
    assert [k for k in alipay_sandbox.sandbox.state.refunds if held["order_id"] in k] == [f"R{held['order_id']}"]


def test_paying_needs_an_alipay_account_and_a_held_order(client, factory):
    campaign = factory.campaign(flash_sale_definition(stock=5, price_fen=990))
    order_id = factory.play(campaign, "dev-payer").outcome["order"]["id"]
    headers = factory.headers("dev-payer")
    answer = client.post(f"/api/v1/campaigns/{campaign}/actions/pay", json={"order_id": order_id}, headers=headers)
    assert answer.status_code == 409 and answer.json["error"]["code"] == "ALIPAY_ACCOUNT_REQUIRED"
    other = client.post(f"/api/v1/campaigns/{campaign}/actions/pay", json={"order_id": order_id},
                        headers=factory.headers("someone-else"))
    assert other.status_code == 404
    bad = client.post(f"/api/v1/campaigns/{campaign}/actions/pay", json={"order_id": "nope"}, headers=headers)
    assert bad.status_code == 422


def test_a_lost_notification_is_made_good_when_the_mini_program_polls(client, factory, payments, held,
                                                                      alipay_sandbox, settle, db_session):
    payments.pay(held["campaign"], held["order_id"], held["player"])
    with alipay_sandbox.sandbox.state.lock:  # the buyer pays; every notification is lost on the way
        trade = alipay_sandbox.sandbox.state.trades[held["order_id"]]
        trade.status = "TRADE_SUCCESS"
    url = f"/api/v1/campaigns/{held['campaign']}/orders/{held['order_id']}"
    polled = client.get(url, headers=factory.headers(held["player"]))
    assert polled.status_code == 200 and polled.json["status"] == "paid"
    settle()
    db_session.rollback()
    assert db_session.get(Order, held["order_id"]).status == OrderStatus.PAID
    assert client.get(url, headers=factory.headers("someone-else")).status_code == 404


def test_an_order_released_unpaid_closes_its_trade_in_a_job(container, payments, held, alipay_sandbox, settle):
    from datetime import timedelta

    payments.pay(held["campaign"], held["order_id"], held["player"])
    released = container.hold_sweeper.sweep(container.clock.now() + timedelta(hours=1))
    assert released == [held["order_id"]]
    assert payments.close_released(released) == 1
    assert payments.close_released(released) == 0  # once per order
    assert alipay_sandbox.sandbox.state.trades[held["order_id"]].status == "WAIT_BUYER_PAY"  # nothing waited on Alipay
    settle()
    assert alipay_sandbox.sandbox.state.trades[held["order_id"]].status == "TRADE_CLOSED"


def test_a_refund_alipay_keeps_refusing_is_left_in_the_audit_log_for_a_person(
        container, payments, held, alipay_sandbox, db_session):
    from alipay_platform.tasks import AlipayRefusedError, refund_late_payment
    from engine import jobs

    jobs.install(container.adapter_context)
    alipay_sandbox.sandbox.inject("alipay.trade.refund", "system_error")
    with pytest.raises(AlipayRefusedError):  # outside a worker: as the last attempt
        refund_late_payment(held["order_id"], "9.90", "T1", "expired")
    db_session.rollback()
    [entry] = db_session.scalars(select(AuditEntry).where(AuditEntry.action == "order.refund_failed")).all()
    assert entry.subject_id == held["order_id"] and "refused" in entry.details["error"]
