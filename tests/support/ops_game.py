"""A stateful test game that exercises the engine's guarded ops directly (registered only by tests)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from marshmallow import Schema, fields

from engine.claims import Claim, GrantSpec, Op
from engine.errors import ConflictError
from engine.game import Game, PlayContext, ViewContext, games
from engine.state import GameState, Read


class EmptyConfig(Schema):
    limit = fields.Integer(load_default=3)


class CountRequest(Schema):
    by = fields.Integer(load_default=1)


class BitRequest(Schema):
    bit = fields.Integer(required=True)


class GiveRequest(Schema):
    to = fields.String(required=True)
    n = fields.Integer(load_default=1)


class OverLimitError(ConflictError):
    code = "TEST_OVER_LIMIT"


@games.register("test_ops")
class OpsGame(Game):
    name = "test_ops"
    config_schema = EmptyConfig
    actions = {"count": CountRequest, "bit": BitRequest, "give": GiveRequest, "draw": Schema, "win": Schema}
    stateful = True

    def reads(self, config: Mapping[str, Any], action: str, request: Mapping[str, Any], ctx: PlayContext):
        return (Read(f"bits:{ctx.user_id}", "bits"),)

    def plan(self, config: Mapping[str, Any], action: str, request: Mapping[str, Any], ctx: PlayContext) -> Claim:
        me = f"user:{ctx.user_id}"
        if action == "count":
            return Claim((), 0, ops=(Op.incr(me, "n", request["by"], low=0, high=config["limit"], refuse="OVER"),),
                         refusals={"OVER": OverLimitError()}, outcome={"seen": ctx.state.mine("n")})
        if action == "bit":
            return Claim((), 0, ops=(Op.setbit(f"bits:{ctx.user_id}", request["bit"], refuse="OVER"),),
                         refusals={"OVER": OverLimitError()})
        if action == "give":
            return Claim((), 0, ops=(Op.incr(me, "cards", -request["n"], low=0, refuse="OVER"),
                                     Op.incr(f"user:{request['to']}", "cards", request["n"])),
                         refusals={"OVER": OverLimitError()})
        if action == "win":
            return Claim((), 0, ops=(Op.put("winners", ctx.user_id, "1"),))
        return Claim((), 0, grants=(GrantSpec({"type": "points", "amount": 1}, 0),),
                     outcome={"value": float(ctx.rng.random()), "seq": ctx.state.seq})

    def finale_reads(self, config: Mapping[str, Any]):
        return (Read("winners"),)

    def finale(self, config: Mapping[str, Any], ctx: PlayContext) -> Claim | None:
        winners = sorted(ctx.state.hash("winners"))
        if not winners:
            return None
        return Claim((), 0, grants=tuple(GrantSpec({"type": "points", "amount": 7}, 0, user_id=w) for w in winners),
                     outcome={"winners": winners})

    def stock(self, config: Mapping[str, Any]) -> dict[str, int]:
        return {}

    def rewards(self, config: Mapping[str, Any]) -> list[Mapping[str, Any]]:
        return []

    def view_reads(self, config: Mapping[str, Any], ctx: ViewContext):
        return (Read(f"bits:{ctx.user_id}", "bits"),)

    def player_state(self, config: Mapping[str, Any], state: GameState, ctx: ViewContext) -> dict[str, Any]:
        return {"n": state.mine("n"), "cards": state.mine("cards"),
                "bits": [i for i in range(32) if state.bit(f"bits:{ctx.user_id}", i)]}
