"""cards (集卡, like Alipay's 集五福): collect a set of cards, share a prize pool when the campaign ends.

A draw spends one chance (free daily ones first, then those earned on the
task wall) and gives one card, picked by the cards' rarity weights. A scarce
card has a global stock (the stock item ``card:<id>``); once it is out, the
draw picks again among the cards still available, by their weights, and the
outcome records the substitution (``fallback_from``).

Players move cards between them: ``gift`` gives one of mine to a friend, and
``ask`` leaves a request (``req:<request_id>``, listed in the asked player's
``asks:<uid>``) that the friend may ``accept``. A transfer is one claim that
takes the card from one hand and puts it in the other, so cards are never
created or lost by it; both kinds count against the giver's daily gift cap.

Holding one of every card completes the set: the claim that completes it
redeems one of each card (合成) and enters the player in the ``completers``
hash, once. Redeeming is what makes the scarce stock bound the number of
completers (a set cannot be handed on to complete another), and so what lets
publish check that the pool pays every completer its minimum share. When the
campaign ends, ``finale`` splits the pool among the completers (``split_pool``)
and pays each share as the configured reward with the amount filled in.

A player's hash holds ``c:<card>`` (cards held), ``set`` (the claim that
completed their set), ``gift:<day>`` and ``ask:<day>`` (daily caps), besides
the chances and task fields of engine.chances and engine.tasks.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from marshmallow import RAISE, Schema, ValidationError, fields, validate, validates_schema

from engine import chances, tasks
from engine.claims import Carry, Claim, GrantSpec, Op, Take
from engine.errors import ConflictError, ForbiddenError, LimitReachedError, NotFoundError
from engine.errors import ValidationError as HuodongValidationError
from engine.game import Game, PlayContext, ViewContext, games
from engine.reward_types import RewardField
from engine.simulation import Forecast, daily_players
from engine.state import GameState, Read

CARD_ID = validate.Regexp(r"^[a-z0-9_]{1,32}$", error="1 to 32 lowercase letters, digits or _.")
# A player id as the API issues them; ids starting with "__" are the engine's own (the finale's player).
PLAYER_PATTERN = r"(?!__)[A-Za-z0-9_.-]{1,64}"
PLAYER_ID = validate.Regexp(f"^{PLAYER_PATTERN}$", error="Not a player id.")
# A request id is the asking claim's id and the asker: accept reads the asker's hand in the same round trip.
CLAIM_ID_LENGTH = 24
REQUEST_ID = validate.Regexp(f"^[0-9a-f]{{{CLAIM_ID_LENGTH}}}-{PLAYER_PATTERN}$", error="Not a request id.")
SPLITS = ("equal", "random")
# A scarce card's stock bounds the completers, and the finale pays them all in one claim.
MAX_SCARCE_STOCK = 100_000
MAX_POOL_FEN = 10_000_000_000
COMPLETERS = "completers"
SET_FIELD = "set"
OPEN, ACCEPTED = "open", "accepted"
GIFTS, ASKS = "gift", "ask"
# Refusal labels of this game's guarded ops.
NO_CARD, GIFT_LIMIT, ASK_LIMIT, CLOSED = "NO_CARD", "GIFT_LIMIT", "ASK_LIMIT", "CLOSED"
# The forecast follows at most this many sampled players x runs to estimate who completes the set.
SAMPLED_PLAYER_RUNS = 400_000


class UnknownCardError(HuodongValidationError):
    code = "UNKNOWN_CARD"
    default_message = "No such card in this campaign."


class CardSelfTransferError(HuodongValidationError):
    code = "CARD_SELF_TRANSFER"
    default_message = "A card cannot be given to or asked from yourself."


class CardNotHeldError(ConflictError):
    code = "CARD_NOT_HELD"
    default_message = "You do not hold this card."


class CardRequestNotFoundError(NotFoundError):
    code = "CARD_REQUEST_NOT_FOUND"
    default_message = "No such card request."


class CardRequestNotYoursError(ForbiddenError):
    code = "CARD_REQUEST_NOT_YOURS"
    default_message = "This card request was sent to another player."


class CardRequestClosedError(ConflictError):
    code = "CARD_REQUEST_CLOSED"
    default_message = "This card request was already answered."


class CardGiftLimitError(LimitReachedError):
    code = "CARD_GIFT_LIMIT_REACHED"
    default_message = "You have given away as many cards as you may today."


class CardAskLimitError(LimitReachedError):
    code = "CARD_ASK_LIMIT_REACHED"
    default_message = "You have asked for as many cards as you may today."


# -- config ------------------------------------------------------------------------------------------------------


class CardSchema(Schema):
    class Meta:
        unknown = RAISE

    card = fields.String(required=True, validate=CARD_ID)
    name = fields.String(required=True, validate=validate.Length(min=1, max=50))
    weight = fields.Integer(required=True, strict=True, validate=validate.Range(min=1, max=1_000_000),
                            metadata={"description": "Rarity: the chance of a draw is weight / sum of weights."})
    stock = fields.Integer(strict=True, allow_none=True, load_default=None,
                           validate=validate.Range(min=1, max=MAX_SCARCE_STOCK),
                           metadata={"description": "A scarce card's global stock; null = unlimited."})


class PoolSchema(Schema):
    """The final prize pool: ``pool_fen`` split among the completers, each share paid as ``reward``."""

    class Meta:
        unknown = RAISE

    pool_fen = fields.Integer(required=True, strict=True, validate=validate.Range(min=1, max=MAX_POOL_FEN))
    split = fields.String(load_default="equal", validate=validate.OneOf(SPLITS))
    min_share_fen = fields.Integer(strict=True, load_default=1, validate=validate.Range(min=1, max=MAX_POOL_FEN),
                                   metadata={"description": "Least share of a completer in a random split."})
    reward = fields.Dict(keys=fields.String(), required=True,
                         metadata={"description": "The reward a share is paid as, without its amount and "
                                                  "cost_fen: e.g. {\"type\": \"points\"}."})
    amount_field = fields.String(load_default="amount", validate=validate.Regexp(r"^[a-z_]{1,32}$"),
                                 metadata={"description": "The reward's parameter the share (in fen) fills in."})

    @validates_schema
    def _reward_pays_any_share(self, data: dict[str, Any], **_: Any) -> None:
        if "reward" not in data or "pool_fen" not in data:
            return
        reward, name = data["reward"], data["amount_field"]
        if name in reward or "cost_fen" in reward or name in ("type", "cost_fen"):
            raise ValidationError(f"The share fills in {name} and cost_fen: leave them out.", "reward")
        # The smallest and the largest share a completer can get must both be valid rewards.
        for share in {min(data["min_share_fen"], data["pool_fen"]), data["pool_fen"]}:
            try:
                RewardField().deserialize(share_reward(data, share, with_cost=True))
            except ValidationError as exc:
                raise ValidationError(exc.normalized_messages(), "reward") from None


class CardsConfig(Schema):
    class Meta:
        unknown = RAISE

    cards = fields.List(fields.Nested(CardSchema), required=True, validate=validate.Length(min=2, max=20))
    chances = fields.Nested(chances.ChancesSchema, load_default=lambda: chances.ChancesSchema().load({}),
                            metadata={"description": "Free draws a day (points_per_chance must stay null)."})
    tasks = tasks.tasks_field()
    gifts_per_day = fields.Integer(strict=True, load_default=20, validate=validate.Range(min=1, max=1000),
                                   metadata={"description": "Cards a player may give a day (gifts and accepted "
                                                            "asks)."})
    asks_per_day = fields.Integer(strict=True, load_default=20, validate=validate.Range(min=1, max=1000))
    pool = fields.Nested(PoolSchema, required=True)

    @validates_schema
    def _a_playable_set(self, data: dict[str, Any], **_: Any) -> None:
        cards = data.get("cards", [])
        ids = [c["card"] for c in cards]
        if len(ids) != len(set(ids)):
            raise ValidationError("Card ids must be unique.", "cards")
        scarce = [c["stock"] for c in cards if c["stock"] is not None]
        if cards and not scarce:
            raise ValidationError("At least one card is scarce (has a stock): it bounds the completers.", "cards")
        if cards and len(scarce) == len(cards):
            raise ValidationError("At least one card has no stock, for draws to fall back to.", "cards")
        if data.get("chances", {}).get("points_per_chance") is not None:
            raise ValidationError("Cards sell no draws: points_per_chance must be null.", "chances")
        if "chances" in data and "tasks" in data and daily_draw_cap(data) < 1:
            raise ValidationError("Players need a way to draw: free draws or tasks that pay chances.", "chances")
        pool = data.get("pool")
        if pool and scarce and pool["pool_fen"] < min(scarce) * pool["min_share_fen"]:
            raise ValidationError(
                f"Up to {min(scarce)} players can complete the set (the scarcest card's stock): a pool of "
                f"{pool['pool_fen']} fen cannot pay each of them {pool['min_share_fen']} fen.", "pool")


# -- requests ----------------------------------------------------------------------------------------------------


class DrawRequest(Schema):
    class Meta:
        unknown = RAISE


class GiftRequest(Schema):
    class Meta:
        unknown = RAISE

    card = fields.String(required=True, validate=CARD_ID)
    to_user = fields.String(required=True, validate=PLAYER_ID)


class AskRequest(Schema):
    class Meta:
        unknown = RAISE

    card = fields.String(required=True, validate=CARD_ID)
    from_user = fields.String(required=True, validate=PLAYER_ID)


class AcceptRequest(Schema):
    class Meta:
        unknown = RAISE

    request_id = fields.String(required=True, validate=REQUEST_ID)


# -- pure building blocks ----------------------------------------------------------------------------------------


def item_key(card_id: str) -> str:
    """The stock item of a scarce card."""
    return f"card:{card_id}"


def count_field(card_id: str) -> str:
    """The field of a player's hash counting the cards of one kind they hold."""
    return f"c:{card_id}"


