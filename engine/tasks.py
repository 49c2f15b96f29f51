"""The task wall (任务墙): visit a page, share, invite a friend, pay an order -- each paid with chances or a reward.

Shared by check-in, lottery and cards. A task is started and completed:
``task_start {"task"}`` records a server-issued token (the start's claim id)
and the start time in the player's hash; ``task_complete {"task", "token"}``
is accepted only with that token, after the task's minimum dwell time, and
at most ``daily_cap`` times per business day. What a task checks beyond that
(that a share was seen, a friend registered, an order paid) is the
mini-program's word: the cap bounds what a lie can earn.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from marshmallow import RAISE, Schema, ValidationError, fields, validate, validates_schema

from . import chances
from .claims import Claim, GrantSpec, Op, public_reward
from .clock import to_ms
from .errors import ConflictError, LimitReachedError
from .errors import ValidationError as HuodongValidationError
from .game import PlayContext
from .reward_types import RewardField

TASK_NAME = validate.Regexp(r"^[a-z0-9_]{1,32}$", error="1 to 32 lowercase letters, digits or _.")
KINDS = ("visit", "share", "invite", "pay")
DAILY = "tk"


class UnknownTaskError(HuodongValidationError):
    code = "UNKNOWN_TASK"
    default_message = "No such task in this campaign."


class TaskTokenError(ConflictError):
    code = "TASK_TOKEN_INVALID"
    default_message = "This task was not started with that token (start it again)."


class TaskTooSoonError(ConflictError):
    code = "TASK_TOO_SOON"
    default_message = "The task's minimum time has not passed yet."


class TaskLimitError(LimitReachedError):
    code = "TASK_LIMIT_REACHED"
    default_message = "This task's daily limit is reached."


class TaskSchema(Schema):
    class Meta:
        unknown = RAISE

    task = fields.String(required=True, validate=TASK_NAME)
    kind = fields.String(required=True, validate=validate.OneOf(KINDS))
    title = fields.String(required=True, validate=validate.Length(min=1, max=100))
    daily_cap = fields.Integer(strict=True, load_default=1, validate=validate.Range(min=1, max=100))
    min_dwell_seconds = fields.Integer(strict=True, load_default=0, validate=validate.Range(min=0, max=3600))
    chances = fields.Integer(strict=True, load_default=0, validate=validate.Range(min=0, max=100))
    reward = RewardField(allow_none=True, load_default=None)

    @validates_schema
    def _pays_something(self, data: dict[str, Any], **_: Any) -> None:
        if not data.get("chances") and not data.get("reward"):
            raise ValidationError("A task pays chances, a reward or both.", "chances")


def tasks_field() -> fields.List:
    """The ``tasks`` field of a game config, unique by name."""
    return fields.List(fields.Nested(TaskSchema), load_default=list, validate=[validate.Length(max=50), _unique_names])


def _unique_names(tasks: list[dict[str, Any]]) -> bool:
    names = [t["task"] for t in tasks]
    if len(names) != len(set(names)):
        raise ValidationError("Task names must be unique.")
    return True


class TaskStartRequest(Schema):
    class Meta:
        unknown = RAISE

    task = fields.String(required=True, validate=TASK_NAME)


class TaskCompleteRequest(Schema):
    class Meta:
        unknown = RAISE

    task = fields.String(required=True, validate=TASK_NAME)
    token = fields.String(required=True, validate=validate.Regexp(r"^[0-9a-f]{24}$", error="Not a task token."))


TASK_ACTIONS = {"task_start": TaskStartRequest, "task_complete": TaskCompleteRequest}


def find_task(tasks: list[Mapping[str, Any]], name: str) -> Mapping[str, Any]:
    task = next((t for t in tasks if t["task"] == name), None)
    if task is None:
        raise UnknownTaskError(task=name)
    return task


def start(tasks: list[Mapping[str, Any]], request: Mapping[str, Any], ctx: PlayContext) -> Claim:
    task = find_task(tasks, request["task"])
    me = f"user:{ctx.user_id}"
    if ctx.state is not None and ctx.state.number(me, f"{DAILY}:{task['task']}:{ctx.day:%Y%m%d}") >= task["daily_cap"]:
        raise TaskLimitError(task=task["task"], daily_cap=task["daily_cap"])
    started_ms = to_ms(ctx.now)
    return Claim(
        takes=(), units=0,
        ops=(Op.put(me, f"ts:{task['task']}", f"{ctx.claim_id}:{started_ms}"),),
        outcome={"task": task["task"], "token": ctx.claim_id,
                 "complete_after_seconds": task["min_dwell_seconds"]},
    )


def plan(tasks: list[Mapping[str, Any]], action: str, request: Mapping[str, Any], ctx: PlayContext) -> Claim:
    """``task_start`` or ``task_complete``, for a game that offers the wall (its config's ``tasks``)."""
    return start(tasks, request, ctx) if action == "task_start" else complete(tasks, request, ctx)


def complete(tasks: list[Mapping[str, Any]], request: Mapping[str, Any], ctx: PlayContext) -> Claim:
    """Completing a task: its daily cap counted, its reward won and its chances earned."""
    task = find_task(tasks, request["task"])
    me = f"user:{ctx.user_id}"
    record = ctx.state.player.get(f"ts:{task['task']}") if ctx.state is not None else None
    token, _, started = (record or "").partition(":")
    if not record or token != request["token"]:
        raise TaskTokenError(task=task["task"])
    waited = (to_ms(ctx.now) - int(started)) / 1000
    if waited < task["min_dwell_seconds"]:
        raise TaskTooSoonError(task=task["task"], seconds_left=round(task["min_dwell_seconds"] - waited, 1))
    cap_error = TaskLimitError(task=task["task"], daily_cap=task["daily_cap"])
    ops = (
        Op.expect(me, f"ts:{task['task']}", record),
        Op.delete(me, f"ts:{task['task']}"),
        Op.incr(me, f"{DAILY}:{task['task']}:{ctx.day:%Y%m%d}", 1, high=task["daily_cap"], refuse="TASK_LIMIT"),
    )
    if task["chances"]:
        ops = (*ops, chances.earn(ctx.state, task["chances"]))
    return Claim((), 0, grants=(GrantSpec.of(task["reward"]),) if task["reward"] else (), ops=ops,
                 refusals={"TASK_LIMIT": cap_error},
                 outcome={"task": task["task"], "chances_earned": task["chances"]})


def tasks_view(tasks: list[Mapping[str, Any]], player: Mapping[str, str], ctx: Any) -> list[dict[str, Any]]:
    """Each task with what the player did of it today (``ctx`` has ``day``)."""
    return [
        {"task": t["task"], "kind": t["kind"], "title": t["title"], "chances": t["chances"],
         "reward": public_reward(t["reward"]),
         "min_dwell_seconds": t["min_dwell_seconds"], "daily_cap": t["daily_cap"],
         "done_today": int(player.get(f"{DAILY}:{t['task']}:{ctx.day:%Y%m%d}", 0)),
         "started": f"ts:{t['task']}" in player}
        for t in tasks
    ]
