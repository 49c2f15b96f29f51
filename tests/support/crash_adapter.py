"""A points adapter that kills its own worker once per grant, at a chosen moment (crash tests).

``crash: "before_issue"`` dies before touching the ledger, ``"after_issue"``
after the ledger entries of the batch are written and before its grants are
marked issued. ``victim: "worker"`` takes the RQ worker down with its work
horse, as when a machine dies; a marker file per grant makes the next attempt
run normally.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

from marshmallow import fields, validate

from campaigns.models import Grant
from engine.reward_types import reward_types
from rewards.base import Issued
from rewards.points import PointsAdapter, PointsParams


class CrashingPointsParams(PointsParams):
    crash = fields.String(required=True, validate=validate.OneOf(["before_issue", "after_issue"]))
    # "horse": only the forked work horse dies; "worker": the worker process dies with it.
    victim = fields.String(required=True, validate=validate.OneOf(["horse", "worker"]))


@reward_types.register("points_crash")
class CrashingPointsAdapter(PointsAdapter):
    type_name = "points_crash"
    params_schema = CrashingPointsParams

    def issue_many(self, grants: list[Grant]) -> Issued:
        first_time = [grant for grant in grants if _first_time(self.context.settings.instance_path, grant)]
        crash = first_time[0].reward if first_time else None
        if crash and crash["crash"] == "before_issue":
            _die(crash["victim"])
        issued = super().issue_many(grants)
        if crash and crash["crash"] == "after_issue":
            _die(crash["victim"])
        return issued


def _first_time(instance_path: str, grant: Grant) -> bool:
    marker = Path(instance_path) / "crash-markers" / grant.id
    if marker.exists():
        return False
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.touch()
    return True


def _die(victim: str) -> None:
    if victim == "worker":
        os.kill(os.getppid(), signal.SIGKILL)  # the RQ worker that forked this work horse
    os.kill(os.getpid(), signal.SIGKILL)
