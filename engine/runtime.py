"""``PlayService.play``: one player action, from snapshot to the claim script's answer.

The steps of DESIGN.md's "How a play flows": snapshot, eligibility, the fraud
gate (engine/fraud: what needs no Redis here, the rest inside the claim
script), the game's pure plan, then ONE Redis round trip that checks and
applies everything and appends the claim to the outbox. A
stateful game (or a campaign with A/B variants) first reads the player's
state in one pipelined round trip; if that state changes before the claim,
the claim answers STALE and the play is planned again on fresh state.
"""

from __future__ import annotations

import json
import random
import secrets
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

import marshmallow
import redis

from . import errors
from . import scripts as codes
from .attributes import AttributeStore
from .claim_call import (
    Admitted,
    ClaimItem,
    ClaimOutcome,
    ClaimRequest,
    FraudRefused,
    GameRefused,
    Refused,
    Short,
    Stale,
    error_of,
    replayed,
)
from .claims import CARRY, Carry, Claim, GrantSpec, Op, PlayResult, Release
from .clock import Clock, business_day, from_ms, iso, to_ms
from .config import Settings
from .eligibility import check_eligible
from .fairness import draw_seed
from .fraud import challenge
from .fraud.blocks import Blocks
from .fraud.features import RequestFeatures
from .fraud.gate import FRAUD_LOG_LENGTH, Screening, enforced_limits, rate_limited, requester, screen
from .fraud.members import KnownMembers
from .fraud.risk import PopulationStats
from .fraud.stats import GateStats
from .fraud.store import PolicyCache
from .game import Game, PlayContext
from .idempotency import fingerprint, require_key
from .journal import ClaimJournal
from .keys import CampaignKeys
from .metrics import claim_latency, plays_counter
from .refusals import RefusalTally
from .scripts import Scripts
from .shards import Shards
from .slices import BUDGET, SliceMover, StockView
from .snapshot import CampaignSnapshot, SnapshotCache
from .state import GameState, Read, read_state
from .variants import player_variant

STATE_RETENTION = timedelta(days=30)
# A stateful play is planned again when the player's state changed under it; this many times at most.
MAX_PLANS = 8
RETRY_PAUSE = 0.001  # seconds; doubled on each attempt
# The finale plays as this player, once: its Idempotency-Key and a 'done' field guard it.
FINALE_PLAYER = "__finale__"
FINALE_KEY = "finale"
FINALE_DONE = "FINALE_DONE"
CARRIED = "CARRIED"


@dataclass(frozen=True)
class PlayRequest:
    campaign_id: int
    user_id: str
    action: str
    payload: Mapping[str, Any]
    idempotency_key: str | None
    # What the mini-program's request told (device, IP, timestamp, nonce...): the fraud gate screens plays
    # that carry it. None for the engine's own callers (tests, the finale, tools), which it trusts.
    features: RequestFeatures | None = None


def new_claim_id(now_ms: int) -> str:
    """Time-ordered and unique. Fixed before the script runs, so a retried EVALSHA carries the same id."""
    return f"{now_ms:012x}{secrets.token_hex(6)}"


def grant_id(claim_id: str, index: int) -> str:
    """Alphanumeric, as Alipay's out_biz_no wants."""
    return f"G{claim_id}{index:02x}"


def grant_entries(claim_id: str, grants: Iterable[GrantSpec]) -> list[dict[str, Any]]:
    """The grants of a claim as the outbox carries them, numbered by their place in the claim."""
    return [{"id": grant_id(claim_id, i), "reward": dict(g.reward), "cost_fen": g.cost_fen,
             **({"user_id": g.user_id} if g.user_id else {})} for i, g in enumerate(grants)]


def order_id(claim_id: str) -> str:
    return f"O{claim_id}"


