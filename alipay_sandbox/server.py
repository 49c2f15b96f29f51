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
class SandboxState:
    """What the sandbox remembers; every change under ``lock``."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    auth_codes: dict[str, AuthCode] = field(default_factory=dict)
    calls: list[dict[str, Any]] = field(default_factory=list)


Handler = Callable[["Sandbox", Mapping[str, str], Mapping[str, Any]], dict[str, Any]]
methods: dict[str, Handler] = {}


def method(name: str) -> Callable[[Handler], Handler]:
    def register(handler: Handler) -> Handler:
        methods[name] = handler
        return handler
    return register


class Sandbox:
    """One gateway: its own key pair, the apps it knows (app id -> their public key) and its state."""

    def __init__(self, keys: KeyPair, apps: Mapping[str, str], *, clock: Callable[[], datetime] | None = None
                 ) -> None:
        self.keys = keys
        self.apps = dict(apps)
        self.state = SandboxState()
        self.now = clock or (lambda: datetime.now(UTC))
        self._urls = Map([
            Rule("/gateway.do", endpoint="gateway", methods=["POST"]),
            Rule("/sandbox/auth_codes", endpoint="issue_auth_code", methods=["POST"]),
            Rule("/sandbox/calls", endpoint="list_calls", methods=["GET"]),
        ])

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
        body = handler(self, params, biz)
        with self.state.lock:
            self.state.calls.append({"method": name, "params": params, "answer": body})
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
