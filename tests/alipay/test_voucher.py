"""alipay_voucher: vouchers sent through the SDK to the sandbox, exactly once whatever the gateway does."""

from __future__ import annotations

from typing import Any

import pytest
import requests
from sqlalchemy import select

from campaigns.models import Grant, GrantStatus
from campaigns.players import find_or_create_alipay
from rewards.reconcile import reconcile
from tests.support.factories import flash_sale_definition

QUERY = "alipay.marketing.voucher.query"


@pytest.fixture(autouse=True)
def _no_leftover_faults(alipay_sandbox):
    yield
    with alipay_sandbox.sandbox.state.lock:
        alipay_sandbox.sandbox.state.faults.clear()


@pytest.fixture
def activity(alipay_sandbox) -> str:
    return requests.post(f"{alipay_sandbox.url}/sandbox/activities", json={"stock": 100}, timeout=5).json()[
        "activity_id"]


def voucher_sale(activity_id: str, stock: int = 10) -> dict[str, Any]:
    return flash_sale_definition(skus=[{
        "sku": "V20", "name": "20 yuan voucher", "price_fen": 0, "stock": stock, "per_user_limit": 1,
        "reward": {"type": "alipay_voucher", "activity_id": activity_id, "amount_fen": 2000, "cost_fen": 2000},
    }])


def alipay_player(container, user_id: str) -> str:
    with container.session_factory() as session:
        return find_or_create_alipay(session, user_id, clock=container.clock).id


def ledger(alipay_sandbox) -> list[dict[str, Any]]:
    return requests.get(f"{alipay_sandbox.url}/sandbox/ledger", timeout=5).json()["vouchers"]


def grant_of(db_session, claim_outcome) -> Grant:
    db_session.rollback()
    return db_session.scalar(select(Grant).where(Grant.claim_id == claim_outcome["claim_id"]))


def voucher_grant(factory, container, settle, db_session, activity: str, user_id: str, *, worker: bool = True) -> Grant:
    player = alipay_player(container, user_id)
    campaign = factory.campaign(voucher_sale(activity))
    outcome = factory.play(campaign, player, "buy", {"sku": "V20", "quantity": 1}).outcome
    settle(worker=worker)
    return grant_of(db_session, outcome)


def queries_of(alipay_sandbox, voucher_id: str) -> list[dict[str, Any]]:
    return [c["answer"] for c in alipay_sandbox.sandbox.state.calls
            if c["method"] == QUERY and voucher_id in c["params"]["biz_content"]]


def test_a_won_voucher_is_sent_once_to_the_players_alipay_account(factory, container, settle, db_session,
                                                                  alipay_sandbox, activity):
    player = alipay_player(container, "2088000000000101")
    campaign = factory.campaign(voucher_sale(activity))
    outcome = factory.play(campaign, player, "buy", {"sku": "V20", "quantity": 1}).outcome
    settle()
    grant = grant_of(db_session, outcome)
    sent = [v for v in ledger(alipay_sandbox) if v["out_biz_no"] == grant.id]
    assert grant.status == GrantStatus.ISSUED and len(sent) == 1
    assert sent[0]["user_id"] == "2088000000000101" and sent[0]["activity_id"] == activity
    assert grant.external_id == f"voucher:{sent[0]['voucher_id']}"


@pytest.mark.parametrize("fault", ["timeout_after", "timeout_before", "http_500", "system_error"])
def test_a_gateway_fault_is_retried_and_still_sends_exactly_one_voucher(factory, container, settle, db_session,
                                                                         alipay_sandbox, activity, fault):
    player = alipay_player(container, f"2088-{fault}")
    campaign = factory.campaign(voucher_sale(activity))
    outcome = factory.play(campaign, player, "buy", {"sku": "V20", "quantity": 1}).outcome
    alipay_sandbox.sandbox.inject("alipay.marketing.activity.voucher.send", fault)
    settle()
    grant = grant_of(db_session, outcome)
    sent = [v for v in ledger(alipay_sandbox) if v["out_biz_no"] == grant.id]
    assert grant.status == GrantStatus.ISSUED and grant.attempts == 2, (grant.status, grant.last_error)
    assert len(sent) == 1 and grant.external_id == f"voucher:{sent[0]['voucher_id']}"
    calls = [c for c in alipay_sandbox.sandbox.state.calls
             if c["method"] == "alipay.marketing.activity.voucher.send" and grant.id in c["params"]["biz_content"]]
    # Every attempt that reached the gateway sent the very same request.
    assert len({c["params"]["biz_content"] for c in calls}) == 1


