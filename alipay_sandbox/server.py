"""The sandbox gateway: ``POST /gateway.do`` as Alipay answers it, plus a few ``/sandbox/*`` helpers.

Every request's RSA2 signature is checked with the public key of the app it
names; every answer is ``{"<method_with_underscores>_response": {...},
"sign": "<RSA2 of exactly those bytes>"}``, or ``error_response`` for errors
of the gateway itself, as the real one does. Methods are handlers keyed by
name (see ``methods``); each answers the response object.
"""

from __future__ import annotations

import json
import math
import random
import re
import secrets
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import requests
from werkzeug.exceptions import BadRequest, HTTPException, NotFound
from werkzeug.routing import Map, Rule
from werkzeug.serving import BaseWSGIServer, make_server
from werkzeug.wrappers import Request, Response

from .certs import Certificates, issue
from .keys import KeyPair, generate
from .signing import NOTIFICATION_EXCLUDED, sign, string_to_sign, verify

AUTH_CODE_TTL = timedelta(minutes=5)
DEFAULT_APP_ID = "2021000000000001"
SUCCESS = {"code": "10000", "msg": "Success"}


def business_error(sub_code: str, sub_msg: str, code: str = "40004", msg: str = "Business Failed") -> dict[str, str]:
    return {"code": code, "msg": msg, "sub_code": sub_code, "sub_msg": sub_msg}


@dataclass
class AuthCode:
    user_id: str
    expires_at: datetime
    used: bool = False


@dataclass
class Voucher:
    voucher_id: str
    activity_id: str
    out_biz_no: str
    user_id: str
    biz_content: str


@dataclass
class Transfer:
    out_biz_no: str
    order_id: str
    amount_fen: int
    payee: str
    status: str
    biz_content: str
    trans_date: str


@dataclass
class Trade:
    out_trade_no: str
    trade_no: str
    amount: str
    subject: str
    buyer_id: str
    notify_url: str
    biz_content: str
    status: str = "WAIT_BUYER_PAY"
    paid_at: str = ""


