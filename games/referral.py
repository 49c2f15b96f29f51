"""referral (裂变红包/助力): a player opens a red packet, friends assist it to its target, the owner cashes out.

``open`` creates a packet (game hash ``packet:<id>``, the id is the play's
claim id and doubles as the share code) worth ``target_fen``, with a deadline
``packet_hours`` away. Every assist adds the next of the packet's amounts,
all fixed at ``open`` by ``split_target`` from the play's fair generator:
random, non-increasing, at least 1 fen each and summing exactly to the
target, so the target is reached after ``len(amounts)`` assists. In amount
mode that is at most ``max_assists``; in count mode (``target_assists``) it
is exactly that many friends. A friend assists a packet once, at most
``assists_per_day`` packets per business day across the campaign, never their
own and never after its deadline; a new user (``registered_at`` within
``new_user_days``) gets the ``welcome_reward`` on their first assist. A full
packet is cashed out once by its owner (``cash_reward`` with the target as
its amount and cost); an expired one pays the ``consolation`` once, if any.

The owner's own hash mirrors their latest packet (``rp:*`` fields, kept in
the same claims as the packet) so their view needs no second read.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np
from marshmallow import RAISE, Schema, ValidationError, fields, validate, validates_schema

from engine import chances
from engine.claims import Claim, GrantSpec, Op, Relation, public_reward
from engine.clock import from_ms, iso, parse_instant, to_ms
from engine.errors import ConflictError, ForbiddenError, LimitReachedError, NotFoundError
from engine.errors import ValidationError as HuodongValidationError
from engine.game import Game, PlayContext, ViewContext, games
from engine.reward_types import RewardField
from engine.simulation import Forecast, daily_players
from engine.state import GameState, Read

MAX_TARGET_FEN = 10_000_000
MAX_ASSISTS = 100
DEFAULT_MAX_ASSISTS = 10
# Each assist but the last takes this share (uniform in the range) of the fen left above 1 fen per assist.
SHARE_RANGE = (0.3, 0.7)
PACKET_ID = validate.Regexp(r"^[0-9a-f]{24}$", error="Not a share code.")
HOUR_MS = 3_600_000
# The forecast's share of helpers who are new users (who get the welcome reward): no behaviour input says it.
NEW_HELPER_SHARE = 0.2

# Stored statuses of a packet; "full" and "expired" are derived from them and the clock for views.
OPEN, PAID, CONSOLED = "open", "paid", "consoled"
FULL, EXPIRED = "full", "expired"

# The player's own hash: their latest packet (mirrored for the view) and their assists.
OPENED = "rp:n"
CURRENT = "rp:id"
CURRENT_DUE = "rp:due"
CURRENT_TARGET = "rp:tgt"
CURRENT_NEEDED = "rp:need"
CURRENT_PROGRESS = "rp:prog"
CURRENT_ASSISTS = "rp:as"
CURRENT_STATUS = "rp:st"
ASSISTED = "as"  # daily counter, as:<YYYYMMDD> (engine.chances.daily_capped)
ASSISTED_TOTAL = "rp:helped"
WELCOMED = "rp:wel"

# Refusal labels of the claims' guards.
PACKETS = "PACKETS"
DUPLICATE = "DUPLICATE"
FULL_LABEL = "FULL"
EXPIRED_LABEL = "EXPIRED"
DAILY = "DAILY"


class PacketNotFoundError(NotFoundError):
    code = "PACKET_NOT_FOUND"
    default_message = "No red packet has this share code."


class PacketAlreadyOpenError(ConflictError):
    code = "PACKET_ALREADY_OPEN"
    default_message = "Your red packet is still running: cash it out or wait for its deadline."


class PacketLimitError(LimitReachedError):
    code = "PACKET_LIMIT_REACHED"
    default_message = "You have opened all the red packets this campaign allows."


class SelfAssistError(HuodongValidationError):
    code = "SELF_ASSIST"
    default_message = "You cannot assist your own red packet."


class AlreadyAssistedError(ConflictError):
    code = "ALREADY_ASSISTED"
    default_message = "You have already assisted this red packet."


class AssistLimitError(LimitReachedError):
    code = "ASSIST_LIMIT_REACHED"
    default_message = "You have assisted as many red packets as allowed today."


class PacketExpiredError(ConflictError):
    code = "PACKET_EXPIRED"
    default_message = "This red packet's deadline has passed."


class PacketFullError(ConflictError):
    code = "PACKET_FULL"
    default_message = "This red packet has reached its target."


class PacketNotFullError(ConflictError):
    code = "PACKET_NOT_FULL"
    default_message = "This red packet has not reached its target yet."


class PacketClosedError(ConflictError):
    code = "PACKET_CLOSED"
    default_message = "This red packet has been paid out."


class PacketNotYoursError(ForbiddenError):
    code = "PACKET_NOT_YOURS"
    default_message = "Only the owner of a red packet can cash it out."


def split_target(target_fen: int, max_assists: int, rng: np.random.Generator) -> list[int]:
    """The amounts successive assists add: sum exactly ``target_fen``, each >= 1 fen, non-increasing.

    There are ``min(max_assists, target_fen)`` of them. Every assist is owed
    1 fen; of the fen left above that, each assist but the last takes a
    random share (``SHARE_RANGE``) of what remains and the last takes the
    rest, so the first assists add most and the last ones little. Sorted
    largest first. The same generator state always splits the same way.
    """
    if target_fen < 1 or max_assists < 1:
        raise ValueError("A target of at least 1 fen split over at least 1 assist.")
    count = min(max_assists, target_fen)
    spare = target_fen - count
    low, high = SHARE_RANGE
    parts = []
    for share in low + (high - low) * rng.random(count - 1):
        take = int(spare * share)
        parts.append(take)
        spare -= take
    parts.append(spare)
    return sorted((1 + part for part in parts), reverse=True)


def assists_needed(config: Mapping[str, Any]) -> int:
    """How many assists fill a packet of this config (the length of ``split_target``'s answer)."""
    return min(assist_slots(config), config["target_fen"])


def assist_slots(config: Mapping[str, Any]) -> int:
    return config["target_assists"] or config["max_assists"] or DEFAULT_MAX_ASSISTS


def cash_reward(config: Mapping[str, Any]) -> dict[str, Any]:
    """What a full packet pays: the configured reward type with the target as its amount and its cost."""
    amount = config["target_fen"]
    return RewardField().deserialize({**config["cash_reward"], "amount": amount, "cost_fen": amount})


def is_new_user(attributes: Mapping[str, Any], now: datetime, days: int) -> bool:
    """Registered (``registered_at``) no more than ``days`` before ``now``; without the attribute, not new."""
    registered = attributes.get("registered_at")
    if isinstance(registered, str):  # as a recorded state carries it (JSON)
        try:
            registered = parse_instant(registered)
        except ValueError:
            return False
    if not isinstance(registered, datetime) or registered.tzinfo is None:
        return False
    return now - registered <= timedelta(days=days)


def status_at(stored: str, progress_fen: int, target_fen: int, deadline_ms: int, now_ms: int) -> str:
    """What a packet is now: open, full (cash it out), expired (past its deadline unfilled), paid or consoled."""
    if stored != OPEN:
        return stored
    if progress_fen >= target_fen:
        return FULL
    return EXPIRED if now_ms >= deadline_ms else OPEN


def packet_key(packet_id: str) -> str:
    return f"packet:{packet_id}"


def helper_field(user_id: str) -> str:
    return f"h:{user_id}"


@dataclass(frozen=True)
class Packet:
    """One red packet as stored in ``packet:<id>`` (its helpers are ``h:<user>`` fields beside these)."""

    id: str
    owner: str
    target_fen: int
    progress_fen: int
    assists: int
    deadline_ms: int
    amounts: tuple[int, ...]
    status: str

    @classmethod
    def from_hash(cls, packet_id: str, stored: Mapping[str, str]) -> Packet | None:
        if "owner" not in stored:
            return None
        return cls(id=packet_id, owner=stored["owner"], target_fen=int(stored["target_fen"]),
                   progress_fen=int(stored["progress_fen"]), assists=int(stored["assists"]),
                   deadline_ms=int(stored["deadline_ms"]), amounts=tuple(json.loads(stored["amounts"])),
                   status=stored["status"])

    def fields(self) -> dict[str, str]:
        return {"owner": self.owner, "target_fen": str(self.target_fen), "progress_fen": str(self.progress_fen),
                "assists": str(self.assists), "deadline_ms": str(self.deadline_ms),
                "amounts": json.dumps(list(self.amounts), separators=(",", ":")), "status": self.status}

    @property
    def full(self) -> bool:
        return self.progress_fen >= self.target_fen

    def view(self, now_ms: int) -> dict[str, Any]:
        return {"id": self.id, "share_code": self.id, "owner": self.owner, "target_fen": self.target_fen,
                "needed_assists": len(self.amounts), "progress_fen": self.progress_fen, "assists": self.assists,
                "amounts": list(self.amounts), "deadline": iso(from_ms(self.deadline_ms)),
                "status": status_at(self.status, self.progress_fen, self.target_fen, self.deadline_ms, now_ms)}


class ReferralConfig(Schema):
    class Meta:
        unknown = RAISE

    target_fen = fields.Integer(required=True, strict=True, validate=validate.Range(min=1, max=MAX_TARGET_FEN),
                                metadata={"description": "What a full packet pays its owner, in fen."})
    target_assists = fields.Integer(strict=True, allow_none=True, load_default=None,
                                    validate=validate.Range(min=1, max=MAX_ASSISTS),
                                    metadata={"description": "Count mode: exactly this many friends fill a packet; "
                                                             "null = amount mode."})
    max_assists = fields.Integer(strict=True, allow_none=True, load_default=None,
                                 validate=validate.Range(min=1, max=MAX_ASSISTS),
                                 metadata={"description": "Amount mode: the most assists a packet takes "
                                                          f"(default {DEFAULT_MAX_ASSISTS})."})
    packet_hours = fields.Integer(strict=True, load_default=24, validate=validate.Range(min=1, max=720))
    packets_per_user = fields.Integer(strict=True, load_default=1, validate=validate.Range(min=1, max=100))
    assists_per_day = fields.Integer(strict=True, load_default=3, validate=validate.Range(min=1, max=100),
                                     metadata={"description": "Packets one friend may assist per business day."})
    new_user_days = fields.Integer(strict=True, load_default=7, validate=validate.Range(min=1, max=365),
                                   metadata={"description": "A player registered this recently is a new user."})
    welcome_reward = RewardField(allow_none=True, load_default=None,
                                 metadata={"description": "Paid once to a new user on their first assist."})
    consolation = RewardField(allow_none=True, load_default=None,
                              metadata={"description": "Paid once for an expired packet; null = nothing."})
    cash_reward = fields.Dict(keys=fields.String(), load_default=lambda: {"type": "points"},
                              metadata={"description": "The reward type (and params) of a cash-out; its amount "
                                                       "and cost_fen are the target."})

    @validates_schema
    def _one_mode(self, data: dict[str, Any], **_: Any) -> None:
        count, bound = data.get("target_assists"), data.get("max_assists")
        if count is not None and bound is not None:
            raise ValidationError("Give target_assists (count mode) or max_assists (amount mode), not both.",
                                  "max_assists")
        if count is not None and "target_fen" in data and count > data["target_fen"]:
            raise ValidationError("Every assist adds at least 1 fen: at most target_fen assists.",
                                  "target_assists")
        cash = data.get("cash_reward") or {}
        if {"amount", "cost_fen"} & set(cash):
            raise ValidationError("The cash-out's amount and cost_fen are the target: leave them out.",
                                  "cash_reward")
        if "target_fen" in data:
            try:
                cash_reward(data)
            except ValidationError as exc:
                raise ValidationError(exc.messages, "cash_reward") from None


class OpenRequest(Schema):
    class Meta:
        unknown = RAISE


class AssistRequest(Schema):
    class Meta:
        unknown = RAISE

    share_code = fields.String(required=True, validate=PACKET_ID)


class CashoutRequest(Schema):
    class Meta:
        unknown = RAISE

    packet_id = fields.String(required=True, validate=PACKET_ID)


def running(player: Mapping[str, str], now_ms: int) -> str | None:
    """The id of the player's packet that keeps them from opening another (open and before its deadline)."""
    if player.get(CURRENT_STATUS) == OPEN and now_ms < int(player.get(CURRENT_DUE, 0)):
        return player[CURRENT]
    return None


def open_packet(config: Mapping[str, Any], ctx: PlayContext) -> Claim:
    state, me, now_ms = ctx.state, f"user:{ctx.user_id}", to_ms(ctx.now)
    current = running(state.player, now_ms)
    if current is not None:
        raise PacketAlreadyOpenError(packet_id=current)
    limit = config["packets_per_user"]
    if state.mine(OPENED) >= limit:
        raise PacketLimitError(limit=limit)
    amounts = split_target(config["target_fen"], assist_slots(config), ctx.rng)
    packet = Packet(id=ctx.claim_id, owner=ctx.user_id, target_fen=config["target_fen"], progress_fen=0,
                    assists=0, deadline_ms=now_ms + config["packet_hours"] * HOUR_MS, amounts=tuple(amounts),
                    status=OPEN)
    key = packet_key(packet.id)
    mirror = {CURRENT: packet.id, CURRENT_DUE: str(packet.deadline_ms), CURRENT_TARGET: str(packet.target_fen),
              CURRENT_NEEDED: str(len(amounts)), CURRENT_PROGRESS: "0", CURRENT_ASSISTS: "0", CURRENT_STATUS: OPEN}
    ops = (
        Op.expect(me, CURRENT, state.player.get(CURRENT)),
        Op.incr(me, OPENED, 1, high=limit, refuse=PACKETS),
        Op.expect(key, "owner", None),
        *(Op.put(key, name, value) for name, value in packet.fields().items()),
        *(Op.put(me, name, value) for name, value in mirror.items()),
    )
    return Claim((), 1, ops=ops, refusals={PACKETS: PacketLimitError(limit=limit)},
                 outcome={"packet_id": packet.id, "share_code": packet.id, "packet": packet.view(now_ms)},
                 relation=Relation("open", packet.id, ctx.user_id))


def assist(config: Mapping[str, Any], share_code: str, ctx: PlayContext) -> Claim:
    state, me, now_ms = ctx.state, f"user:{ctx.user_id}", to_ms(ctx.now)
    key = packet_key(share_code)
    packet = Packet.from_hash(share_code, state.hash(key))
    if packet is None:
        raise PacketNotFoundError(share_code=share_code)
    if packet.owner == ctx.user_id:
        raise SelfAssistError(share_code=share_code)
    mine = helper_field(ctx.user_id)
    if mine in state.hash(key):
        raise AlreadyAssistedError(share_code=share_code)
    if packet.status != OPEN:
        raise PacketClosedError(status=packet.status)
    if packet.full:
        raise PacketFullError(share_code=share_code)
    if now_ms >= packet.deadline_ms:
        raise PacketExpiredError(deadline=iso(from_ms(packet.deadline_ms)))
    cap = config["assists_per_day"]
    if chances.daily_count(state, me, ASSISTED, ctx.day) >= cap:
        raise AssistLimitError(limit=cap)
    index, amount, owner = packet.assists, packet.amounts[packet.assists], f"user:{packet.owner}"
    welcome = (config["welcome_reward"] is not None and WELCOMED not in state.player
               and is_new_user(state.attributes, ctx.now, config["new_user_days"]))
    ops = [
        Op.expect(key, "status", OPEN),
        Op.expect(key, mine, None, refuse=DUPLICATE),
        Op.expect(key, "assists", str(index)),  # the plan's amount is this index's: replan if another came first
        Op.put(key, mine, str(index)),
        Op.incr(key, "assists", 1),
        Op.incr(key, "progress_fen", amount, high=packet.target_fen, refuse=FULL_LABEL),
        # The owner's mirror; a packet that is no longer their latest has run out of time (or been paid).
        Op.expect(owner, CURRENT, share_code, refuse=EXPIRED_LABEL),
        Op.incr(owner, CURRENT_ASSISTS, 1),
        Op.incr(owner, CURRENT_PROGRESS, amount),
        chances.daily_capped(me, ASSISTED, ctx.day, 1, cap, refuse=DAILY),
        Op.incr(me, ASSISTED_TOTAL, 1),
    ]
    grants = ()
    if welcome:
        ops += [Op.expect(me, WELCOMED, None), Op.put(me, WELCOMED, share_code)]
        grants = (GrantSpec.of(config["welcome_reward"]),)
    progress = packet.progress_fen + amount
    return Claim((), 0, grants=grants, ops=tuple(ops), refusals={
        DUPLICATE: AlreadyAssistedError(share_code=share_code),
        FULL_LABEL: PacketFullError(share_code=share_code),
        EXPIRED_LABEL: PacketExpiredError(deadline=iso(from_ms(packet.deadline_ms))),
        DAILY: AssistLimitError(limit=cap),
    }, outcome={"packet_id": share_code, "assist": index + 1, "amount_fen": amount, "progress_fen": progress,
                "target_fen": packet.target_fen, "full": progress >= packet.target_fen, "welcome": welcome},
        relation=Relation("assist", share_code, packet.owner))


def cashout(config: Mapping[str, Any], packet_id: str, ctx: PlayContext) -> Claim:
    state, me, now_ms = ctx.state, f"user:{ctx.user_id}", to_ms(ctx.now)
    key = packet_key(packet_id)
    packet = Packet.from_hash(packet_id, state.hash(key))
    if packet is None:
        raise PacketNotFoundError(packet_id=packet_id)
    if packet.owner != ctx.user_id:
        raise PacketNotYoursError(packet_id=packet_id)
    if packet.status != OPEN:
        raise PacketClosedError(status=packet.status)
    if packet.full:
        paid, reward = PAID, cash_reward(config)
    elif now_ms < packet.deadline_ms:
        raise PacketNotFullError(progress_fen=packet.progress_fen, target_fen=packet.target_fen)
    elif config["consolation"] is None:
        raise PacketExpiredError(deadline=iso(from_ms(packet.deadline_ms)))
    else:
        paid, reward = CONSOLED, config["consolation"]
    ops = [
        Op.expect(key, "status", OPEN),
        # A consolation is for the progress seen: an assist admitted meanwhile replans (maybe to the full cash).
        Op.expect(key, "progress_fen", str(packet.progress_fen)),
        Op.put(key, "status", paid),
    ]
    if state.player.get(CURRENT) == packet_id:
        ops += [Op.expect(me, CURRENT, packet_id), Op.put(me, CURRENT_STATUS, paid)]
    return Claim((), 0, grants=(GrantSpec.of(reward),), ops=tuple(ops),
                 outcome={"packet_id": packet_id, "paid": paid, "progress_fen": packet.progress_fen,
                          "target_fen": packet.target_fen},
                 relation=Relation("cashout", packet_id, ctx.user_id))


def mirrored_packet(config: Mapping[str, Any], player: Mapping[str, str], now_ms: int) -> dict[str, Any] | None:
    """The player's latest packet as their own hash mirrors it."""
    if CURRENT not in player:
        return None
    progress, target, due = int(player[CURRENT_PROGRESS]), int(player[CURRENT_TARGET]), int(player[CURRENT_DUE])
    status = status_at(player[CURRENT_STATUS], progress, target, due, now_ms)
    return {"id": player[CURRENT], "share_code": player[CURRENT], "target_fen": target,
            "needed_assists": int(player[CURRENT_NEEDED]), "progress_fen": progress,
            "assists": int(player[CURRENT_ASSISTS]), "deadline": iso(from_ms(due)), "status": status,
            "can_cashout": status == FULL or (status == EXPIRED and config["consolation"] is not None)}


def poisson_pmf(mean: float, upto: int) -> np.ndarray:
    """P(X = k) for k < ``upto``, X ~ Poisson(mean)."""
    pmf = np.empty(upto)
    pmf[0] = math.exp(-mean)
    for k in range(1, upto):
        pmf[k] = pmf[k - 1] * mean / k
    return pmf


@games.register("referral")
class Referral(Game):
    name = "referral"
    config_schema = ReferralConfig
    actions = {"open": OpenRequest, "assist": AssistRequest, "cashout": CashoutRequest}
    stateful = True

    def reads(self, config: Mapping[str, Any], action: str, request: Mapping[str, Any], ctx: PlayContext
              ) -> tuple[Read, ...]:
        if action == "assist":
            return (Read(packet_key(request["share_code"])),)
        if action == "cashout":
            return (Read(packet_key(request["packet_id"])),)
        return ()

    def plan(self, config: Mapping[str, Any], action: str, request: Mapping[str, Any], ctx: PlayContext) -> Claim:
        if action == "assist":
            return assist(config, request["share_code"], ctx)
        if action == "cashout":
            return cashout(config, request["packet_id"], ctx)
        return open_packet(config, ctx)

    def stock(self, config: Mapping[str, Any]) -> dict[str, int]:
        return {}

    def rewards(self, config: Mapping[str, Any]) -> list[Mapping[str, Any]]:
        return [r for r in (cash_reward(config), config["welcome_reward"], config["consolation"]) if r]

    def public_view(self, config: Mapping[str, Any]) -> dict[str, Any]:
        return {
            "mode": "assists" if config["target_assists"] else "amount",
            "target_fen": config["target_fen"],
            "target_assists": config["target_assists"],
            "assists_needed": assists_needed(config),
            "packet_hours": config["packet_hours"],
            "packets_per_user": config["packets_per_user"],
            "assists_per_day": config["assists_per_day"],
            "new_user_days": config["new_user_days"],
            "cash_reward": public_reward(cash_reward(config)),
            "welcome_reward": public_reward(config["welcome_reward"]),
            "consolation": public_reward(config["consolation"]),
        }

    def player_state(self, config: Mapping[str, Any], state: GameState, ctx: ViewContext) -> dict[str, Any]:
        now_ms, me = to_ms(ctx.now), f"user:{ctx.user_id}"
        opened = state.mine(OPENED)
        return {
            "packet": mirrored_packet(config, state.player, now_ms),
            "packets_opened": opened,
            "packets_left": max(0, config["packets_per_user"] - opened),
            "can_open": opened < config["packets_per_user"] and running(state.player, now_ms) is None,
            "assists_today": chances.daily_count(state, me, ASSISTED, ctx.day),
            "assists_per_day": config["assists_per_day"],
            "assists_total": state.mine(ASSISTED_TOTAL),
            "welcome_received": WELCOMED in state.player,
        }

    def forecast(self, config: Mapping[str, Any], behaviour: Mapping[str, Any], days: int,
                 rng: np.random.Generator) -> Forecast:
        """Packets opened per run and day; each gets Poisson(referral_fanout) assists and fills if enough come.

        A playing player opens ``plays_per_day`` packets a day but no more
        than one per ``packet_hours`` and ``packets_per_user`` in all. A
        packet fills when its assists reach ``assists_needed`` (probability
        from the Poisson tail); the owner of every other packet claims the
        consolation. ``NEW_HELPER_SHARE`` of the assists admitted are by new
        users, each paid the welcome reward (a helper's once-per-campaign and
        daily caps are not modelled: an upper bound).
        """
        runs, fanout = behaviour["runs"], behaviour["referral_fanout"]
        needed = assists_needed(config)
        per_player = min(behaviour["plays_per_day"], max(1.0, 24 / config["packet_hours"]))
        opened_by_day = rng.poisson(daily_players(rng, behaviour, runs, days) * per_player)
        cap = behaviour["players"] * config["packets_per_user"]
        opened = np.minimum(np.cumsum(opened_by_day, axis=1), cap)[:, -1]
        short = poisson_pmf(fanout, needed)  # a packet with k < needed assists expires
        p_full = max(0.0, 1.0 - float(short.sum()))
        full = rng.binomial(opened, p_full)
        expired = opened - full
        mean_short = float(np.arange(needed) @ short / short.sum()) if short.sum() > 0 else 0.0
        assists = full * needed + rng.poisson(expired * mean_short)
        zero = np.zeros(runs, dtype=np.int64)
        welcome, consolation = config["welcome_reward"], config["consolation"]
        welcomed = rng.binomial(assists, NEW_HELPER_SHARE) if welcome else zero
        consoled = expired if consolation else zero
        cost = (full * config["target_fen"] + consoled * (consolation["cost_fen"] if consolation else 0)
                + welcomed * (welcome["cost_fen"] if welcome else 0))
        return Forecast(
            cost_fen=cost.astype(np.int64),
            wins={"cashout": full, "consolation": consoled, "welcome": welcomed},
            plays=opened + assists + full + consoled,
            notes=[f"A packet fills with {needed} assists: {p_full:.1%} of packets at a fan-out of {fanout:g}.",
                   f"{NEW_HELPER_SHARE:.0%} of helpers assumed new users (welcome reward), capped per helper "
                   "only by the campaign's real limits."],
        )

    def demo_definitions(self, starts_at: str, ends_at: str) -> list[dict[str, Any]]:
        return [{
            "name": "Invite friends, open a 5 yuan red packet",
            "game": "referral",
            "starts_at": starts_at,
            "ends_at": ends_at,
            "budget_fen": 200_000,
            "config": {
                "target_fen": 500,
                "max_assists": 6,
                "packet_hours": 24,
                "packets_per_user": 3,
                "assists_per_day": 3,
                "new_user_days": 7,
                "cash_reward": {"type": "points"},
                "welcome_reward": {"type": "points", "amount": 20, "cost_fen": 20},
                "consolation": {"type": "points", "amount": 10, "cost_fen": 10},
            },
        }]
