"""RSA2 (SHA256withRSA) over Alipay's sign content: what the gateway and a notify receiver check.

The same primitives as the SDK (the ``rsa`` package, PKCS#1 v1.5), with one
difference on verification: only SHA-256 signatures pass; the SDK's own
``verify_with_rsa`` also accepts SHA-1.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping

import rsa

PRIVATE_MARKERS = ("-----BEGIN RSA PRIVATE KEY-----\n", "\n-----END RSA PRIVATE KEY-----")
PUBLIC_MARKERS = ("-----BEGIN PUBLIC KEY-----\n", "\n-----END PUBLIC KEY-----")


def sign_content(params: Mapping[str, str], *, skip: tuple[str, ...] = ("sign",), skip_empty: bool = False) -> str:
    """Every parameter but ``skip``, sorted by name, as ``k=v`` joined with ``&``, values raw.

    A gateway request signs every parameter the SDK sent; a notification leaves out empty values.
    """
    return "&".join(f"{k}={v}" for k, v in sorted(params.items())
                    if k not in skip and not (skip_empty and v == ""))


def sign_rsa2(private_key: str, content: bytes) -> str:
    key = rsa.PrivateKey.load_pkcs1(_pem(private_key, PRIVATE_MARKERS).encode())
    return base64.b64encode(rsa.sign(content, key, "SHA-256")).decode()


def verify_rsa2(public_key: str, content: bytes, signature: str) -> bool:
    try:
        key = rsa.PublicKey.load_pkcs1_openssl_pem(_pem(public_key, PUBLIC_MARKERS).encode())
        return rsa.verify(content, base64.b64decode(signature, validate=True), key) == "SHA-256"
    except (rsa.VerificationError, binascii.Error, ValueError):
        return False


def _pem(body: str, markers: tuple[str, str]) -> str:
    return body if body.startswith("-----") else markers[0] + body + markers[1]
