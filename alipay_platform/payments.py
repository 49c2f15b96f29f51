"""Paying a held flash-sale order with Alipay: the trade for my.tradePay, and the notification that confirms it.

``pay`` creates the trade (out_trade_no = the order id, the amount from the
order as it was placed) and answers what my.tradePay needs. ``notify`` takes
Alipay's asynchronous notification: it verifies the RSA2 signature (SHA-256
only) over the sorted parameters without ``sign`` and ``sign_type``, checks the
app id, the seller, that the order is ours and the amount is the order's,
then confirms the order once (confirm.lua) so its rewards are settled. A
payment for an order already released is refunded by a job (``tasks``), which
audits it. Any answer but ``True`` makes the caller say ``failure`` and Alipay
send it again.

Closing the trades of released orders and late refunds are RQ jobs: the
settlement loop and the notification endpoint never wait on Alipay for them.
"""

from __future__ import annotations

import json
from typing import Any

import redis
from alipay.aop.api.domain.AlipayTradeCloseModel import AlipayTradeCloseModel
from alipay.aop.api.domain.AlipayTradeCreateModel import AlipayTradeCreateModel
from alipay.aop.api.domain.AlipayTradeQueryModel import AlipayTradeQueryModel
from alipay.aop.api.domain.AlipayTradeRefundModel import AlipayTradeRefundModel
from alipay.aop.api.request.AlipayTradeCloseRequest import AlipayTradeCloseRequest
from alipay.aop.api.request.AlipayTradeCreateRequest import AlipayTradeCreateRequest
from alipay.aop.api.request.AlipayTradeQueryRequest import AlipayTradeQueryRequest
from alipay.aop.api.request.AlipayTradeRefundRequest import AlipayTradeRefundRequest
from alipay.aop.api.response.AlipayTradeCloseResponse import AlipayTradeCloseResponse
from alipay.aop.api.response.AlipayTradeCreateResponse import AlipayTradeCreateResponse
from alipay.aop.api.response.AlipayTradeQueryResponse import AlipayTradeQueryResponse
from alipay.aop.api.response.AlipayTradeRefundResponse import AlipayTradeRefundResponse
from rq import Queue, Retry
from rq.exceptions import DuplicateJobError
from sqlalchemy import select
from sqlalchemy.orm import sessionmaker

from campaigns import audit
from campaigns.models import AuditEntry
from engine.claims import GrantSpec
from engine.clock import Clock, from_ms, iso, to_ms
from engine.config import Settings
from engine.errors import ConflictError, NotFoundError
from engine.keys import GlobalKeys
from engine.runtime import grant_entries
from engine.scripts import Scripts
from engine.shards import ShardDirectory

from .gateway import SUCCESS, AlipayGateway, alipay_user_ids, gateway_for, yuan
from .signing import sign_content, verify_rsa2

PAID_STATUSES = {"TRADE_SUCCESS", "TRADE_FINISHED"}
LATE_REFUND = "order.refunded_late"
LATE_REFUND_FAILED = "order.refund_failed"
# The jobs (alipay_platform/tasks.py) by name, and how they are retried: seconds before each attempt again.
CLOSE_TRADE = "alipay_platform.tasks.close_trade"
REFUND_LATE = "alipay_platform.tasks.refund_late_payment"
JOB_RETRIES = (5, 30, 120, 600, 3600)
NOTHING_TO_CLOSE = {"ACQ.TRADE_NOT_EXIST", "ACQ.TRADE_HAS_CLOSE", "ACQ.TRADE_STATUS_ERROR"}


class AlipayAccountRequiredError(ConflictError):
    code = "ALIPAY_ACCOUNT_REQUIRED"
    default_message = "Log in with Alipay to pay."


class PaymentRefusedError(ConflictError):
    code = "PAYMENT_REFUSED"
    default_message = "Alipay refused to create the payment."


class OrderNotPayableError(ConflictError):
    code = "ORDER_NOT_PAYABLE"
    default_message = "The order is no longer waiting for payment."


