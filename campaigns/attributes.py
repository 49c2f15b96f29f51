"""The catalogue of player attributes audience rules may name: the built-ins and every imported one."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.audience import BUILTIN_ATTRIBUTES

from .models import AttributeDefinition


def attribute_types(session: Session) -> dict[str, str]:
    imported = dict(session.execute(select(AttributeDefinition.name, AttributeDefinition.type)).tuples().all())
    return {**imported, **BUILTIN_ATTRIBUTES}