def request_key(request_id: str) -> str:
    return f"req:{request_id}"


def asks_key(user_id: str) -> str:
    """The asks waiting for this player's answer: request id -> card."""
    return f"asks:{user_id}"


def asker_of(request_id: str) -> str:
    return request_id[CLAIM_ID_LENGTH + 1:]


def receive(config: Mapping[str, Any], user_id: str, holder: Mapping[str, str], card: str, claim_id: str
            ) -> tuple[tuple[Op, ...], bool]:
    """Ops adding one ``card`` to ``user_id``'s hand (as ``holder`` holds it now), completing their set if it
    does, and whether it does."""
    set_ops, completed = completion(config, user_id, holder, card, claim_id)
    return (Op.incr(f"user:{user_id}", count_field(card), 1), *set_ops), completed


def cumulative_weights(cards: Sequence[Mapping[str, Any]]) -> np.ndarray:
    return np.cumsum([c["weight"] for c in cards], dtype=np.int64)


def card_index(cumulative: np.ndarray, u: float | np.ndarray) -> Any:
    """The card a uniform ``u`` in [0, 1) picks from cumulative weights: a scalar or, for an array, an array.

    The live draw and the fairness test use this same function.
    """
    picked = np.searchsorted(cumulative, np.asarray(u) * cumulative[-1], side="right")
    return np.minimum(picked, len(cumulative) - 1)


