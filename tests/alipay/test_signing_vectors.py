"""Fixed RSA2 vectors: the product's signer and the sandbox's own, each held to Alipay's published rule.

The rule (see ``alipay_sandbox/signing.py``): every parameter but ``sign`` (a notification: but ``sign`` and
``sign_type``), empty values left out, sorted by name, ``k=v`` joined with ``&``, values raw; SHA256withRSA,
base64. An answer is signed over the exact bytes of its response object.

The strings to sign below were written out by hand from that rule, and the signatures were made from them by
a third implementation, the OpenSSL command line, once (PKCS#1 v1.5 signatures are deterministic)::

    openssl genrsa -traditional -out key.pem 2048
    printf '%s' '<string to sign>' | openssl dgst -sha256 -sign key.pem | base64 -w0

The key pair exists for these vectors only: nothing else signs with it, no sandbox or app uses it.
"""

from __future__ import annotations

import pytest
from alipay.aop.api.util.SignatureUtils import get_sign_content

from alipay_platform import sdk_edge
from alipay_platform.signing import sign_content, sign_rsa2, verify_rsa2
from alipay_sandbox import signing as sandbox

PRIVATE_KEY = (
    "MIIEowIBAAKCAQEA7A++s2+kabqCgTD+a9Ewj78qRPlCWs78BoMHMqCaL3zIqnIzOmmjDfgwDPky3bLDIc+nqQMEqRiV8wWsZaUZ"
    "cHAACbq5lYgxt/flcbksvbxFcEnY0b5brNH3O2zaU6bqSjO7IfqJbnjO4SRpT1jdtl/pivlf6pEm0PwvH+ae9Mhyc2B/i2I6Ieef"
    "h6ten4PhNQ0OR1j5EfJeFLSTyxhkYes8o4pcD6iXlq8AGRJ/WvbZyGMKuXbwhsEvxbEPgxMzPjVaLIvszVZxghQWBjO1PNeZiDX+"
    "vhL/KaxFSDBi2YyXprhJungMOLWB1STXbz2tClj7CXPhNkxUAW7T4hA1fwIDAQABAoIBAD43dCKk5Sd8odLdD+Fo1Cy+zKw7KfL3"
    "JNOuiyIb1Cd58wWBbeESYIhZBokU0QQ/jlCGA4F3Ky5KLZNMxoBPwGGzEz99OFah+8CqFI4hqRok2gRbYkr9qfnlqQy/htePYabG"
    "9aZh+wDj1FrgluTz3hOoOcyIJ3CSazGflegJh5GqFWjnU1pMo9t1/tVgfXCgew20u6Tnr6SraQ9zd/M+1zNOuIPHJRusk0yADiQk"
    "JJVnNKY4rLTosMEmX32G1OL13D8i9z4Fj7rJYL/jVIX/AWvIF0VTVOKbBHtAc+rMMckjFCxxG0e+4kik2Xo8MEgPiQQE3F3Pipkt"
    "Vp0CGYqYnNECgYEA++aR0XkqB9Syz6k9Dbqm1VwMsSBEXxl0rBbwWe4RBp1ps2NyGdGSKCyEfWhKYZ4bBX07xFjusPIL1pDGRuYw"
    "s8umhJ51xBdXR+h8q3pb67ZKY0fJIwnZIOduRcdRDTNpfpNvs42MTxCQ95+7NHhA/JOhuVYGdqocNphalRu4d3kCgYEA7+cwSTxi"
    "hb3FyO1dkjjxcchQ++OU4eBCFwbfm+R8m29RLa4R/cIZ8rnd/vXQGAYMCmXmcyCW3d6eMFjh6ifKClkm4+MOpgfV8BdcGODzd2B/"
    "vTBlHl51nBCjS7zsuVQx3qTZdtixE+Fi3BARsm8czg19Z8A0TjbhWGgxr5//vrcCgYACowE3vhrwhgtxHQZklGWWqiX/3KSakjuk"
    "aYEOj+1hslge5pWVK5pqDT09ys+sgekqf4sWnQ+yjnYNQuqwZ0xvNVyC2t3EtbHWMNrNOLSpnPjeXSv/z+ST8Zg35sQ0bStXhdeP"
    "e5XSZgv+a4+cFv4nJqx0si/TIii1cZbRJL8jkQKBgQCIpUVyoYt4pDRREyq2C+sypSfDoch+s+7REOAy+n0jR8+UVk73HCUNhWL2"
    "Q2tJE8Ct94bA0rI8I/40iZv8dLd3F3q4WO9SEKqB+7xAi3kB6Rw5VaRzHNiekTeB/1VS5qsVJw6azChoq3tU325FFVbx4usoOmlQ"
    "l5/ZbFfIsjjIlwKBgGRehnnE2J4wCuweHIlSen4UalpyQAAa0SKwsBWii33tBtJhVSE7b73yU0TbC2GqmRqhNFCvlGZasUHXeHIX"
    "Ow+wxUbJpCiN/EMXffiW9HgFLbg31bBC3N8Xc3cnGiWh134E0l0bVyYwKFAZR+GbW5F7vUJOIKAGbzaOz+QyosX0"
)
PUBLIC_KEY = (
    "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA7A++s2+kabqCgTD+a9Ewj78qRPlCWs78BoMHMqCaL3zIqnIzOmmjDfgw"
    "DPky3bLDIc+nqQMEqRiV8wWsZaUZcHAACbq5lYgxt/flcbksvbxFcEnY0b5brNH3O2zaU6bqSjO7IfqJbnjO4SRpT1jdtl/pivlf"
    "6pEm0PwvH+ae9Mhyc2B/i2I6Ieefh6ten4PhNQ0OR1j5EfJeFLSTyxhkYes8o4pcD6iXlq8AGRJ/WvbZyGMKuXbwhsEvxbEPgxMz"
    "PjVaLIvszVZxghQWBjO1PNeZiDX+vhL/KaxFSDBi2YyXprhJungMOLWB1STXbz2tClj7CXPhNkxUAW7T4hA1fwIDAQAB"
)

