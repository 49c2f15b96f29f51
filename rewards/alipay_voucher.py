"""alipay_voucher: a voucher of the merchant's Alipay activity (alipay.marketing.activity.voucher.send).

Idempotent by the grant id as ``out_biz_no``: the gateway answers a repeated
send with the first voucher. The request is built only from the grant row
(immutable), so every retry sends the same bytes of ``biz_content`` -- a
changed request under the same out_biz_no would be refused. An answer that
never came (timeout, 5xx) is "outcome unknown": the retry sends the same
request again, which either sends the voucher or answers the one already sent.

Reconciliation asks the gateway for the voucher of an issued grant by its
voucher id (alipay.marketing.voucher.query), so a voucher Alipay no longer has
is found missing.

A batch looks its players' Alipay accounts up in one query, then sends
``concurrency`` vouchers at a time (``AlipayAccountAdapter``, which the cash
red packet shares).
"""

from __future__ import annotations

from abc import abstractmethod

from alipay.aop.api.domain.AlipayMarketingActivityVoucherSendModel import AlipayMarketingActivityVoucherSendModel
from alipay.aop.api.domain.AlipayMarketingVoucherQueryModel import AlipayMarketingVoucherQueryModel
from alipay.aop.api.request.AlipayMarketingActivityVoucherSendRequest import (
    AlipayMarketingActivityVoucherSendRequest,
)
from alipay.aop.api.request.AlipayMarketingVoucherQueryRequest import AlipayMarketingVoucherQueryRequest
from alipay.aop.api.response.AlipayMarketingActivityVoucherSendResponse import (
    AlipayMarketingActivityVoucherSendResponse,
)
from alipay.aop.api.response.AlipayMarketingVoucherQueryResponse import AlipayMarketingVoucherQueryResponse
from marshmallow import RAISE, Schema, fields, validate

from alipay_platform.gateway import SUCCESS, AlipayUnavailableError, alipay_user_ids, gateway_for, refusal
from campaigns.models import Grant
from engine.reward_types import reward_types

from .base import (
    Issued,
    OutcomeUnknownError,
    PermanentIssueError,
    RetryableIssueError,
    RewardAdapter,
    one_of,
    refused,
)

# What the gateway answers for a voucher id it has no voucher for (the sandbox's choice of sub_code).
NOT_FOUND = "VOUCHER_NOT_EXIST"


class AlipayVoucherParams(Schema):
    class Meta:
        unknown = RAISE

    activity_id = fields.String(required=True, validate=validate.Length(min=1, max=64),
                                metadata={"description": "The merchant's voucher activity at Alipay."})
    amount_fen = fields.Integer(required=True, strict=True, validate=validate.Range(min=1, max=100_000_000),
                                metadata={"description": "The voucher's face value, shown to the player."})


class AlipayAccountAdapter(RewardAdapter):
    """What the two Alipay adapters share: a batch looks its players' Alipay accounts up in one query, then pays
    ``concurrency`` of them at a time, each through ``pay(grant, alipay_user_id)``."""

    concurrency = 16

    def issue(self, grant: Grant) -> str:
        return one_of(self.issue_many([grant]), grant)

    def issue_many(self, grants: list[Grant]) -> Issued:
        payees = alipay_user_ids(self.context.session_factory, [grant.user_id for grant in grants])

        def pay(grant: Grant) -> str:
            payee = payees.get(grant.user_id)
            if payee is None:  # a dead letter: only players who logged in with Alipay can be paid there
                raise PermanentIssueError(f"player {grant.user_id} has no Alipay account (they never logged in "
                                          "with Alipay)")
            return self.pay(grant, payee)

        return self.each(grants, pay)

    @abstractmethod
    def pay(self, grant: Grant, payee: str) -> str: ...


@reward_types.register("alipay_voucher")
class AlipayVoucherAdapter(AlipayAccountAdapter):
    type_name = "alipay_voucher"
    params_schema = AlipayVoucherParams

    def pay(self, grant: Grant, payee: str) -> str:
        model = AlipayMarketingActivityVoucherSendModel()
        model.activity_id = grant.reward["activity_id"]
        model.out_biz_no = grant.id
        model.user_id = payee
        request = AlipayMarketingActivityVoucherSendRequest(biz_model=model)
        try:
            text = gateway_for(self.context.settings).execute(request)
        except AlipayUnavailableError as exc:
            raise OutcomeUnknownError(f"outcome unknown ({exc.details.get('reason')}); the retry sends the same "
                                      "out_biz_no") from None
        response = AlipayMarketingActivityVoucherSendResponse()
        response.parse_response_content(text)
        if response.code == SUCCESS and response.voucher_id:
            return f"voucher:{response.voucher_id}"
        raise refused(*refusal(response))

    def query(self, grant: Grant) -> str | None:
        """The voucher the gateway holds for the grant's voucher id, None when it has none.

        Alipay looks a voucher up only by its voucher id, never by out_biz_no, so a grant without an external
        id (not issued yet, failed, dead) answers None without asking. A voucher sent for such a grant anyway
        (the worker died before writing the row) is not lost: sending the grant again under the same
        out_biz_no -- the retry, or an admin's retry of a dead letter -- answers that very voucher.
        """
        if not grant.external_id:
            return None
        kind, _, voucher_id = grant.external_id.partition(":")
        if kind != "voucher" or not voucher_id:
            raise PermanentIssueError(f"{grant.external_id!r} is not a voucher id; cannot ask Alipay about it")
        model = AlipayMarketingVoucherQueryModel()
        model.voucher_id = voucher_id
        request = AlipayMarketingVoucherQueryRequest(biz_model=model)
        try:
            text = gateway_for(self.context.settings).execute(request)
        except AlipayUnavailableError as exc:
            raise RetryableIssueError(f"Alipay did not answer ({exc.details.get('reason')}); ask again later") from None
        response = AlipayMarketingVoucherQueryResponse()
        response.parse_response_content(text)
        if response.code == SUCCESS:
            return f"voucher:{response.voucher_id or voucher_id}"
        if response.sub_code == NOT_FOUND:
            return None
        raise refused(*refusal(response))