class PlayService:
    def __init__(self, *, scripts: Scripts, snapshots: SnapshotCache, clock: Clock, namespace: str,
                 idempotency_ttl: int, attributes: AttributeStore | None = None,
                 journal: ClaimJournal | None = None, policies: PolicyCache | None = None,
                 refusals: RefusalTally | None = None, settings: Settings | None = None) -> None:
        self._settings = settings or Settings()  # what challenge providers read (a captcha service's URL)
        self._attributes = attributes
        self.refusals = refusals
        self._policies = policies
        self._population = PopulationStats(scripts.client) if policies is not None else None
        self._gate_stats = GateStats(refusals) if refusals is not None else None
        self.blocks = Blocks()
        self.known_members = KnownMembers()
        self.journal = journal
        self._scripts = scripts
        self._snapshots = snapshots
        self._clock = clock
        self._namespace = namespace
        self._idempotency_ttl = idempotency_ttl
        self._schemas: dict[type[marshmallow.Schema], marshmallow.Schema] = {}
        self._shards: dict[int, Shards] = {}
        self.slices = SliceMover(scripts)
        self._stock_view = StockView(scripts.client)

    def forget_groups(self) -> None:
        """Drop the kept key groups and stock figures (tests, whose campaign ids start again at 1)."""
        self._shards.clear()
        self._stock_view.forget()
        self.slices.forget()

    def _groups(self, snapshot: CampaignSnapshot) -> Shards:
        """The campaign's key groups, kept per campaign: each keeps the prefix of the keys a play builds."""
        shards = self._shards.get(snapshot.campaign_id)
        if shards is None or (snapshot.shard_tags and shards.tags != snapshot.shard_tags):
            shards = self._shards[snapshot.campaign_id] = Shards(self._namespace, snapshot.campaign_id,
                                                                 snapshot.shard_tags)
        return shards

    def _schema(self, schema_class: type[marshmallow.Schema]) -> marshmallow.Schema:
        """One instance per request schema: building a marshmallow schema costs more than loading with it."""
        schema = self._schemas.get(schema_class)
        if schema is None:
            schema = self._schemas[schema_class] = schema_class()
        return schema

    def play(self, request: PlayRequest) -> PlayResult:
        idempotency_key = require_key(request.idempotency_key)
        snapshot = self._snapshots.get(request.campaign_id)
        game = snapshot.plugin
        outcome = "error"
        try:
            result = self._play(request, idempotency_key, snapshot, game)
            outcome = "replayed" if result.replayed else "ok"
            return result
        except errors.HuodongError as exc:
            outcome = exc.code
            if self.refusals is not None:
                self.refusals.add(request.campaign_id, exc.code)
            raise
        finally:
            # Only known action names become labels: a client cannot grow the metric without bound.
            action = request.action if request.action in game.actions else "unknown"
            plays_counter(snapshot.game, action, outcome).inc()

    def _play(self, request: PlayRequest, idempotency_key: str, snapshot: CampaignSnapshot, game: Game
              ) -> PlayResult:
        schema = game.actions.get(request.action)
        if schema is None:
            raise errors.UnknownActionError(f"The {snapshot.game} game has no action {request.action!r}.",
                                            action=request.action, actions=sorted(game.actions))
        try:
            payload = self._schema(schema).load(request.payload)
        except marshmallow.ValidationError as exc:
            raise errors.ValidationError(fields=exc.normalized_messages()) from None

        now = self._clock.now()
        check_eligible(snapshot, request.user_id, now, self._attributes)
        shards = self._groups(snapshot)
        keys = shards.for_user(request.user_id)
        screening = self._screen(keys, request, snapshot, now)
        # The validated body (defaults filled in), so equivalent requests share a fingerprint.
        request_print = fingerprint(request.action, payload)
        for attempt in range(MAX_PLANS):
            if attempt:
                # The player's own plays are racing each other: spread the retries out.
                time.sleep(random.uniform(0, RETRY_PAUSE * 2 ** attempt))
            result = self._plan_and_apply(shards, request, payload, idempotency_key, request_print, snapshot, game,
                                          now, screening, count_attempt=not attempt)
            if result is not None:
                return result
        raise errors.ConflictError("This player's state kept changing during the play; try again.",
                                   reason="busy")

    def _screen(self, keys: CampaignKeys, request: PlayRequest, snapshot: CampaignSnapshot, now: datetime
                ) -> Screening | None:
        """The fraud gate before the plan (DESIGN's step 3): a refusal by a rule that needs no Redis is counted
        in the campaign's fraud stats and raised; the rest goes to the claim script."""
        if request.features is None or self._policies is None:
            return None
        policy = self._policies.get(snapshot.fraud_policy)
        now_ms = to_ms(now)
        self._gate_noted(keys, policy.name, now_ms, screened=True)
        if self.blocks:  # a rate limit this process saw full a moment ago: refused here, nothing else runs
            blocked = self.blocks.blocked(snapshot.campaign_id, enforced_limits(
                policy, request.user_id, request.action, request.features), now_ms)
            if blocked is not None:
                self._gate_noted(keys, policy.name, now_ms, refused=blocked[0])
                raise rate_limited(*blocked)
        risk = policy.document["risk"]
        if risk["mode"] != "off" and request.features.challenge_id and request.features.challenge_answer:
            self._answer_challenge(keys, request, risk, now_ms)
        limits = self._population.limits(keys, now_ms, risk) if risk["mode"] != "off" else None
        try:
            return screen(policy, keys, request.user_id, request.action, request.features, now_ms, limits,
                          expects_new_users=snapshot.expects_new_users, known=self.known_members)
        except errors.HuodongError as refusal:
            # Counted and logged here, in a round trip of its own: only refused plays pay it.
            rule = refusal.details["rule"]
            self._gate_noted(keys, policy.name, now_ms, refused=rule)
            with self._scripts.client.pipeline(transaction=False) as pipe:
                pipe.hincrby(keys.fraud_stats, rule, 1)
                pipe.xadd(keys.fraud_log, {"rule": rule, **requester(request.user_id, request.features)},
                          maxlen=FRAUD_LOG_LENGTH, approximate=True)
                pipe.execute()
            raise

    def _answer_challenge(self, keys: CampaignKeys, request: PlayRequest, risk: dict[str, Any], now_ms: int
                          ) -> None:
        """The answer to a challenge is verified before the gate: a pass lets the play through the challenge
        band (engine/fraud/challenge.py)."""
        features = request.features
        challenge.answer(self._challenges(keys, risk["challenge"]), request.user_id, features.challenge_id,
                         challenge.answer_text(features.challenge_answer), now_ms=now_ms,
                         pass_ms=risk["pass_minutes"] * 60_000)

    def _gate_noted(self, keys: CampaignKeys, policy: str, now_ms: int, **what: Any) -> None:
        if self._gate_stats is not None:
            self._gate_stats.record(keys, policy, now_ms, **what)

    def _plan_and_apply(self, shards: Shards, request: PlayRequest, payload: Mapping[str, Any],
                        idempotency_key: str, request_print: str, snapshot: CampaignSnapshot, game: Game,
                        now: datetime, screening: Screening | None = None, *, count_attempt: bool = False
                        ) -> PlayResult | None:
        """One attempt: read (stateful games), plan, claim. None when the state changed under the plan (or a
        sharded campaign's group took stock or budget from another: plan again).
        ``count_attempt``: the read of a stateful game first counts the play against the rate limits."""
        now_ms = to_ms(now)
        group = shards.index_of(request.user_id)
        keys = shards.keys(group)
        ctx = play_context(snapshot, request.user_id, now)
        config = snapshot.config
        if snapshot.needs_state:
            # The player's attributes (a points balance, a registration date) ride in the same pipeline
            # unless this process read them a moment ago.
            attributes = self._attributes.cached(request.user_id) if self._attributes is not None else {}
            attempts = (self._scripts.attempts(keys, screening, now_ms, idempotency_key=idempotency_key,
                                               fingerprint=request_print)
                        if screening and count_attempt else None)
            reads = game.reads(snapshot.config, request.action, payload, ctx)
            attributes_key = self._attributes.key(request.user_id) if attributes is None else None
            try:
                read = read_state(self._scripts.client, keys, request.user_id, reads, idempotency_key,
                                  attributes_key=attributes_key, first=attempts)
            except redis.exceptions.NoScriptError:  # Redis restarted and lost its scripts
                if attempts is None:
                    raise
                attempts.reload()
                read = read_state(self._scripts.client, keys, request.user_id, reads, idempotency_key,
                                  attributes_key=attributes_key, first=attempts)
            if attempts is not None:
                counted = codes.ScriptReply.parse(read.first)
                if counted.code == codes.FRAUD:  # attempts.lua: the label, then the window's detail
                    label, _, detail = counted.body.partition("\n")
                    raise self._fraud_refusal(keys, request, screening, label, json.loads(detail) if detail else None)
                screening.counted = True
            if read.stored_answer is not None:
                return self._admitted(stored_reply(read.stored_answer, request_print))
            if shards.sharded and any(self.slices.refill(shards, group, item, 1)
                                      for item, left in read.state.stock_left.items() if left <= 0):
                return None  # a prize this group ran out of came from another group: plan on it
            if attributes is None:
                attributes = self._attributes.remember(request.user_id, read.attributes or {})
            state = replace(read.state, attributes=attributes)
            variant = player_variant(snapshot.campaign_id, request.user_id, snapshot.variants,
                                     state.player.get("variant"))
            config = snapshot.config_for(variant)
            ctx = play_context(snapshot, request.user_id, now, state=state, variant=variant, claim_id=ctx.claim_id)
        plan = game.plan(config, request.action, payload, ctx)
        started = time.perf_counter()
        if isinstance(plan, Release):
            reply = self._release(keys, plan, request, idempotency_key, request_print, now_ms)
        else:
            reply = self._claim(keys, plan, request, idempotency_key, request_print, snapshot, ctx,
                                gate=screening)
        claim_latency(snapshot.game).observe(time.perf_counter() - started)
        if isinstance(plan, Release):
            return self._answer(reply)
        match reply:
            case Stale():
                return None
            case Short(resource=resource, error=error):
                wanted = plan.cost_fen if resource == BUDGET else sum(t.quantity for t in plan.takes
                                                                       if t.item == resource)
                if resource != BUDGET and ctx.state is not None and ctx.state.stock_left.get(resource, 0) >= wanted:
                    return None  # the stock ran out after the plan read it: plan again (a game may fall back)
                if shards.sharded and self.slices.refill(shards, group, resource, wanted):
                    return None  # this group's slice ran out and another group gave it some
                raise error
            case FraudRefused(label=label, detail=detail):
                raise self._fraud_refusal(keys, request, screening, label, detail)
            case GameRefused(label=label):
                refused = plan.refusals.get(label)
                raise refused if isinstance(refused, errors.HuodongError) else errors.ConflictError(
                    f"Refused ({label}).", reason=label)
            case Refused(error=error):
                raise error
        if screening is not None and not reply.replayed:
            if screening.joins:
                self.known_members.remember(screening.joins, now_ms)
            if reply.shadow:  # what the gate noted on the admitted play: the shadow rules it broke
                self._gate_noted(keys, screening.policy, now_ms, shadow=reply.shadow)
        result = reply.result()
        if plan.carries and not result.replayed:
            self._carry_all(snapshot, ctx.claim_id, plan.carries)
        return self._stock_view.campaign_wide(shards, group, result) if shards.sharded else result

    def _merged(self, shards: Shards, reads: Iterable[Read]) -> dict[str, dict[str, str]]:
        """Each hash read over every key group, merged (a field is one player's: it is in one group only)."""
        hashes = [read.key for read in reads if read.kind == "hash"]
        with self._scripts.client.pipeline(transaction=False) as pipe:
            for name in hashes:
                for keys in shards:
                    pipe.hgetall(keys.game(name))
            replies = iter(pipe.execute())
        return {name: {k: v for _ in shards for k, v in next(replies).items()} for name in hashes}

    def carry_event(self, event: Mapping[str, Any]) -> None:
        """Finish the carries of an admitted claim (settlement calls this for every outbox entry with some: the
        process that admitted it may have died before it carried them); each is applied once however often."""
        if event.get("carries"):
            snapshot = self._snapshots.get(event["campaign_id"])
            self._carry_all(snapshot, event["claim_id"], [Carry(c["user_id"], c["payload"])
                                                          for c in event["carries"]])

    def _carry_all(self, snapshot: CampaignSnapshot, claim_id: str, carries: Iterable[Carry]) -> None:
        for index, carry in enumerate(carries):
            self._carry(snapshot, claim_id, index, carry)

    def _carry(self, snapshot: CampaignSnapshot, claim_id: str, index: int, carry: Carry) -> None:
        """Plan and apply one carry on its player's state in their group, once: a field in their hash marks it
        done (kept as long as their state), so a second run, by settlement or a retry, is refused as done."""
        game = snapshot.plugin
        shards = self._groups(snapshot)
        keys = shards.for_user(carry.user_id)
        done = f"carried:{claim_id}:{index}"
        request = PlayRequest(snapshot.campaign_id, carry.user_id, CARRY, carry.payload, f"{CARRY}-{done}")
        request_print = fingerprint(CARRY, carry.payload)
        for attempt in range(MAX_PLANS):
            if attempt:
                time.sleep(random.uniform(0, RETRY_PAUSE * 2 ** attempt))
            now = self._clock.now()
            ctx = play_context(snapshot, carry.user_id, now)
            read = read_state(self._scripts.client, keys, carry.user_id,
                              game.reads(snapshot.config, CARRY, carry.payload, ctx), request.idempotency_key)
            if read.stored_answer is not None:
                return
            ctx = play_context(snapshot, carry.user_id, now, state=read.state, claim_id=ctx.claim_id)
            me = f"user:{carry.user_id}"
            claim = game.carry(snapshot.config_for(read.state.player.get("variant")), carry.payload, ctx)
            claim = replace(claim, ops=(Op.expect(me, done, None, refuse=CARRIED), Op.put(me, done, ctx.claim_id),
                                        *claim.ops))
            reply = self._claim(keys, claim, request, request.idempotency_key, request_print, snapshot, ctx,
                                mode=CARRY)
            if isinstance(reply, Stale):
                continue
            if isinstance(reply, GameRefused) and reply.label == CARRIED:
                return
            self._admitted(reply)
            return
        raise errors.ConflictError("The other player's state kept changing; the carry is retried by settlement.",
                                   reason="busy")

    def _fraud_refusal(self, keys: CampaignKeys, request: PlayRequest, screening: Screening | None,
                       label: str, detail: dict[str, Any] | None) -> errors.HuodongError:
        """The error for a fraud gate refusal in a script; a challenge is issued with CHALLENGE_REQUIRED."""
        if screening is None:
            return errors.ConflictError(reason=label)
        now_ms = to_ms(self._clock.now())
        self._gate_noted(keys, screening.policy, now_ms, refused=label)
        if label in screening.limited:
            # Until the window has room, this process refuses the same scope's plays on its own.
            self.blocks.block(keys.campaign_id, label, screening.limited[label], now_ms,
                              int(detail["retry_after_ms"]))
        error = screening.refusal(label, detail)
        if label == "risk:challenge" and screening.challenge is not None:
            error.details["challenge"] = challenge.issue(self._challenges(keys, screening.challenge),
                                                         request.user_id)
        return error

    def _challenges(self, keys: CampaignKeys, options: dict[str, Any]) -> challenge.ChallengeContext:
        return challenge.ChallengeContext(self._scripts.client, keys, self._settings, options)

    def finale(self, campaign_id: int) -> PlayResult | None:
        """Run the game's finale once, after the campaign has ended; None if it has none or it already ran."""
        snapshot = self._snapshots.get(campaign_id, fresh=True)
        game = snapshot.plugin
        if type(game).finale is Game.finale:
            return None
        shards = self._groups(snapshot)
        group = shards.index_of(FINALE_PLAYER)
        keys = shards.keys(group)
        request = PlayRequest(campaign_id, FINALE_PLAYER, "finale", {}, FINALE_PLAYER)
        request_print = fingerprint("finale", {})
        reads = game.finale_reads(snapshot.config)
        for _ in range(MAX_PLANS):
            now = self._clock.now()
            read = read_state(self._scripts.client, keys, FINALE_PLAYER, reads, FINALE_PLAYER)
            if read.stored_answer is not None:
                return None
            state = read.state
            if shards.sharded:  # what the game's players left in every group (the card game's completers)
                state = replace(state, hashes={**state.hashes, **self._merged(shards, reads)})
            ctx = play_context(snapshot, FINALE_PLAYER, now, state=state)
            claim = game.finale(snapshot.config, ctx)
            if claim is None:
                return None
            once = (Op.expect(FINALE_KEY, "done", None, refuse=FINALE_DONE),
                    Op.put(FINALE_KEY, "done", ctx.claim_id))
            claim = replace(claim, ops=(*once, *claim.ops))
            reply = self._claim(keys, claim, request, FINALE_PLAYER, request_print, snapshot, ctx, mode="finale")
            if isinstance(reply, Stale) or (shards.sharded and isinstance(reply, Short) and reply.resource == BUDGET
                                            and self.slices.refill(shards, group, BUDGET, claim.cost_fen)):
                continue
            if isinstance(reply, GameRefused) and reply.label == FINALE_DONE:
                return None
            return self._admitted(reply)
        raise errors.ConflictError("The campaign's state kept changing during its finale; try again.",
                                   reason="busy")

    def _claim(self, keys: CampaignKeys, claim: Claim, request: PlayRequest, idempotency_key: str,
               request_print: str, snapshot: CampaignSnapshot, ctx: PlayContext, *, mode: str = "play",
               gate: Screening | None = None) -> ClaimOutcome:
        now_ms = to_ms(ctx.now)
        grants = grant_entries(ctx.claim_id, claim.grants)
        order = None
        hold_deadline_ms = 0
        if claim.order is not None:
            if claim.order.held:
                hold_deadline_ms = now_ms + claim.order.hold_seconds * 1000
            order = {
                "id": order_id(ctx.claim_id),
                "status": "held" if claim.order.held else "confirmed",
                "amount_fen": claim.order.amount_fen,
                "lines": [line.__dict__ for line in claim.order.lines],
                "deadline_ms": hold_deadline_ms or None,
                "rewards_on_payment": [{"reward": dict(g.reward), "cost_fen": g.cost_fen}
                                       for g in claim.order.rewards_on_payment],
            }
        outcome = {**claim.outcome, "claim_id": ctx.claim_id, "version": ctx.version}
        if ctx.variant is not None:
            outcome["variant"] = ctx.variant
        if order is not None:
            outcome["order"] = {k: order[k] for k in ("id", "status", "amount_fen")}
            if hold_deadline_ms:
                outcome["order"]["pay_before"] = _iso_ms(hold_deadline_ms)
        answer = {
            "outcome": outcome,
            "grants": [{"id": g["id"], "reward": g["reward"], "status": "pending",
                        **({"user_id": g["user_id"]} if "user_id" in g else {})} for g in grants],
        }
        event = {
            "type": "claim", "claim_id": ctx.claim_id, "campaign_id": ctx.campaign_id, "version": ctx.version,
            "game": snapshot.game, "action": request.action, "user_id": request.user_id, "at_ms": now_ms,
            "request": dict(request.payload), "outcome": outcome, "order": order, "grants": grants,
            "variant": ctx.variant,
        }
        if claim.takes:  # what a rejected review gives back
            event["takes"] = [[t.item, t.quantity] for t in claim.takes]
        if claim.carries:  # what settlement finishes if this process dies before it does
            event["carries"] = [{"user_id": c.user_id, "payload": dict(c.payload)} for c in claim.carries]
        stateful = snapshot.plugin.stateful and ctx.state is not None
        if stateful:
            # What the plan saw: with the revealed secret, ``huodong verify`` re-derives the outcome from it.
            event["draw"] = {"seq": ctx.state.seq, "day": ctx.day.isoformat(), "state": ctx.state.to_dict()}
        state_ttl = _state_ttl(snapshot, ctx)
        event_json = _json(event)
        reply = self._scripts.claim(
            keys,
            ClaimRequest(
                fingerprint=request_print, now=now_ms, idempotency_ttl=self._idempotency_ttl,
                day=ctx.day.strftime("%Y%m%d"), per_user=snapshot.per_user, per_user_per_day=snapshot.per_user_per_day,
                units=claim.units, cost=claim.cost_fen, answer=_json(answer), event=event_json,
                hold_deadline=hold_deadline_ms, state_ttl=state_ttl, order_id=order_id(ctx.claim_id),
                user_id=request.user_id, seq=ctx.state.seq if stateful and mode == "play" else None,
                variant=ctx.variant, mode=mode, ops=tuple(claim.ops),
                items=tuple(ClaimItem(t.item, t.quantity, t.per_user_limit) for t in claim.takes)),
            idempotency_key=idempotency_key,
            gate=gate,
            relation=claim.relation,
            held_answer=_json(held(answer)) if gate is not None and claim.relation is not None else "",
        )
        if isinstance(reply, Admitted) and not reply.replayed and self.journal is not None:
            # With what the fraud gate noted: a held play stays held if recovered.
            self.journal.record(f'{event_json[:-1]},"fraud":{reply.noted}}}' if reply.noted else event_json, ctx.now)
        return reply

    def _release(self, keys: CampaignKeys, release: Release, request: PlayRequest, idempotency_key: str,
                 request_print: str, now_ms: int) -> codes.ScriptReply:
        answer = {"outcome": {**release.outcome, "order": {"id": release.order_id, "status": "cancelled"}},
                  "grants": []}
        return self._scripts.release(
            keys, order_id=release.order_id, owner_id=request.user_id, reason="cancelled", now_ms=now_ms,
            idempotency_key=idempotency_key, fingerprint=request_print, idempotency_ttl=self._idempotency_ttl,
            answer=_json(answer),
        )

    def _answer(self, reply: codes.ScriptReply) -> PlayResult:
        """release.lua's reply: the answer, or the error it stands for."""
        if reply.code in (codes.OK, codes.REPLAY):
            return replayed(reply.body).result() if reply.code == codes.REPLAY else \
                PlayResult(answer_json=reply.body)
        raise error_of(reply.code, reply.body)

    @staticmethod
    def _admitted(reply: ClaimOutcome) -> PlayResult:
        """The result of a claim that can only be admitted (a replay, a carry, the finale), or its error."""
        if isinstance(reply, Admitted):
            return reply.result()
        if isinstance(reply, Refused | Short):
            raise reply.error
        raise errors.ConflictError(f"Refused ({reply}).")


