"""Paying a held flash-sale order with Alipay: the trade for my.tradePay, and the notification that confirms it.

``pay`` creates the trade (out_trade_no = the order id, the amount from the
order as it was placed) and answers what my.tradePay needs. ``notify`` takes
Alipay's asynchronous notification: it verifies the RSA2 signature (SHA-256
only) over the sorted parameters without ``sign`` and ``sign_type``, checks the
app id, the seller, that the order is ours and the amount is the order's,
then confirms the order once (confirm.lua) so its rewards are settled. A
payment for an order already released is refunded and audited. Any answer but
``True`` makes the caller say ``failure`` and Alipay send it again.
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
from sqlalchemy import select
from sqlalchemy.orm import sessionmaker

from campaigns import audit
from campaigns.models import AuditEntry
from engine import scripts as codes
from engine.claims import GrantSpec
from engine.clock import Clock, from_ms, iso, to_ms
from engine.config import Settings
from engine.errors import ConflictError, NotFoundError
from engine.keys import CampaignKeys
from engine.runtime import grant_entries
from engine.scripts import Scripts

from ..base import PermanentIssueError
from .cash import yuan
from .gateway import SUCCESS, AlipayGateway, alipay_user_of
from .signing import sign_content, verify_rsa2

PAID_STATUSES = {"TRADE_SUCCESS", "TRADE_FINISHED"}
LATE_REFUND = "order.refunded_late"


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
    """``client`` decodes responses (``Container.redis``)."""

    def __init__(self, *, client: redis.Redis, scripts: Scripts, namespace: str, settings: Settings, clock: Clock,
                 session_factory: sessionmaker) -> None:
        self._client = client
        self._scripts = scripts
        self._namespace = namespace
        self._settings = settings
        self._clock = clock
        self._session_factory = session_factory
        self._gateway = AlipayGateway(settings)

    def _order(self, campaign_id: int, order_id: str, user_id: str) -> dict[str, str]:
        """The player's order hash from Redis; NOT_FOUND for another player's."""
        order = self._client.hgetall(CampaignKeys(self._namespace, campaign_id).order(order_id))
        if not order or order.get("user") != user_id:
            raise NotFoundError("No such order.", order_id=order_id)
        return order

    def _index(self) -> str:
        """Hash: order id -> campaign id, for the orders a trade was made for (a notification names only the order)."""
        return f"{self._namespace}:paying"

    def pay(self, campaign_id: int, order_id: str, user_id: str) -> dict[str, Any]:
        order = self._order(campaign_id, order_id, user_id)
        if order["status"] != "held" or int(order["deadline_ms"]) <= to_ms(self._clock.now()):
            raise OrderNotPayableError(status=order["status"])
        try:
            buyer = alipay_user_of(self._session_factory, user_id)
        except PermanentIssueError:
            raise AlipayAccountRequiredError() from None
        placed = json.loads(order["event"])["order"]
        model = AlipayTradeCreateModel()
        model.out_trade_no = order_id
        model.total_amount = yuan(placed["amount_fen"])
        model.subject = ", ".join(f"{line['name']} x{line['quantity']}" for line in placed["lines"])[:256]
        model.buyer_id = buyer
        request = AlipayTradeCreateRequest(biz_model=model)
        request.notify_url = self._settings.alipay_notify_url
        self._client.hset(self._index(), order_id, campaign_id)
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
        campaign_id = self._client.hget(self._index(), order_id)
        if campaign_id is None:
            return False
        keys = CampaignKeys(self._namespace, int(campaign_id))
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
        reply = self._scripts.confirm(keys, order_id=order_id, now_ms=to_ms(now), trade_no=trade_no,
                                      event=json.dumps(paid, separators=(",", ":"), ensure_ascii=False))
        if reply.code == codes.NOT_HELD:
            return self._refund_late(order_id, total_amount, trade_no, reply.body, now)
        return reply.code in (codes.OK, codes.REPLAY)

    def order_status(self, campaign_id: int, order_id: str, user_id: str) -> dict[str, Any]:
        """The order as the mini-program polls it. A held order with a trade asks Alipay, so a payment whose
        notification was lost is seen (and confirmed) all the same."""
        order = self._order(campaign_id, order_id, user_id)
        if order["status"] == "held" and self._client.hexists(self._index(), order_id):
            trade = self._query(order_id)
            if trade is not None and trade.trade_status in PAID_STATUSES:
                self._settle_payment(order_id, trade.trade_no, trade.total_amount)
                order["status"] = self._client.hget(CampaignKeys(self._namespace, campaign_id).order(order_id),
                                                    "status")
        return {"order_id": order_id, "status": order["status"],
                "pay_before": iso(from_ms(int(order["deadline_ms"]))) if order.get("deadline_ms") else None}

    def close_released(self, order_ids: list[str]) -> int:
        """Close the trades of orders released unpaid, so the buyer can no longer pay them; answers how many."""
        closed = 0
        for order_id in order_ids:
            if not self._client.hexists(self._index(), order_id):
                continue  # never went to payment
            model = AlipayTradeCloseModel()
            model.out_trade_no = order_id
            response = AlipayTradeCloseResponse()
            response.parse_response_content(self._gateway.execute(AlipayTradeCloseRequest(
                biz_model=model)))
            closed += response.code == SUCCESS
        return closed

    def _query(self, order_id: str) -> Any | None:
        model = AlipayTradeQueryModel()
        model.out_trade_no = order_id
        response = AlipayTradeQueryResponse()
        response.parse_response_content(self._gateway.execute(AlipayTradeQueryRequest(
            biz_model=model)))
        return response if response.code == SUCCESS else None

    def _refund_late(self, order_id: str, total_amount: str, trade_no: str, status: str, now: Any) -> bool:
        """The buyer paid after the order was released: give the money back, once, and say so in the audit log."""
        model = AlipayTradeRefundModel()
        model.out_trade_no = order_id
        model.refund_amount = total_amount
        model.out_request_no = f"R{order_id}"
        model.refund_reason = f"order {status} before the payment arrived"
        response = AlipayTradeRefundResponse()
        response.parse_response_content(self._gateway.execute(AlipayTradeRefundRequest(
            biz_model=model)))
        if response.code != SUCCESS:
            return False
        with self._session_factory() as session:
            recorded = session.scalar(select(AuditEntry.id).where(AuditEntry.action == LATE_REFUND,
                                                                  AuditEntry.subject_id == order_id))
            if recorded is None:  # Alipay repeats its notifications: one entry per refund
                audit.record(session, at=now, actor="alipay-notify", action=LATE_REFUND, subject_type="order",
                             subject_id=order_id, trade_no=trade_no, amount=total_amount, order_status=status)
                session.commit()
        return True
