"""Public-key certificate mode (公钥证书): what Alipay requires for fund transfers.

A cert-mode request carries ``app_cert_sn`` (the app certificate's serial
number) and ``alipay_root_cert_sn`` (those of Alipay's root chain); a cert-mode
answer carries ``alipay_cert_sn``, naming the Alipay certificate whose public
key verifies it. A certificate's SN is Alipay's: md5 of the issuer's
distinguished name (RFC 2253/4514 order) followed by the serial number in
decimal; the root's is the SNs of its RSA-signed certificates joined by ``_``.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.x509.oid import SignatureAlgorithmOID

RSA_SIGNED = {SignatureAlgorithmOID.RSA_WITH_SHA1, SignatureAlgorithmOID.RSA_WITH_SHA256}


class CertificateError(ValueError):
    """A configured certificate is unreadable or not issued by the configured root."""


def cert_sn(cert: x509.Certificate) -> str:
    return hashlib.md5(f"{cert.issuer.rfc4514_string()}{cert.serial_number}".encode()).hexdigest()  # noqa: S324


def root_cert_sn(chain: list[x509.Certificate]) -> str:
    return "_".join(cert_sn(cert) for cert in chain if cert.signature_algorithm_oid in RSA_SIGNED)


def public_key_body(cert: x509.Certificate) -> str:
    """The certificate's public key as the SDK takes public keys: the base64 body of its SubjectPublicKeyInfo."""
    der = cert.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(der).decode()


def load(pem: str) -> list[x509.Certificate]:
    try:
        return x509.load_pem_x509_certificates(pem.encode())
    except ValueError as exc:
        raise CertificateError(f"not a PEM certificate: {exc}") from None


@dataclass(frozen=True)
class CertMode:
    app_cert_sn: str
    root_cert_sn: str
    # Alipay certificate SN -> its public key (base64 SPKI): what verifies a cert-mode answer.
    alipay_keys: dict[str, str]

    @classmethod
    def from_pems(cls, app_cert: str, alipay_cert: str, root_cert: str) -> CertMode:
        roots = load(root_cert)
        alipay = load(alipay_cert)
        for cert in alipay:
            if not any(_issued_by(cert, root) for root in roots):
                raise CertificateError("the Alipay certificate is not issued by the configured root")
        return cls(app_cert_sn=cert_sn(load(app_cert)[0]), root_cert_sn=root_cert_sn(roots),
                   alipay_keys={cert_sn(cert): public_key_body(cert) for cert in alipay})


def _issued_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    if cert.issuer != issuer.subject:
        return False
    try:
        issuer.public_key().verify(cert.signature, cert.tbs_certificate_bytes, padding.PKCS1v15(),
                                   cert.signature_hash_algorithm)
    except Exception:  # noqa: BLE001 - any failure means "not issued by it"
        return False
    return True