def held(answer: dict[str, Any]) -> dict[str, Any]:
    """The answer to a play the fraud gate holds for review: admitted, its grants waiting for a person."""
    return {"outcome": {**answer["outcome"], "held": True},
            "grants": [{**grant, "status": "held"} for grant in answer["grants"]]}


def play_context(snapshot: CampaignSnapshot, user_id: str, now: datetime, *, state: GameState | None = None,
                 variant: str | None = None, claim_id: str | None = None) -> PlayContext:
    """The context a plan gets. With state read, the draws are seeded by HMAC(version secret, player, seq) so
    they can be re-derived; without (a stateless game, or a snapshot without a secret) by the claim id."""
    claim_id = claim_id or new_claim_id(to_ms(now))
    seed = draw_seed(snapshot.secret, user_id, state.seq) if state is not None and snapshot.secret \
        else int(claim_id, 16)
    return PlayContext(campaign_id=snapshot.campaign_id, version=snapshot.version, user_id=user_id,
                       claim_id=claim_id, now=now, day=business_day(now, snapshot.timezone), seed=seed,
                       state=state, variant=variant, starts_on=snapshot.starts_on, groups=snapshot.shard_count)


def stored_reply(record: str, request_print: str) -> ClaimOutcome:
    """What claim.lua would answer for an Idempotency-Key record read before the plan."""
    stored_print, _, answer = record.partition("\n")
    if stored_print != request_print:
        return Refused(errors.IdempotencyKeyReusedError())
    return replayed(answer)


def _state_ttl(snapshot: CampaignSnapshot, ctx: PlayContext) -> int:
    """Counters outlive the campaign by a month (stats, support questions), then Redis forgets them."""
    end = snapshot.ends_at or (ctx.now + timedelta(days=365))
    return max(86400, int((end - ctx.now + STATE_RETENTION).total_seconds()))


def _json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _iso_ms(ms: int) -> str | None:
    return iso(from_ms(ms))
