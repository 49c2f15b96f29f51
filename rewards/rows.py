"""The SQL rows of outbox events: claims, orders and grants, gathered for a batch of events and written with
one executemany INSERT per table (a statement compiled once, the rows as its parameters).

Writing the same events twice changes nothing: every INSERT skips rows whose
key exists (ON CONFLICT DO NOTHING), and an order's status only moves from
``held``. Inserts go first and status updates after them, so an order's
release is right also when it arrives in the same batch as its claim, or
before it (a taken-over entry carries its claim with it).
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy import update
from sqlalchemy.orm import Session

from campaigns.db import insert_for
from campaigns.models import ClaimRecord, Grant, GrantStatus, Order, OrderStatus, ReviewStatus
from engine.clock import from_ms


class OutboxRows:
    """Rows of the events added so far; ``write`` puts them in SQL in the caller's transaction."""

    def __init__(self, now: datetime) -> None:
        self._now = now
        self._claims: dict[str, dict[str, Any]] = {}
        self._orders: dict[str, dict[str, Any]] = {}
        self._grants: dict[str, dict[str, Any]] = {}
        self._order_status: list[tuple[str, str]] = []  # (order id, new status), in event order
        self.to_issue: list[str] = []  # grant ids to issue (not held for review), in event order

    def add(self, event: dict[str, Any]) -> bool:
        """One outbox event; False for a type settlement does not know."""
        kind = event["type"]
        if kind == "claim":
            self.claim(event)
        elif kind == "order.released":
            claim = json.loads(event["claim"]) if isinstance(event.get("claim"), str) else event.get("claim")
            if claim:
                self.claim(claim)
            self._order_status.append((event["order_id"], event["reason"]))
        elif kind == "order.paid":
            # The held order was paid: the order row says so, and the rewards waiting for the payment are grants.
            claim = event["claim"]
            self.claim(claim)
            self._order_status.append((event["order_id"], OrderStatus.PAID))
            self.to_issue += self._add_grants(claim, event["grants"], from_ms(event["at_ms"]), GrantStatus.PENDING)
        else:
            return False
        return True

    def claim(self, event: dict[str, Any]) -> None:
        """An admitted claim: its record, its order, its grants (held when the fraud gate held the play)."""
        at = from_ms(event["at_ms"])
        common = {"campaign_id": event["campaign_id"], "version": event["version"], "user_id": event["user_id"]}
        fraud = event.get("fraud")
        held = bool(fraud and fraud.get("held"))
        if held:  # what a rejection gives back
            fraud = {**fraud, "takes": event.get("takes") or []}
        self._claims.setdefault(event["claim_id"], {
            "id": event["claim_id"], "game": event["game"], "action": event["action"], "request": event["request"],
            "outcome": event["outcome"], "created_at": at, "variant": event.get("variant"), "draw": event.get("draw"),
            "fraud": fraud, "review": ReviewStatus.HELD if held else None, **common})
        order = event.get("order")
        if order:
            self._orders.setdefault(order["id"], {
                "id": order["id"], "claim_id": event["claim_id"], "status": order["status"],
                "amount_fen": order["amount_fen"], "lines": order["lines"],
                "deadline_at": from_ms(order["deadline_ms"]) if order.get("deadline_ms") else None,
                "created_at": at, "updated_at": self._now, **common})
        grants = self._add_grants(event, event.get("grants") or [], at,
                                  GrantStatus.HELD if held else GrantStatus.PENDING)
        if not held:
            self.to_issue += grants

    def _add_grants(self, claim: dict[str, Any], grants: list[dict[str, Any]], at: datetime,
                    status: GrantStatus) -> list[str]:
        """Grant rows of a claim (a grant names its own player, or the claim's)."""
        for grant in grants:
            self._grants.setdefault(grant["id"], {
                "id": grant["id"], "claim_id": claim["claim_id"], "reward_type": grant["reward"]["type"],
                "reward": grant["reward"], "cost_fen": grant["cost_fen"], "status": status, "attempts": 0,
                "created_at": at, "updated_at": self._now, "campaign_id": claim["campaign_id"],
                "version": claim["version"], "user_id": grant.get("user_id") or claim["user_id"]})
        return [grant["id"] for grant in grants]

    def reward_type(self, grant_id: str) -> str:
        return self._grants[grant_id]["reward_type"]

    def write(self, session: Session) -> None:
        for model, rows in ((ClaimRecord, self._claims), (Order, self._orders), (Grant, self._grants)):
            if rows:
                session.execute(insert_for(session, model.__table__).on_conflict_do_nothing(index_elements=["id"]),
                                list(rows.values()))
        for order_id, status in self._order_status:
            session.execute(update(Order).where(Order.id == order_id, Order.status == OrderStatus.HELD)
                            .values(status=status, updated_at=self._now))
