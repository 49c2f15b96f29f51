"""alipay_cash: cash red packets as fund transfers in certificate mode, exactly once whatever the gateway does."""

from __future__ import annotations

import json
from typing import Any

import pytest
import requests
from alipay.aop.api.domain.AlipayFundTransCommonQueryModel import AlipayFundTransCommonQueryModel
from alipay.aop.api.request.AlipayFundTransCommonQueryRequest import AlipayFundTransCommonQueryRequest
from sqlalchemy import select

from alipay_platform.gateway import AlipayGateway, AlipayUnavailableError, yuan
from alipay_sandbox.certs import issue
from alipay_sandbox.keys import generate
from campaigns.models import Grant, GrantStatus
from campaigns.players import find_or_create_alipay
from tests.support.factories import flash_sale_definition

TRANSFER = "alipay.fund.trans.uni.transfer"


@pytest.fixture(autouse=True)
def _no_leftover_faults(alipay_sandbox):
    yield
    with alipay_sandbox.sandbox.state.lock:
        alipay_sandbox.sandbox.state.faults.clear()
        alipay_sandbox.sandbox.state.closed_payees.clear()


def red_packet_sale(amount_fen: int = 88) -> dict[str, Any]:
    return flash_sale_definition(skus=[{
        "sku": "RP", "name": "Red packet", "price_fen": 0, "stock": 50, "per_user_limit": 1,
        "reward": {"type": "alipay_cash", "amount_fen": amount_fen, "order_title": "活动红包", "cost_fen": amount_fen},
    }])


def paid_grant(factory, container, settle, db_session, user_id: str, amount_fen: int = 88,
               faults: tuple[str, ...] = (), sandbox=None, **settlement: Any) -> Grant:
    with container.session_factory() as session:
        player = find_or_create_alipay(session, user_id, clock=container.clock).id
    campaign = factory.campaign(red_packet_sale(amount_fen))
    outcome = factory.play(campaign, player, "buy", {"sku": "RP", "quantity": 1}).outcome
    if faults:
        sandbox.sandbox.inject(TRANSFER, *faults)
    settle(**settlement)
    db_session.rollback()
    return db_session.scalar(select(Grant).where(Grant.claim_id == outcome["claim_id"]))


def transfers_of(alipay_sandbox, grant: Grant) -> list[dict[str, Any]]:
    ledger = requests.get(f"{alipay_sandbox.url}/sandbox/ledger", timeout=5).json()
    return [t for t in ledger["transfers"] if t["out_biz_no"] == grant.id]


def test_a_cash_red_packet_is_one_transfer_in_certificate_mode(factory, container, settle, db_session,
                                                              alipay_sandbox):
    grant = paid_grant(factory, container, settle, db_session, "2088000000000301", amount_fen=88)
    [moved] = transfers_of(alipay_sandbox, grant)
    assert grant.status == GrantStatus.ISSUED and grant.external_id == f"transfer:{moved['order_id']}"
    assert moved == {**moved, "amount_fen": 88, "payee": "2088000000000301", "status": "SUCCESS"}
    sent = [c for c in alipay_sandbox.sandbox.state.calls if c["method"] == TRANSFER
            and grant.id in c["params"]["biz_content"]][0]
    assert sent["params"]["app_cert_sn"] == alipay_sandbox.sandbox.certs.app_sn
    assert sent["params"]["alipay_root_cert_sn"] == alipay_sandbox.sandbox.certs.root_sn
    assert json.loads(sent["params"]["biz_content"])["trans_amount"] == "0.88"


@pytest.mark.parametrize("fault", ["timeout_after", "timeout_before", "http_500", "system_error", "dealing"])
def test_a_fault_never_pays_twice(factory, container, settle, db_session, alipay_sandbox, fault):
    grant = paid_grant(factory, container, settle, db_session, f"2088-cash-{fault}", faults=(fault,),
                       sandbox=alipay_sandbox)
    assert grant.status == GrantStatus.ISSUED, (grant.status, grant.last_error)
    [moved] = transfers_of(alipay_sandbox, grant)
    assert moved["status"] == "SUCCESS" and grant.external_id == f"transfer:{moved['order_id']}"
    sends = [c for c in alipay_sandbox.sandbox.state.calls
             if c["method"] == TRANSFER and grant.id in c["params"]["biz_content"]]
    assert len({c["params"]["biz_content"] for c in sends}) == 1  # every send was byte-identical


def test_a_timeout_after_the_money_moved_is_settled_by_asking_not_by_sending_again(
        factory, container, settle, db_session, alipay_sandbox):
    grant = paid_grant(factory, container, settle, db_session, "2088000000000302", faults=("timeout_after",),
                       sandbox=alipay_sandbox)
    calls = [c["method"] for c in alipay_sandbox.sandbox.state.calls
             if grant.id in c["params"].get("biz_content", "")]
    assert calls == [TRANSFER, "alipay.fund.trans.common.query"] and grant.attempts == 2


def test_a_timeout_leaves_the_grant_unknown_until_an_attempt_asks(factory, container, settle, db_session,
                                                                  alipay_sandbox):
    grant = paid_grant(factory, container, settle, db_session, "2088000000000303", faults=("timeout_after",),
                       sandbox=alipay_sandbox, retry_intervals=[3600])  # the retry waits an hour
    assert grant.status == GrantStatus.UNKNOWN and "outcome unknown" in grant.last_error
    assert [t["status"] for t in transfers_of(alipay_sandbox, grant)] == ["SUCCESS"]  # the money did move


@pytest.mark.parametrize(("setup", "sub_code"), [
    ("closed", "PAYEE_NOT_EXIST"),
    ("broke", "PAYER_BALANCE_NOT_ENOUGH"),
])
def test_a_business_refusal_is_a_dead_letter_and_moves_nothing(factory, container, settle, db_session,
                                                               alipay_sandbox, setup, sub_code):
    user = f"2088-refused-{setup}"
    state = alipay_sandbox.sandbox.state
    with state.lock:
        balance = state.balance_fen
        if setup == "closed":
            state.closed_payees.add(user)
        else:
            state.balance_fen = 10
    try:
        grant = paid_grant(factory, container, settle, db_session, user)
    finally:
        with state.lock:
            state.balance_fen = max(state.balance_fen, balance)
    assert grant.status == GrantStatus.DEAD and sub_code in grant.last_error and grant.attempts == 1
    assert transfers_of(alipay_sandbox, grant) == []


def test_transfers_are_refused_outside_certificate_mode_and_under_a_foreign_certificate(settings, alipay_sandbox):
    model = AlipayFundTransCommonQueryModel()
    model.out_biz_no, model.product_code, model.biz_scene = "Gnone", "TRANS_ACCOUNT_NO_PWD", "DIRECT_TRANSFER"
    plain = json.loads(AlipayGateway(settings).execute(AlipayFundTransCommonQueryRequest(biz_model=model)))
    assert plain["sub_code"] == "isv.cert-mode-required"

    other = issue(generate(), generate())
    foreign = AlipayGateway(settings.replace(alipay_cert=other.alipay_pem, alipay_root_cert=other.root_pem))
    with pytest.raises(AlipayUnavailableError) as refused:  # the gateway's answer is signed under an unknown cert
        foreign.execute_cert(AlipayFundTransCommonQueryRequest(biz_model=model))
    assert refused.value.details["reason"] == "ResponseException"


def test_amounts_are_yuan_strings_with_two_decimals():
    assert [yuan(f) for f in (10, 88, 100, 12345, 2_000_000)] == ["0.10", "0.88", "1.00", "123.45", "20000.00"]
