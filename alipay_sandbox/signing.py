"""The sandbox's own RSA2, written from Alipay's published rules, never from the product's code.

Alipay's open platform documents the rule (文档: 签名 / 自行实现验签):

1. Take every parameter received, except ``sign``; for an asynchronous
   notification, except ``sign`` and ``sign_type``. Leave out parameters whose
   value is empty.
2. Sort what is left by parameter name, in ascending ASCII (byte) order.
3. Join them as ``name=value`` with ``&``; values as they are, not URL-encoded.
4. RSA2 is SHA256withRSA (RSASSA-PKCS1-v1_5 with SHA-256) over the UTF-8 bytes
   of that string, base64-encoded.

An answer of the gateway is signed over the exact bytes of its response
object, braces included. The product has its own implementation
(``alipay_platform/signing.py``); the two meet only in the fixed vectors of
``tests/alipay/test_signing_vectors.py``, which hold both to the rule.
"""

from __future__ import annotations

import base64
import binascii
import functools
from collections.abc import Mapping

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding

REQUEST_EXCLUDED = frozenset({"sign"})
NOTIFICATION_EXCLUDED = frozenset({"sign", "sign_type"})


def string_to_sign(params: Mapping[str, str], excluded: frozenset[str] = REQUEST_EXCLUDED) -> str:
    """Steps 1 to 3: the parameters to sign, filtered, in byte order, joined."""
    kept = [(name, value) for name, value in params.items() if name not in excluded and value not in ("", None)]
    kept.sort(key=lambda pair: pair[0].encode("utf-8"))
    return "&".join(f"{name}={value}" for name, value in kept)


def sign(private_key_body: str, message: str | bytes) -> str:
    """Step 4 with the gateway's key (the base64 body of a PKCS#1 or PKCS#8 DER key)."""
    data = message.encode("utf-8") if isinstance(message, str) else message
    return base64.b64encode(_private(private_key_body).sign(data, padding.PKCS1v15(), hashes.SHA256())).decode()


def verify(public_key_body: str, message: str | bytes, signature: str) -> bool:
    """Whether ``signature`` is step 4 of ``message`` under the app's public key (a SubjectPublicKeyInfo body)."""
    data = message.encode("utf-8") if isinstance(message, str) else message
    try:
        _public(public_key_body).verify(base64.b64decode(signature, validate=True), data, padding.PKCS1v15(),
                                        hashes.SHA256())
    except (InvalidSignature, binascii.Error, ValueError):
        return False
    return True


@functools.lru_cache(maxsize=8)
def _private(body: str):  # noqa: ANN202  (an RSA private key)
    return serialization.load_der_private_key(base64.b64decode(body), password=None)


@functools.lru_cache(maxsize=64)
def _public(body: str):  # noqa: ANN202  (an RSA public key)
    return serialization.load_der_public_key(base64.b64decode(body))
