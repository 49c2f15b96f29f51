"""Fraud policies as marketers manage them: saved in SQL (with the audit log), mirrored to Redis for the gate.

The built-in ``default`` policy applies until a policy of that name is saved;
``list`` shows it either way. Saving validates the whole document
(``engine.fraud.policy.PolicySchema``): a policy is replaced, never patched.
"""

from __future__ import annotations

import json
from typing import Any

import marshmallow
import redis
from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.clock import Clock, to_ms
from engine.errors import NotFoundError, ValidationError
from engine.fraud import stats
from engine.fraud.policy import DEFAULT, DEFAULT_POLICY, NAME, PolicySchema
from engine.keys import GlobalKeys

from . import audit
from .models import FraudPolicy


class FraudPolicyService:
    def __init__(self, session: Session, *, client: redis.Redis, namespace: str, clock: Clock) -> None:
        self._session = session
        self._client = client
        self._key = GlobalKeys(namespace).fraud_policies
        self._namespace = namespace
        self._clock = clock

    def list(self) -> list[dict[str, Any]]:
        saved = {p.name: self._view(p) for p in self._session.scalars(select(FraudPolicy).order_by(FraudPolicy.name))}
        saved.setdefault(DEFAULT, self._built_in())
        return [saved[name] for name in sorted(saved)]

    def get(self, name: str) -> dict[str, Any]:
        policy = self._session.get(FraudPolicy, name)
        if policy is not None:
            return self._view(policy)
        if name == DEFAULT:
            return self._built_in()
        raise NotFoundError("No such fraud policy.", name=name)

    def exists(self, name: str) -> bool:
        return name == DEFAULT or self._session.get(FraudPolicy, name) is not None

    def save(self, name: str, document: Any, *, actor: str) -> dict[str, Any]:
        try:
            NAME(name)
        except marshmallow.ValidationError as exc:
            raise ValidationError("Bad policy name.", fields={"name": exc.messages}) from None
        try:
            loaded = PolicySchema().load(document)
        except marshmallow.ValidationError as exc:
            raise ValidationError("The fraud policy is not valid.", fields=exc.normalized_messages()) from None
        now = self._clock.now()
        policy = self._session.get(FraudPolicy, name, with_for_update=True)
        before = policy.document if policy is not None else None
        if policy is None:
            policy = FraudPolicy(name=name)
            self._session.add(policy)
        policy.document, policy.updated_by, policy.updated_at = loaded, actor, now
        audit.record(self._session, at=now, actor=actor, action="fraud_policy.save", subject_type="fraud_policy",
                     subject_id=name, before=before, after=loaded)
        self._session.commit()
        self.mirror(name)
        return self._view(policy)

    def mirror(self, name: str) -> None:
        """Copy the saved policy to Redis, where the gate reads it (publishing a campaign does this too, so a
        Redis that lost its copy gets it back)."""
        policy = self._session.get(FraudPolicy, name)
        if policy is not None:
            self._client.hset(self._key, name, json.dumps(policy.document, separators=(",", ":")))

    def last_hour(self, name: str) -> dict[str, Any]:
        """What the policy's rules refused, and its shadow rules would have, in the last hour, over every
        campaign playing under it (engine/fraud/stats.py)."""
        return {"policy": name, **stats.last_hour(
            self._client, lambda minute: [stats.policy_minute_key(self._namespace, name, minute)],
            to_ms(self._clock.now()))}

    def publish_warning(self, name: str) -> dict[str, Any] | None:
        """The last hour under ``name`` when its shadow rules would have refused more than 1 % of the plays:
        what a publish confirmation warns of before the rules are enforced."""
        hour = self.last_hour(name)
        return hour if hour["share"] > stats.WARN_SHARE else None

    @staticmethod
    def _view(policy: FraudPolicy) -> dict[str, Any]:
        return {"name": policy.name, "policy": policy.document, "built_in": False,
                "updated_by": policy.updated_by, "updated_at": policy.updated_at}

    @staticmethod
    def _built_in() -> dict[str, Any]:
        return {"name": DEFAULT, "policy": PolicySchema().load(DEFAULT_POLICY), "built_in": True,
                "updated_by": None, "updated_at": None}
