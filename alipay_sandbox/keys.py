"""RSA key pairs in the form Alipay's console hands them out and the SDK takes them.

The private key is the base64 body of a PKCS#1 PEM, the public key the body of
an X.509 SubjectPublicKeyInfo PEM, both without their BEGIN/END lines (the SDK
adds those). Generated at start-up for the demo and tests; never committed.
"""

from __future__ import annotations

from dataclasses import dataclass

from Crypto.PublicKey import RSA

BITS = 2048


@dataclass(frozen=True)
class KeyPair:
    private_key: str
    public_key: str


def pem_body(pem: str) -> str:
    """The base64 body of a PEM, without its BEGIN/END lines and line breaks."""
    return "".join(line.strip() for line in pem.strip().splitlines() if not line.startswith("-----"))


def generate() -> KeyPair:
    key = RSA.generate(BITS)
    return KeyPair(private_key=pem_body(key.export_key(format="PEM", pkcs=1).decode()),
                   public_key=pem_body(key.publickey().export_key(format="PEM").decode()))
