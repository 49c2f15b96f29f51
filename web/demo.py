"""The demo campaigns ``huodong seed`` creates and publishes."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from engine.clock import iso


def demo_definitions(now: datetime) -> list[dict[str, Any]]:
    starts, ends = iso(now - timedelta(minutes=1)), iso(now + timedelta(days=30))
    return [
        {
            "name": "Double 11 coupon grab",
            "game": "flash_sale",
            "starts_at": starts,
            "ends_at": ends,
            "budget_fen": 500_000,
            "limits": {"per_user": 2, "per_user_per_day": 1},
            "config": {
                "skus": [
                    {"sku": "P100", "name": "100 membership points", "price_fen": 0, "stock": 1000,
                     "per_user_limit": 1, "reward": {"type": "points", "amount": 100, "cost_fen": 100}},
                    {"sku": "P500", "name": "500 membership points", "price_fen": 0, "stock": 50,
                     "per_user_limit": 1, "reward": {"type": "points", "amount": 500, "cost_fen": 500}},
                ],
            },
        },
        {
            "name": "Tea gift box flash sale",
            "game": "flash_sale",
            "starts_at": starts,
            "ends_at": ends,
            "limits": {"per_user": 1},
            "config": {
                "payment_window_seconds": 900,
                "skus": [
                    {"sku": "TEA", "name": "Tea gift box", "price_fen": 990, "original_price_fen": 9900,
                     "stock": 100, "per_user_limit": 1,
                     "reward": {"type": "points", "amount": 100, "cost_fen": 100}},
                ],
            },
        },
    ]
