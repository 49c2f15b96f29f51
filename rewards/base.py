"""The reward adapter contract.

An adapter turns a ``Grant`` row into something the player owns, at a
provider (Alipay, the points ledger, a coupon pool, a merchant webhook).

- ``params_schema``: the fields of a reward of this type in a campaign
  definition (besides ``type`` and ``cost_fen``); checked at publish.
- ``issue(grant) -> external id``: must be idempotent by ``grant.id`` (the
  provider's ``out_biz_no``): issuing the same grant twice yields one reward
  and the same external id. Raise ``RetryableIssueError`` when the outcome is
  temporary (a busy pool, a 5xx that did nothing), ``OutcomeUnknownError``
  when no answer came and the provider may have acted (a timeout), and
  ``PermanentIssueError`` when the provider refused for good.
- ``query(grant)``: the provider's view, for reconciliation; None if unknown.
- ``revoke(grant)``: take it back where the provider allows it.

Adapters register with ``@reward_types.register("<type>")``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import ClassVar

import marshmallow
from sqlalchemy.orm import sessionmaker

from campaigns.models import Grant
from engine.clock import Clock
from engine.config import Settings


class IssueError(Exception):
    """The adapter could not issue the grant this time."""


class RetryableIssueError(IssueError):
    """Temporary: try again later with the same grant id."""


class OutcomeUnknownError(RetryableIssueError):
    """No answer came and the provider may have acted (a read timeout): the grant is "unknown" until an attempt
    asks the provider, or resends the very same idempotent request, and learns the truth."""


class PermanentIssueError(IssueError):
    """The provider refused for good: the grant becomes a dead letter for a person to look at."""


class RevokeNotSupportedError(IssueError):
    pass


@dataclass(frozen=True)
class AdapterContext:
    settings: Settings
    session_factory: sessionmaker
    clock: Clock


class RewardAdapter(ABC):
    type_name: ClassVar[str]
    params_schema: ClassVar[type[marshmallow.Schema]]
    # False for types only the engine makes (a points debit): a campaign config cannot name them.
    configurable: ClassVar[bool] = True

    def __init__(self, context: AdapterContext) -> None:
        self.context = context

    @abstractmethod
    def issue(self, grant: Grant) -> str: ...

    @abstractmethod
    def query(self, grant: Grant) -> str | None: ...

    def revoke(self, grant: Grant) -> None:
        raise RevokeNotSupportedError(f"{self.type_name} rewards cannot be revoked")