class PaymentService:
    """``client`` decodes responses (``Container.redis``); ``queue`` takes the trade-closing and refund jobs."""

    def __init__(self, *, client: redis.Redis, scripts: Scripts, namespace: str, settings: Settings, clock: Clock,
                 session_factory: sessionmaker, queue: Queue, groups: ShardDirectory | None = None) -> None:
        self._client = client
        self._scripts = scripts
        self._namespace = namespace
        self._settings = settings
        self._clock = clock
        self._session_factory = session_factory
        self._queue = queue
        self._gateway = gateway_for(settings)
        self._groups = groups or ShardDirectory(client, namespace)

    def _order(self, campaign_id: int, order_id: str, user_id: str) -> dict[str, str]:
        """The player's order hash from Redis (in the player's key group); NOT_FOUND for another player's."""
        order = self._client.hgetall(self._groups.get(campaign_id).for_user(user_id).order(order_id))
        if not order or order.get("user") != user_id:
            raise NotFoundError("No such order.", order_id=order_id)
        return order

    def _index(self) -> str:
        return GlobalKeys(self._namespace).paying

    def pay(self, campaign_id: int, order_id: str, user_id: str) -> dict[str, Any]:
        order = self._order(campaign_id, order_id, user_id)
        if order["status"] != "held" or int(order["deadline_ms"]) <= to_ms(self._clock.now()):
            raise OrderNotPayableError(status=order["status"])
        buyer = alipay_user_ids(self._session_factory, [user_id]).get(user_id)
        if buyer is None:
            raise AlipayAccountRequiredError()
        placed = json.loads(order["event"])["order"]
        model = AlipayTradeCreateModel()
        model.out_trade_no = order_id
        model.total_amount = yuan(placed["amount_fen"])
        model.subject = ", ".join(f"{line['name']} x{line['quantity']}" for line in placed["lines"])[:256]
        model.buyer_id = buyer
        request = AlipayTradeCreateRequest(biz_model=model)
        request.notify_url = self._settings.alipay_notify_url
        # The notification names only the order: the index tells its campaign and, if sharded, its key group.
        shards = self._groups.get(campaign_id)
        self._client.hset(self._index(), order_id,
                          f"{campaign_id}/{shards.index_of(user_id)}" if shards.sharded else campaign_id)
        response = AlipayTradeCreateResponse()
        response.parse_response_content(self._gateway.execute(request))
        if response.code != SUCCESS or not response.trade_no:
            raise PaymentRefusedError(sub_code=response.sub_code, sub_msg=response.sub_msg)
        return {"order_id": order_id, "trade_no": response.trade_no, "amount_fen": placed["amount_fen"],
                "pay_before": iso(from_ms(int(order["deadline_ms"])))}

    def notify(self, form: dict[str, str]) -> bool:
        """Handle one notification; True when it is genuine and handled (also a repeat), else False."""
        if form.get("sign_type") != "RSA2" or not verify_rsa2(
                self._settings.alipay_public_key,
                sign_content(form, skip=("sign", "sign_type"), skip_empty=True).encode("utf-8"), form.get("sign", "")):
            return False
        if form.get("app_id") != self._settings.alipay_app_id:
            return False
        if self._settings.alipay_seller_id and form.get("seller_id") != self._settings.alipay_seller_id:
            return False
        if form.get("trade_status") not in PAID_STATUSES:
            return True  # a waiting or closed trade: nothing to do, and nothing to hear again
        return self._settle_payment(form.get("out_trade_no", ""), form.get("trade_no", ""),
                                    form.get("total_amount", ""))

    def _settle_payment(self, order_id: str, trade_no: str, total_amount: str) -> bool:
        """A payment Alipay vouched for (a verified notification, or a trade query): confirm the order once, or
        refund a payment that came after the order was released."""
        indexed = self._client.hget(self._index(), order_id)
        if indexed is None:
            return False
        campaign_id, _, group = indexed.partition("/")
        keys = self._groups.get(int(campaign_id)).keys(int(group or 0))
        stored = self._client.hget(keys.order(order_id), "event")
        if stored is None:
            return False
        claim = json.loads(stored)
        if total_amount != yuan(claim["order"]["amount_fen"]):
            return False
        now = self._clock.now()
        paid = {"type": "order.paid", "order_id": order_id, "trade_no": trade_no, "at_ms": to_ms(now), "claim": claim,
                "grants": grant_entries(claim["claim_id"], [GrantSpec(r["reward"], r["cost_fen"])
                                                            for r in claim["order"]["rewards_on_payment"]])}
        confirmation = self._scripts.confirm(keys, order_id=order_id, now_ms=to_ms(now), trade_no=trade_no,
                                             event=json.dumps(paid, separators=(",", ":"), ensure_ascii=False))
        if confirmation.released_as is not None:
            self._enqueue(REFUND_LATE, f"refund-{order_id}", order_id, total_amount, trade_no,
                          confirmation.released_as)
            return True
        return confirmation.paid

    def order_status(self, campaign_id: int, order_id: str, user_id: str) -> dict[str, Any]:
        """The order as the mini-program polls it. A held order with a trade asks Alipay, so a payment whose
        notification was lost is seen (and confirmed) all the same."""
        order = self._order(campaign_id, order_id, user_id)
        if order["status"] == "held" and self._client.hexists(self._index(), order_id):
            trade = self._query(order_id)
            if trade is not None and trade.trade_status in PAID_STATUSES:
                self._settle_payment(order_id, trade.trade_no, trade.total_amount)
                order["status"] = self._client.hget(
                    self._groups.get(campaign_id).for_user(user_id).order(order_id), "status")
        return {"order_id": order_id, "status": order["status"],
                "pay_before": iso(from_ms(int(order["deadline_ms"]))) if order.get("deadline_ms") else None}

    def close_released(self, order_ids: list[str]) -> int:
        """A job closes the trade of each order released unpaid, so the buyer can no longer pay it; answers how
        many jobs were enqueued (orders that never went to payment have no trade to close)."""
        enqueued = 0
        for order_id in order_ids:
            if self._client.hexists(self._index(), order_id):
                enqueued += self._enqueue(CLOSE_TRADE, f"close-{order_id}", order_id)
        return enqueued

    def _enqueue(self, function: str, job_id: str, *args: str) -> bool:
        """A job once per id (a repeated notification finds it enqueued); False when it already was."""
        try:
            self._queue.enqueue(function, *args, job_id=job_id, unique=True, retry=Retry(
                max=len(JOB_RETRIES), interval=list(JOB_RETRIES)), job_timeout=120, result_ttl=7 * 86400,
                failure_ttl=30 * 86400)
        except DuplicateJobError:
            return False
        return True

    def _query(self, order_id: str) -> Any | None:
        model = AlipayTradeQueryModel()
        model.out_trade_no = order_id
        response = AlipayTradeQueryResponse()
        response.parse_response_content(self._gateway.execute(AlipayTradeQueryRequest(
            biz_model=model)))
        return response if response.code == SUCCESS else None


