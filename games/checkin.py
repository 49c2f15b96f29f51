"""checkin (签到/任务打卡): one check-in a business day, a reward ladder by streak day, streak bonuses, make-up
days (补签) paid with earned chances or points, and a task wall that earns those chances.

State, in the campaign's slot:

- ``cal:<uid>:<YYYYMM>``: the player's calendar for a month, a bitmap (bit = day - 1). It is the record of
  which days are checked: a check-in or a make-up sets its bit with a guarded SETBIT, so a day counts once
  however often (and from however many devices) it is tapped.
- the player's hash: ``run:<YYYYMMDD>`` = the first day of the run of consecutive checked days ending that
  day. The runs summarise the calendar so that a streak of any length is one lookup (the bitmaps read with a
  play cover one or two months); the same claim that sets a bit rewrites the runs it joins. Runs that ended
  more than ``MAX_WINDOW_DAYS + 1`` days ago can never be joined by a make-up again and are dropped.
  ``mk:<YYYYMM>`` counts the make-ups done in a month; ``ch`` (earned chances) and ``pts`` (points spent)
  are engine.chances' fields, ``tk:*``/``ts:*`` engine.tasks'.

Rules:

- ``checkin``: today (``ctx.day``, the business day in the campaign's zone). The streak is the number of
  consecutive checked days ending today; it pays the ladder's rung ``ladder_step(streak, len(ladder))``
  (the ladder cycles: day ``len(ladder) + 1`` of a streak pays rung 1 again), plus every streak bonus whose
  ``days`` equals the streak exactly (a run reaches a length once, so each bonus is paid once per run).
- ``makeup {"date"}``: a past day within ``makeup.window_days`` of today, not before the campaign's first
  day, not already checked, at most ``makeup.max_per_month`` times in a calendar month (of the day the
  make-up is done), paid with earned chances (no free daily ones) or points. A make-up restores the streak
  -- it joins the runs before and after the day -- but pays nothing itself: no ladder reward and no bonus.
  The check-ins after it continue from the restored streak (their rung and the bonuses they reach), so a
  player who makes up before today's check-in gets today's streak in full.
- ``task_start {"task"}`` / ``task_complete {"task", "token"}``: engine.tasks; a task's ``chances`` become
  earned chances, spendable on make-ups.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import date, datetime, timedelta
from typing import Any

import numpy as np
from marshmallow import RAISE, Schema, ValidationError, fields, validate, validates_schema

from engine import chances, tasks
from engine.claims import Claim, GrantSpec, Op, public_reward
from engine.errors import ConflictError, LimitReachedError
from engine.errors import ValidationError as HuodongValidationError
from engine.game import Game, PlayContext, ViewContext, games
from engine.reward_types import RewardField
from engine.simulation import Forecast, daily_players
from engine.state import GameState, Read
from engine.streaks import ladder_step

ONE_DAY = timedelta(days=1)
# Every day a make-up may reach lies in today's month or the month before (the shortest month has 28 days).
MAX_WINDOW_DAYS = 28
MAX_CYCLE_DAYS = 31
MAX_BONUS_DAYS = 366
RUN = "run:"
MAKEUPS = "mk:"


class AlreadyCheckedInError(ConflictError):
    code = "ALREADY_CHECKED_IN"
    default_message = "That day is already checked in."


class MakeupNotOfferedError(ConflictError):
    code = "MAKEUP_NOT_OFFERED"
    default_message = "This campaign offers no make-up days."


class MakeupNotPastError(HuodongValidationError):
    code = "MAKEUP_NOT_PAST"
    default_message = "Only a past day can be made up; check in for today instead."


class MakeupOutOfWindowError(HuodongValidationError):
    code = "MAKEUP_OUT_OF_WINDOW"
    default_message = "That day can no longer be made up."


class MakeupLimitError(LimitReachedError):
    code = "MAKEUP_LIMIT_REACHED"
    default_message = "No make-ups are left this month."


class MakeupCostSchema(Schema):
    """What one make-up costs: earned chances or points, exactly one of them."""

    class Meta:
        unknown = RAISE

    chances = fields.Integer(strict=True, validate=validate.Range(min=1, max=100))
    points = fields.Integer(strict=True, validate=validate.Range(min=1, max=1_000_000))

    @validates_schema
    def _exactly_one(self, data: dict[str, Any], **_: Any) -> None:
        if len(data) != 1:
            raise ValidationError("A make-up costs either chances or points.")


class MakeupSchema(Schema):
    class Meta:
        unknown = RAISE

    window_days = fields.Integer(required=True, strict=True, validate=validate.Range(min=1, max=MAX_WINDOW_DAYS),
                                 metadata={"description": "How many days back a missed day may be made up."})
    cost = fields.Nested(MakeupCostSchema, required=True)
    max_per_month = fields.Integer(strict=True, allow_none=True, load_default=None,
                                   validate=validate.Range(min=1, max=31))


class StreakBonusSchema(Schema):
    class Meta:
        unknown = RAISE

    days = fields.Integer(required=True, strict=True, validate=validate.Range(min=1, max=MAX_BONUS_DAYS))
    reward = RewardField(required=True)


class CheckinConfig(Schema):
    class Meta:
        unknown = RAISE

    ladder = fields.List(RewardField(), required=True, validate=validate.Length(min=1, max=MAX_CYCLE_DAYS),
                         metadata={"description": "The reward of each day of the cycle; the cycle is its length."})
    streak_bonuses = fields.List(fields.Nested(StreakBonusSchema), load_default=list,
                                 validate=validate.Length(max=20))
    makeup = fields.Nested(MakeupSchema, allow_none=True, load_default=None)
    tasks = tasks.tasks_field()

    @validates_schema
    def _consistent(self, data: dict[str, Any], **_: Any) -> None:
        days = [b["days"] for b in data.get("streak_bonuses", [])]
        if len(days) != len(set(days)):
            raise ValidationError("Each streak length has one bonus at most.", "streak_bonuses")
        makeup = data.get("makeup")
        if makeup and "chances" in makeup["cost"] and not any(t["chances"] for t in data.get("tasks", [])):
            raise ValidationError("Make-ups paid with chances need a task that pays chances.", "makeup")


class CheckinRequest(Schema):
    class Meta:
        unknown = RAISE


class MakeupRequest(Schema):
    class Meta:
        unknown = RAISE

    date = fields.Date(required=True, metadata={"description": "The missed business day, YYYY-MM-DD."})


def calendar_key(user_id: str, day: date) -> str:
    return f"cal:{user_id}:{day:%Y%m}"


def checked(state: GameState, user_id: str, day: date) -> bool:
    return state.bit(calendar_key(user_id, day), day.day - 1)


# -- runs of consecutive checked days: end -> start -------------------------------------------------------------

def runs_of(player: Mapping[str, str]) -> dict[date, date]:
    return {_day(name[len(RUN):]): _day(start) for name, start in player.items() if name.startswith(RUN)}


def with_day(runs: Mapping[date, date], day: date) -> dict[date, date]:
    """The runs once ``day`` (not checked until now) is: it joins the run ending before it and the one after."""
    joined = dict(runs)
    start = joined.pop(day - ONE_DAY, day)
    end = next((e for e, s in joined.items() if s == day + ONE_DAY), day)
    joined.pop(end, None)
    joined[end] = start
    return joined


def streak_through(runs: Mapping[date, date], day: date) -> int:
    """Consecutive checked days ending on ``day`` (0 if it is not checked)."""
    start = runs.get(day)
    return (day - start).days + 1 if start is not None else 0


def live_streak(runs: Mapping[date, date], today: date) -> int:
    """The streak a player keeps today: the run ending today, or yesterday while today is still open."""
    return streak_through(runs, today) or streak_through(runs, today - ONE_DAY)


def run_ops(me: str, before: Mapping[date, date], after: Mapping[date, date], today: date) -> tuple[Op, ...]:
    """Ops rewriting the player's run fields from ``before`` to ``after``, dropping runs no make-up can reach."""
    horizon = today - timedelta(days=MAX_WINDOW_DAYS + 1)
    kept = {end: start for end, start in after.items() if end >= horizon}
    ops = [Op.delete(me, _run_field(end)) for end in before if end not in kept]
    ops += [Op.put(me, _run_field(end), f"{start:%Y%m%d}") for end, start in kept.items() if before.get(end) != start]
    return tuple(ops)