def split_pool(total_fen: int, n: int, mode: str, min_share_fen: int, rng: np.random.Generator) -> list[int]:
    """``n`` shares of ``total_fen`` summing to it exactly, in the completers' order.

    ``equal``: the floor for everyone, and the remaining fen one each to the first ones (shares differ by at
    most 1 fen). ``random``: everyone gets ``min_share_fen`` and the rest is cut at ``n - 1`` uniformly drawn
    points (a broken stick: every share has the same distribution). A pool smaller than ``n * min_share_fen``
    (publish refuses configs where that can happen) is split equally.
    """
    if n < 1:
        raise ValueError("split_pool needs at least one share")
    if mode not in SPLITS:
        raise ValueError(f"unknown split {mode!r}")
    if mode == "equal" or total_fen < n * min_share_fen:
        base, extra = divmod(total_fen, n)
        return [base + 1 if i < extra else base for i in range(n)]
    spare = total_fen - n * min_share_fen
    cuts = np.sort(rng.integers(0, spare, size=n - 1, endpoint=True))
    parts = np.diff(np.concatenate(([0], cuts, [spare])))
    return [min_share_fen + int(part) for part in parts]


def share_reward(pool: Mapping[str, Any], share_fen: int, *, with_cost: bool = False) -> dict[str, Any]:
    """The reward one share is paid as: the pool's reward with the share filled in."""
    reward = {**pool["reward"], pool["amount_field"]: share_fen}
    return {**reward, "cost_fen": share_fen} if with_cost else reward


