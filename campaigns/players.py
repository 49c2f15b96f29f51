"""Players: found or created at login."""

from __future__ import annotations

from sqlalchemy.orm import Session

from engine.clock import Clock

from .db import insert_for
from .models import Player


def find_or_create(session: Session, player_id: str, *, clock: Clock) -> Player:
    session.execute(insert_for(session, Player).values(id=player_id, created_at=clock.now())
                    .on_conflict_do_nothing(index_elements=["id"]))
    session.commit()
    return session.get(Player, player_id)
