"""RQ jobs of the Alipay integration: what the settlement loop and the notification endpoint hand off rather
than wait on Alipay for. Arguments are ids and amounts; collaborators come from the worker's job context."""

from __future__ import annotations

from rq import get_current_job

from engine import jobs

from .gateway import AlipayUnavailableError, gateway_for
from .payments import close_trade as close
from .payments import record_refund_failure
from .payments import refund_late_payment as refund


class AlipayRefusedError(Exception):
    """Alipay answered, but not yes: the job is tried again later."""


def close_trade(order_id: str) -> None:
    """Close the trade of an order released unpaid, so its buyer can no longer pay it."""
    context = jobs.current()
    if not close(gateway_for(context.settings), order_id):
        raise AlipayRefusedError(f"Alipay did not close the trade of order {order_id}")


def refund_late_payment(order_id: str, total_amount: str, trade_no: str, status: str) -> None:
    """Give back a payment that arrived after its order was released; audited once. When the last attempt fails,
    the audit log says a person must refund it."""
    context = jobs.current()
    try:
        refunded = refund(gateway_for(context.settings), context.session_factory, order_id=order_id,
                          total_amount=total_amount, trade_no=trade_no, status=status, now=context.clock.now())
        problem = None if refunded else "Alipay refused the refund"
    except AlipayUnavailableError as exc:
        problem = f"Alipay did not answer ({exc.details.get('reason')})"
    if problem is None:
        return
    job = get_current_job()
    if job is None or not job.retries_left:
        record_refund_failure(context.session_factory, order_id=order_id, error=problem, now=context.clock.now())
    raise AlipayRefusedError(f"order {order_id}: {problem}")
