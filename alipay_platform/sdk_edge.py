"""Where the official alipay-sdk-python needs help at its edge.

1. ``WebUtils.get_http_connection`` (3.7.x) connects to port 80 (443 for
   https) whatever the gateway URL says, and fails building the URL of one
   with an explicit port (``str + int``). The real gateway needs no port, but
   a sandbox on 127.0.0.1 does. The replacement (installed on import) honours
   the URL's port and otherwise behaves as the original.
2. Certificate mode: the SDK signs the request (with the serial numbers added
   as extra parameters) and posts it as usual, through its own
   ``__prepare_request`` and ``do_post``; but its answer parser requires
   ``"sign"`` right after the response object, so the cert-mode answer
   ``{"..._response":{...},"alipay_cert_sn":"...","sign":"..."}`` is parsed
   and verified here.
3. Signing: the SDK's ``sign_with_rsa2`` and ``verify_with_rsa`` (pure-Python
   ``rsa``, the key parsed on every call, SHA-1 accepted on verification) are
   replaced, where ``DefaultAlipayClient`` looks them up, by ``signing``'s
   OpenSSL functions with keys parsed once per process.

Importing this module installs all three.
"""

from __future__ import annotations

import importlib
import json
import re
import uuid
from collections.abc import Mapping
from http.client import HTTPConnection, HTTPSConnection
from typing import Any
from urllib.parse import urlparse

from alipay.aop.api.constant.CommonConstants import ALIPAY_SDK_PYTHON_VERSION, THREAD_LOCAL
from alipay.aop.api.DefaultAlipayClient import DefaultAlipayClient
from alipay.aop.api.util import SignatureUtils, WebUtils

from .signing import sign_rsa2, verify_rsa2


def get_http_connection(url: str, query_string: str, timeout: float) -> tuple[str, HTTPConnection]:
    parsed = urlparse(url)
    https = parsed.scheme == "https"
    port = parsed.port or (443 if https else 80)
    connection_class = HTTPSConnection if https else HTTPConnection
    connection = connection_class(host=parsed.hostname, port=port, timeout=timeout)
    netloc = parsed.hostname + (f":{parsed.port}" if parsed.port else "")
    return f"{parsed.scheme}://{netloc}{parsed.path}?{query_string}", connection


WebUtils.get_http_connection = get_http_connection


def sdk_sign_with_rsa2(private_key: str, sign_content: str, charset: str) -> str:
    """The SDK's ``sign_with_rsa2(private_key, sign_content, charset)``, through OpenSSL."""
    return sign_rsa2(private_key, sign_content.encode(charset))


def sdk_verify_with_rsa(public_key: str, message: bytes, sign: str) -> bool:
    """The SDK's ``verify_with_rsa(public_key, message, sign)`` for RSA2 answers: SHA-256 only."""
    return verify_rsa2(public_key, message, sign)


# DefaultAlipayClient did ``from ...SignatureUtils import *``: it calls the names in its own module.
for module in (importlib.import_module(DefaultAlipayClient.__module__), SignatureUtils):
    module.sign_with_rsa2 = sdk_sign_with_rsa2
    module.verify_with_rsa = sdk_verify_with_rsa


def post_signed(client: DefaultAlipayClient, request: Any, server_url: str, timeout: float) -> bytes:
    """The SDK's own signing and POST (``execute`` without its answer parser): the raw answer bytes."""
    THREAD_LOCAL.uuid = str(uuid.uuid1())
    query_string, params = client._DefaultAlipayClient__prepare_request(request)  # the SDK's signing
    headers = {"Content-type": "application/x-www-form-urlencoded;charset=utf-8", "Cache-Control": "no-cache",
               "Connection": "Keep-Alive", "User-Agent": ALIPAY_SDK_PYTHON_VERSION, "log-uuid": THREAD_LOCAL.uuid}
    return WebUtils.do_post(server_url, query_string, headers, params, "utf-8", timeout)


_CERT_TAIL = re.compile(r'\s*,\s*"alipay_cert_sn"\s*:\s*"([^"]*)"\s*,\s*"sign"\s*:\s*"([^"]*)"\s*}\s*$')


def verified_cert_answer(text: str, method: str, alipay_keys: Mapping[str, str]) -> str:
    """The response object's JSON text of a cert-mode answer, after checking its signature with the public key
    of the Alipay certificate it names. Raises ValueError for any other shape or a bad signature."""
    for key in (method.replace(".", "_") + "_response", "error_response"):
        start = text.find(f'"{key}"')
        if start >= 0:
            break
    else:
        raise ValueError(f"no response object in {text[:200]!r}")
    begin = text.index("{", start)
    end = _object_end(text, begin)
    content, tail = text[begin:end], _CERT_TAIL.match(text, end)
    if tail is None:
        raise ValueError("not a certificate-mode answer (no alipay_cert_sn before sign)")
    public_key = alipay_keys.get(tail.group(1))
    if public_key is None:
        raise ValueError(f"answer signed under an unknown Alipay certificate {tail.group(1)!r}")
    if not verify_rsa2(public_key, content.encode("utf-8"), tail.group(2)):
        raise ValueError("the answer's signature does not verify")
    json.loads(content)  # a signed answer is still checked to be JSON before anyone reads it
    return content


def _object_end(text: str, begin: int) -> int:
    """Index just past the JSON object starting at ``begin`` (strings and escapes respected)."""
    depth, in_string, escaped = 0, False, False
    for index in range(begin, len(text)):
        char = text[index]
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
            if depth == 0:
                return index + 1
    raise ValueError("unterminated response object")
