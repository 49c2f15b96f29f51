"""What a player sees of their own past: grants won, orders placed; and the live campaign list."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from .models import Campaign, CampaignStatus, Grant, Order

MAX_PAGE = 100


def player_grants(session: Session, user_id: str, *, limit: int = 50) -> list[Grant]:
    return list(session.scalars(select(Grant).where(Grant.user_id == user_id)
                                .order_by(Grant.created_at.desc(), Grant.id.desc()).limit(min(limit, MAX_PAGE))))


def player_orders(session: Session, user_id: str, *, limit: int = 50) -> list[Order]:
    return list(session.scalars(select(Order).where(Order.user_id == user_id)
                                .order_by(Order.created_at.desc(), Order.id.desc()).limit(min(limit, MAX_PAGE))))


def live_campaign_ids(session: Session) -> list[int]:
    return list(session.scalars(select(Campaign.id).where(Campaign.status == CampaignStatus.LIVE,
                                                          Campaign.live_version.is_not(None))
                                .order_by(Campaign.id)))