# An asynchronous payment notification, as Alipay posts it (URL-decoded): a Chinese subject with spaces, "%",
# "&" and "=" in it, an empty value, and the sign and sign_type that are not signed.
NOTIFICATION = {
    "notify_time": "2026-11-11 00:00:05", "notify_type": "trade_status_sync",
    "notify_id": "ac05099524730693a8b330c5ecf72da9786", "app_id": "2021000000000001", "charset": "",
    "trade_no": "2026111122001446880500000001", "out_trade_no": "O20261111a1", "trade_status": "TRADE_SUCCESS",
    "total_amount": "9.90", "seller_id": "2088000000000000", "buyer_id": "2088102177846880",
    "subject": "茶礼盒 x1 (50% off) & more=yes", "gmt_payment": "2026-11-11 00:00:03",
    "sign_type": "RSA2", "sign": "(not signed)",
}
NOTIFICATION_STRING = (
    "app_id=2021000000000001&buyer_id=2088102177846880&gmt_payment=2026-11-11 00:00:03"
    "&notify_id=ac05099524730693a8b330c5ecf72da9786&notify_time=2026-11-11 00:00:05&notify_type=trade_status_sync"
    "&out_trade_no=O20261111a1&seller_id=2088000000000000&subject=茶礼盒 x1 (50% off) & more=yes&total_amount=9.90"
    "&trade_no=2026111122001446880500000001&trade_status=TRADE_SUCCESS"
)
NOTIFICATION_SIGNATURE = (
    "JjWiiZXZZugUHzMuE5sVwdEE2+Q03AONU53VB8o7tQ+9kJvqE0+7j9ZCdeq51vKwwqPrdj2WYpzghefr/2rBoObPeAOMKv0CyC3Z"
    "U1BVZNmyXn/4+zQe0RSl/SYprIBej7Ox0HegcjmSVHZYpG6TdGeN7QZu7Ey7qmUqHmadMJyoZcZ6YddUI0K8kbcfaIHtYi7pVHRa"
    "jfQ1E2rKKxNfxk8DjqrN0v4INNEVN4SpnHXSz79Zfpa6KwfAOroLcl3zc6Shg53kMxs3IeeqGHQuWvYf8nL9K+H0VOE6mzORXwnI"
    "SNgju0s7DvxASIeH8cKFDFYd1IdE2MtP7/Y96pH+mQ=="
)

# A gateway request as the SDK sends it (common parameters and biz_content; sign_type is signed, sign is not).
REQUEST = {
    "method": "alipay.marketing.activity.voucher.send", "app_id": "2021000000000001", "charset": "utf-8",
    "format": "json", "sign_type": "RSA2", "timestamp": "2026-11-11 00:00:01", "version": "1.0",
    "biz_content": '{"activity_id":"A100","out_biz_no":"G0190a1b2c3d4e5f6a7b8c9d000","user_id":"2088102177846880",'
                   '"memo":"满50减5"}',
}
REQUEST_STRING = (
    'app_id=2021000000000001&biz_content={"activity_id":"A100","out_biz_no":"G0190a1b2c3d4e5f6a7b8c9d000",'
    '"user_id":"2088102177846880","memo":"满50减5"}&charset=utf-8&format=json'
    "&method=alipay.marketing.activity.voucher.send&sign_type=RSA2&timestamp=2026-11-11 00:00:01&version=1.0"
)
REQUEST_SIGNATURE = (
    "utMUEjDCndMU+ur6gtRdDzJDQkktv5hcEL0ZLed83PJatOMz7D20q4pnPNO4BMfwzTRmgtY85ym7v6DIT8t6nDAvMaIEHBQdEfUx"
    "5q3JRuUNHh+X2Dvpw5wrTy5zxduLn8I4rWsp8DYAZXKwWLiX+Uk6c3j+X0dTsKfpSyXO5t5RoXf3YaNRAEXfTkVVWMqNUOTWCrAl"
    "qnBelmwTMr4wnhsheKW83e7vDG7WaEkGjdEAXADVOsGZPr40dj8+MfoUsKqyZdYxT9bwqJE70gQoCC2h3Z4qUY7oTbBqI8ZT7EQ/"
    "HzXJ1Bo88jdpUGIkgVxMnjps7y8StI3OnSULj1fS+A=="
)

