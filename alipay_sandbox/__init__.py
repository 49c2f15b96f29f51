"""A local stand-in for Alipay's open-platform gateway, for tests and the demo.

It speaks the gateway protocol the official alipay-sdk-python speaks: it
verifies the RSA2 signature of every request with the merchant's public key
and answers ``{"<method>_response": {...}, "sign": ...}`` signed with its own
key, as Alipay does. It keeps state (auth codes so far; trades, transfers and
vouchers as Huodong needs them) and exposes it for tests.
"""
