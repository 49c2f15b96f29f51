"""Reward adapters and settlement: importing this package registers the built-in adapters."""

from . import coupons, points, tiers, webhook  # noqa: F401  (each registers itself)
from .alipay import cash, voucher  # noqa: F401  (each registers itself)