@dataclass
class SandboxState:
    """What the sandbox remembers; every change under ``lock``."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    auth_codes: dict[str, AuthCode] = field(default_factory=dict)
    calls: list[dict[str, Any]] = field(default_factory=list)
    # Voucher activities the merchant created (activity id -> vouchers left) and the vouchers sent, by out_biz_no.
    activities: dict[str, int] = field(default_factory=dict)
    vouchers: dict[str, Voucher] = field(default_factory=dict)
    # Fund transfers by out_biz_no, and the merchant's balance they are paid from (fen).
    transfers: dict[str, Transfer] = field(default_factory=dict)
    balance_fen: int = 10**12
    # Payee accounts that cannot receive (closed, frozen): a transfer to them is PAYEE_NOT_EXIST.
    closed_payees: set[str] = field(default_factory=set)
    # Mini-program payments by out_trade_no, their refunds by out_request_no, and every notification attempt.
    trades: dict[str, Trade] = field(default_factory=dict)
    refunds: dict[str, dict[str, Any]] = field(default_factory=dict)
    notifications: list[dict[str, Any]] = field(default_factory=list)
    # Faults to inject, per method, consumed one per call: see FAULTS.
    faults: dict[str, list[str]] = field(default_factory=dict)
    # Random faults for load tests (Sandbox.set_fault_rates): fault -> probability per call of the methods named
    # (all when None), drawn from fault_random.
    fault_rates: dict[str, float] = field(default_factory=dict)
    fault_rate_methods: frozenset[str] | None = None
    fault_random: random.Random = field(default_factory=random.Random)
    # How many calls each fault was applied to, queued or drawn.
    fault_counts: dict[str, int] = field(default_factory=dict)


# timeout_before: answer nothing until the client gave up, change nothing; timeout_after: do the work, then
# answer too late (the money moved, the client does not know); http_500: a 500 page; system_error: a signed
# 20000 SYSTEM_ERROR answer, nothing done; dealing: a transfer is accepted as DEALING (it succeeds once queried).
FAULTS = ("timeout_before", "timeout_after", "http_500", "system_error", "dealing")
# The only method "dealing" changes anything for; on any other it is no fault at all.
DEALING_METHOD = "alipay.fund.trans.uni.transfer"
# When a notification goes out again (seconds after the previous one): Alipay's own schedule is about
# 4m, 10m, 10m, 1h, 2h, 6h, 15h over 25 hours; the sandbox's default is compressed for tests and the demo.
NOTIFY_INTERVALS = (0.0, 0.5, 1.0, 2.0, 4.0, 8.0, 15.0, 30.0)
# Methods the open platform only accepts in public-key certificate mode.
CERT_METHODS = {"alipay.fund.trans.uni.transfer", "alipay.fund.trans.common.query"}

Handler = Callable[["Sandbox", Mapping[str, str], Mapping[str, Any]], dict[str, Any]]
methods: dict[str, Handler] = {}


def method(name: str) -> Callable[[Handler], Handler]:
    def register(handler: Handler) -> Handler:
        methods[name] = handler
        return handler
    return register


def _unknown_methods(names: Iterable[str]) -> set[str]:
    """Names no handler answers (here because ``Sandbox.set_fault_rates`` has a parameter named ``methods``)."""
    return set(names) - methods.keys()


def _draw(rates: Mapping[str, float], rng: random.Random) -> str | None:
    """One fault or none, each fault with its rate: one uniform draw against the rates laid end to end, in the
    order of FAULTS so that a seed gives the same faults however the rates were written."""
    point = rng.random()
    for fault in FAULTS:
        point -= rates.get(fault, 0.0)
        if point < 0:
            return fault
    return None


class Sandbox:
    """One gateway: its own key pair, the apps it knows (app id -> their public key) and its state."""

    def __init__(self, keys: KeyPair, apps: Mapping[str, str], *, clock: Callable[[], datetime] | None = None,
                 late_seconds: float = 2.0, certs: Certificates | None = None, seller_id: str = "2088000000000000",
                 notify_intervals: tuple[float, ...] = NOTIFY_INTERVALS, latency_seconds: float = 0.0) -> None:
        self.keys = keys
        # Added to every gateway call before it answers: the real gateway is tens of ms away (benchmarks).
        self.latency_seconds = latency_seconds
        # The merchant's account (seller_id in notifications) and when a notification is sent again.
        self.seller_id = seller_id
        self.notify_intervals = notify_intervals
        # Certificate mode: the root chain and Alipay's certificate it answers with, and the app's it expects.
        self.certs = certs
        self.apps = dict(apps)
        self.state = SandboxState()
        self.now = clock or (lambda: datetime.now(UTC))
        # How long a "timeout" fault keeps the client waiting: set above the client's socket timeout.
        self.late_seconds = late_seconds
        self._urls = Map([
            Rule("/gateway.do", endpoint="gateway", methods=["POST"]),
            Rule("/sandbox/auth_codes", endpoint="issue_auth_code", methods=["POST"]),
            Rule("/sandbox/activities", endpoint="create_activity", methods=["POST"]),
            Rule("/sandbox/faults", endpoint="inject_faults", methods=["POST"]),
            Rule("/sandbox/fault_rates", endpoint="set_fault_rates", methods=["POST"]),
            Rule("/sandbox/ledger", endpoint="ledger", methods=["GET"]),
            Rule("/sandbox/trades/<out_trade_no>/pay", endpoint="pay_trade", methods=["POST"]),
            Rule("/sandbox/calls", endpoint="list_calls", methods=["GET"]),
        ])

    def inject(self, method_name: str, *faults: str) -> None:
        """The next calls of ``method_name`` fail in these ways, one fault per call, in order."""
        unknown = set(faults) - set(FAULTS)
        if unknown:
            raise ValueError(f"unknown faults {sorted(unknown)}")
        with self.state.lock:
            self.state.faults.setdefault(method_name, []).extend(faults)

    def set_fault_rates(self, rates: Mapping[str, float], *, methods: Iterable[str] | None = None,
                        seed: int | None = None) -> None:
        """Load tests: each call of ``methods`` (every method when None) independently meets fault f with
        probability ``rates[f]`` (at most one fault per call), drawn from a generator seeded with ``seed``.
        Queued faults (``inject``) go first; ``set_fault_rates({})`` turns the rates off."""
        rates = dict(rates)
        unknown = set(rates) - set(FAULTS)
        if unknown:
            raise ValueError(f"unknown faults {sorted(unknown)}")
        for fault, rate in rates.items():
            if isinstance(rate, bool) or not isinstance(rate, int | float) or not 0 <= rate <= 1:
                raise ValueError(f"the rate of {fault} must be a number from 0 to 1, not {rate!r}")
        if math.fsum(rates.values()) > 1 + 1e-9:  # slack for decimal rates meant to add up to exactly 1
            raise ValueError(f"the rates add up to more than 1: {rates}")
        if isinstance(methods, str):
            raise ValueError("methods is a list of method names, not one name")
        names = None if methods is None else frozenset(methods)
        unknown = _unknown_methods(names or ())
        if unknown:
            raise ValueError(f"unknown methods {sorted(unknown)}")
        with self.state.lock:
            self.state.fault_rates = {fault: float(rate) for fault, rate in rates.items() if rate}
            self.state.fault_rate_methods = names
            self.state.fault_random.seed(seed)

    def _next_fault(self, method_name: str) -> str | None:
        """The fault this call meets: the next queued one, else one drawn at the rates; counted."""
        state = self.state
        with state.lock:
            queue = state.faults.get(method_name)
            if queue:
                fault: str | None = queue.pop(0)
            elif state.fault_rates and (state.fault_rate_methods is None or method_name in state.fault_rate_methods):
                fault = _draw(state.fault_rates, state.fault_random)
            else:
                fault = None
            if fault == "dealing" and method_name != DEALING_METHOD:
                fault = None
            if fault is not None:
                state.fault_counts[fault] = state.fault_counts.get(fault, 0) + 1
            return fault

    # -- WSGI -----------------------------------------------------------------------------------------------
    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        request = Request(environ)
        try:
            endpoint, arguments = self._urls.bind_to_environ(environ).match()
            response = getattr(self, f"_{endpoint}")(request, **arguments)
        except HTTPException as exc:
            response = exc.get_response(environ)
        return response(environ, start_response)

    def _gateway(self, request: Request) -> Response:
        params = {**request.args.to_dict(), **request.form.to_dict()}
        name = params.get("method", "")
        key = name.replace(".", "_") + "_response"
        public_key = self.apps.get(params.get("app_id", ""))
        if public_key is None:
            return self._answer("error_response", business_error("isv.invalid-app-id", "无效的AppID参数",
                                                                  "40002", "Invalid Arguments"))
        if params.get("sign_type") != "RSA2" or not verify(
                public_key, string_to_sign(params).encode(params.get("charset") or "utf-8"), params.get("sign", "")):
            return self._answer("error_response", business_error("isv.invalid-signature", "验签出错",
                                                                  "40002", "Invalid Arguments"))
        handler = methods.get(name)
        if handler is None:
            return self._answer("error_response", business_error("isv.invalid-method", "不存在的方法名",
                                                                  "40002", "Invalid Arguments"))
        cert_sn = None
        if name in CERT_METHODS:
            if self.certs is None or params.get("app_cert_sn") != self.certs.app_sn \
                    or params.get("alipay_root_cert_sn") != self.certs.root_sn:
                return self._answer("error_response", business_error(
                    "isv.cert-mode-required", "该接口仅支持公钥证书方式调用", "40002", "Invalid Arguments"))
            cert_sn = self.certs.alipay_sn
        biz = json.loads(params["biz_content"]) if params.get("biz_content") else {}
        fault = self._next_fault(name)
        body: dict[str, Any] | None = None  # no signed answer at all: a timeout before the work, a 500 page
        if fault == "system_error":
            body = business_error("SYSTEM_ERROR", "系统繁忙", "20000", "Service Currently Unavailable")
        elif fault not in ("timeout_before", "http_500"):
            body = handler(self, {**params, "_fault": fault or ""}, biz)
        with self.state.lock:
            self.state.calls.append({"method": name, "params": params, "answer": body, "fault": fault})
        if self.latency_seconds:
            time.sleep(self.latency_seconds)
        if fault == "timeout_before":
            time.sleep(self.late_seconds)
            return Response("", status=504)
        if fault == "http_500":
            return Response("<html>500 Internal Server Error</html>", status=500)
        if fault == "timeout_after":
            time.sleep(self.late_seconds)
        # Invalid arguments (a bad auth code, say) come back as error_response, as the real gateway does.
        return self._answer("error_response" if body.get("code") == "40002" else key, body, cert_sn)

    def _answer(self, key: str, body: Mapping[str, Any], cert_sn: str | None = None) -> Response:
        """The body exactly as signed: the response object's bytes, then (in certificate mode) the SN of the
        certificate whose key verifies it, then the signature over those bytes."""
        content = json.dumps(body, ensure_ascii=False, separators=(",", ":"))
        signature = sign(self.keys.private_key, content)
        cert = f',"alipay_cert_sn":"{cert_sn}"' if cert_sn else ""
        text = f'{{"{key}":{content}{cert},"sign":"{signature}"}}'
        return Response(text, content_type="text/html;charset=utf-8")

    def _issue_auth_code(self, request: Request) -> Response:
        """What my.getAuthCode gives a mini-program: a single-use code for a user (tests and the demo)."""
        data = request.get_json(silent=True) or {}
        user_id = str(data.get("user_id") or "")
        if not user_id:
            raise NotFound("user_id required")
        code = secrets.token_hex(16)
        with self.state.lock:
            self.state.auth_codes[code] = AuthCode(user_id, self.now() + AUTH_CODE_TTL)
        return Response(json.dumps({"auth_code": code}), content_type="application/json")

    def _create_activity(self, request: Request) -> Response:
        data = request.get_json(silent=True) or {}
        activity_id = str(data.get("activity_id") or secrets.token_hex(8))
        with self.state.lock:
            self.state.activities[activity_id] = int(data.get("stock", 1_000_000))
        return Response(json.dumps({"activity_id": activity_id}), content_type="application/json")

    def _inject_faults(self, request: Request) -> Response:
        data = request.get_json(silent=True) or {}
        try:
            self.inject(str(data.get("method")), *data.get("faults", []))
        except ValueError as exc:
            raise NotFound(str(exc)) from None
        return Response("{}", content_type="application/json")

    def _set_fault_rates(self, request: Request) -> Response:
        """``{"rates": {fault: probability}, "methods": [name, ...] | null, "seed": int | null}``."""
        data = request.get_json(silent=True)
        if not isinstance(data, dict) or not isinstance(data.get("rates"), dict):
            raise BadRequest("a JSON object with rates: {fault: probability, ...} is required")
        methods, seed = data.get("methods"), data.get("seed")
        if methods is not None and not (isinstance(methods, list) and all(isinstance(m, str) for m in methods)):
            raise BadRequest("methods is a list of method names, or null for every method")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
            raise BadRequest("seed is an integer or null")
        try:
            self.set_fault_rates(data["rates"], methods=methods, seed=seed)
        except ValueError as exc:
            raise BadRequest(str(exc)) from None
        return Response("{}", content_type="application/json")

    def _ledger(self, request: Request) -> Response:
        """Everything that moved: what a test counts to prove "exactly once at the provider"."""
        with self.state.lock:
            vouchers = [{"voucher_id": v.voucher_id, "activity_id": v.activity_id, "out_biz_no": v.out_biz_no,
                         "user_id": v.user_id} for v in self.state.vouchers.values()]
            transfers = [{"out_biz_no": t.out_biz_no, "order_id": t.order_id, "amount_fen": t.amount_fen,
                          "payee": t.payee, "status": t.status} for t in self.state.transfers.values()]
            balance = self.state.balance_fen
            faults = {fault: self.state.fault_counts.get(fault, 0) for fault in FAULTS}
        return Response(json.dumps({"vouchers": vouchers, "transfers": transfers, "balance_fen": balance,
                                    "faults": faults}), content_type="application/json")

    def _pay_trade(self, request: Request, out_trade_no: str) -> Response:
        """What the buyer does in my.tradePay: the trade succeeds and Alipay notifies the merchant."""
        with self.state.lock:
            trade = self.state.trades.get(out_trade_no)
            if trade is None or trade.status != "WAIT_BUYER_PAY":
                raise NotFound("no trade waiting for payment")
            trade.status = "TRADE_SUCCESS"
            trade.paid_at = self.now().astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")
        self.notify(trade)
        return Response(json.dumps({"trade_no": trade.trade_no, "trade_status": trade.status}),
                        content_type="application/json")

    def notification(self, trade: Trade) -> dict[str, str]:
        """The signed form Alipay POSTs to notify_url about a trade."""
        with self.state.lock:
            params = {
                "notify_time": self.now().astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S"),
                "notify_type": "trade_status_sync", "notify_id": secrets.token_hex(16),
                "app_id": next(iter(self.apps)), "charset": "utf-8", "version": "1.0", "sign_type": "RSA2",
                "trade_no": trade.trade_no, "out_trade_no": trade.out_trade_no, "buyer_id": trade.buyer_id,
                "seller_id": self.seller_id, "trade_status": trade.status, "total_amount": trade.amount,
                "receipt_amount": trade.amount, "subject": trade.subject, "gmt_payment": trade.paid_at,
            }
        return {**params, "sign": sign(self.keys.private_key, string_to_sign(params, NOTIFICATION_EXCLUDED))}

    def notify(self, trade: Trade, form: Mapping[str, str] | None = None) -> threading.Thread:
        """Send the notification, again and again until the merchant answers exactly ``success``."""
        form = dict(form or self.notification(trade))

        def deliver() -> None:
            for delay in self.notify_intervals:
                time.sleep(delay)
                try:
                    answer = requests.post(trade.notify_url, data=form, timeout=5)
                    body, status = answer.text, answer.status_code
                except requests.RequestException as exc:
                    body, status = repr(exc), None
                with self.state.lock:
                    self.state.notifications.append({"out_trade_no": trade.out_trade_no, "status": status,
                                                     "answer": body[:200]})
                if body == "success":
                    return

        thread = threading.Thread(target=deliver, name=f"notify-{trade.out_trade_no}", daemon=True)
        thread.start()
        return thread

    def _list_calls(self, request: Request) -> Response:
        with self.state.lock:
            calls = [{"method": c["method"], "answer": c["answer"]} for c in self.state.calls]
        return Response(json.dumps(calls), content_type="application/json")

    # -- running -------------------------------------------------------------------------------------------
    def serve(self, host: str = "127.0.0.1", port: int = 0) -> RunningSandbox:
        """Serve in a background thread; ``port=0`` picks a free one."""
        server = make_server(host, port, self, threaded=True)
        thread = threading.Thread(target=server.serve_forever, name="alipay-sandbox", daemon=True)
        thread.start()
        return RunningSandbox(self, server, thread)


@dataclass
class RunningSandbox:
    sandbox: Sandbox
    server: BaseWSGIServer
    thread: threading.Thread
    # The merchant app's id and keys, when whoever started the sandbox made them (tests, the demo).
    app_id: str = ""
    merchant_keys: KeyPair | None = None

    @property
    def url(self) -> str:
        return f"http://{self.server.host}:{self.server.port}"

    @property
    def gateway_url(self) -> str:
        return f"{self.url}/gateway.do"

    def stop(self) -> None:
        self.server.shutdown()
        self.thread.join(timeout=5)

    def client_settings(self) -> dict[str, Any]:
        """The HUODONG_ALIPAY_* settings that point Huodong at this sandbox as its merchant app."""
        certs = self.sandbox.certs
        return {"alipay_gateway_url": self.gateway_url, "alipay_app_id": self.app_id,
                "alipay_app_private_key": self.merchant_keys.private_key,
                "alipay_public_key": self.sandbox.keys.public_key, "alipay_seller_id": self.sandbox.seller_id,
                "alipay_app_cert": certs.app_pem, "alipay_cert": certs.alipay_pem, "alipay_root_cert": certs.root_pem}


def start_for_merchant(app_id: str = DEFAULT_APP_ID, **options: Any) -> RunningSandbox:
    """A sandbox with fresh keys and certificates for one merchant app, on a free port of 127.0.0.1."""
    merchant, gateway = generate(), generate()
    running = Sandbox(gateway, {app_id: merchant.public_key}, certs=issue(gateway, merchant), **options).serve()
    running.app_id, running.merchant_keys = app_id, merchant
    return running


@method("alipay.system.oauth.token")
def oauth_token(sandbox: Sandbox, params: Mapping[str, str], biz: Mapping[str, Any]) -> dict[str, Any]:
    """An auth code (single use, five minutes) for the user's id and an access token."""
    if params.get("grant_type") != "authorization_code":
        return business_error("isv.grant-type-invalid", "grant_type is not supported", "40002",
                              "Invalid Arguments")
    with sandbox.state.lock:
        code = sandbox.state.auth_codes.get(params.get("code", ""))
        if code is None or code.used or code.expires_at <= sandbox.now():
            return business_error("isv.code-invalid", "授权码code无效", "40002", "Invalid Arguments")
        code.used = True
    return {**SUCCESS, "user_id": code.user_id, "open_id": f"o{code.user_id}", "access_token": secrets.token_hex(16),
            "expires_in": 1296000, "refresh_token": secrets.token_hex(16), "re_expires_in": 2592000,
            "auth_start": sandbox.now().astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")}


@method("alipay.marketing.activity.voucher.send")
def voucher_send(sandbox: Sandbox, params: Mapping[str, str], biz: Mapping[str, Any]) -> dict[str, Any]:
    """One voucher of an activity to a user. The same out_biz_no with the same request answers the first
    voucher again; with another request it is refused and nothing is sent."""
    out_biz_no, activity_id, user_id = biz.get("out_biz_no"), biz.get("activity_id"), biz.get("user_id")
    if not out_biz_no or not activity_id or not user_id:
        return business_error("isv.missing-parameter", "缺少必选参数", "40002", "Invalid Arguments")
    with sandbox.state.lock:
        sent = sandbox.state.vouchers.get(out_biz_no)
        if sent is not None:
            if sent.biz_content != params["biz_content"]:
                return business_error("PAYMENT_INFO_INCONSISTENCY", "两次请求参数不一致")
            return {**SUCCESS, "voucher_id": sent.voucher_id}
        left = sandbox.state.activities.get(activity_id)
        if left is None:
            return business_error("ACTIVITY_NOT_EXIST", "活动不存在")
        if left < 1:
            return business_error("ACTIVITY_BUDGET_NOT_ENOUGH", "活动预算不足")
        sandbox.state.activities[activity_id] = left - 1
        voucher = Voucher(f"V{secrets.token_hex(10)}", activity_id, out_biz_no, user_id, params["biz_content"])
        sandbox.state.vouchers[out_biz_no] = voucher
    return {**SUCCESS, "voucher_id": voucher.voucher_id}


@method("alipay.marketing.voucher.query")
def voucher_query(sandbox: Sandbox, params: Mapping[str, str], biz: Mapping[str, Any]) -> dict[str, Any]:
    """A sent voucher by its voucher_id, the only key Alipay looks vouchers up by (not out_biz_no)."""
    voucher_id = biz.get("voucher_id")
    if not voucher_id:
        return business_error("isv.missing-parameter", "缺少必选参数", "40002", "Invalid Arguments")
    with sandbox.state.lock:
        voucher = next((v for v in sandbox.state.vouchers.values() if v.voucher_id == voucher_id), None)
    if voucher is None:
        return business_error("VOUCHER_NOT_EXIST", "券不存在")
    return {**SUCCESS, "voucher_id": voucher.voucher_id, "user_id": voucher.user_id,
            "template_id": voucher.activity_id, "name": "商户代金券", "status": "ENABLED"}


TRADE_NOT_EXIST = business_error("ACQ.TRADE_NOT_EXIST", "交易不存在")
AMOUNT = re.compile(r"^(0|[1-9][0-9]{0,9})\.[0-9]{2}$")
TRANSFER_PRODUCT = ("TRANS_ACCOUNT_NO_PWD", "DIRECT_TRANSFER")


@method("alipay.fund.trans.uni.transfer")
def transfer(sandbox: Sandbox, params: Mapping[str, str], biz: Mapping[str, Any]) -> dict[str, Any]:
    """Move money to a user's balance (the cash red packet). The same out_biz_no with the same request answers
    the first transfer; with another request it is PAYMENT_INFO_INCONSISTENCY and nothing moves."""
    out_biz_no, amount, payee = biz.get("out_biz_no"), str(biz.get("trans_amount", "")), biz.get("payee_info") or {}
    if not out_biz_no or not biz.get("order_title") or not payee.get("identity"):
        return business_error("isv.missing-parameter", "缺少必选参数", "40002", "Invalid Arguments")
    if (biz.get("product_code"), biz.get("biz_scene")) != TRANSFER_PRODUCT:
        return business_error("INVALID_PARAMETER", "product_code/biz_scene 不支持")
    if not AMOUNT.match(amount) or amount == "0.00":
        return business_error("INVALID_PARAMETER", "trans_amount 格式错误")
    fen = int(amount.replace(".", ""))
    with sandbox.state.lock:
        done = sandbox.state.transfers.get(out_biz_no)
        if done is not None:
            if done.biz_content != params["biz_content"]:
                return business_error("PAYMENT_INFO_INCONSISTENCY", "两次请求参数不一致")
            return _transfer_answer(done)
        if payee["identity"] in sandbox.state.closed_payees:
            return business_error("PAYEE_NOT_EXIST", "收款账号不存在")
        if sandbox.state.balance_fen < fen:
            return business_error("PAYER_BALANCE_NOT_ENOUGH", "付款方余额不足")
        sandbox.state.balance_fen -= fen
        done = Transfer(out_biz_no, f"2026{secrets.token_hex(12)}", fen, payee["identity"],
                        "DEALING" if params.get("_fault") == "dealing" else "SUCCESS", params["biz_content"],
                        sandbox.now().astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S"))
        sandbox.state.transfers[out_biz_no] = done
    return _transfer_answer(done)


@method("alipay.fund.trans.common.query")
def transfer_query(sandbox: Sandbox, params: Mapping[str, str], biz: Mapping[str, Any]) -> dict[str, Any]:
    """A transfer by out_biz_no (which needs product_code and biz_scene). A DEALING one settles once seen."""
    if not biz.get("out_biz_no") or (biz.get("product_code"), biz.get("biz_scene")) != TRANSFER_PRODUCT:
        return business_error("MISSING_PARAM", "按 out_biz_no 查询需要 product_code 和 biz_scene")
    with sandbox.state.lock:
        done = sandbox.state.transfers.get(biz["out_biz_no"])
        if done is None:
            return business_error("ORDER_NOT_EXIST", "转账订单不存在")
        answer = _transfer_answer(done)
        if done.status == "DEALING":
            done.status = "SUCCESS"
    return {**answer, "trans_amount": f"{done.amount_fen // 100}.{done.amount_fen % 100:02d}"}


def _transfer_answer(done: Transfer) -> dict[str, Any]:
    return {**SUCCESS, "out_biz_no": done.out_biz_no, "order_id": done.order_id, "pay_fund_order_id": done.order_id,
            "status": done.status, "trans_date": done.trans_date}


@method("alipay.trade.create")
def trade_create(sandbox: Sandbox, params: Mapping[str, str], biz: Mapping[str, Any]) -> dict[str, Any]:
    """A mini-program payment waiting for the buyer (my.tradePay takes its trade_no)."""
    out_trade_no, amount = biz.get("out_trade_no"), str(biz.get("total_amount", ""))
    if not out_trade_no or not biz.get("subject") or not (biz.get("buyer_id") or biz.get("buyer_open_id")):
        return business_error("isv.missing-parameter", "缺少必选参数", "40002", "Invalid Arguments")
    if not AMOUNT.match(amount) or amount == "0.00":
        return business_error("ACQ.INVALID_PARAMETER", "total_amount 格式错误")
    with sandbox.state.lock:
        trade = sandbox.state.trades.get(out_trade_no)
        if trade is not None:
            if trade.biz_content != params["biz_content"]:
                return business_error("ACQ.TRADE_HAS_EXIST", "交易已经存在且参数不一致")
        else:
            trade = Trade(out_trade_no, f"2026{secrets.token_hex(12)}", amount, biz["subject"],
                          biz.get("buyer_id") or biz.get("buyer_open_id"), params.get("notify_url", ""),
                          params["biz_content"])
            sandbox.state.trades[out_trade_no] = trade
    return {**SUCCESS, "out_trade_no": out_trade_no, "trade_no": trade.trade_no}


@method("alipay.trade.query")
def trade_query(sandbox: Sandbox, params: Mapping[str, str], biz: Mapping[str, Any]) -> dict[str, Any]:
    with sandbox.state.lock:
        trade = sandbox.state.trades.get(biz.get("out_trade_no", ""))
        if trade is None:
            return dict(TRADE_NOT_EXIST)
        return {**SUCCESS, "out_trade_no": trade.out_trade_no, "trade_no": trade.trade_no,
                "trade_status": trade.status, "total_amount": trade.amount, "buyer_user_id": trade.buyer_id}


@method("alipay.trade.close")
def trade_close(sandbox: Sandbox, params: Mapping[str, str], biz: Mapping[str, Any]) -> dict[str, Any]:
    with sandbox.state.lock:
        trade = sandbox.state.trades.get(biz.get("out_trade_no", ""))
        if trade is None:
            return dict(TRADE_NOT_EXIST)
        if trade.status == "WAIT_BUYER_PAY":
            trade.status = "TRADE_CLOSED"
        elif trade.status != "TRADE_CLOSED":
            return business_error("ACQ.TRADE_STATUS_ERROR", "交易状态不合法")
        return {**SUCCESS, "out_trade_no": trade.out_trade_no, "trade_no": trade.trade_no}


@method("alipay.trade.refund")
def trade_refund(sandbox: Sandbox, params: Mapping[str, str], biz: Mapping[str, Any]) -> dict[str, Any]:
    """Money back to the buyer, once per out_request_no."""
    request_no = biz.get("out_request_no") or biz.get("out_trade_no", "")
    with sandbox.state.lock:
        trade = sandbox.state.trades.get(biz.get("out_trade_no", ""))
        if trade is None:
            return dict(TRADE_NOT_EXIST)
        if trade.status not in ("TRADE_SUCCESS", "TRADE_CLOSED") or str(biz.get("refund_amount")) != trade.amount:
            return business_error("ACQ.REFUND_AMT_NOT_EQUAL_TOTAL", "退款金额不合法")
        done = sandbox.state.refunds.setdefault(request_no, {"out_trade_no": trade.out_trade_no,
                                                             "refund_fee": trade.amount})
        trade.status = "TRADE_CLOSED"
        return {**SUCCESS, "out_trade_no": trade.out_trade_no, "trade_no": trade.trade_no,
                "refund_fee": done["refund_fee"], "fund_change": "Y"}
