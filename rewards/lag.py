"""How far settlement is behind: what players won and do not hold yet.

Two stages can lag. The outbox: a claim Redis admitted whose entry settlement
has not yet written to SQL (its age is the oldest unsettled entry's, read off
the stream id, a millisecond timestamp). Issuance: a grant in SQL not yet
issued (pending, failed or unknown; its age counts from the win). ``/metrics``
exports both per campaign, and the campaign page shows them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import redis
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from campaigns.models import Grant
from engine.keys import GlobalKeys
from engine.shards import ShardDirectory

from .settlement import UNSETTLED, first_unsettled_id


@dataclass(frozen=True)
class Unissued:
    grants: int
    oldest_at: datetime | None  # when the oldest of them was won

    def age_seconds(self, now: datetime) -> float:
        return max(0.0, (now - self.oldest_at).total_seconds()) if self.oldest_at else 0.0


def unissued(session: Session, campaign_id: int | None = None) -> dict[int, Unissued]:
    """Per campaign (or only ``campaign_id``): grants won and not yet issued, and when the oldest was won."""
    query = (select(Grant.campaign_id, func.count(), func.min(Grant.created_at))
             .where(Grant.status.in_(UNSETTLED)).group_by(Grant.campaign_id))
    if campaign_id is not None:
        query = query.where(Grant.campaign_id == campaign_id)
    rows = session.execute(query).all()
    return {cid: Unissued(int(count), oldest) for cid, count, oldest in rows}


def outbox_age_seconds(client: redis.Redis, stream: str, group: str, now_ms: float) -> float:
    """Age of the oldest outbox entry settlement has not acknowledged (0 when none waits)."""
    first = first_unsettled_id(client, stream, group)
    oldest = client.xrange(stream, min=first, count=1) if first else []
    if not oldest:
        return 0.0
    return max(0.0, (now_ms - float(oldest[0][0].split("-")[0])) / 1000)



def campaign_lag(session: Session, client: redis.Redis, namespace: str, campaign_id: int,
                 now: datetime) -> dict[str, object]:
    """What the campaign page shows: grants won and not yet issued, since when, and the outbox's own lag."""
    behind = unissued(session, campaign_id).get(campaign_id, Unissued(0, None))
    group = GlobalKeys(namespace).outbox_group
    outbox = max((outbox_age_seconds(client, keys.outbox, group, now.timestamp() * 1000)
                  for keys in ShardDirectory(client, namespace).get(campaign_id) if client.exists(keys.outbox)),
                 default=0.0)
    return {"unissued": behind.grants, "oldest_won_at": behind.oldest_at, "age_seconds": behind.age_seconds(now),
            "outbox_lag_seconds": outbox}
