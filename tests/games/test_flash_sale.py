"""flash_sale's plan: a pure function from config and request to a claim."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from engine.claims import Claim, Release
from engine.game import PlayContext
from games.flash_sale import FlashSale, FlashSaleConfig, UnknownSkuError

CONFIG = FlashSaleConfig().load({
    "payment_window_seconds": 600,
    "skus": [
        {"sku": "FREE", "name": "Coupon", "price_fen": 0, "stock": 10, "per_user_limit": 1,
         "reward": {"type": "points", "amount": 5, "cost_fen": 3}},
        {"sku": "TEA", "name": "Tea", "price_fen": 990, "stock": 5,
         "reward": {"type": "points", "amount": 100, "cost_fen": 100}},
    ],
})
CTX = PlayContext(campaign_id=1, version=1, user_id="u", claim_id="c", now=datetime(2026, 11, 11, tzinfo=UTC),
                  day=date(2026, 11, 11), seed=0)


def test_a_free_sku_is_confirmed_with_one_grant_per_unit():
    claim = FlashSale().plan(CONFIG, "buy", {"sku": "FREE", "quantity": 2}, CTX)
    assert isinstance(claim, Claim)
    assert claim.takes[0].item == "sku:FREE" and claim.takes[0].per_user_limit == 1
    assert len(claim.grants) == 2 and claim.cost_fen == 6
    assert claim.order.amount_fen == 0 and not claim.order.held


def test_a_priced_sku_is_held_with_its_reward_waiting_for_payment():
    claim = FlashSale().plan(CONFIG, "buy", {"sku": "TEA", "quantity": 1}, CTX)
    assert claim.grants == ()
    assert claim.order.held and claim.order.hold_seconds == 600 and claim.order.amount_fen == 990
    assert claim.cost_fen == 100  # the reward's cost is reserved from the budget while held


def test_an_unknown_sku_is_refused():
    with pytest.raises(UnknownSkuError):
        FlashSale().plan(CONFIG, "buy", {"sku": "NOPE", "quantity": 1}, CTX)


def test_cancel_becomes_a_release_of_that_order():
    assert FlashSale().plan(CONFIG, "cancel", {"order_id": "O" + "a" * 24}, CTX) == Release(order_id="O" + "a" * 24)


def test_the_same_inputs_always_plan_the_same_claim():
    first = FlashSale().plan(CONFIG, "buy", {"sku": "FREE", "quantity": 1}, CTX)
    assert FlashSale().plan(CONFIG, "buy", {"sku": "FREE", "quantity": 1}, CTX) == first
