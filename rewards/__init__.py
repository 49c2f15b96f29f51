"""Reward adapters and settlement: importing this package registers the built-in adapters."""

from . import alipay_cash, alipay_voucher, coupons, points, tiers, webhook  # noqa: F401  (each registers itself)
