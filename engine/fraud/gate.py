"""The gate's decision for one play: what refuses it now, and what the claim script must check.

``screen`` runs the rules that need nothing from Redis -- the deny and allow
lists, the replay window, device binding and account age -- and raises the
first one in ``enforce`` mode that the request breaks. The rules that need
shared state (a nonce seen before, a sliding-window rate limit, the players a
device carries) become ``GateCheck``s that ``claim.lua`` makes in the same
script as the claim (``engine/scripts/lib/gate.lua``): no extra round trip,
and no check can race the claim it guards. A rule in ``shadow`` mode refuses
nothing; every rule it would have broken is listed on the admitted play.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from ..claims import Relation
from ..errors import ConflictError, ForbiddenError, HuodongError
from ..keys import CampaignKeys
from . import challenge
from .features import RequestFeatures
from .members import KnownMembers
from .policy import CompiledPolicy, GateRules, RateRule
from .risk import Limits, ip_range, minute_of, population_keys


class RiskDeniedError(ForbiddenError):
    code = "RISK_DENIED"
    default_message = "This play was refused by the campaign's fraud rules."


class ReplayRejectedError(ConflictError):
    code = "REPLAY_REJECTED"
    default_message = ("The request's timestamp is too old or its nonce was used before; send a fresh timestamp "
                       "and nonce with every request.")


class ChallengeRequiredError(ForbiddenError):
    code = "CHALLENGE_REQUIRED"
    default_message = ("Prove you are a person: solve details.challenge and play again with its id and your "
                       "answer.")


class RateLimitedError(HuodongError):
    code = "RATE_LIMITED"
    http_status = 429
    default_message = "Too many plays in a short time; wait a moment."


class GateCheck(NamedTuple):
    """One check the claim script makes. ``kind``: ``nonce`` (the key must not exist; the check sets it, kept
    ``ttl_ms``, and a refused play takes it back), ``window`` (at most ``limit`` attempts within ``ttl_ms``,
    this one's counted: ``key`` counts this epoch's, ``prev_key`` the epoch before's; lib/gate.lua
    gate_window), ``distinct`` (the set holds ``member`` already or fewer than ``limit``
    members; the play adds it, and the set is kept ``ttl_ms`` from the last member it gained)."""

    kind: str
    key: str
    rule: str
    mode: str
    limit: int = 0
    ttl_ms: int = 0
    member: str = ""
    prev_key: str = ""

    @property
    def label(self) -> str:
        """Its rule's label as lib/gate.lua reads it (gate_label): a shadow rule's after a '~'."""
        return f"~{self.rule}" if self.mode == "shadow" else self.rule

    def numbers(self) -> tuple[Any, ...]:
        """Its arguments after the labels, as lib/gate.lua's gate_read takes them (its key goes in KEYS)."""
        if self.kind == "window":
            return self.limit, self.ttl_ms
        if self.kind == "nonce":
            return (self.ttl_ms,)
        return self.limit, self.ttl_ms, self.member


@dataclass(frozen=True)
class ScriptPart:
    """A piece of the claim script's gate argument: its keys by role (sent as their indices in KEYS, under
    ``k``) and its other arguments."""

    keys: dict[str, str]
    args: dict[str, Any]

    def to_wire(self, index_of: Any) -> dict[str, Any]:
        return {**self.args, "k": {role: index_of(key) for role, key in self.keys.items()}}


class RiskPart(NamedTuple):
    """The risk score's part of the claim script, positional (lib/risk.lua risk_read): its keys in the order
    lib/risk.lua names them (t, dc, dp, nc, np, nu, nn, du, pa), and its arguments: what this play says,
    then the policy's constants (``risk_constants``, computed once per policy)."""

    keys: tuple[str, ...]
    args: tuple[Any, ...]