def find_card(config: Mapping[str, Any], card_id: str) -> Mapping[str, Any]:
    card = next((c for c in config["cards"] if c["card"] == card_id), None)
    if card is None:
        raise UnknownCardError(card=card_id)
    return card


def in_stock(card: Mapping[str, Any], state: GameState) -> bool:
    return card["stock"] is None or state.stock_left.get(item_key(card["card"]), 0) > 0


def hand(config: Mapping[str, Any], holder: Mapping[str, str]) -> dict[str, int]:
    """Cards held, by card id, from a player's hash."""
    return {c["card"]: int(holder.get(count_field(c["card"]), 0)) for c in config["cards"]}


def completion(config: Mapping[str, Any], user_id: str, holder: Mapping[str, str], gained: str,
               claim_id: str) -> tuple[tuple[Op, ...], bool]:
    """Ops that complete ``user_id``'s set if gaining ``gained`` completes it, and whether it does.

    Completing redeems one of each card and enters the player in the pool, once. Either way the
    decision is guarded (STALE): if a card the plan saw missing arrives meanwhile, or a card it
    redeems leaves, the play is planned again on fresh state, so no completion is missed or forged.
    """
    if SET_FIELD in holder:
        return (), False
    key = f"user:{user_id}"
    counts = hand(config, holder)
    counts[gained] += 1
    missing = [card for card, held in counts.items() if held < 1]
    if missing:
        return tuple(Op.expect(key, count_field(card), holder.get(count_field(card))) for card in missing), False
    return (
        Op.expect(key, SET_FIELD, None),
        *(Op.incr(key, count_field(card), -1, low=0) for card in counts),
        Op.put(key, SET_FIELD, claim_id),
        Op.put(COMPLETERS, user_id, claim_id),
    ), True


def capped_draws_pmf(mean: float, cap: int) -> np.ndarray:
    """P(a player draws k times on a day they play), k = 0..len-1: Poisson(mean) capped by their chances."""
    top = min(cap, int(mean + 10 * math.sqrt(mean) + 30))
    k = np.arange(top + 1)
    if mean > 0:
        pmf = np.exp(-mean + k * math.log(mean) - np.cumsum(np.log(np.maximum(k, 1))))
    else:
        pmf = (k == 0).astype(float)
    pmf[-1] += max(0.0, 1.0 - pmf.sum())  # the tail draws as many as the cap allows
    return pmf


