"""Reward adapters whose provider never says yes: one is always down, one refuses for good."""

from __future__ import annotations

from pathlib import Path

from campaigns.models import Grant
from engine.reward_types import reward_types
from rewards.base import PermanentIssueError, RetryableIssueError, RewardAdapter
from rewards.points import PointsAdapter


class OneByOnePointsAdapter(PointsAdapter):
    """Points issued grant by grant through ``issue`` (what these adapters change), not as a ledger batch."""

    issue_many = RewardAdapter.issue_many


@reward_types.register("points_down")
class ProviderDownAdapter(OneByOnePointsAdapter):
    type_name = "points_down"

    def issue(self, grant: Grant) -> str:
        raise RetryableIssueError("provider timed out")


@reward_types.register("points_refused")
class ProviderRefusesAdapter(OneByOnePointsAdapter):
    type_name = "points_refused"

    def issue(self, grant: Grant) -> str:
        raise PermanentIssueError("payee not found")


@reward_types.register("points_outage")
class ProviderOutageAdapter(OneByOnePointsAdapter):
    """Down while the file ``<instance>/outage`` exists, then an ordinary points ledger."""

    type_name = "points_outage"

    def issue(self, grant: Grant) -> str:
        if (Path(self.context.settings.instance_path) / "outage").exists():
            raise RetryableIssueError("provider unavailable")
        return super().issue(grant)


@reward_types.register("points_picky")
class PickyAdapter(OneByOnePointsAdapter):
    """Refuses for good the players whose id starts with ``no-``; pays the others."""

    type_name = "points_picky"

    def issue(self, grant: Grant) -> str:
        if grant.user_id.startswith("no-"):
            raise PermanentIssueError("this player cannot hold points")
        return super().issue(grant)


@reward_types.register("points_flaky")
class FlakyAdapter(OneByOnePointsAdapter):
    """Fails the first attempt of each player whose id starts with ``flaky-`` (a marker file per grant)."""

    type_name = "points_flaky"

    def issue(self, grant: Grant) -> str:
        marker = Path(self.context.settings.instance_path) / "flaky-markers" / grant.id
        if grant.user_id.startswith("flaky-") and not marker.exists():
            marker.parent.mkdir(parents=True, exist_ok=True)
            marker.touch()
            raise RetryableIssueError("provider busy")
        return super().issue(grant)
