"""The sandbox gateway: ``POST /gateway.do`` as Alipay answers it, plus a few ``/sandbox/*`` helpers.

Every request's RSA2 signature is checked with the public key of the app it
names; every answer is ``{"<method_with_underscores>_response": {...},
"sign": "<RSA2 of exactly those bytes>"}``, or ``error_response`` for errors
of the gateway itself, as the real one does. Methods are handlers keyed by
name (see ``methods``); each answers the response object.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from werkzeug.exceptions import HTTPException, NotFound
from werkzeug.routing import Map, Rule
from werkzeug.serving import BaseWSGIServer, make_server
from werkzeug.wrappers import Request, Response

from .keys import KeyPair
from .signing import sign_content, sign_rsa2, verify_rsa2

AUTH_CODE_TTL = timedelta(minutes=5)
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
class SandboxState:
    """What the sandbox remembers; every change under ``lock``."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    auth_codes: dict[str, AuthCode] = field(default_factory=dict)
    calls: list[dict[str, Any]] = field(default_factory=list)
    # Voucher activities the merchant created (activity id -> vouchers left) and the vouchers sent, by out_biz_no.
    activities: dict[str, int] = field(default_factory=dict)
    vouchers: dict[str, Voucher] = field(default_factory=dict)
    # Faults to inject, per method, consumed one per call: see FAULTS.
    faults: dict[str, list[str]] = field(default_factory=dict)


# timeout_before: answer nothing until the client gave up, change nothing; timeout_after: do the work, then
# answer too late (the money moved, the client does not know); http_500: a 500 page; system_error: a signed
# 20000 SYSTEM_ERROR answer, nothing done.
FAULTS = ("timeout_before", "timeout_after", "http_500", "system_error")

Handler = Callable[["Sandbox", Mapping[str, str], Mapping[str, Any]], dict[str, Any]]
methods: dict[str, Handler] = {}


def method(name: str) -> Callable[[Handler], Handler]:
    def register(handler: Handler) -> Handler:
        methods[name] = handler
        return handler
    return register


class Sandbox:
    """One gateway: its own key pair, the apps it knows (app id -> their public key) and its state."""

    def __init__(self, keys: KeyPair, apps: Mapping[str, str], *, clock: Callable[[], datetime] | None = None,
                 late_seconds: float = 2.0) -> None:
        self.keys = keys
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
            Rule("/sandbox/ledger", endpoint="ledger", methods=["GET"]),
            Rule("/sandbox/calls", endpoint="list_calls", methods=["GET"]),
        ])

    def inject(self, method_name: str, *faults: str) -> None:
        """The next calls of ``method_name`` fail in these ways, one fault per call, in order."""
        unknown = set(faults) - set(FAULTS)
        if unknown:
            raise ValueError(f"unknown faults {sorted(unknown)}")
        with self.state.lock:
            self.state.faults.setdefault(method_name, []).extend(faults)

    def _next_fault(self, method_name: str) -> str | None:
        with self.state.lock:
            queue = self.state.faults.get(method_name)
            return queue.pop(0) if queue else None

    # -- WSGI -----------------------------------------------------------------------------------------------
    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        request = Request(environ)
        try:
            endpoint, _ = self._urls.bind_to_environ(environ).match()
            response = getattr(self, f"_{endpoint}")(request)
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
        if params.get("sign_type") != "RSA2" or not verify_rsa2(
                public_key, sign_content(params).encode(params.get("charset") or "utf-8"), params.get("sign", "")):
            return self._answer("error_response", business_error("isv.invalid-signature", "验签出错",
                                                                  "40002", "Invalid Arguments"))
        handler = methods.get(name)
        if handler is None:
            return self._answer("error_response", business_error("isv.invalid-method", "不存在的方法名",
                                                                  "40002", "Invalid Arguments"))
        biz = json.loads(params["biz_content"]) if params.get("biz_content") else {}
        fault = self._next_fault(name)
        if fault == "timeout_before":
            time.sleep(self.late_seconds)
            return Response("", status=504)
        if fault == "http_500":
            return Response("<html>500 Internal Server Error</html>", status=500)
        if fault == "system_error":
            body = business_error("SYSTEM_ERROR", "系统繁忙", "20000", "Service Currently Unavailable")
        else:
            body = handler(self, params, biz)
        with self.state.lock:
            self.state.calls.append({"method": name, "params": params, "answer": body, "fault": fault})
        if fault == "timeout_after":
            time.sleep(self.late_seconds)
        # Invalid arguments (a bad auth code, say) come back as error_response, as the real gateway does.
        return self._answer("error_response" if body.get("code") == "40002" else key, body)

    def _answer(self, key: str, body: Mapping[str, Any]) -> Response:
        """The body exactly as signed: the response object's bytes, then the signature over them."""
        content = json.dumps(body, ensure_ascii=False, separators=(",", ":"))
        signature = sign_rsa2(self.keys.private_key, content.encode())
        text = f'{{"{key}":{content},"sign":"{signature}"}}'
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

    def _ledger(self, request: Request) -> Response:
        """Everything that moved: what a test counts to prove "exactly once at the provider"."""
        with self.state.lock:
            vouchers = [{"voucher_id": v.voucher_id, "activity_id": v.activity_id, "out_biz_no": v.out_biz_no,
                         "user_id": v.user_id} for v in self.state.vouchers.values()]
        return Response(json.dumps({"vouchers": vouchers}), content_type="application/json")

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
    # The merchant app's keys, when whoever started the sandbox made them (tests, the demo).
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
