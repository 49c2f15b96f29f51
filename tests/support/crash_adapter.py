"""A points adapter that kills its own worker once per grant, at a chosen moment (crash tests).

``crash: "before_issue"`` dies before touching the ledger, ``"after_issue"``
after the ledger entry is written and before the grant is marked issued.
``victim: "worker"`` takes the RQ worker down with its work horse, as when a
machine dies; a marker file per grant makes the next attempt run normally.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

from marshmallow import fields, validate

from campaigns.models import Grant
from engine.reward_types import reward_types
from rewards.points import PointsAdapter, PointsParams


class CrashingPointsParams(PointsParams):
    crash = fields.String(required=True, validate=validate.OneOf(["before_issue", "after_issue"]))
    # "horse": only the forked work horse dies; "worker": the worker process dies with it.
    victim = fields.String(required=True, validate=validate.OneOf(["horse", "worker"]))


@reward_types.register("points_crash")
class CrashingPointsAdapter(PointsAdapter):
    type_name = "points_crash"
    params_schema = CrashingPointsParams

    def issue(self, grant: Grant) -> str:
        marker = Path(self.context.settings.instance_path) / "crash-markers" / grant.id
        first_time = not marker.exists()
        if first_time:
            marker.parent.mkdir(parents=True, exist_ok=True)
            marker.touch()
        if first_time and grant.reward["crash"] == "before_issue":
            _die(grant.reward["victim"])
        external_id = super().issue(grant)
        if first_time and grant.reward["crash"] == "after_issue":
            _die(grant.reward["victim"])
        return external_id


def _die(victim: str) -> None:
    if victim == "worker":
        os.kill(os.getppid(), signal.SIGKILL)  # the RQ worker that forked this work horse
    os.kill(os.getpid(), signal.SIGKILL)
