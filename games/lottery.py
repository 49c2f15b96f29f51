"""lottery (抽奖转盘): a prize wheel a player spins once or ten times at a go, paying one chance per spin.

Each prize has a weight, an optional stock, an optional cap per player and a
reward; a prize without a reward (or the config's ``miss_weight``) is the
"thanks for playing" slot. ``probability_table`` is the one place weights
become probabilities: the live draw, the public rules and the forecast all
read it. A spin that lands on a prize that is sold out, or that the player
has already won ``per_user_limit`` times, gives the prize's ``fallback`` (or
the config's) and the outcome records the substitution. After
``pity.after_misses`` spins in a row without a reward the next spin gives the
pity prize (保底). Chances are free daily ones, earned on the task wall or
bought with points (engine.chances); a draw spends all of its chances or none.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from marshmallow import RAISE, Schema, ValidationError, fields, validate, validates_schema

from engine import chances, tasks
from engine.claims import Claim, GrantSpec, Op, Take, public_reward
from engine.errors import ConflictError, LimitReachedError
from engine.game import Game, PlayContext, ViewContext, games
from engine.reward_types import RewardField
from engine.simulation import Forecast, daily_players
from engine.state import GameState

PRIZE_ID = validate.Regexp(r"^[A-Za-z0-9_-]{1,32}$", error="1 to 32 letters, digits, _ or -.")
TIMES = (1, 10)
MAX_WEIGHT = 1_000_000_000
# The player's hash: spins in a row without a reward, wins per prize, chances bought per business day.
PITY = "pity"
WON = "won:"
BOUGHT = "bought"
SOLD_OUT = "sold_out"
USER_LIMIT = "user_limit"


class ChancesNotSoldError(ConflictError):
    code = "CHANCES_NOT_SOLD"
    default_message = "This campaign does not sell chances."


class BoughtChancesLimitError(LimitReachedError):
    code = "BOUGHT_CHANCES_LIMIT"
    default_message = "No more chances can be bought today."


class PrizeSchema(Schema):
    class Meta:
        unknown = RAISE

    id = fields.String(required=True, validate=PRIZE_ID)
    name = fields.String(required=True, validate=validate.Length(min=1, max=100))
    weight = fields.Integer(required=True, strict=True, validate=validate.Range(min=0, max=MAX_WEIGHT),
                            metadata={"description": "Relative weight; 0 = only given as a fallback or pity prize."})
    stock = fields.Integer(strict=True, allow_none=True, load_default=None,
                           validate=validate.Range(min=0, max=1_000_000_000),
                           metadata={"description": "Units to give; null = unlimited."})
    per_user_limit = fields.Integer(strict=True, allow_none=True, load_default=None,
                                    validate=validate.Range(min=1, max=10_000))
    reward = RewardField(allow_none=True, load_default=None,
                         metadata={"description": "null = a 'thanks for playing' slot."})
    fallback = fields.String(allow_none=True, load_default=None, validate=PRIZE_ID,
                             metadata={"description": "Prize given instead when this one is sold out or capped; "
                                                      "null = the config's fallback."})

    @validates_schema
    def _consistent(self, data: dict[str, Any], **_: Any) -> None:
        if data.get("reward") is None:
            for name in ("stock", "per_user_limit"):
                if data.get(name) is not None:
                    raise ValidationError("A prize without a reward ('thanks for playing') has no stock or cap.",
                                          name)
        if data.get("fallback") is not None and data.get("fallback") == data.get("id"):
            raise ValidationError("A prize cannot be its own fallback.", "fallback")


class PitySchema(Schema):
    class Meta:
        unknown = RAISE

    after_misses = fields.Integer(required=True, strict=True, validate=validate.Range(min=1, max=1000))
    prize = fields.String(required=True, validate=PRIZE_ID)


class LotteryConfig(Schema):
    class Meta:
        unknown = RAISE

    prizes = fields.List(fields.Nested(PrizeSchema), required=True, validate=validate.Length(min=1, max=50))
    miss_weight = fields.Integer(strict=True, load_default=0, validate=validate.Range(min=0, max=MAX_WEIGHT),
                                 metadata={"description": "Weight of a 'thanks for playing' slot besides the prizes."})
    fallback = fields.String(allow_none=True, load_default=None, validate=PRIZE_ID,
                             metadata={"description": "Prize given for any sold-out or capped prize without its own."})
    pity = fields.Nested(PitySchema, allow_none=True, load_default=None,
                         metadata={"description": "保底: after this many spins in a row without a reward, "
                                                  "the next spin gives this prize."})
    chances = fields.Nested(chances.ChancesSchema, load_default=lambda: chances.ChancesSchema().load({}))
    tasks = tasks.tasks_field()

    @validates_schema
    def _consistent(self, data: dict[str, Any], **_: Any) -> None:
        prizes = data.get("prizes") or []
        ids = [p["id"] for p in prizes]
        if len(ids) != len(set(ids)):
            raise ValidationError("Prize ids must be unique.", "prizes")
        by_id = {p["id"]: p for p in prizes}
        for index, prize in enumerate(prizes):
            if prize["fallback"] is not None and prize["fallback"] not in by_id:
                raise ValidationError({"prizes": {index: {"fallback": ["No such prize."]}}})
        if data.get("fallback") is not None and data["fallback"] not in by_id:
            raise ValidationError("No such prize.", "fallback")
        pity = data.get("pity")
        if pity is not None and (pity["prize"] not in by_id or by_id[pity["prize"]]["reward"] is None):
            raise ValidationError({"pity": {"prize": ["Not a prize with a reward."]}})
        if prizes and sum(p["weight"] for p in prizes) + data.get("miss_weight", 0) == 0:
            raise ValidationError("At least one prize (or miss_weight) needs a weight above 0.", "prizes")


class DrawRequest(Schema):
    class Meta:
        unknown = RAISE

    times = fields.Integer(strict=True, load_default=1, validate=validate.OneOf(TIMES, error="1 or 10."))


class BuyChancesRequest(Schema):
    class Meta:
        unknown = RAISE

    count = fields.Integer(required=True, strict=True, validate=validate.Range(min=1, max=1000))


def probability_table(config: Mapping[str, Any]) -> tuple[tuple[str | None, ...], np.ndarray]:
    """Every slot of the wheel and its probability: the prizes in order, then the miss slot (id None)."""
    ids = (*(p["id"] for p in config["prizes"]), None)
    weights = np.array([*(p["weight"] for p in config["prizes"]), config["miss_weight"]], dtype=np.float64)
    return ids, weights / weights.sum()


def cumulative(probabilities: np.ndarray) -> np.ndarray:
    """Where each slot ends in [0, 1): a uniform below ``cumulative[i]`` and not below the one before is slot i."""
    ends = np.cumsum(probabilities)
    # Rounding may leave the sum a hair under 1: the last slot with a weight owns the rest of [0, 1).
    ends[np.flatnonzero(probabilities)[-1]:] = 1.0
    return ends


def pick(probabilities: np.ndarray, uniforms: np.ndarray) -> np.ndarray:
    """The slot each uniform in [0, 1) lands on (the inverse CDF): the live draw and the bench use it."""
    return np.searchsorted(cumulative(probabilities), uniforms, side="right")


def item_key(prize_id: str) -> str:
    return f"prize:{prize_id}"


def fallback_of(config: Mapping[str, Any], prize: Mapping[str, Any]) -> str | None:
    """The prize given instead of ``prize`` when it is sold out or capped (None: nothing, or it never is)."""
    if prize["stock"] is None and prize["per_user_limit"] is None:
        return None
    target = prize["fallback"] or config["fallback"]
    return None if target == prize["id"] else target


class _Spins:
    """The prizes one claim gives, spin by spin: stock and caps as the plan read them less what it gave."""

    def __init__(self, config: Mapping[str, Any], state: GameState) -> None:
        self.config = config
        self.state = state
        self.prizes = {p["id"]: p for p in config["prizes"]}
        self.given: dict[str, int] = {}
        self.entries: list[dict[str, Any]] = []

    def unavailable(self, prize_id: str) -> str | None:
        prize, given = self.prizes[prize_id], self.given.get(prize_id, 0)
        if prize["stock"] is not None and self.state.stock_left.get(item_key(prize_id), 0) - given < 1:
            return SOLD_OUT
        cap = prize["per_user_limit"]
        if cap is not None and self.state.mine(WON + prize_id) + given >= cap:
            return USER_LIMIT
        return None

    def give(self, drawn: str | None, *, pity: bool = False) -> str | None:
        """Give ``drawn``, or the first available prize down its fallback chain (none at the chain's end)."""
        given, reason, seen = drawn, None, set()
        while given is not None and (why := self.unavailable(given)) is not None:
            reason = reason or why
            seen.add(given)
            following = fallback_of(self.config, self.prizes[given])
            given = following if following not in seen else None
        entry: dict[str, Any] = {"drawn": drawn, "given": given}
        if reason:
            entry["reason"] = reason
        if pity:
            entry["pity"] = True
        self.entries.append(entry)
        if given is not None:
            self.given[given] = self.given.get(given, 0) + 1
        return given

    def rewarded(self, prize_id: str | None) -> bool:
        return prize_id is not None and self.prizes[prize_id]["reward"] is not None

    def takes(self) -> tuple[Take, ...]:
        return tuple(Take(item_key(p), n) for p, n in self.given.items() if self.prizes[p]["stock"] is not None)

    def grants(self) -> tuple[GrantSpec, ...]:
        won = (self.prizes[e["given"]]["reward"] for e in self.entries if self.rewarded(e["given"]))
        return tuple(GrantSpec.of(r) for r in won)

    def won_ops(self) -> tuple[Op, ...]:
        me = chances.me(self.state)
        return tuple(Op.incr(me, WON + p, n, high=self.prizes[p]["per_user_limit"])
                     for p, n in self.given.items() if self.rewarded(p))


@games.register("lottery")
class Lottery(Game):
    name = "lottery"
    config_schema = LotteryConfig
    actions = {"draw": DrawRequest, "buy_chances": BuyChancesRequest, **tasks.TASK_ACTIONS}
    stateful = True
    shardable = True

    def plan(self, config: Mapping[str, Any], action: str, request: Mapping[str, Any], ctx: PlayContext) -> Claim:
        if action == "draw":
            return self._draw(config, request["times"], ctx)
        if action == "buy_chances":
            return self._buy_chances(config, request["count"], ctx)
        return tasks.plan(config["tasks"], action, request, ctx)

    def _draw(self, config: Mapping[str, Any], times: int, ctx: PlayContext) -> Claim:
        state, pity = ctx.state, config["pity"]
        have = chances.available(state, ctx.day, config["chances"]["free_per_day"])["total"]
        ops = list(chances.spend(state, ctx.day, times, config["chances"]["free_per_day"]))
        ids, probabilities = probability_table(config)
        spins = _Spins(config, state)
        misses = state.mine(PITY)
        for slot in pick(probabilities, ctx.rng.random(times)):
            if pity is not None and misses >= pity["after_misses"]:
                given = spins.give(pity["prize"], pity=True)
            else:
                given = spins.give(ids[slot])
            misses = 0 if spins.rewarded(given) else misses + 1
        outcome: dict[str, Any] = {"times": times, "draws": spins.entries, "chances_left": have - times}
        if pity is not None:
            me = chances.me(state)
            ops += [Op.expect(me, PITY, state.player.get(PITY)), Op.put(me, PITY, misses)]
            outcome["misses"] = misses
        return Claim(takes=spins.takes(), units=times, grants=spins.grants(), ops=(*ops, *spins.won_ops()),
                     outcome=outcome)

    def _buy_chances(self, config: Mapping[str, Any], count: int, ctx: PlayContext) -> Claim:
        state, terms = ctx.state, config["chances"]
        if terms["points_per_chance"] is None:
            raise ChancesNotSoldError()
        me, cap = chances.me(state), terms["max_bought_per_day"]
        bought = chances.daily_count(state, me, BOUGHT, ctx.day)
        over_cap = BoughtChancesLimitError(max_per_day=cap, bought_today=bought)
        if bought + count > cap:
            raise over_cap
        points = count * terms["points_per_chance"]
        debit_op, debit = chances.spend_points(state, points)
        have = chances.available(state, ctx.day, terms["free_per_day"])["total"]
        return Claim(
            takes=(), units=0, grants=(debit,),
            ops=(chances.daily_capped(me, BOUGHT, ctx.day, count, cap, refuse="BOUGHT_CAP"), debit_op,
                 chances.earn(state, count)),
            refusals={"BOUGHT_CAP": over_cap},
            outcome={"bought": count, "points_spent": points, "chances_left": have + count},
        )

    def stock(self, config: Mapping[str, Any]) -> dict[str, int]:
        return {item_key(p["id"]): p["stock"] for p in config["prizes"] if p["stock"] is not None}

    def rewards(self, config: Mapping[str, Any]) -> list[Mapping[str, Any]]:
        return ([p["reward"] for p in config["prizes"] if p["reward"]]
                + [t["reward"] for t in config["tasks"] if t["reward"]])

    def public_view(self, config: Mapping[str, Any]) -> dict[str, Any]:
        _ids, probabilities = probability_table(config)
        terms = config["chances"]
        return {
            "prizes": [
                {"id": p["id"], "name": p["name"], "probability": float(probability), "stock": p["stock"],
                 "per_user_limit": p["per_user_limit"], "reward": public_reward(p["reward"]),
                 "fallback": fallback_of(config, p)}
                for p, probability in zip(config["prizes"], probabilities, strict=False)
            ],
            "miss_probability": float(probabilities[-1]),
            "pity": dict(config["pity"]) if config["pity"] else None,
            "draw_times": list(TIMES),
            "chances": {"free_per_day": terms["free_per_day"], "points_per_chance": terms["points_per_chance"],
                        "max_bought_per_day": terms["max_bought_per_day"]},
        }

    def player_state(self, config: Mapping[str, Any], state: GameState, ctx: ViewContext) -> dict[str, Any]:
        me, terms, pity = chances.me(state), config["chances"], config["pity"]
        misses = state.mine(PITY)
        return {
            "chances": {**chances.chances_view(state, ctx.day, terms),
                        "bought_today": chances.daily_count(state, me, BOUGHT, ctx.day),
                        "max_bought_per_day": terms["max_bought_per_day"]},
            "pity": {"misses": misses, "after_misses": pity["after_misses"], "prize": pity["prize"],
                     "guaranteed_within": max(1, pity["after_misses"] - misses + 1)} if pity else None,
            "prizes": {p["id"]: {"won": state.mine(WON + p["id"]),
                                 "stock_left": state.stock_left.get(item_key(p["id"]), 0)
                                 if p["stock"] is not None else None}
                       for p in config["prizes"]},
            "tasks": tasks.tasks_view(config["tasks"], state.player, ctx),
        }

    def forecast(self, config: Mapping[str, Any], behaviour: Mapping[str, Any], days: int,
                 rng: np.random.Generator) -> Forecast:
        """Per run and day: draws ~ Poisson(players that day x plays per day), split by a multinomial over the
        table; stock runs down day by day and what a sold-out prize cannot give goes down its fallback chain."""
        prizes = config["prizes"]
        _ids, probabilities = probability_table(config)
        table, notes = _with_pity(config, probabilities)
        runs = behaviour["runs"]
        draws = rng.poisson(daily_players(rng, behaviour, runs, days) * behaviour["plays_per_day"])
        unlimited = np.iinfo(np.int64).max // 4
        left = np.tile(np.array([unlimited if p["stock"] is None else p["stock"] for p in prizes], np.int64),
                       (runs, 1))
        stocked = np.array([p["stock"] is not None for p in prizes])
        given = np.zeros((runs, len(prizes)), np.int64)
        stockout = np.zeros((runs, len(prizes)), np.int64)
        # routing[i, j] = 1: what prize i cannot give goes to prize j.
        position = {p["id"]: i for i, p in enumerate(prizes)}
        routing = np.zeros((len(prizes), len(prizes)), np.int64)
        for i, p in enumerate(prizes):
            if (target := fallback_of(config, p)) is not None:
                routing[i, position[target]] = 1
        for day in range(days):
            demand = rng.multinomial(draws[:, day], table)[:, :len(prizes)]
            for _ in range(len(prizes)):  # each pass moves what sold-out prizes could not give one step down
                taken = np.minimum(demand, left)
                given += taken
                left -= taken
                demand = (demand - taken) @ routing
                if not demand.any():
                    break
            stockout[(left == 0) & (stockout == 0) & stocked] = day + 1
        cost = given @ np.array([p["reward"]["cost_fen"] if p["reward"] else 0 for p in prizes], np.int64)
        if any(p["per_user_limit"] for p in prizes):
            notes.append("Per-player caps are not modelled: a capped prize's wins are an upper bound.")
        return Forecast(
            cost_fen=cost,
            wins={p["id"]: given[:, i] for i, p in enumerate(prizes) if p["reward"]},
            stockout_day={p["id"]: stockout[:, i] for i, p in enumerate(prizes) if p["stock"] is not None},
            plays=draws.sum(axis=1),
            notes=notes,
        )

    def demo_definitions(self, starts_at: str, ends_at: str) -> list[dict[str, Any]]:
        def points(amount: int) -> dict[str, Any]:
            return {"type": "points", "amount": amount, "cost_fen": amount}

        return [{
            "name": "Lucky wheel",
            "game": "lottery",
            "starts_at": starts_at,
            "ends_at": ends_at,
            "budget_fen": 300_000,
            "config": {
                "prizes": [
                    {"id": "P1000", "name": "1000 points", "weight": 5, "stock": 50, "per_user_limit": 1,
                     "reward": points(1000)},
                    {"id": "P100", "name": "100 points", "weight": 50, "stock": 2000, "per_user_limit": 5,
                     "reward": points(100)},
                    {"id": "P10", "name": "10 points", "weight": 300, "reward": points(10)},
                    {"id": "THANKS", "name": "Thanks for playing", "weight": 645},
                ],
                "fallback": "P10",
                "pity": {"after_misses": 9, "prize": "P100"},
                "chances": {"free_per_day": 3, "points_per_chance": 20, "max_bought_per_day": 10},
                "tasks": [
                    {"task": "visit_store", "kind": "visit", "title": "Browse the store for 15 seconds",
                     "min_dwell_seconds": 15, "daily_cap": 2, "chances": 1},
                    {"task": "share_wheel", "kind": "share", "title": "Share the wheel with a friend",
                     "chances": 1},
                ],
            },
        }]


def _with_pity(config: Mapping[str, Any], probabilities: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """The table a forecast draws from: a pity prize also wins at the guarantee's long-run rate.

    Spins are independent draws from the table except when the guarantee fires, after ``N`` spins in a row
    without a reward (probability ``q`` each): per ``1 + q + ... + q^(N-1) + q^N`` spins on average it fires
    ``q^N`` times. That rate assumes players spin long enough to reach it, so it is an upper bound.
    """
    pity = config["pity"]
    if pity is None:
        return probabilities, []
    unrewarded = np.array([p["reward"] is None for p in config["prizes"]] + [True])
    q, n = float(probabilities[unrewarded].sum()), pity["after_misses"]
    rate = q ** n / (sum(q ** i for i in range(n)) + q ** n)
    target = np.zeros_like(probabilities)
    target[[p["id"] for p in config["prizes"]].index(pity["prize"])] = 1.0
    note = (f"Pity modelled as its long-run rate ({rate:.4%} of draws give {pity['prize']}); "
            "an upper bound when players spin fewer than after_misses + 1 times.")
    return (1 - rate) * probabilities + rate * target, [note]