def daily_task_cost_fen(config: Mapping[str, Any], draws: np.ndarray) -> np.ndarray:
    """Task reward cost of a player-day with ``draws`` draws: tasks done in order until they pay the draws
    beyond the free ones; tasks that pay no chances are assumed done once a day."""
    needed = np.maximum(0, draws - config["chances"]["free_per_day"]).astype(np.int64)
    cost = np.zeros(draws.shape, dtype=np.int64)
    for task in config["tasks"]:
        paid = task["reward"]["cost_fen"] if task["reward"] else 0
        if not task["chances"]:
            cost += paid
            continue
        done = np.minimum(task["daily_cap"], -(-needed // task["chances"]))
        cost += done * paid
        needed = np.maximum(0, needed - done * task["chances"])
    return cost


def daily_draw_cap(config: Mapping[str, Any]) -> int:
    """The most draws a player can have in a day: free ones and every task's chances at its cap."""
    return config["chances"]["free_per_day"] + sum(t["chances"] * t["daily_cap"] for t in config["tasks"])


# -- the game ----------------------------------------------------------------------------------------------------


@games.register("cards")
class Cards(Game):
    name = "cards"
    config_schema = CardsConfig
    actions = {"draw": DrawRequest, "gift": GiftRequest, "ask": AskRequest, "accept": AcceptRequest,
               **tasks.TASK_ACTIONS}
    stateful = True
    # In a sharded campaign, a gift, an ask or an accept between players of two key groups is this player's
    # half in the claim and the other player's half carried to their group (``carry``).
    shardable = True

    def reads(self, config: Mapping[str, Any], action: str, request: Mapping[str, Any], ctx: PlayContext
              ) -> Sequence[Read]:
        if action == "gift" and ctx.reaches(request["to_user"]):
            return (Read(f"user:{request['to_user']}"),)
        if action == "accept":
            if not ctx.reaches(asker_of(request["request_id"])):
                return (Read(asks_key(ctx.user_id)),)  # the request itself is in the asker's group
            return (Read(request_key(request["request_id"])), Read(f"user:{asker_of(request['request_id'])}"))
        return ()

    def plan(self, config: Mapping[str, Any], action: str, request: Mapping[str, Any], ctx: PlayContext) -> Claim:
        if action == "draw":
            return self._draw(config, ctx)
        if action == "gift":
            return self._gift(config, request, ctx)
        if action == "ask":
            return self._ask(config, request, ctx)
        if action == "accept":
            return self._accept(config, request, ctx)
        return tasks.plan(config["tasks"], action, request, ctx)

    def _draw(self, config: Mapping[str, Any], ctx: PlayContext) -> Claim:
        state = ctx.state
        spend = chances.spend(state, ctx.day, 1, config["chances"]["free_per_day"])
        cards = config["cards"]
        card = cards[int(card_index(cumulative_weights(cards), ctx.rng.random()))]
        fallback_from = None
        if not in_stock(card, state):
            fallback_from = card["card"]
            usable = [c for c in cards if in_stock(c, state)]
            card = usable[int(card_index(cumulative_weights(usable), ctx.rng.random()))]
        me = f"user:{ctx.user_id}"
        set_ops, completed = completion(config, ctx.user_id, state.player, card["card"], ctx.claim_id)
        takes = (Take(item_key(card["card"]), 1),) if card["stock"] is not None else ()
        return Claim(
            takes=takes, units=1,
            ops=(*spend, Op.incr(me, count_field(card["card"]), 1), *set_ops),
            outcome={"card": card["card"], "name": card["name"], "fallback_from": fallback_from,
                     "completed": completed},
        )

    def _give(self, config: Mapping[str, Any], card: Mapping[str, Any], receiver: str,
              ctx: PlayContext) -> tuple[tuple[Op, ...], dict[str, Exception], bool | None]:
        """Ops moving one ``card`` from the player to ``receiver``, under the player's daily gift cap, and
        whether it completes the receiver's set (None: the receiver is in another key group, where the card is
        carried and the completion decided)."""
        state, me, field = ctx.state, f"user:{ctx.user_id}", count_field(card["card"])
        if state.mine(field) < 1:
            raise CardNotHeldError(card=card["card"])
        cap = config["gifts_per_day"]
        if chances.daily_count(state, me, GIFTS, ctx.day) >= cap:
            raise CardGiftLimitError(gifts_per_day=cap)
        ops = (
            Op.incr(me, field, -1, low=0, refuse=NO_CARD),
            chances.daily_capped(me, GIFTS, ctx.day, 1, cap, refuse=GIFT_LIMIT),
        )
        refusals = {NO_CARD: CardNotHeldError(card=card["card"]), GIFT_LIMIT: CardGiftLimitError(gifts_per_day=cap)}
        if not ctx.reaches(receiver):
            return ops, refusals, None
        credit, completed = receive(config, receiver, state.hash(f"user:{receiver}"), card["card"], ctx.claim_id)
        return (*ops, *credit), refusals, completed

    def _gift(self, config: Mapping[str, Any], request: Mapping[str, Any], ctx: PlayContext) -> Claim:
        card = find_card(config, request["card"])
        friend = request["to_user"]
        if friend == ctx.user_id:
            raise CardSelfTransferError()
        ops, refusals, completed = self._give(config, card, friend, ctx)
        carries = () if ctx.reaches(friend) else (
            Carry(friend, {"kind": "gift", "card": card["card"], "from_user": ctx.user_id}),)
        return Claim((), 0, ops=ops, refusals=refusals, carries=carries,
                     outcome={"card": card["card"], "to_user": friend, "to_user_completed": completed})

    def _ask(self, config: Mapping[str, Any], request: Mapping[str, Any], ctx: PlayContext) -> Claim:
        card = find_card(config, request["card"])
        friend = request["from_user"]
        if friend == ctx.user_id:
            raise CardSelfTransferError()
        me, cap = f"user:{ctx.user_id}", config["asks_per_day"]
        if chances.daily_count(ctx.state, me, ASKS, ctx.day) >= cap:
            raise CardAskLimitError(asks_per_day=cap)
        request_id = f"{ctx.claim_id}-{ctx.user_id}"
        key = request_key(request_id)
        listed = (Op.put(asks_key(friend), request_id, card["card"]),) if ctx.reaches(friend) else ()
        carries = () if listed else (Carry(friend, {"kind": "ask", "request_id": request_id, "card": card["card"]}),)
        return Claim(
            (), 0,
            ops=(chances.daily_capped(me, ASKS, ctx.day, 1, cap, refuse=ASK_LIMIT),
                 Op.put(key, "from", ctx.user_id), Op.put(key, "to", friend), Op.put(key, "card", card["card"]),
                 Op.put(key, "status", OPEN), *listed),
            refusals={ASK_LIMIT: CardAskLimitError(asks_per_day=cap)}, carries=carries,
            outcome={"request_id": request_id, "card": card["card"], "from_user": friend, "status": OPEN},
        )

    def _accept(self, config: Mapping[str, Any], request: Mapping[str, Any], ctx: PlayContext) -> Claim:
        request_id = request["request_id"]
        key, asker = request_key(request_id), asker_of(request_id)
        if not ctx.reaches(asker):
            return self._accept_carried(config, request_id, asker, ctx)
        asked = ctx.state.hash(key)
        if asked.get("from") != asker:
            raise CardRequestNotFoundError(request_id=request_id)
        if asked.get("to") != ctx.user_id:
            raise CardRequestNotYoursError(request_id=request_id)
        if asked.get("status") != OPEN:
            raise CardRequestClosedError(request_id=request_id, status=asked.get("status"))
        card = find_card(config, asked["card"])
        ops, refusals, completed = self._give(config, card, asker, ctx)
        guard = (Op.expect(key, "status", OPEN, refuse=CLOSED), Op.put(key, "status", ACCEPTED),
                 Op.delete(asks_key(ctx.user_id), request_id))
        return Claim((), 0, ops=(*guard, *ops),
                     refusals={**refusals, CLOSED: CardRequestClosedError(request_id=request_id)},
                     outcome={"request_id": request_id, "card": card["card"], "to_user": asker,
                              "status": ACCEPTED, "to_user_completed": completed})

    def _accept_carried(self, config: Mapping[str, Any], request_id: str, asker: str, ctx: PlayContext) -> Claim:
        """Accepting an ask of a player of another key group: the ask as listed for this player is the request
        here (taking it off the list is the one accept); the asker's card and their request's status go over in
        a carry."""
        listed = ctx.state.hash(asks_key(ctx.user_id)).get(request_id)
        if listed is None:
            raise CardRequestNotFoundError(request_id=request_id)
        card = find_card(config, listed)
        ops, refusals, _ = self._give(config, card, asker, ctx)
        guard = (Op.expect(asks_key(ctx.user_id), request_id, listed, refuse=CLOSED),
                 Op.delete(asks_key(ctx.user_id), request_id))
        return Claim((), 0, ops=(*guard, *ops),
                     refusals={**refusals, CLOSED: CardRequestClosedError(request_id=request_id)},
                     carries=(Carry(asker, {"kind": "accepted", "request_id": request_id, "card": card["card"],
                                            "from_user": ctx.user_id}),),
                     outcome={"request_id": request_id, "card": card["card"], "to_user": asker,
                              "status": ACCEPTED, "to_user_completed": None})

    def carry(self, config: Mapping[str, Any], payload: Mapping[str, Any], ctx: PlayContext) -> Claim:
        """The other player's half of a gift, ask or accept across two key groups, in their group: the card
        arrives (and may complete their set), or the ask is listed for them."""
        if payload["kind"] == "ask":
            return Claim((), 0, ops=(Op.put(asks_key(ctx.user_id), payload["request_id"], payload["card"]),),
                         outcome={"asked_for": payload["card"], "request_id": payload["request_id"]})
        ops, completed = receive(config, ctx.user_id, ctx.state.player, payload["card"], ctx.claim_id)
        if payload["kind"] == "accepted":
            ops = (*ops, Op.put(request_key(payload["request_id"]), "status", ACCEPTED))
        return Claim((), 0, ops=ops, outcome={"received": payload["card"], "from_user": payload["from_user"],
                                              "completed": completed})

    # -- the end of the campaign ---------------------------------------------------------------------------------

    def finale_reads(self, config: Mapping[str, Any]) -> Sequence[Read]:
        return (Read(COMPLETERS),)

    def finale(self, config: Mapping[str, Any], ctx: PlayContext) -> Claim | None:
        """The pool split among the completers in the order they completed (a zero share pays nothing)."""
        entered = ctx.state.hash(COMPLETERS)
        if not entered:
            return None
        pool = config["pool"]
        completers = sorted(entered, key=lambda user: (entered[user], user))
        shares = split_pool(pool["pool_fen"], len(completers), pool["split"], pool["min_share_fen"], ctx.rng)
        grants = tuple(GrantSpec(share_reward(pool, share), share, user_id=user)
                       for user, share in zip(completers, shares, strict=True) if share > 0)
        return Claim((), 0, grants=grants,
                     outcome={"completers": len(completers), "pool_fen": pool["pool_fen"], "split": pool["split"]})

    # -- what the engine and the admin need ----------------------------------------------------------------------

    def stock(self, config: Mapping[str, Any]) -> dict[str, int]:
        return {item_key(c["card"]): c["stock"] for c in config["cards"] if c["stock"] is not None}

    def rewards(self, config: Mapping[str, Any]) -> list[Mapping[str, Any]]:
        pool = config["pool"]
        return [share_reward(pool, pool["pool_fen"], with_cost=True),
                *(t["reward"] for t in config["tasks"] if t["reward"])]

    def public_view(self, config: Mapping[str, Any]) -> dict[str, Any]:
        total = sum(c["weight"] for c in config["cards"])
        pool = config["pool"]
        return {
            "cards": [{"card": c["card"], "name": c["name"], "weight": c["weight"],
                       "probability": c["weight"] / total, "stock": c["stock"]} for c in config["cards"]],
            "free_draws_per_day": config["chances"]["free_per_day"],
            "gifts_per_day": config["gifts_per_day"],
            "asks_per_day": config["asks_per_day"],
            "pool": {"pool_fen": pool["pool_fen"], "split": pool["split"], "min_share_fen": pool["min_share_fen"],
                     "reward_type": pool["reward"]["type"]},
            "tasks": [{"task": t["task"], "kind": t["kind"], "title": t["title"], "chances": t["chances"],
                       "daily_cap": t["daily_cap"]} for t in config["tasks"]],
        }

    def view_reads(self, config: Mapping[str, Any], ctx: ViewContext) -> Sequence[Read]:
        return (Read(asks_key(ctx.user_id)),)

    def player_state(self, config: Mapping[str, Any], state: GameState, ctx: ViewContext) -> dict[str, Any]:
        me, held = f"user:{ctx.user_id}", hand(config, state.player)
        asks = state.hash(asks_key(ctx.user_id))
        return {
            "chances": chances.chances_view(state, ctx.day, config["chances"]),
            "cards": held,
            "missing": [card for card, count in held.items() if count < 1],
            "completed": SET_FIELD in state.player,
            "asks": [{"request_id": rid, "card": asks[rid], "from_user": asker_of(rid)} for rid in sorted(asks)],
            "gifts_left_today": max(0, config["gifts_per_day"] - chances.daily_count(state, me, GIFTS, ctx.day)),
            "asks_left_today": max(0, config["asks_per_day"] - chances.daily_count(state, me, ASKS, ctx.day)),
            "stock_left": {c["card"]: state.stock_left.get(item_key(c["card"]), 0)
                           for c in config["cards"] if c["stock"] is not None},
            "tasks": tasks.tasks_view(config["tasks"], state.player, ctx),
        }

    def forecast(self, config: Mapping[str, Any], behaviour: Mapping[str, Any], days: int,
                 rng: np.random.Generator) -> Forecast:
        """Draws per run and day from the behaviour model (Poisson plays, capped by the chances a player can
        have); card counts per run and day by a multinomial over the weights, scarce cards capped by their
        stock (the excess falls back to the unstocked cards); completers from a sample of players whose
        whole-campaign hands are multinomial, scaled up and bounded by the scarce stock. Gifts and asks are
        not simulated: completers are those who collect a set by drawing alone (a lower bound)."""
        runs, players = behaviour["runs"], behaviour["players"]
        cards = config["cards"]
        weights = np.array([c["weight"] for c in cards], dtype=float)
        p = weights / weights.sum()
        stocked = [i for i, c in enumerate(cards) if c["stock"] is not None]
        free = [i for i, c in enumerate(cards) if c["stock"] is None]
        pmf = capped_draws_pmf(behaviour["plays_per_day"], daily_draw_cap(config))
        per_player_day = float(pmf @ np.arange(pmf.size))
        task_cost = float(pmf @ daily_task_cost_fen(config, np.arange(pmf.size)))

        playing = daily_players(rng, behaviour, runs, days)
        draws = rng.poisson(playing * per_player_day)
        drawn = rng.multinomial(draws, p)  # (runs, days, cards)
        issued = drawn.sum(axis=1).astype(float)
        stockout: dict[str, np.ndarray] = {}
        honoured = np.ones((runs, len(cards)))
        for i in stocked:
            item, stock = item_key(cards[i]["card"]), cards[i]["stock"]
            cumulative = np.cumsum(drawn[:, :, i], axis=1)
            out = cumulative[:, -1] >= stock
            stockout[item] = np.where(out, np.argmax(cumulative >= stock, axis=1) + 1, 0)
            excess = np.maximum(0, cumulative[:, -1] - stock)
            issued[:, i] -= excess
            issued[:, free] += excess[:, None] * p[free] / p[free].sum()
            honoured[:, i] = issued[:, i] / np.maximum(1, cumulative[:, -1])

        # A sample of players' whole-campaign hands; a scarce card they drew is theirs with the share of
        # that card's draws the stock honoured in the run (the rest fell back to unstocked cards).
        sample = min(players, max(100, SAMPLED_PLAYER_RUNS // runs))
        days_played = rng.binomial(days, behaviour["participation_rate"], size=(runs, sample))
        hands = rng.multinomial(rng.poisson(days_played * per_player_day), p)  # (runs, sample, cards)
        has_scarce = np.ones((runs, sample))
        for i in stocked:
            share = honoured[:, i][:, None]
            kept = rng.binomial(hands[:, :, i], share)
            hands[:, :, free] += rng.multinomial(hands[:, :, i] - kept, p[free] / p[free].sum())
            # The chance of holding one, rather than one sampled outcome: scarce cards are rare in a sample.
            has_scarce *= 1 - (1 - share) ** hands[:, :, i]
        complete = (hands[:, :, free] >= 1).all(axis=2) * has_scarce
        expected = complete.mean(axis=1) * players
        bound = np.floor(issued[:, stocked].min(axis=1))
        completers = np.minimum(rng.poisson(expected), bound).astype(np.int64)

        pool_cost = np.where(completers > 0, config["pool"]["pool_fen"], 0)
        cost = pool_cost + np.rint(playing.sum(axis=1) * task_cost).astype(np.int64)
        wins = {"completers": completers, **{item_key(c["card"]): issued[:, i] for i, c in enumerate(cards)}}
        return Forecast(cost_fen=cost, wins=wins, stockout_day=stockout, plays=draws.sum(axis=1), notes=[
            f"Completers collect a set by drawing alone (gifts and asks add more); {sample} players sampled per "
            f"run, scaled to {players}.",
            "The pool is paid in full when at least one player completes the set.",
        ])

    def demo_definitions(self, starts_at: str, ends_at: str) -> list[dict[str, Any]]:
        return [{
            "name": "集五福 Five blessings",
            "game": "cards",
            "starts_at": starts_at,
            "ends_at": ends_at,
            "budget_fen": 2_000_000,
            "limits": {"per_user_per_day": 20},
            "config": {
                "cards": [
                    {"card": "aiguo", "name": "爱国福", "weight": 30},
                    {"card": "fuqiang", "name": "富强福", "weight": 30},
                    {"card": "hexie", "name": "和谐福", "weight": 25},
                    {"card": "youshan", "name": "友善福", "weight": 25},
                    {"card": "jingye", "name": "敬业福", "weight": 3, "stock": 2000},
                ],
                "chances": {"free_per_day": 3},
                "tasks": [
                    {"task": "visit_shop", "kind": "visit", "title": "Visit the shop for 15 seconds",
                     "min_dwell_seconds": 15, "chances": 1, "daily_cap": 3},
                    {"task": "share", "kind": "share", "title": "Share with a friend", "chances": 1,
                     "daily_cap": 2},
                    {"task": "pay", "kind": "pay", "title": "Pay with Alipay", "chances": 2, "daily_cap": 1,
                     "reward": {"type": "points", "amount": 10, "cost_fen": 10}},
                ],
                "gifts_per_day": 10,
                "asks_per_day": 10,
                "pool": {"pool_fen": 888_800, "split": "random", "min_share_fen": 100,
                         "reward": {"type": "points"}},
            },
        }]

