"""Builders for the things tests need: campaign definitions, published campaigns, players and plays."""

from __future__ import annotations

import itertools
import uuid
from datetime import timedelta
from typing import Any

from engine.clock import iso
from engine.runtime import PlayRequest
from web.container import Container

_names = itertools.count(1)


def flash_sale_definition(*, stock: int = 10, price_fen: int = 0, per_user: int | None = None,
                          per_user_per_day: int | None = None, per_user_limit: int | None = None,
                          budget_fen: int | None = None, reward_cost_fen: int = 100, window: int = 900,
                          skus: list[dict[str, Any]] | None = None, starts_in: timedelta | None = None,
                          ends_in: timedelta = timedelta(days=1), now: Any = None) -> dict[str, Any]:
    from engine.clock import SystemClock

    now = now or SystemClock().now()
    limits = {k: v for k, v in {"per_user": per_user, "per_user_per_day": per_user_per_day}.items() if v}
    return {
        "name": f"Flash sale {next(_names)}",
        "game": "flash_sale",
        "starts_at": iso(now + starts_in) if starts_in else iso(now - timedelta(minutes=1)),
        "ends_at": iso(now + ends_in),
        "budget_fen": budget_fen,
        "limits": limits,
        "config": {
            "payment_window_seconds": window,
            "skus": skus or [{
                "sku": "C50", "name": "50 yuan coupon", "price_fen": price_fen, "stock": stock,
                "per_user_limit": per_user_limit,
                "reward": {"type": "points", "amount": 50, "cost_fen": reward_cost_fen},
            }],
        },
    }


class Factory:
    def __init__(self, container: Container, client: Any) -> None:
        self.container = container
        self.client = client

    def campaign(self, definition: dict[str, Any] | None = None, **options: Any) -> int:
        """A published, live campaign; answers its id."""
        with self.container.session_factory() as session:
            service = self.container.campaign_service(session)
            campaign = service.create(definition or flash_sale_definition(**options), actor="test")
            service.publish(campaign.id, actor="test")
            return campaign.id

    def token(self, user_id: str, *, registered_days_ago: int = 30) -> str:
        """A player's token; an established account unless the test asks for a new one (0 days)."""
        response = self.client.post("/api/v1/auth/dev", json={"user_id": user_id,
                                                              "registered_days_ago": registered_days_ago})
        assert response.status_code == 200, response.json
        return response.json["token"]

    def headers(self, user_id: str, key: str | None = None) -> dict[str, str]:
        headers = {"Authorization": f"Bearer {self.token(user_id)}"}
        headers["Idempotency-Key"] = key or str(uuid.uuid4())
        return headers

    def play(self, campaign_id: int, user_id: str, action: str = "buy", payload: dict[str, Any] | None = None,
             key: str | None = None) -> Any:
        """A play straight through the engine (no HTTP)."""
        return self.container.play_service.play(PlayRequest(
            campaign_id=campaign_id, user_id=user_id, action=action,
            payload=payload if payload is not None else {"sku": "C50", "quantity": 1},
            idempotency_key=key or str(uuid.uuid4())))
