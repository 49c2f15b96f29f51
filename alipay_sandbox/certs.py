"""Certificates for the sandbox: an "Alipay root" CA, Alipay's certificate and the merchant app's, per run.

Issued with ``cryptography`` over the key pairs of ``keys.py``, so the app's
certificate carries the merchant's public key and Alipay's certificate the
gateway's. Serial numbers follow Alipay's rule (see alipay_platform/certs.py),
computed here independently so the sandbox checks the client rather than agreeing with it.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from .keys import KeyPair

VALIDITY = timedelta(days=365)


@dataclass(frozen=True)
class Certificates:
    root_pem: str
    alipay_pem: str
    app_pem: str

    @property
    def root_sn(self) -> str:
        return sn(x509.load_pem_x509_certificate(self.root_pem.encode()))

    @property
    def alipay_sn(self) -> str:
        return sn(x509.load_pem_x509_certificate(self.alipay_pem.encode()))

    @property
    def app_sn(self) -> str:
        return sn(x509.load_pem_x509_certificate(self.app_pem.encode()))


def sn(cert: x509.Certificate) -> str:
    return hashlib.md5((cert.issuer.rfc4514_string() + str(cert.serial_number)).encode()).hexdigest()  # noqa: S324


def issue(gateway: KeyPair, merchant: KeyPair) -> Certificates:
    root_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    root_name = _name("Sandbox Alipay Root CA", "Certification Authority")
    root = _build(root_name, root_name, root_key.public_key(), root_key, ca=True)
    alipay = _build(_name("Sandbox Alipay Gateway", "Alipay"), root_name, _public(gateway.public_key), root_key)
    app = _build(_name("Sandbox Merchant App", "Merchant"), root_name, _public(merchant.public_key), root_key)
    return Certificates(root_pem=_pem(root), alipay_pem=_pem(alipay), app_pem=_pem(app))


def _name(common_name: str, unit: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COUNTRY_NAME, "CN"),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Huodong Sandbox"),
                      x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, unit),
                      x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _public(body: str) -> rsa.RSAPublicKey:
    return serialization.load_der_public_key(base64.b64decode(body))


def _build(subject: x509.Name, issuer: x509.Name, public_key: rsa.RSAPublicKey, signer: rsa.RSAPrivateKey, *,
           ca: bool = False) -> x509.Certificate:
    now = datetime.now(UTC)
    return (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer).public_key(public_key)
            .serial_number(x509.random_serial_number()).not_valid_before(now - timedelta(minutes=5))
            .not_valid_after(now + VALIDITY)
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
            .sign(signer, hashes.SHA256()))


def _pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode()
