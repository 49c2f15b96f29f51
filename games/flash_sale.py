"""flash_sale (秒杀 / 抢券): SKUs with stock and a per-player limit.

A free SKU (a coupon grab) is confirmed at once and its reward granted. A
priced SKU becomes an order held for ``payment_window_seconds``; the engine
releases it at the deadline unless it is paid, or when the player cancels.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from marshmallow import RAISE, Schema, ValidationError, fields, validate, validates_schema

from engine.claims import Claim, GrantSpec, OrderLine, OrderSpec, Release, Take, public_reward
from engine.errors import ValidationError as HuodongValidationError
from engine.game import Game, PlayContext, ViewContext, games
from engine.reward_types import RewardField
from engine.simulation import Forecast, daily_players
from engine.state import GameState

SKU_CODE = validate.Regexp(r"^[A-Za-z0-9_-]{1,32}$", error="1 to 32 letters, digits, _ or -.")
MAX_QUANTITY = 99


class UnknownSkuError(HuodongValidationError):
    code = "UNKNOWN_SKU"
    default_message = "No such SKU in this campaign."


class SkuSchema(Schema):
    class Meta:
        unknown = RAISE

    sku = fields.String(required=True, validate=SKU_CODE)
    name = fields.String(required=True, validate=validate.Length(min=1, max=100))
    price_fen = fields.Integer(required=True, strict=True, validate=validate.Range(min=0, max=100_000_000))
    original_price_fen = fields.Integer(strict=True, allow_none=True, load_default=None,
                                        validate=validate.Range(min=0, max=100_000_000))
    stock = fields.Integer(required=True, strict=True, validate=validate.Range(min=0, max=1_000_000_000))
    per_user_limit = fields.Integer(strict=True, allow_none=True, load_default=None,
                                    validate=validate.Range(min=1, max=MAX_QUANTITY))
    reward = RewardField(allow_none=True, load_default=None)


class FlashSaleConfig(Schema):
    class Meta:
        unknown = RAISE

    payment_window_seconds = fields.Integer(strict=True, load_default=900, validate=validate.Range(min=60, max=86400))
    skus = fields.List(fields.Nested(SkuSchema), required=True, validate=validate.Length(min=1, max=200))

    @validates_schema
    def _unique_skus(self, data: dict[str, Any], **_: Any) -> None:
        codes = [s["sku"] for s in data.get("skus", [])]
        if len(codes) != len(set(codes)):
            raise ValidationError("SKU codes must be unique.", "skus")


class BuyRequest(Schema):
    class Meta:
        unknown = RAISE

    sku = fields.String(required=True, validate=SKU_CODE)
    quantity = fields.Integer(strict=True, load_default=1, validate=validate.Range(min=1, max=MAX_QUANTITY))


class CancelRequest(Schema):
    class Meta:
        unknown = RAISE

    order_id = fields.String(required=True, validate=validate.Regexp(r"^O[0-9a-f]{24}$", error="Not an order id."))


def item_key(sku: str) -> str:
    return f"sku:{sku}"


@games.register("flash_sale")
class FlashSale(Game):
    name = "flash_sale"
    config_schema = FlashSaleConfig
    actions = {"buy": BuyRequest, "cancel": CancelRequest}
    shardable = True

    def plan(self, config: Mapping[str, Any], action: str, request: Mapping[str, Any], ctx: PlayContext
             ) -> Claim | Release:
        if action == "cancel":
            return Release(order_id=request["order_id"])
        sku = next((s for s in config["skus"] if s["sku"] == request["sku"]), None)
        if sku is None:
            raise UnknownSkuError(sku=request["sku"])
        quantity = request["quantity"]
        rewards = ()
        if sku["reward"]:
            rewards = (GrantSpec.of(sku["reward"]),) * quantity
        amount = sku["price_fen"] * quantity
        order = OrderSpec(
            lines=(OrderLine(sku=sku["sku"], name=sku["name"], quantity=quantity, unit_price_fen=sku["price_fen"]),),
            amount_fen=amount,
            hold_seconds=config["payment_window_seconds"] if amount else 0,
            rewards_on_payment=rewards if amount else (),
        )
        return Claim(
            takes=(Take(item_key(sku["sku"]), quantity, sku["per_user_limit"]),),
            units=quantity,
            grants=() if amount else rewards,
            order=order,
            outcome={"sku": sku["sku"], "quantity": quantity},
        )

    def stock(self, config: Mapping[str, Any]) -> dict[str, int]:
        return {item_key(s["sku"]): s["stock"] for s in config["skus"]}

    def rewards(self, config: Mapping[str, Any]) -> list[Mapping[str, Any]]:
        return [s["reward"] for s in config["skus"] if s["reward"]]

    def public_view(self, config: Mapping[str, Any]) -> dict[str, Any]:
        return {
            "payment_window_seconds": config["payment_window_seconds"],
            "skus": [
                {
                    "sku": s["sku"], "name": s["name"], "price_fen": s["price_fen"],
                    "original_price_fen": s["original_price_fen"], "stock": s["stock"],
                    "per_user_limit": s["per_user_limit"],
                    "reward": public_reward(s["reward"]),
                }
                for s in config["skus"]
            ],
        }

    def forecast(self, config: Mapping[str, Any], behaviour: Mapping[str, Any], days: int,
                 rng: np.random.Generator) -> Forecast:
        """Buyers spread evenly over the SKUs; each SKU sells until its stock is gone (a buyer's quota ignored)."""
        runs = behaviour["runs"]
        skus = config["skus"]
        buyers = daily_players(rng, behaviour, runs, days)
        units = rng.poisson(buyers * behaviour["plays_per_day"] / len(skus), size=(len(skus), runs, days))
        cost = np.zeros(runs, dtype=np.int64)
        wins, stockout = {}, {}
        for index, sku in enumerate(skus):
            sold_by_day = np.minimum(np.cumsum(units[index], axis=1), sku["stock"])
            sold = sold_by_day[:, -1]
            wins[sku["sku"]] = sold
            out = sold_by_day >= sku["stock"]
            stockout[sku["sku"]] = np.where(out.any(axis=1), out.argmax(axis=1) + 1, 0)
            cost += sold * (sku["reward"]["cost_fen"] if sku["reward"] else 0)
        return Forecast(cost_fen=cost, wins=wins, stockout_day=stockout, plays=units.sum(axis=(0, 2)))

    def demo_definitions(self, starts_at: str, ends_at: str) -> list[dict[str, Any]]:
        return [
            {
                "name": "Double 11 coupon grab",
                "game": "flash_sale",
                "starts_at": starts_at,
                "ends_at": ends_at,
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
                "starts_at": starts_at,
                "ends_at": ends_at,
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

    def player_state(self, config: Mapping[str, Any], state: GameState, ctx: ViewContext) -> dict[str, Any]:
        return {
            "bought": state.mine("all"),
            "skus": {
                s["sku"]: {"stock_left": state.stock_left.get(item_key(s["sku"]), 0),
                           "bought": state.mine("i:" + item_key(s["sku"]))}
                for s in config["skus"]
            },
        }
