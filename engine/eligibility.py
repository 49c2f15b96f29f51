"""May this player play this campaign now? Schedule here; status is re-checked atomically in claim.lua."""

from __future__ import annotations

from datetime import datetime

from .errors import CampaignNotLiveError
from .snapshot import CampaignSnapshot


def check_schedule(snapshot: CampaignSnapshot, now: datetime) -> None:
    if snapshot.starts_at and now < snapshot.starts_at:
        raise CampaignNotLiveError("The campaign has not started yet.", reason="not_started",
                                   starts_at=snapshot.starts_at.isoformat())
    if snapshot.ends_at and now >= snapshot.ends_at:
        raise CampaignNotLiveError("The campaign has ended.", reason="ended")