# An answer's response object, exactly as the gateway sends its bytes.
ANSWER = '{"code":"10000","msg":"Success","voucher_id":"2026111100826004508401111111","memo":"满50减5"}'
ANSWER_SIGNATURE = (
    "D7nyggWVxXhvEfiK1A/6Gm2UO1Y+/95v2SHX7UFYzLb7TeTNCmCmfPzykfgTnVhH+kvZnjy94zgCgdjvkiPtALqWG9bjHJ/XLfDk"
    "pF5f8djSPl2R2ctyh8giK+wTIztNXNj+KoP4sYLqPX+6atzAqQQjuJD9/kHkIM7vTCJDQFtE9+8dyXEqLHsTYxuA1Y/5046uxWUR"
    "5Pqs8Yn7/NzCAARunkkeYVoESSpGVGDXwOdgJgnWxX06a5Gyl/fcffx6Uv6ONLsJcUuKdiEq2so5/9MwOemz90f7yuku+8OofrEG"
    "IxY1Ab531iWyR1Tg5taeLCPD7bAIh5PHvYWu4bIwdQ=="
)


def test_the_notification_string_follows_the_rule_on_both_sides():
    assert sign_content(NOTIFICATION, skip=("sign", "sign_type"), skip_empty=True) == NOTIFICATION_STRING
    assert sandbox.string_to_sign(NOTIFICATION, sandbox.NOTIFICATION_EXCLUDED) == NOTIFICATION_STRING


def test_the_request_string_follows_the_rule_in_the_sdk_and_the_sandbox():
    assert get_sign_content(REQUEST) == REQUEST_STRING  # what the official SDK signs
    assert sandbox.string_to_sign(REQUEST) == REQUEST_STRING


@pytest.mark.parametrize(("text", "signature"), [(NOTIFICATION_STRING, NOTIFICATION_SIGNATURE),
                                                 (REQUEST_STRING, REQUEST_SIGNATURE), (ANSWER, ANSWER_SIGNATURE)])
def test_both_signers_make_openssls_signature_and_verify_it(text, signature):
    assert sign_rsa2(PRIVATE_KEY, text.encode()) == signature
    assert sdk_edge.sdk_sign_with_rsa2(PRIVATE_KEY, text, "utf-8") == signature  # what the SDK now calls
    assert sandbox.sign(PRIVATE_KEY, text) == signature
    assert verify_rsa2(PUBLIC_KEY, text.encode(), signature)
    assert sandbox.verify(PUBLIC_KEY, text, signature)


def test_a_changed_byte_or_a_sha1_signature_does_not_verify():
    changed = NOTIFICATION_STRING.replace("9.90", "9.91").encode()
    assert not verify_rsa2(PUBLIC_KEY, changed, NOTIFICATION_SIGNATURE)
    assert not sandbox.verify(PUBLIC_KEY, changed, NOTIFICATION_SIGNATURE)
    from alipay.aop.api.util.SignatureUtils import sign_with_rsa  # RSA (SHA-1), as the SDK would sign it

    sha1 = sign_with_rsa(PRIVATE_KEY, NOTIFICATION_STRING, "utf-8")
    assert not verify_rsa2(PUBLIC_KEY, NOTIFICATION_STRING.encode(), sha1)
    assert not sdk_edge.sdk_verify_with_rsa(PUBLIC_KEY, NOTIFICATION_STRING.encode(), sha1)
    assert not verify_rsa2(PUBLIC_KEY, NOTIFICATION_STRING.encode(), "not base64!")


def test_the_sdk_signs_and_verifies_through_openssl():
    import importlib

    from alipay.aop.api.DefaultAlipayClient import DefaultAlipayClient

    client_module = importlib.import_module(DefaultAlipayClient.__module__)
    assert client_module.sign_with_rsa2 is sdk_edge.sdk_sign_with_rsa2
    assert client_module.verify_with_rsa is sdk_edge.sdk_verify_with_rsa


def test_a_worker_parses_the_keys_and_checks_the_certificates_once_and_its_work_horses_inherit_them(settings):
    import os

    from alipay_platform import gateway
    from alipay_platform.signing import private_key, public_key

    gateway.preload(settings)  # what `huodong worker` does before its first fork
    parsed = (private_key.cache_info().misses, public_key.cache_info().misses, gateway._cert_mode.cache_info().misses)
    child = os.fork()
    if child == 0:  # a work horse: signs, verifies and uses certificate mode without parsing anything again
        signature = sign_rsa2(settings.alipay_app_private_key, b"horse")
        mode = gateway.gateway_for(settings).cert_mode
        verify_rsa2(next(iter(mode.alipay_keys.values())), b"horse", signature)
        verify_rsa2(settings.alipay_public_key, b"horse", signature)
        again = (private_key.cache_info().misses, public_key.cache_info().misses,
                 gateway._cert_mode.cache_info().misses)
        os._exit(0 if again == parsed else 1)
    assert os.waitpid(child, 0)[1] == 0