# The errors of the script's refusals whose label says everything, made only when the script refuses.
REFUSALS_BY_LABEL: dict[str, Any] = {
    "replay:nonce": lambda: ReplayRejectedError(reason="nonce_seen", rule="replay:nonce"),
    "risk:deny": lambda: RiskDeniedError(reason="risk", rule="risk:deny"),
    "risk:challenge": lambda: ChallengeRequiredError(reason="risk", rule="risk:challenge"),
}

# How many refused plays a campaign's fraud log keeps (the latest; Redis trims the stream approximately).
FRAUD_LOG_LENGTH = 10_000


@dataclass
class Screening:
    """What the gate decided before the claim: the shadow hits so far and the checks left to the script."""

    # Who is asking, as a refusal is logged: user, device and IP ('' when the request did not say).
    who: dict[str, str] = field(default_factory=dict)
    policy: str = ""  # the policy's name
    shadow: list[str] = field(default_factory=list)
    # The windows first, then the nonce, then the distinct checks: lib/gate.lua reads them in that order.
    checks: list[GateCheck] = field(default_factory=list)
    # The enforced and shadow rate limits' labels and what each counts (the user, device or IP).
    limited: dict[str, str] = field(default_factory=dict)
    # The risk score's part of the script (None: scoring is off), and the referral-ring rules with what
    # the ring checks need to know about the player (their device, IP, whether the account is new).
    risk: RiskPart | None = None
    referral: dict[str, Any] | None = None
    referral_new: bool = False  # the player's account is new by the referral rules' measure
    # The policy's challenge section (risk.challenge), to issue one with a CHALLENGE_REQUIRED refusal.
    challenge: dict[str, Any] | None = None
    # attempts.lua counted this play against its rate limits (a stateful game, before its first plan): the claim
    # script, however many times the play is planned, makes the other checks only.
    counted: bool = False
    # (set key, member) of the sets an admitted play joins, for this process to remember (KnownMembers).
    joins: list[tuple[str, str]] = field(default_factory=list)
    on_device: bool = False  # the player is one this process knows its device carries (KnownMembers)

    def refusal(self, label: str, detail: dict[str, Any] | None = None) -> HuodongError:
        """The error for a check the claim script refused (its label; ``detail``: the risk score and reasons, or
        a rate limit's retry_after_ms). Made only when a play is refused: nothing is prepared per play."""
        if label in self.limited:
            return rate_limited(label, detail["retry_after_ms"])
        made = REFUSALS_BY_LABEL.get(label)
        error = made() if made is not None else RiskDeniedError(reason=label, rule=label)
        if detail:
            error.details.update(detail)
        return error

    def windows(self) -> list[GateCheck]:
        """The rate limits' checks (attempts.lua counts them before a stateful game plans)."""
        return [check for check in self.checks if check.kind == "window"]

    def claim_checks(self) -> list[GateCheck]:
        """The checks the claim script makes: all of them, but the rate limits once attempts.lua counted them."""
        return [check for check in self.checks if check.kind != "window"] if self.counted else self.checks

    def ring(self, keys: CampaignKeys, user_id: str, relation: Relation | None) -> ScriptPart | None:
        """The ring checks of a play on a referral tree (lib/ring.lua), None when it involves none."""
        if relation is None or self.referral is None:
            return None
        rules = self.referral
        fraud = keys.fraud
        return ScriptPart(
            keys={"t": fraud("tree", relation.tree), "td": fraud("tree_dev", relation.tree),
                  "ti": fraud("tree_ip", relation.tree), "hu": fraud("helpers", user_id),
                  "ho": fraud("helpers", relation.owner), "ru": fraud("reach", user_id),
                  "ro": fraud("reach", relation.owner)},
            args={"role": relation.role, "tree": relation.tree, "u": user_id, "o": relation.owner,
                  "d": self.who["device"], "ip": self.who["ip"], "new": self.referral_new,
                  "sip": rules["max_shared_ips"], "na": [rules["min_assists"], rules["max_new_share"]],
                  "ttl": rules["window_hours"] * 3_600_000,
                  "sh": rules["mode"] == "shadow", "deny": rules["action"] == "deny"})