def close_trade(gateway: AlipayGateway, order_id: str) -> bool:
    """alipay.trade.close of an order's trade; True when there is nothing left to close: closed now or before, no
    such trade, or one already paid (its notification refunds it). False when Alipay refused this time."""
    model = AlipayTradeCloseModel()
    model.out_trade_no = order_id
    response = AlipayTradeCloseResponse()
    response.parse_response_content(gateway.execute(AlipayTradeCloseRequest(biz_model=model)))
    return response.code == SUCCESS or response.sub_code in NOTHING_TO_CLOSE


def refund_late_payment(gateway: AlipayGateway, session_factory: sessionmaker, *, order_id: str, total_amount: str,
                        trade_no: str, status: str, now: Any) -> bool:
    """The buyer paid after the order was released: give the money back (idempotent by ``out_request_no``) and
    say so in the audit log, once; False when Alipay refused this time."""
    model = AlipayTradeRefundModel()
    model.out_trade_no = order_id
    model.refund_amount = total_amount
    model.out_request_no = f"R{order_id}"
    model.refund_reason = f"order {status} before the payment arrived"
    response = AlipayTradeRefundResponse()
    response.parse_response_content(gateway.execute(AlipayTradeRefundRequest(biz_model=model)))
    if response.code != SUCCESS:
        return False
    _audit_once(session_factory, LATE_REFUND, order_id, now=now, trade_no=trade_no, amount=total_amount,
                order_status=status)
    return True


def record_refund_failure(session_factory: sessionmaker, *, order_id: str, error: str, now: Any) -> None:
    """The refund's last attempt failed: a person must give the money back; the audit log says so."""
    _audit_once(session_factory, LATE_REFUND_FAILED, order_id, now=now, error=error[:500])


def _audit_once(session_factory: sessionmaker, action: str, order_id: str, *, now: Any, **details: Any) -> None:
    with session_factory() as session:
        recorded = session.scalar(select(AuditEntry.id).where(AuditEntry.action == action,
                                                              AuditEntry.subject_id == order_id))
        if recorded is None:  # Alipay repeats its notifications, a job its attempts: one entry each
            audit.record(session, at=now, actor="alipay-notify", action=action, subject_type="order",
                         subject_id=order_id, **details)
            session.commit()
