"""The sandbox's random faults for load tests: rates per call, a seed, a method filter, queued faults first."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import pytest
import requests
from alipay.aop.api.domain.AlipayTradeQueryModel import AlipayTradeQueryModel
from alipay.aop.api.request.AlipayTradeQueryRequest import AlipayTradeQueryRequest

from alipay_platform.gateway import AlipayGateway, AlipayUnavailableError, AuthCodeInvalidError

OAUTH = "alipay.system.oauth.token"
TRADE_QUERY = "alipay.trade.query"


@pytest.fixture(autouse=True)
def _no_leftover_faults(alipay_sandbox):
    """The sandbox serves the whole session: whatever a test sets here is gone before the next one."""
    yield
    alipay_sandbox.sandbox.set_fault_rates({})
    with alipay_sandbox.sandbox.state.lock:
        alipay_sandbox.sandbox.state.faults.clear()


@pytest.fixture
def gateway(settings) -> AlipayGateway:
    return AlipayGateway(settings)


def login(gateway: AlipayGateway) -> str:
    """One alipay.system.oauth.token call with a code that does not exist: the fault the client met, or "none"
    when the gateway answered the call itself (the code is invalid)."""
    try:
        gateway.user_for_auth_code("no-such-code")
    except AuthCodeInvalidError:
        return "none"
    except AlipayUnavailableError as exc:
        if exc.details.get("sub_code") == "SYSTEM_ERROR":
            return "system_error"
        if exc.details.get("reason") == "TypeError":  # how the SDK reports a non-200 answer
            return "http_500"
        raise
    raise AssertionError("a code that does not exist logged someone in")


def trade_query(gateway: AlipayGateway) -> str:
    model = AlipayTradeQueryModel()
    model.out_trade_no = "no-such-trade"
    return json.loads(gateway.execute(AlipayTradeQueryRequest(biz_model=model))).get("sub_code")


def fault_counts(alipay_sandbox) -> Counter[str]:
    """What the sandbox says it applied, as GET /sandbox/ledger shows it."""
    return Counter(requests.get(f"{alipay_sandbox.url}/sandbox/ledger", timeout=5).json()["faults"])


def set_rates(alipay_sandbox, body: Any) -> requests.Response:
    return requests.post(f"{alipay_sandbox.url}/sandbox/fault_rates", json=body, timeout=5)


def test_faults_happen_at_about_their_rates_and_the_ledger_counts_them(alipay_sandbox, gateway):
    before = fault_counts(alipay_sandbox)
    alipay_sandbox.sandbox.set_fault_rates({"http_500": 0.2, "system_error": 0.1}, methods=[OAUTH], seed=7)
    # 200 calls: each costs about 45 ms, signing and verifying in pure Python at both ends.
    seen = Counter(login(gateway) for _ in range(200))
    applied = fault_counts(alipay_sandbox) - before
    assert seen["none"] + seen["http_500"] + seen["system_error"] == 200
    # About 3 standard deviations of a binomial over 200 calls (a seeded run is reproducible, not lucky).
    assert abs(seen["http_500"] - 40) <= 16 and abs(seen["system_error"] - 20) <= 12, seen
    assert applied == Counter({"http_500": seen["http_500"], "system_error": seen["system_error"]}), applied


def test_the_same_seed_gives_the_same_faults(alipay_sandbox, gateway):
    runs = []
    for _ in range(2):
        alipay_sandbox.sandbox.set_fault_rates({"http_500": 0.3, "system_error": 0.3}, seed=42)
        runs.append([login(gateway) for _ in range(20)])
    assert runs[0] == runs[1] and len(set(runs[0])) == 3


def test_rates_apply_only_to_the_methods_named(alipay_sandbox, gateway):
    alipay_sandbox.sandbox.set_fault_rates({"system_error": 1.0}, methods=[TRADE_QUERY])
    assert [login(gateway) for _ in range(5)] == ["none"] * 5
    assert trade_query(gateway) == "SYSTEM_ERROR"
    alipay_sandbox.sandbox.set_fault_rates({"system_error": 1.0})  # every method
    assert login(gateway) == "system_error" and trade_query(gateway) == "SYSTEM_ERROR"


def test_queued_faults_come_before_the_rates(alipay_sandbox, gateway):
    alipay_sandbox.sandbox.set_fault_rates({"system_error": 1.0}, methods=[OAUTH])
    alipay_sandbox.sandbox.inject(OAUTH, "http_500", "http_500")
    assert [login(gateway) for _ in range(3)] == ["http_500", "http_500", "system_error"]
    calls = [c["fault"] for c in alipay_sandbox.sandbox.state.calls if c["method"] == OAUTH][-3:]
    assert calls == ["http_500", "http_500", "system_error"]


def test_empty_rates_turn_the_faults_off(alipay_sandbox, gateway):
    assert set_rates(alipay_sandbox, {"rates": {"http_500": 1.0}, "methods": None, "seed": 1}).status_code == 200
    assert login(gateway) == "http_500"
    assert set_rates(alipay_sandbox, {"rates": {}}).status_code == 200
    before = fault_counts(alipay_sandbox)
    assert [login(gateway) for _ in range(20)] == ["none"] * 20
    assert fault_counts(alipay_sandbox) == before


def test_dealing_drawn_for_a_method_that_is_not_a_transfer_is_no_fault(alipay_sandbox, gateway):
    alipay_sandbox.sandbox.set_fault_rates({"dealing": 1.0})
    before = fault_counts(alipay_sandbox)
    code = requests.post(f"{alipay_sandbox.url}/sandbox/auth_codes", json={"user_id": "2088000000000701"},
                         timeout=5).json()["auth_code"]
    assert gateway.user_for_auth_code(code).user_id == "2088000000000701"
    assert trade_query(gateway) == "ACQ.TRADE_NOT_EXIST"
    assert [c["fault"] for c in alipay_sandbox.sandbox.state.calls[-2:]] == [None, None]
    assert fault_counts(alipay_sandbox) == before


@pytest.mark.parametrize(("body", "message"), [
    ({"rates": {"meteor": 0.1}}, "unknown faults"),
    ({"rates": {"http_500": 1.5}}, "from 0 to 1"),
    ({"rates": {"http_500": -0.1}}, "from 0 to 1"),
    ({"rates": {"http_500": "0.1"}}, "from 0 to 1"),
    ({"rates": {"http_500": True}}, "from 0 to 1"),
    ({"rates": {"http_500": 0.6, "system_error": 0.5}}, "more than 1"),
    ({"rates": {"http_500": 0.1}, "methods": ["alipay.no.such.method"]}, "unknown methods"),
    ({"rates": {"http_500": 0.1}, "methods": OAUTH}, "list of method names"),
    ({"rates": {"http_500": 0.1}, "seed": "seven"}, "integer"),
    ({"rates": [0.1]}, "JSON object with rates"),
    ({}, "JSON object with rates"),
    ([], "JSON object with rates"),
])
def test_bad_rates_are_refused_and_change_nothing(alipay_sandbox, body, message):
    alipay_sandbox.sandbox.set_fault_rates({"system_error": 0.5}, methods=[TRADE_QUERY])
    answer = set_rates(alipay_sandbox, body)
    assert answer.status_code == 400 and message in answer.text, answer.text
    state = alipay_sandbox.sandbox.state
    assert state.fault_rates == {"system_error": 0.5} and state.fault_rate_methods == {TRADE_QUERY}


def test_the_python_call_refuses_what_the_endpoint_refuses(alipay_sandbox):
    with pytest.raises(ValueError, match="unknown faults"):
        alipay_sandbox.sandbox.set_fault_rates({"meteor": 0.1})
    with pytest.raises(ValueError, match="more than 1"):
        alipay_sandbox.sandbox.set_fault_rates(dict.fromkeys(("http_500", "system_error", "dealing"), 0.4))
    alipay_sandbox.sandbox.set_fault_rates({"http_500": 0.1, "system_error": 0.2, "timeout_after": 0.7})  # == 1