def _run_field(end: date) -> str:
    return f"{RUN}{end:%Y%m%d}"


def _day(text: str) -> date:
    return datetime.strptime(text, "%Y%m%d").date()


# -- rewards ----------------------------------------------------------------------------------------------------

def ladder_reward(config: Mapping[str, Any], streak: int) -> Mapping[str, Any]:
    return config["ladder"][ladder_step(streak, len(config["ladder"]))]


def bonuses_at(config: Mapping[str, Any], streak: int) -> list[Mapping[str, Any]]:
    return [b for b in config["streak_bonuses"] if b["days"] == streak]


@games.register("checkin")
class Checkin(Game):
    name = "checkin"
    config_schema = CheckinConfig
    actions = {"checkin": CheckinRequest, "makeup": MakeupRequest, **tasks.TASK_ACTIONS}
    stateful = True
    shardable = True

    def reads(self, config: Mapping[str, Any], action: str, request: Mapping[str, Any], ctx: PlayContext
              ) -> Sequence[Read]:
        if action == "checkin":
            return (Read(calendar_key(ctx.user_id, ctx.day), "bits"),)
        if action == "makeup":
            return (Read(calendar_key(ctx.user_id, request["date"]), "bits"),)
        return ()

    def plan(self, config: Mapping[str, Any], action: str, request: Mapping[str, Any], ctx: PlayContext) -> Claim:
        if action == "checkin":
            return self._checkin(config, ctx)
        if action == "makeup":
            return self._makeup(config, request["date"], ctx)
        if action == "task_start":
            return tasks.start(config["tasks"], request, ctx)
        return self._complete_task(config, request, ctx)

    def _checkin(self, config: Mapping[str, Any], ctx: PlayContext) -> Claim:
        state, today = ctx.state, ctx.day
        if checked(state, ctx.user_id, today):
            raise AlreadyCheckedInError(date=today.isoformat())
        runs = runs_of(state.player)
        after = with_day(runs, today)
        streak = streak_through(after, today)
        rung = ladder_step(streak, len(config["ladder"]))
        bonuses = bonuses_at(config, streak)
        return Claim(
            takes=(), units=1,
            grants=(GrantSpec.of(config["ladder"][rung]), *(GrantSpec.of(b["reward"]) for b in bonuses)),
            ops=(Op.setbit(calendar_key(ctx.user_id, today), today.day - 1, refuse="CHECKED"),
                 *run_ops(chances.me(state), runs, after, today)),
            refusals={"CHECKED": AlreadyCheckedInError(date=today.isoformat())},
            outcome={"date": today.isoformat(), "streak": streak, "cycle_day": rung + 1,
                     "reward": public_reward(config["ladder"][rung]), "bonus_days": [b["days"] for b in bonuses]},
        )

    def _makeup(self, config: Mapping[str, Any], day: date, ctx: PlayContext) -> Claim:
        makeup = config["makeup"]
        if makeup is None:
            raise MakeupNotOfferedError()
        state, today = ctx.state, ctx.day
        _check_makeup_day(makeup, day, ctx)
        if checked(state, ctx.user_id, day):
            raise AlreadyCheckedInError(date=day.isoformat())
        used_field = f"{MAKEUPS}{today:%Y%m}"
        limit = makeup["max_per_month"]
        if limit is not None and state.mine(used_field) >= limit:
            raise MakeupLimitError(max_per_month=limit)
        me = chances.me(state)
        pay_ops, grants = _pay_makeup(state, today, makeup["cost"])
        runs = runs_of(state.player)
        after = with_day(runs, day)
        return Claim(
            takes=(), units=0, grants=grants,
            ops=(Op.setbit(calendar_key(ctx.user_id, day), day.day - 1, refuse="CHECKED"),
                 Op.incr(me, used_field, 1, high=limit, refuse="MAKEUP_LIMIT"),
                 *pay_ops, *run_ops(me, runs, after, today)),
            refusals={"CHECKED": AlreadyCheckedInError(date=day.isoformat()),
                      "MAKEUP_LIMIT": MakeupLimitError(max_per_month=limit)},
            outcome={"date": day.isoformat(), "streak": live_streak(after, today), "paid": dict(makeup["cost"])},
        )

    def _complete_task(self, config: Mapping[str, Any], request: Mapping[str, Any], ctx: PlayContext) -> Claim:
        done = tasks.complete(config["tasks"], request, ctx)
        earned = done.outcome["chances_earned"]
        # Check-in shows the balance the task brings the player to (make-ups are paid with it).
        return replace(done, outcome={"task": done.outcome["task"], "chances": earned,
                                      "chances_earned": ctx.state.mine(chances.EARNED) + earned})

    def stock(self, config: Mapping[str, Any]) -> dict[str, int]:
        return {}

    def rewards(self, config: Mapping[str, Any]) -> list[Mapping[str, Any]]:
        return [*config["ladder"], *(b["reward"] for b in config["streak_bonuses"]),
                *(t["reward"] for t in config["tasks"] if t["reward"])]

    def public_view(self, config: Mapping[str, Any]) -> dict[str, Any]:
        makeup = config["makeup"]
        return {
            "cycle_days": len(config["ladder"]),
            "ladder": [public_reward(r) for r in config["ladder"]],
            "streak_bonuses": [{"days": b["days"], "reward": public_reward(b["reward"])}
                               for b in config["streak_bonuses"]],
            "makeup": {"window_days": makeup["window_days"], "cost": dict(makeup["cost"]),
                       "max_per_month": makeup["max_per_month"]} if makeup else None,
            "tasks": [{"task": t["task"], "kind": t["kind"], "title": t["title"], "chances": t["chances"],
                       "reward": public_reward(t["reward"]), "min_dwell_seconds": t["min_dwell_seconds"],
                       "daily_cap": t["daily_cap"]} for t in config["tasks"]],
        }

    def view_reads(self, config: Mapping[str, Any], ctx: ViewContext) -> Sequence[Read]:
        return tuple(Read(calendar_key(ctx.user_id, month), "bits") for month in _months_shown(ctx.day))

    def player_state(self, config: Mapping[str, Any], state: GameState, ctx: ViewContext) -> dict[str, Any]:
        today = ctx.day
        runs = runs_of(state.player)
        done_today = checked(state, ctx.user_id, today)
        streak = live_streak(runs, today)
        upcoming = streak + 1  # today's check-in continues yesterday's run; tomorrow's, today's
        return {
            "today": today.isoformat(),
            "checked_in_today": done_today,
            "streak": streak,
            "cycle_day": ladder_step(streak, len(config["ladder"])) + 1 if streak else 0,
            "next": {"date": (today if not done_today else today + ONE_DAY).isoformat(), "streak": upcoming,
                     "reward": public_reward(ladder_reward(config, upcoming)),
                     "bonus_days": [b["days"] for b in bonuses_at(config, upcoming)]},
            "calendar": {f"{month:%Y-%m}": _checked_days(state, ctx.user_id, month)
                         for month in _months_shown(today)},
            "makeup": _makeup_view(config["makeup"], state, ctx),
            "chances": chances.available(state, today, 0),
            "tasks": tasks.tasks_view(config["tasks"], state.player, ctx),
        }

    def forecast(self, config: Mapping[str, Any], behaviour: Mapping[str, Any], days: int,
                 rng: np.random.Generator) -> Forecast:
        return forecast_checkins(config, behaviour, days, rng)

    def demo_definitions(self, starts_at: str, ends_at: str) -> list[dict[str, Any]]:
        def points(amount: int) -> dict[str, Any]:
            return {"type": "points", "amount": amount, "cost_fen": amount}

        return [{
            "name": "Daily check-in",
            "game": "checkin",
            "timezone": "Asia/Shanghai",
            "starts_at": starts_at,
            "ends_at": ends_at,
            "budget_fen": 2_000_000,
            "config": {
                "ladder": [points(5), points(5), points(10), points(10), points(15), points(15), points(30)],
                "streak_bonuses": [{"days": 7, "reward": points(100)}, {"days": 21, "reward": points(500)}],
                "makeup": {"window_days": 3, "cost": {"chances": 1}, "max_per_month": 3},
                "tasks": [
                    {"task": "visit_mall", "kind": "visit", "title": "Browse the mall for 15 seconds",
                     "min_dwell_seconds": 15, "chances": 1},
                    {"task": "share", "kind": "share", "title": "Share the check-in page", "chances": 1},
                    {"task": "invite", "kind": "invite", "title": "Invite a friend", "daily_cap": 3,
                     "reward": points(50)},
                    {"task": "pay", "kind": "pay", "title": "Pay an order with Alipay", "reward": points(20)},
                ],
            },
        }]


