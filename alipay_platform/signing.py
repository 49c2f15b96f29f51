"""RSA2 (SHA256withRSA, PKCS#1 v1.5) over Alipay's sign content, through OpenSSL (``cryptography``).

The SDK signs with the pure-Python ``rsa`` package and parses the PEM key on
every call: about 22 ms of CPU a signature. Here a key is parsed once per
process (cached by its text) and OpenSSL signs in well under a millisecond;
``sdk_edge`` installs these functions into the SDK, so every request it
signs and every answer it verifies goes through them. Verification accepts
SHA-256 only: the SDK's own ``verify_with_rsa`` also accepts SHA-1.

Keys come as the open platform's console shows them: a PEM, or the base64
body of one, PKCS#1 or PKCS#8 for the private key, SubjectPublicKeyInfo (or
PKCS#1) for the public key.
"""

from __future__ import annotations

import base64
import binascii
import functools
from collections.abc import Mapping

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

PADDING = padding.PKCS1v15()
DIGEST = hashes.SHA256()


class BadKeyError(ValueError):
    """A configured key is not an RSA key in any form the open platform hands out."""


def sign_content(params: Mapping[str, str], *, skip: tuple[str, ...] = ("sign",), skip_empty: bool = False) -> str:
    """Every parameter but ``skip``, sorted by name, as ``k=v`` joined with ``&``, values raw.

    A gateway request signs every parameter the SDK sent; a notification leaves out empty values.
    """
    return "&".join(f"{k}={v}" for k, v in sorted(params.items())
                    if k not in skip and not (skip_empty and v == ""))


@functools.lru_cache(maxsize=16)
def private_key(text: str) -> rsa.RSAPrivateKey:
    """The RSA private key of a PEM or a PEM's base64 body (PKCS#1 or PKCS#8), parsed once per process."""
    try:
        key = (serialization.load_pem_private_key(text.encode(), password=None) if text.lstrip().startswith("-----")
               else serialization.load_der_private_key(_der(text), password=None))
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise BadKeyError(f"not an RSA private key: {exc}") from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise BadKeyError("not an RSA private key")
    return key


@functools.lru_cache(maxsize=16)
def public_key(text: str) -> rsa.RSAPublicKey:
    """The RSA public key of a PEM or a PEM's base64 body (SubjectPublicKeyInfo or PKCS#1), parsed once."""
    try:
        key = (serialization.load_pem_public_key(text.encode()) if text.lstrip().startswith("-----")
               else serialization.load_der_public_key(_der(text)))
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise BadKeyError(f"not an RSA public key: {exc}") from None
    if not isinstance(key, rsa.RSAPublicKey):
        raise BadKeyError("not an RSA public key")
    return key


def sign_rsa2(private_key_text: str, content: bytes) -> str:
    """The base64 RSA2 signature of ``content``."""
    return base64.b64encode(private_key(private_key_text).sign(content, PADDING, DIGEST)).decode()


def verify_rsa2(public_key_text: str, content: bytes, signature: str) -> bool:
    """Whether ``signature`` (base64) is the RSA2 signature of ``content`` under the key; False for any
    malformed signature or key rather than an exception."""
    try:
        public_key(public_key_text).verify(base64.b64decode(signature, validate=True), content, PADDING, DIGEST)
    except (InvalidSignature, binascii.Error, ValueError, TypeError):
        return False
    return True


def _der(body: str) -> bytes:
    try:
        return base64.b64decode("".join(body.split()), validate=True)
    except binascii.Error as exc:
        raise ValueError(f"not base64: {exc}") from None
