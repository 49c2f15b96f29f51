"""tier rewards and the points ladder, as /me/points shows them."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from campaigns.models import Grant, GrantStatus, PointsEntry
from rewards.tiers import player_tier
from tests.support.factories import flash_sale_definition

LADDER = ("silver:1000", "gold:5000", "platinum:20000")


def _tier_sale(tier: str, days: int = 30) -> dict:
    return flash_sale_definition(skus=[{"sku": "VIP", "name": f"{tier} for {days} days", "price_fen": 0, "stock": 5,
                                        "reward": {"type": "tier", "tier": tier, "days": days, "cost_fen": 0}}])


def test_a_tier_reward_shows_in_me_points_until_it_expires(factory, client, settle, db_session, container):
    campaign = factory.campaign(_tier_sale("gold", days=7))
    outcome = factory.play(campaign, "vip", "buy", {"sku": "VIP", "quantity": 1}).outcome
    settle()
    db_session.rollback()
    grant = db_session.scalar(select(Grant).where(Grant.claim_id == outcome["claim_id"]))
    assert grant.status == GrantStatus.ISSUED and grant.external_id.startswith("tier:gold:")
    mine = client.get("/api/v1/me/points", headers={"Authorization": f"Bearer {factory.token('vip')}"}).json
    assert mine["tier"]["name"] == "gold" and mine["tier"]["source"] == "reward"
    later = container.clock.now() + timedelta(days=8)
    assert player_tier(db_session, "vip", later, LADDER) is None


def test_the_higher_of_points_and_reward_wins(db_session, container):
    now = container.clock.now()
    with container.session_factory() as session, session.begin():
        session.add(PointsEntry(user_id="p", delta=6000, reason="test", created_at=now, expires_at=None))
    assert player_tier(db_session, "p", now, LADDER) == {"name": "gold", "source": "points", "expires_at": None}
    assert player_tier(db_session, "nobody", now, LADDER) is None


def test_a_tier_off_the_ladder_is_a_dead_letter(factory, settle, db_session):
    campaign = factory.campaign(_tier_sale("diamond"))
    outcome = factory.play(campaign, "x", "buy", {"sku": "VIP", "quantity": 1}).outcome
    settle()
    db_session.rollback()
    grant = db_session.scalar(select(Grant).where(Grant.claim_id == outcome["claim_id"]))
    assert grant.status == GrantStatus.DEAD and "not on the ladder" in grant.last_error
