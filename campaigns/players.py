"""Players: found or created at login."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.clock import Clock

from .db import insert_for
from .models import Player


def find_or_create(session: Session, player_id: str, *, clock: Clock, age: timedelta = timedelta()) -> Player:
    """The player of this id; a new one registered ``age`` ago (now, unless a dev login says otherwise)."""
    session.execute(insert_for(session, Player).values(id=player_id, created_at=clock.now() - age)
                    .on_conflict_do_nothing(index_elements=["id"]))
    session.commit()
    return session.get(Player, player_id)


def find_or_create_alipay(session: Session, alipay_user_id: str, *, clock: Clock) -> Player:
    """The player an Alipay user id belongs to (their player id is that user id on first login)."""
    player = session.scalar(select(Player).where(Player.alipay_user_id == alipay_user_id))
    if player is not None:
        return player
    session.execute(insert_for(session, Player).values(id=alipay_user_id, alipay_user_id=alipay_user_id,
                                                       created_at=clock.now())
                    .on_conflict_do_nothing(index_elements=["id"]))
    session.commit()
    player = session.scalar(select(Player).where(Player.alipay_user_id == alipay_user_id))
    if player is None:  # a dev-login player took that id first: link it
        player = session.get(Player, alipay_user_id)
        player.alipay_user_id = alipay_user_id
        session.commit()
    return player
