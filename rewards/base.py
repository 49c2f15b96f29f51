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
- ``issue_many(grants) -> {grant id: external id or the exception}``: a batch
  (settlement issues grants in batches of one adapter). By default each grant
  is issued on its own, ``concurrency`` at a time on a pool of threads (set it
  above 1 for a provider reached over the network); an adapter that can take
  the whole batch at once (one SQL transaction) overrides it. Every grant of
  the batch gets its own answer: one failure never decides for the others,
  and the same idempotency by grant id holds for each. A subclass that
  changes ``issue`` of an adapter that overrides ``issue_many`` must change
  ``issue_many`` too (or set it back to ``RewardAdapter.issue_many``).
- ``query(grant)``: the provider's view, for reconciliation; None if unknown.
- ``revoke(grant)``: take it back where the provider allows it.

Adapters register with ``@reward_types.register("<type>")``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import ClassVar

import marshmallow

from campaigns.models import Grant
from engine.jobs import JobContext


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


def one_of(issued: Issued, grant: Grant) -> str:
    """A single grant's answer from a batch of one: its external id, or its exception raised."""
    answer = issued[grant.id]
    if isinstance(answer, Exception):
        raise answer
    return answer


# What an adapter works with: the settings, the SQL session factory and the clock of its worker process.
AdapterContext = JobContext
# A batch's answer: per grant id, the provider's id or why it was not issued.
Issued = dict[str, str | Exception]


def refused(retryable: bool, problem: str) -> IssueError:
    """What a provider's refusal means for a grant: try again later, or a dead letter with the provider's words."""
    return RetryableIssueError(problem) if retryable else PermanentIssueError(problem)


class RewardAdapter(ABC):
    type_name: ClassVar[str]
    params_schema: ClassVar[type[marshmallow.Schema]]
    # False for types only the engine makes (a points debit): a campaign config cannot name them.
    configurable: ClassVar[bool] = True
    # How many grants of a batch are issued at the same time (threads): more than 1 for network providers.
    concurrency: ClassVar[int] = 1

    def __init__(self, context: AdapterContext) -> None:
        self.context = context

    @abstractmethod
    def issue(self, grant: Grant) -> str: ...

    def issue_many(self, grants: list[Grant]) -> Issued:
        return self.each(grants, self.issue)

    def each(self, grants: list[Grant], issue: Callable[[Grant], str]) -> Issued:
        """``issue`` for every grant, ``concurrency`` at a time; each grant's answer or exception."""
        def attempt(grant: Grant) -> str | Exception:
            try:
                return issue(grant)
            except Exception as exc:  # noqa: BLE001  (the grant's own outcome; the batch goes on)
                return exc

        if self.concurrency <= 1 or len(grants) <= 1:
            return {grant.id: attempt(grant) for grant in grants}
        with ThreadPoolExecutor(max_workers=min(self.concurrency, len(grants)),
                                thread_name_prefix=f"issue-{self.type_name}") as pool:
            return dict(zip((g.id for g in grants), pool.map(attempt, grants), strict=True))

    @abstractmethod
    def query(self, grant: Grant) -> str | None: ...

    def revoke(self, grant: Grant) -> None:
        raise RevokeNotSupportedError(f"{self.type_name} rewards cannot be revoked")