def retry_seconds(retry_ms: int) -> int:
    """Retry-After is whole seconds: rounded up, so a client that waits that long is let through."""
    return max(1, -(-int(retry_ms) // 1000))


def rate_limited(label: str, retry_ms: int) -> RateLimitedError:
    """The refusal of a rate limit this process already knows is full (engine/fraud/blocks.py)."""
    return RateLimitedError(reason=label.removeprefix("rate:"), rule=label, retry_after_seconds=retry_seconds(retry_ms))


def enforced_limits(policy: CompiledPolicy, user_id: str, action: str, features: RequestFeatures
                    ) -> list[tuple[str, str]]:
    """(label, the user, device or IP it counts) of the policy's enforced rate limits on this play."""
    return [(rule.label, value) for rule, value in _rate_limits(policy, user_id, action, features)
            if rule.mode == "enforce"]


def _rate_limits(policy: CompiledPolicy, user_id: str, action: str, features: RequestFeatures
                 ) -> Iterator[tuple[RateRule, str]]:
    """(rule, the user, device or IP it counts) of each rate limit not off that counts this play."""
    for rule in policy.rate_rules:
        if rule.actions is not None and action not in rule.actions:
            continue
        value = user_id if rule.scope == "user" else features.device_id if rule.scope == "device" else features.ip
        if value is not None:
            yield rule, value


def requester(user_id: str, features: RequestFeatures) -> dict[str, str]:
    """Who is asking, as the fraud log records a refusal ('' for what the request did not say)."""
    return {"user": user_id, "device": features.device_id or "", "ip": features.ip or ""}


def screen(policy: CompiledPolicy, keys: CampaignKeys, user_id: str, action: str, features: RequestFeatures,
           now_ms: int, limits: Limits | None = None, *, expects_new_users: bool = False,
           known: KnownMembers | None = None) -> Screening:
    """Raise the refusal of the first enforced rule the request breaks; answer the rest of the gate.
    ``limits``: the population's rate limits for the risk score (``PopulationStats``); ``expects_new_users``:
    the campaign is for new users, whose youth the risk score does not count; ``known``: the set members this
    process's admitted plays joined a moment ago, whose checks are left out (a member passes). The policy's
    sections are read as ``policy.rules`` (made once per policy) and keys are spelled from the campaign's fraud
    prefix: this runs on every play."""
    device, ip = features.device_id, features.ip
    rules = policy.rules
    result = Screening(who=requester(user_id, features), policy=policy.name)
    if rules.lists != "off" and rules.allow_any and policy.allow.holds(user_id, device, ip):
        return result

    def hit(rule: str, mode: str, error: HuodongError) -> None:
        if mode == "enforce":
            error.details["rule"] = rule  # what the campaign's fraud stats count it under
            raise error
        if mode == "shadow":
            result.shadow.append(rule)

    prefix = keys.fraud_prefix  # keys.fraud(*parts) spelled inline: some ten keys a play
    checks = result.checks
    # The rate limits first: they count every attempt, also one a later rule refuses (lib/gate.lua), per epoch
    # of their window.
    for rule, value in _rate_limits(policy, user_id, action, features):
        window = f"{prefix}{rule.label}:{value}:"
        epoch = now_ms // rule.ttl_ms
        checks.append(GateCheck("window", f"{window}{epoch}", rule.label, rule.mode, rule.limit, rule.ttl_ms,
                                prev_key=f"{window}{epoch - 1}"))
        result.limited[rule.label] = value

    if rules.lists != "off" and rules.deny_any:
        listed = policy.deny.holds(user_id, device, ip)
        if listed:
            hit(f"deny_list:{listed}", rules.lists, RiskDeniedError(reason=f"deny_list:{listed}"))

    if rules.replay != "off":
        window_ms = rules.replay_ms
        if features.timestamp_ms is None or not features.nonce:
            hit("replay:missing", rules.replay, ReplayRejectedError(
                "Send X-Request-Timestamp and X-Request-Nonce with every play.", reason="missing"))
        elif abs(now_ms - features.timestamp_ms) > window_ms:
            hit("replay:stale", rules.replay, ReplayRejectedError(reason="stale", window_seconds=window_ms // 1000))
        else:
            # Kept twice the window: a nonce older than that is refused as stale anyway.
            checks.append(GateCheck("nonce", f"{prefix}nonce:{user_id}:{features.nonce}", "replay:nonce",
                                    rules.replay, ttl_ms=2 * window_ms))

    if rules.devices != "off":
        mode = rules.devices
        if device is None:
            if rules.require_device:
                hit("device:missing", mode, RiskDeniedError("Send X-Device-Id with every play.",
                                                            reason="device:missing"))
        elif rules.bind_device and features.token_device and features.token_device != device:
            hit("device:token_mismatch", mode, RiskDeniedError(reason="device:token_mismatch"))
        for one in rules.device_sets:
            owner = device if one.owner == "device" else user_id if one.owner == "user" else ip
            member = device if one.member == "device" else user_id
            if owner is None or member is None:
                continue
            key = f"{prefix}{one.name}:{owner}"
            if known is not None and known.knows(key, member, now_ms):
                result.on_device = result.on_device or one.per_device
                continue
            checks.append(GateCheck("distinct", key, one.rule, mode, one.limit, rules.device_ttl_ms, member))
            result.joins.append((key, member))

    def younger_than(ms: int) -> bool:  # the account registered less than ms ago
        return features.registered_ms is not None and now_ms - features.registered_ms < ms

    if rules.accounts != "off" and younger_than(rules.account_age_ms):
        hit("new_account", rules.accounts, RiskDeniedError(reason="new_account"))

    if rules.risk != "off":
        risk = policy.document["risk"]
        result.risk = risk_part(rules, policy.risk_constants[expects_new_users], keys, user_id, features,
                                now_ms, younger_than(rules.risk_new_ms),
                                limits or Limits(rules.device_floor, rules.range_floor), result, known)
        result.challenge = risk["challenge"]
    if rules.referral != "off":
        result.referral = policy.document["referral"]
        result.referral_new = younger_than(rules.referral_new_ms)
    return result


def risk_part(rules: GateRules, constants: tuple[Any, ...], keys: CampaignKeys, user_id: str,
              features: RequestFeatures, now_ms: int, new: bool, limits: Limits, screening: Screening,
              known: KnownMembers | None = None) -> RiskPart:
    """The risk score's part of the claim script (lib/risk.lua): its keys, what this play says and the policy's
    ``constants`` (``risk_constants``). A player this process
    knows is on the device (``screening.on_device``) cannot score a shared device, and one it added to the IP
    range's players is not added again (``known``); an admitted play's join of the range is noted in
    ``screening.joins``."""
    device = features.device_id or ""
    prefix = keys.fraud_prefix
    network = ip_range(features.ip, rules.prefix_v4, rules.prefix_v6) or ""
    registered = features.registered_ms
    range_players = f"{prefix}net_users:{network}"
    in_range = known is not None and known.knows(range_players, user_id, now_ms)
    if network and not in_range:
        screening.joins.append((range_players, user_id))
    # The keys' spelling is the device rules' and PopulationStats' too (device_users, the minute hashes).
    return RiskPart(
        keys=(f"{prefix}tap_history:{user_id}", *population_keys(keys, minute_of(now_ms)), range_players,
              f"{prefix}net_new:{network}", f"{prefix}device_users:{device}", challenge.passed_key(keys, user_id)),
        args=(network, "1" if new else "0", limits.device, limits.ip_range,
              rules.instant_points if registered is not None and 0 <= now_ms - registered < rules.instant_ms
              else 0, "0" if screening.on_device else constants[0], "1" if in_range else "0", *constants[1:]))