def _check_makeup_day(makeup: Mapping[str, Any], day: date, ctx: PlayContext) -> None:
    today = ctx.day
    if day >= today:
        raise MakeupNotPastError(date=day.isoformat(), today=today.isoformat())
    earliest = today - timedelta(days=makeup["window_days"])
    if day < earliest:
        raise MakeupOutOfWindowError(date=day.isoformat(), earliest=earliest.isoformat(), reason="window")
    first = ctx.starts_on
    if first is not None and day < first:
        raise MakeupOutOfWindowError("The campaign had not started on that day.", date=day.isoformat(),
                                     earliest=first.isoformat(), reason="before_start")


def _pay_makeup(state: GameState, today: date, cost: Mapping[str, int]
                ) -> tuple[tuple[Op, ...], tuple[GrantSpec, ...]]:
    """Earned chances only (free daily chances are the lottery's idea, not a check-in's), or points."""
    if "chances" in cost:
        return chances.spend(state, today, cost["chances"], free_per_day=0), ()
    op, debit = chances.spend_points(state, cost["points"])
    return (op,), (debit,)


def _months_shown(today: date) -> tuple[date, date]:
    """Today's month and the one before: every day a make-up can reach is in one of them."""
    return today.replace(day=1), (today.replace(day=1) - ONE_DAY).replace(day=1)