def test_a_refusal_for_good_is_a_dead_letter_with_the_providers_reason(factory, container, settle, db_session):
    player = alipay_player(container, "2088000000000102")
    campaign = factory.campaign(voucher_sale("NO-SUCH-ACTIVITY"))
    outcome = factory.play(campaign, player, "buy", {"sku": "V20", "quantity": 1}).outcome
    settle()
    grant = grant_of(db_session, outcome)
    assert grant.status == GrantStatus.DEAD and grant.attempts == 1
    assert "ACTIVITY_NOT_EXIST" in grant.last_error


def test_a_player_without_an_alipay_account_gets_a_dead_letter_not_a_voucher(factory, settle, db_session,
                                                                            alipay_sandbox, activity):
    campaign = factory.campaign(voucher_sale(activity))
    outcome = factory.play(campaign, "dev-only-player", "buy", {"sku": "V20", "quantity": 1}).outcome
    settle()
    grant = grant_of(db_session, outcome)
    assert grant.status == GrantStatus.DEAD and "no Alipay account" in grant.last_error
    assert not [v for v in ledger(alipay_sandbox) if v["out_biz_no"] == grant.id]


def test_the_same_out_biz_no_with_another_request_is_refused_by_the_gateway(settings, alipay_sandbox, activity):
    from alipay.aop.api.domain.AlipayMarketingActivityVoucherSendModel import (
        AlipayMarketingActivityVoucherSendModel,
    )
    from alipay.aop.api.request.AlipayMarketingActivityVoucherSendRequest import (
        AlipayMarketingActivityVoucherSendRequest,
    )

    from alipay_platform.gateway import AlipayGateway

    def send(user_id: str) -> dict[str, Any]:
        import json

        model = AlipayMarketingActivityVoucherSendModel()
        model.activity_id, model.out_biz_no, model.user_id = activity, "G-same-no", user_id
        return json.loads(AlipayGateway(settings).execute(AlipayMarketingActivityVoucherSendRequest(biz_model=model)))

    first, replay, changed = send("2088000000000201"), send("2088000000000201"), send("2088000000000202")
    assert first["code"] == replay["code"] == "10000" and first["voucher_id"] == replay["voucher_id"]
    assert changed["sub_code"] == "PAYMENT_INFO_INCONSISTENCY"
    assert len([v for v in ledger(alipay_sandbox) if v["out_biz_no"] == "G-same-no"]) == 1


def test_reconciliation_asks_alipay_and_finds_a_voucher_it_no_longer_has_missing(
        factory, container, settle, db_session, alipay_sandbox, activity):
    grant = voucher_grant(factory, container, settle, db_session, activity, "2088000000000111")
    day = container.clock.now().date()
    held = reconcile(container.adapter_context, day)
    assert held.clean and held.checked == held.matched == 1

    with alipay_sandbox.sandbox.state.lock:
        del alipay_sandbox.sandbox.state.vouchers[grant.id]
    gone = reconcile(container.adapter_context, day)
    assert gone.missing == [grant.id] and gone.matched == 0 and not gone.unreachable
    voucher_id = grant.external_id.removeprefix("voucher:")
    answers = queries_of(alipay_sandbox, voucher_id)
    assert [a["code"] for a in answers] == ["10000", "40004"] and answers[0]["voucher_id"] == voucher_id
    assert answers[0]["user_id"] == "2088000000000111" and answers[0]["template_id"] == activity
    assert answers[1]["sub_code"] == "VOUCHER_NOT_EXIST"


@pytest.mark.parametrize("fault", ["timeout_before", "http_500", "system_error"])
def test_a_voucher_query_the_gateway_fails_is_unreachable_not_missing(factory, container, settle, db_session,
                                                                      alipay_sandbox, activity, fault):
    grant = voucher_grant(factory, container, settle, db_session, activity, f"2088-query-{fault}")
    alipay_sandbox.sandbox.inject(QUERY, fault)
    report = reconcile(container.adapter_context, container.clock.now().date())
    assert [u["grant_id"] for u in report.unreachable] == [grant.id] and not report.missing, report.unreachable


def test_a_voucher_grant_not_yet_issued_is_not_looked_up(factory, container, settle, db_session, alipay_sandbox,
                                                        activity):
    # Alipay finds vouchers by voucher id only; the grant's retry, under the same out_biz_no, is what finds a
    # voucher sent for it.
    grant = voucher_grant(factory, container, settle, db_session, activity, "2088000000000112", worker=False)
    calls = len(alipay_sandbox.sandbox.state.calls)
    report = reconcile(container.adapter_context, container.clock.now().date())
    assert grant.status == GrantStatus.PENDING and grant.external_id is None
    assert report.clean and report.matched == 1 and len(alipay_sandbox.sandbox.state.calls) == calls
