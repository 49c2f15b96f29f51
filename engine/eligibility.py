"""May this player play this campaign now? Schedule, audience and rollout; status is re-checked in claim.lua."""

from __future__ import annotations

import hashlib
from datetime import datetime

from .attributes import AttributeStore
from .errors import CampaignNotLiveError, NotEligibleError
from .snapshot import CampaignSnapshot


def check_schedule(snapshot: CampaignSnapshot, now: datetime) -> None:
    if snapshot.starts_at and now < snapshot.starts_at:
        raise CampaignNotLiveError("The campaign has not started yet.", reason="not_started",
                                   starts_at=snapshot.starts_at.isoformat())
    if snapshot.ends_at and now >= snapshot.ends_at:
        raise CampaignNotLiveError("The campaign has ended.", reason="ended")


BUCKETS = 10_000


def rollout_bucket(campaign_id: int, user_id: str) -> int:
    """A player's fixed place (0..9999) in a campaign's gray release, the same in every process and version."""
    digest = hashlib.sha256(f"{campaign_id}:{user_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % BUCKETS


def in_rollout(snapshot: CampaignSnapshot, user_id: str) -> bool:
    """In when the bucket is below the percentage, so raising the percentage keeps everyone already in."""
    return rollout_bucket(snapshot.campaign_id, user_id) < snapshot.rollout_percent * BUCKETS // 100


def check_rollout(snapshot: CampaignSnapshot, user_id: str) -> None:
    if not in_rollout(snapshot, user_id):
        raise NotEligibleError("This campaign is not open to this player yet.", reason="rollout")


def check_audience(snapshot: CampaignSnapshot, user_id: str, attributes: AttributeStore | None) -> None:
    if snapshot.audience is None:
        return
    admitted = attributes is not None and snapshot.audience.admits(attributes.of(user_id), attributes.types())
    if not admitted:
        raise NotEligibleError("This campaign is for another audience.", reason="audience")


def check_eligible(snapshot: CampaignSnapshot, user_id: str, now: datetime,
                   attributes: AttributeStore | None = None) -> None:
    """Every check a play passes before its claim; raises the refusal a play would get."""
    check_schedule(snapshot, now)
    check_audience(snapshot, user_id, attributes)
    check_rollout(snapshot, user_id)
