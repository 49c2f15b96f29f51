"""Where the official alipay-sdk-python needs help at its edge, applied once on import.

``WebUtils.get_http_connection`` (3.7.x) connects to port 80 (443 for https)
whatever the gateway URL says, and fails building the URL of one with an
explicit port (``str + int``). The real gateway needs no port, but a sandbox
on 127.0.0.1 does. The replacement honours the URL's port and otherwise
behaves exactly as the original (same connection classes, same absolute
request URL); nothing else in the SDK is touched.
"""

from __future__ import annotations

from http.client import HTTPConnection, HTTPSConnection
from urllib.parse import urlparse

from alipay.aop.api.util import WebUtils


def get_http_connection(url: str, query_string: str, timeout: float) -> tuple[str, HTTPConnection]:
    parsed = urlparse(url)
    https = parsed.scheme == "https"
    port = parsed.port or (443 if https else 80)
    connection_class = HTTPSConnection if https else HTTPConnection
    connection = connection_class(host=parsed.hostname, port=port, timeout=timeout)
    netloc = parsed.hostname + (f":{parsed.port}" if parsed.port else "")
    return f"{parsed.scheme}://{netloc}{parsed.path}?{query_string}", connection


WebUtils.get_http_connection = get_http_connection