def _checked_days(state: GameState, user_id: str, month: date) -> list[int]:
    return [d for d in range(1, 32) if state.bit(calendar_key(user_id, month), d - 1)]


def _makeup_view(makeup: Mapping[str, Any] | None, state: GameState, ctx: ViewContext) -> dict[str, Any] | None:
    if makeup is None:
        return None
    today = ctx.day
    first = ctx.starts_on
    candidates = (today - timedelta(days=n) for n in range(makeup["window_days"], 0, -1))
    missed = [d.isoformat() for d in candidates
              if (first is None or d >= first) and not checked(state, ctx.user_id, d)]
    return {"days": missed, "cost": dict(makeup["cost"]), "window_days": makeup["window_days"],
            "used_this_month": state.mine(f"{MAKEUPS}{today:%Y%m}"), "max_per_month": makeup["max_per_month"]}


# -- forecast ---------------------------------------------------------------------------------------------------

def streak_distribution(p: float, days: int) -> np.ndarray:
    """P[t-1, k-1]: the chance that a player who checks in on day t (1-based) does so with a streak of k days.

    Each player checks in on each day independently with probability ``p`` (the behaviour model's
    participation rate), so a check-in on day t has streak k < t with probability p^(k-1) (1-p), and
    streak t (every day since the start) with probability p^(t-1).
    """
    k = np.arange(1, days + 1)
    t = k[:, None]
    dist = np.where(k < t, p ** (k - 1) * (1 - p), 0.0)
    dist[np.arange(days), np.arange(days)] = p ** np.arange(days)
    return dist


