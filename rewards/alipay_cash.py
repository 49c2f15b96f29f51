"""alipay_cash: a cash red packet paid to the player's Alipay balance (alipay.fund.trans.uni.transfer).

In certificate mode, as the open platform requires for transfers. The request
is frozen by the grant: out_biz_no is the grant id, the amount is computed once
from the grant's integer fen as a yuan string, the title and payee come from
the grant and the player -- so every retry is byte-identical, as Alipay needs
(a changed request under the same out_biz_no is PAYMENT_INFO_INCONSISTENCY).

The answer decides by ``code == "10000"`` and the transfer's ``status``, not
by the SDK's ``is_success()`` (which passes a DEALING or FAIL transfer). When
an earlier attempt may have moved money (it timed out, or left the transfer
DEALING), the next attempt asks first (alipay.fund.trans.common.query by
out_biz_no, with product_code and biz_scene) and sends only if the gateway has
no such transfer.
"""

from __future__ import annotations

from typing import Any

from alipay.aop.api.domain.AlipayFundTransCommonQueryModel import AlipayFundTransCommonQueryModel
from alipay.aop.api.domain.AlipayFundTransUniTransferModel import AlipayFundTransUniTransferModel
from alipay.aop.api.domain.Participant import Participant
from alipay.aop.api.request.AlipayFundTransCommonQueryRequest import AlipayFundTransCommonQueryRequest
from alipay.aop.api.request.AlipayFundTransUniTransferRequest import AlipayFundTransUniTransferRequest
from alipay.aop.api.response.AlipayFundTransCommonQueryResponse import AlipayFundTransCommonQueryResponse
from alipay.aop.api.response.AlipayFundTransUniTransferResponse import AlipayFundTransUniTransferResponse
from marshmallow import RAISE, Schema, fields, validate

from alipay_platform.gateway import SUCCESS, AlipayGateway, AlipayUnavailableError, gateway_for, refusal, yuan
from campaigns.models import Grant
from engine.reward_types import reward_types

from .alipay_voucher import AlipayAccountAdapter
from .base import OutcomeUnknownError, PermanentIssueError, RetryableIssueError, refused

PRODUCT_CODE = "TRANS_ACCOUNT_NO_PWD"
BIZ_SCENE = "DIRECT_TRANSFER"
NOT_FOUND = "ORDER_NOT_EXIST"


class AlipayCashParams(Schema):
    class Meta:
        unknown = RAISE

    amount_fen = fields.Integer(required=True, strict=True, validate=validate.Range(min=10, max=20_000_000),
                                metadata={"description": "Cash paid, in fen (Alipay's minimum is 0.10 yuan)."})
    order_title = fields.String(load_default="红包", validate=validate.Length(min=1, max=64),
                                metadata={"description": "The transfer's title the player sees."})


@reward_types.register("alipay_cash")
class AlipayCashAdapter(AlipayAccountAdapter):
    type_name = "alipay_cash"
    params_schema = AlipayCashParams

    def pay(self, grant: Grant, payee: str) -> str:
        gateway = gateway_for(self.context.settings)
        if grant.attempts > 1:  # an earlier attempt may have moved the money: ask before sending
            known = self._query(gateway, grant)
            if known is not None:
                return self._outcome(known)
        model = AlipayFundTransUniTransferModel()
        model.out_biz_no = grant.id
        model.trans_amount = yuan(grant.reward["amount_fen"])
        model.product_code = PRODUCT_CODE
        model.biz_scene = BIZ_SCENE
        model.order_title = grant.reward.get("order_title") or "红包"
        participant = Participant()
        participant.identity = payee
        participant.identity_type = "ALIPAY_USER_ID"
        model.payee_info = participant
        response = AlipayFundTransUniTransferResponse()
        response.parse_response_content(self._call(gateway, AlipayFundTransUniTransferRequest(biz_model=model)))
        if response.code != SUCCESS:
            raise refused(*refusal(response))
        return self._outcome(response)

    def query(self, grant: Grant) -> str | None:
        known = self._query(gateway_for(self.context.settings), grant)
        return f"transfer:{known.order_id}" if known is not None and known.status == "SUCCESS" else None

    def _query(self, gateway: AlipayGateway, grant: Grant) -> Any | None:
        model = AlipayFundTransCommonQueryModel()
        model.out_biz_no = grant.id
        model.product_code = PRODUCT_CODE
        model.biz_scene = BIZ_SCENE
        response = AlipayFundTransCommonQueryResponse()
        response.parse_response_content(self._call(gateway, AlipayFundTransCommonQueryRequest(biz_model=model)))
        if response.code == SUCCESS:
            return response
        if response.sub_code == NOT_FOUND:  # never sent -- or not visible yet; sending again is safe either way
            return None
        raise refused(*refusal(response))

    def _outcome(self, answer: Any) -> str:
        if answer.status == "SUCCESS":
            return f"transfer:{answer.order_id}"
        if answer.status in ("DEALING", "WAIT_PAY", "INIT"):
            raise RetryableIssueError(f"transfer {answer.order_id} is {answer.status}; asked again next attempt")
        raise PermanentIssueError(f"transfer {answer.order_id} {answer.status}: {getattr(answer, 'fail_reason', '')}")

    @staticmethod
    def _call(gateway: AlipayGateway, request: Any) -> str:
        try:
            return gateway.execute_cert(request)
        except AlipayUnavailableError as exc:
            raise OutcomeUnknownError(f"outcome unknown ({exc.details.get('reason')}); the next attempt asks "
                                      "the gateway first") from None