def forecast_checkins(config: Mapping[str, Any], behaviour: Mapping[str, Any], days: int,
                      rng: np.random.Generator) -> Forecast:
    """Check-ins per run and day from the behaviour model, split by streak length into what they pay.

    Each day's check-ins (binomial over the players) are split multinomially among the streak lengths of
    ``streak_distribution``, grouped into what a length pays: its ladder rung, plus a bonus where its
    length is a bonus's. The mean is exact under independent daily participation; runs share no player
    history, so the spread between runs is an approximation, and so is ignoring make-ups (they lengthen
    streaks) and tasks.
    """
    runs = behaviour["runs"]
    ladder, bonuses = config["ladder"], config["streak_bonuses"]
    cycle = len(ladder)
    checkins = daily_players(rng, behaviour, runs, days)
    streak_days = np.arange(1, days + 1)
    # Category of each streak length: its rung (0..cycle-1), or cycle + j for the j-th bonus's length.
    category = (streak_days - 1) % cycle
    category_cost = [r["cost_fen"] for r in ladder]
    names = [f"ladder_day_{i + 1}" for i in range(cycle)]
    for j, bonus in enumerate(bonuses):
        if bonus["days"] <= days:
            category[bonus["days"] - 1] = cycle + j
        category_cost.append(ladder[ladder_step(bonus["days"], cycle)]["cost_fen"] + bonus["reward"]["cost_fen"])
        names.append(f"streak_bonus_{bonus['days']}")
    member = np.zeros((days, cycle + len(bonuses)))
    member[np.arange(days), category] = 1.0
    pvals = streak_distribution(float(behaviour["participation_rate"]), days) @ member
    pvals /= pvals.sum(axis=1, keepdims=True)
    # Day by day (each a (runs, categories) draw), so memory stays flat however long the campaign.
    per_category = sum(rng.multinomial(checkins[:, t], pvals[t]) for t in range(days))
    cost = per_category @ np.asarray(category_cost, dtype=np.int64)
    wins = {name: per_category[:, i] for i, name in enumerate(names) if i < cycle}
    for j, bonus in enumerate(bonuses):
        rung = ladder_step(bonus["days"], cycle)
        wins[names[rung]] = wins[names[rung]] + per_category[:, cycle + j]
        wins[names[cycle + j]] = per_category[:, cycle + j]
    return Forecast(
        cost_fen=cost, wins=wins, plays=checkins.sum(axis=1),
        notes=["Check-ins: one a day per participating player (plays_per_day does not apply).",
               "Streaks assume each player checks in on each day independently; make-ups and tasks are "
               "not simulated, so bonuses for long streaks may be under-counted."],
    )
