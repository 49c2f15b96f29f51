"""Fraud policies: named documents a campaign points to (``fraud: {"policy": "<name>"}``).

Every rule has a ``mode``: ``enforce`` (refuse the play), ``shadow`` (score and
record what it would have refused, refuse nothing) or ``off``. A policy is
validated by ``PolicySchema`` when it is saved and compiled once per version
(IP ranges parsed, lists made sets) into a ``CompiledPolicy`` the gate reads.
"""

from __future__ import annotations

import functools
import ipaddress
import math
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from marshmallow import RAISE, Schema, ValidationError, fields, validate, validates, validates_schema

MODES = ("enforce", "shadow", "off")
SCOPES = ("user", "device", "ip")
NAME = validate.Regexp(r"^[a-z0-9][a-z0-9_-]{0,39}$", error="1 to 40 of a-z, 0-9, _ and -, starting with a letter "
                                                             "or digit.")
DEFAULT = "default"


def _mode(default: str = "enforce") -> fields.String:
    return fields.String(load_default=default, validate=validate.OneOf(MODES),
                         metadata={"description": "enforce (refuse), shadow (record only) or off"})


def _names(max_items: int = 1000) -> fields.List:
    return fields.List(fields.String(validate=validate.Length(min=1, max=128)), load_default=list,
                       validate=validate.Length(max=max_items))


def Int(**options: Any) -> fields.Integer:  # noqa: N802  (reads as a field type)
    return fields.Integer(strict=True, **options)


class Bool(fields.Boolean):
    """true or false only: marshmallow's Boolean also takes 1, "yes", "on"... (and 0 == False in a set)."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> bool:
        if not isinstance(value, bool):
            raise self.make_error("invalid", input=value)
        return value


def _nested(schema: type[Schema]) -> fields.Nested:
    """A nested rule that, when left out, gets its own defaults (not an empty dict)."""
    return fields.Nested(schema, load_default=lambda: schema().load({}))


class Closed(Schema):
    class Meta:
        unknown = RAISE


class EntityListSchema(Closed):
    users = _names()
    devices = _names()
    ips = _names()

    @validates("ips")
    def _ips(self, value: list[str], **_: Any) -> None:
        bad = [ip for ip in value if _network(ip) is None]
        if bad:
            raise ValidationError(f"Not an IP address or CIDR range: {', '.join(bad[:5])}.")


class ListsSchema(Closed):
    mode = _mode()
    deny = _nested(EntityListSchema)
    # Allowed users, devices and IPs skip every other rule (a store's own test devices, say).
    allow = _nested(EntityListSchema)


class ReplaySchema(Closed):
    mode = _mode()
    window_seconds = Int(load_default=300, validate=validate.Range(min=5, max=3600),
                                    metadata={"description": "how old a request's timestamp may be, either way"})


class RateLimitSchema(Closed):
    name = fields.String(required=True, validate=NAME)
    scope = fields.String(required=True, validate=validate.OneOf(SCOPES))
    actions = fields.List(fields.String(validate=validate.Length(min=1, max=40)), load_default=lambda: ["*"],
                          validate=validate.Length(min=1, max=20),
                          metadata={"description": "the actions it counts; * for all"})
    limit = Int(required=True, validate=validate.Range(min=1, max=100_000))
    window_seconds = Int(required=True, validate=validate.Range(min=1, max=86_400))
    mode = _mode()


class DeviceRulesSchema(Closed):
    """Multi-account detection: how many players one device (or IP) may carry, and devices one player."""

    mode = _mode()
    max_users_per_device = Int(load_default=3, allow_none=True, validate=validate.Range(min=1, max=100_000))
    max_users_per_ip = Int(load_default=None, allow_none=True, validate=validate.Range(min=1, max=1_000_000))
    max_devices_per_user = Int(load_default=3, allow_none=True, validate=validate.Range(min=1, max=100_000))
    window_hours = Int(load_default=24, validate=validate.Range(min=1, max=24 * 90))
    # A request whose device is not the one its player's token was issued to (a stolen token).
    bind_token_to_device = Bool(load_default=True)
    require_device = Bool(load_default=True,
                                    metadata={"description": "refuse plays that name no device"})


class NewAccountSchema(Closed):
    mode = _mode("off")
    min_age_minutes = Int(load_default=10, validate=validate.Range(min=1, max=60 * 24 * 365))


def Points(default: int) -> fields.Integer:  # noqa: N802
    return Int(load_default=default, validate=validate.Range(min=0, max=1000),
               metadata={"description": "what the signal adds to the risk score (0: not scored)"})


class TapRegularitySchema(Closed):
    """A machine taps at regular intervals; a person does not. With the defaults, a person whose gaps are random
    (exponential) looks this regular in fewer than 1 of 2 million windows of 8 taps; 6 taps under 0.1 would
    be 1 in 5,000 (bench/RESULTS.md)."""

    points = Points(100)
    min_taps = Int(load_default=8, validate=validate.Range(min=3, max=50),
                   metadata={"description": "the player's latest taps compared (fewer: not scored)"})
    max_cv = fields.Float(load_default=0.05, validate=validate.Range(min=0, max=1),
                          metadata={"description": "scored when the intervals' standard deviation over their mean "
                                                   "is below this"})


class RateSignalSchema(Closed):
    """A device's (or an IP range's) plays in the last minute against the campaign's distribution."""

    points = Points(100)
    floor_per_minute = Int(load_default=30, validate=validate.Range(min=1, max=1_000_000),
                           metadata={"description": "never scored at or below this many plays a minute"})
    deviations = fields.Float(load_default=8.0, validate=validate.Range(min=1, max=100),
                              metadata={"description": "scored above the median plus this many robust "
                                                       "standard deviations (1.4826 MAD) of the population"})


class RangeSignalSchema(RateSignalSchema):
    points = Points(50)
    prefix_v4 = Int(load_default=24, validate=validate.Range(min=8, max=32))
    prefix_v6 = Int(load_default=64, validate=validate.Range(min=16, max=128))


class NewAccountsInRangeSchema(Closed):
    """Most players from one IP range registered moments ago: an account factory."""

    points = Points(50)
    min_players = Int(load_default=20, validate=validate.Range(min=2, max=100_000))
    max_share = fields.Float(load_default=0.6, validate=validate.Range(min=0, max=1))


class InstantPlaySchema(Closed):
    """A play within moments of the account's registration: a person opens the mini-program (which logs them
    in and registers them), finds the campaign and taps; an account factory's script plays the moment it has
    the token."""

    points = Points(50)
    seconds = Int(load_default=2, validate=validate.Range(min=1, max=3600),
                  metadata={"description": "scored when the play comes less than this long after registering"})


def _known_provider(name: str) -> None:
    from ..plugins import load_builtin_plugins
    from .challenge import challenge_providers

    load_builtin_plugins()
    if name not in challenge_providers:
        raise ValidationError(f"No challenge provider {name!r}; known: {', '.join(challenge_providers.keys())}.")


class ChallengeSchema(Closed):
    """Who challenges a player in the challenge band (engine/fraud/challenge.py), and what happens when it
    cannot say."""

    provider = fields.String(load_default="slider", validate=[validate.Length(min=1, max=40), _known_provider],
                             metadata={"description": "slider (built in), token (a captcha service) or a "
                                                      "plugin's"})
    timeout_ms = Int(load_default=1500, validate=validate.Range(min=50, max=10_000),
                     metadata={"description": "how long the provider's verification may take"})
    on_unavailable = fields.String(load_default="closed", validate=validate.OneOf(("closed", "open")),
                                   metadata={"description": "closed: an answer the provider could not verify "
                                                            "fails; open: it passes"})


class RiskSchema(Closed):
    """The risk score: the points of every signal a play shows, summed; ``challenge_at`` asks the player to
    prove they are a person (CHALLENGE_REQUIRED), ``deny_at`` refuses (RISK_DENIED).

    Two kinds of signal. Evidence of a machine or a farm: ``tap_regularity``, ``device_rate``,
    ``shared_device``, ``instant_play``. Crowd signals, which honest crowds show as much as farms: a busy IP
    range (``ip_range_rate``: a carrier's NAT, a campus, a proxy), a range of new accounts
    (``new_accounts_in_range``) and a new account (``new_account``: an acquisition campaign's customers).
    Crowd signals count only in a play that shows evidence too, unless ``crowd_alone``."""

    mode = _mode()
    challenge_at = Int(load_default=50, validate=validate.Range(min=1, max=10_000))
    deny_at = Int(load_default=100, validate=validate.Range(min=1, max=10_000))
    challenge = _nested(ChallengeSchema)
    # A player who solved a challenge is not asked again for this long.
    pass_minutes = Int(load_default=10, validate=validate.Range(min=1, max=24 * 60))
    new_account_minutes = Int(load_default=60, validate=validate.Range(min=1, max=60 * 24 * 30),
                              metadata={"description": "an account younger than this is new"})
    tap_regularity = _nested(TapRegularitySchema)
    device_rate = _nested(RateSignalSchema)
    ip_range_rate = _nested(RangeSignalSchema)
    shared_device = Points(50)  # the device already carries another player (the devices rule's sets: on)
    instant_play = _nested(InstantPlaySchema)
    new_accounts_in_range = _nested(NewAccountsInRangeSchema)
    new_account = Points(20)
    crowd_alone = Bool(load_default=False,
                       metadata={"description": "count the crowd signals also in a play that shows no evidence "
                                                "of a machine or a farm (off: a busy IP range of new accounts "
                                                "is what a carrier's NAT looks like on an acquisition campaign)"})

    @validates_schema(skip_on_field_errors=True)
    def _order(self, data: dict[str, Any], **_: Any) -> None:
        if data["challenge_at"] > data["deny_at"]:
            raise ValidationError("challenge_at must not be above deny_at.", field_name="challenge_at")


class ReferralSchema(Closed):
    """Referral rings: assists by accounts sharing a device or IP with the packet's tree, trees made of new
    accounts, and circular assists. ``action`` says what becomes of such an assist: ``hold`` (admitted, its
    rewards wait in the review queue) or ``deny``; the cash-out of a tree that had one is always held."""

    mode = _mode()
    action = fields.String(load_default="hold", validate=validate.OneOf(("hold", "deny")))
    max_shared_ips = Int(load_default=3, validate=validate.Range(min=0, max=1000),
                         metadata={"description": "assists from an IP already in the tree allowed per tree"})
    new_account_minutes = Int(load_default=60, validate=validate.Range(min=1, max=60 * 24 * 30))
    min_assists = Int(load_default=3, validate=validate.Range(min=1, max=1000),
                      metadata={"description": "a tree's new-account share is judged from this many assists"})
    max_new_share = fields.Float(load_default=0.8, validate=validate.Range(min=0, max=1))
    window_hours = Int(load_default=72, validate=validate.Range(min=1, max=24 * 90))


class PolicySchema(Closed):
    description = fields.String(load_default="", validate=validate.Length(max=500))
    replay = _nested(ReplaySchema)
    lists = _nested(ListsSchema)
    rate_limits = fields.List(fields.Nested(RateLimitSchema), load_default=list,
                              validate=validate.Length(max=20))
    devices = _nested(DeviceRulesSchema)
    new_accounts = _nested(NewAccountSchema)
    risk = _nested(RiskSchema)
    referral = _nested(ReferralSchema)

    @validates_schema(skip_on_field_errors=True)
    def _unique_names(self, data: dict[str, Any], **_: Any) -> None:
        names = [rule["name"] for rule in data["rate_limits"]]
        if len(names) != len(set(names)):
            raise ValidationError("Rate limit names must be unique.", field_name="rate_limits")


# What a campaign gets when no policy of its name was saved: replay protection, one device per token,
# a few accounts per device, and rate limits far above what a person taps. No limit per IP: behind a
# carrier's NAT thousands of honest phones share one address.
DEFAULT_POLICY: dict[str, Any] = {
    "description": "Built in: replay protection, device binding, multi-account limits, generous rate limits, "
                   "the risk score and referral-ring holds.",
    "rate_limits": [
        {"name": "user_burst", "scope": "user", "limit": 20, "window_seconds": 10},
        {"name": "device_minute", "scope": "device", "limit": 60, "window_seconds": 60},
    ],
}


def policy_of(definition: dict[str, Any]) -> str:
    """The name of the fraud policy a campaign definition plays under (``default`` when it names none)."""
    return (definition.get("fraud") or {}).get("policy") or DEFAULT


@dataclass(frozen=True)
class EntityList:
    users: frozenset[str] = frozenset()
    devices: frozenset[str] = frozenset()
    addresses: frozenset[str] = frozenset()
    networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()

    @classmethod
    def of(cls, document: dict[str, Any]) -> EntityList:
        ips = [_network(ip) for ip in document.get("ips", [])]
        return cls(frozenset(document.get("users", [])), frozenset(document.get("devices", [])),
                   frozenset(str(n.network_address) for n in ips if n and n.num_addresses == 1),
                   tuple(n for n in ips if n and n.num_addresses > 1))

    def __bool__(self) -> bool:
        return bool(self.users or self.devices or self.addresses or self.networks)

    def holds(self, user: str, device: str | None, ip: str | None) -> str | None:
        """Which entity of the request is on the list ("user", "device", "ip"), if any."""
        if user in self.users:
            return "user"
        if device is not None and device in self.devices:
            return "device"
        if ip is not None and (ip in self.addresses or self._in_networks(ip)):
            return "ip"
        return None

    def _in_networks(self, ip: str) -> bool:
        if not self.networks:
            return False
        try:
            address = ipaddress.ip_address(ip)
        except ValueError:
            return False
        return any(address in network for network in self.networks)


class RateRule(NamedTuple):
    """A rate limit that counts (enforce or shadow), as the gate uses it on every play."""

    name: str
    label: str  # rate:<name>, what refusals and stats name it
    scope: str
    actions: frozenset[str] | None  # None: every action
    limit: int
    ttl_ms: int
    mode: str


class DeviceSet(NamedTuple):
    """A device rule's set, as the gate checks it: whose set (``device``, ``user`` or ``ip``), named how in the
    fraud keys, holding whom (``user`` or ``device``), under which rule and limit."""

    owner: str
    name: str
    member: str
    rule: str
    limit: int
    per_device: bool  # max_users_per_device: what the risk score's shared device reads too


class GateRules(NamedTuple):
    """A policy's sections as ``screen()`` reads them on every play, made once per policy: modes, limits in ms,
    the device sets that have a limit, and whether the allow and deny lists hold anything at all."""

    lists: str
    allow_any: bool
    deny_any: bool
    replay: str
    replay_ms: int
    devices: str
    require_device: bool
    bind_device: bool
    device_sets: tuple[DeviceSet, ...]
    device_ttl_ms: int
    accounts: str
    account_age_ms: int
    risk: str
    risk_new_ms: int
    instant_points: int
    instant_ms: int
    device_floor: int
    range_floor: int
    prefix_v4: int
    prefix_v6: int
    referral: str
    referral_new_ms: int


_DEVICE_SETS = (("max_users_per_device", "device", "device_users", "user", "device:users_per_device"),
                ("max_devices_per_user", "user", "user_devices", "device", "device:devices_per_user"),
                ("max_users_per_ip", "ip", "ip_users", "user", "device:users_per_ip"))


def gate_rules(document: dict[str, Any], deny: EntityList, allow: EntityList) -> GateRules:
    lists, replay, devices = document["lists"], document["replay"], document["devices"]
    accounts, risk, referral = document["new_accounts"], document["risk"], document["referral"]
    ranges, instant = risk["ip_range_rate"], risk["instant_play"]
    return GateRules(
        lists["mode"], bool(allow), bool(deny), replay["mode"], replay["window_seconds"] * 1000,
        devices["mode"], devices["require_device"], devices["bind_token_to_device"],
        tuple(DeviceSet(owner, name, member, rule, devices[limit], limit == "max_users_per_device")
              for limit, owner, name, member, rule in _DEVICE_SETS if devices[limit]),
        devices["window_hours"] * 3_600_000, accounts["mode"], accounts["min_age_minutes"] * 60_000,
        risk["mode"], risk["new_account_minutes"] * 60_000, instant["points"], instant["seconds"] * 1000,
        risk["device_rate"]["floor_per_minute"], ranges["floor_per_minute"], ranges["prefix_v4"],
        ranges["prefix_v6"], referral["mode"], referral["new_account_minutes"] * 60_000)


@dataclass(frozen=True)
class CompiledPolicy:
    name: str
    document: dict[str, Any]
    deny: EntityList = field(default_factory=EntityList)
    allow: EntityList = field(default_factory=EntityList)

    @functools.cached_property
    def rules(self) -> GateRules:
        """What ``screen()`` reads of the document on every play, made once per policy."""
        return gate_rules(self.document, self.deny, self.allow)

    @functools.cached_property
    def rate_rules(self) -> tuple[RateRule, ...]:
        """The rate limits not off, made once per policy."""
        return tuple(RateRule(rule["name"], f"rate:{rule['name']}", rule["scope"],
                              None if "*" in rule["actions"] else frozenset(rule["actions"]), rule["limit"],
                              rule["window_seconds"] * 1000, rule["mode"])
                     for rule in self.document["rate_limits"] if rule["mode"] != "off")

    @functools.cached_property
    def risk_constants(self) -> dict[bool, tuple[Any, ...]]:
        """The risk score's constants on the claim script's wire, by whether the campaign expects new users:
        made once per policy, not on every play."""
        return {expects: risk_constants(self.document["risk"], expects_new_users=expects) for expects in (False, True)}

    @classmethod
    def compile(cls, name: str, document: dict[str, Any]) -> CompiledPolicy:
        loaded = PolicySchema().load(document)
        return cls(name, loaded, EntityList.of(loaded["lists"]["deny"]), EntityList.of(loaded["lists"]["allow"]))


def _network(text: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
    try:
        return ipaddress.ip_network(text.strip(), strict=False)
    except ValueError:
        return None


def regular_spread(max_cv: float, gaps: int) -> float:
    """How much the newest two of ``gaps`` gaps can differ, over the smaller, when their coefficient of variation
    is below ``max_cv``: each is within mean * (1 +- c) of the mean, c = max_cv * sqrt(gaps), so they differ by
    less than 2c/(1 - c) times the smaller (lib/risk.lua regular_taps skips the rest beyond that). A little
    more, so rounding never skips a regular set, and short: the script's tonumber reads it on every play (glibc's
    strtod is slow on long decimals); no bound (1e300) when c reaches 1."""
    c = max_cv * math.sqrt(gaps)
    return math.ceil(2 * c / (1 - c) * 10_000 + 1) / 10_000 if c < 1 else 1e300


def risk_constants(risk: dict[str, Any], *, expects_new_users: bool) -> tuple[str, ...]:
    """The policy's numbers of the risk score, as text in lib/risk.lua risk_read's order: the points of a shared
    device (first: a play whose player this process knows on the device sends 0 instead), tap regularity
    (points, taps compared, the spread of two gaps that can be regular), crowd_alone, how
    long an account is new (ms), then in one argument, read only by a play that shows evidence or a score: the
    points of device rate and range rate, new accounts in a range (points, min players, max new share), the
    points of a new account, challenge at, deny at, shadow, tap regularity's max cv. A campaign that expects new
    users does not count youth."""
    taps, in_range = risk["tap_regularity"], risk["new_accounts_in_range"]
    youth_counts = not expects_new_users
    rare = (risk["device_rate"]["points"], risk["ip_range_rate"]["points"], in_range["points"] if youth_counts else 0,
            in_range["min_players"], in_range["max_share"], risk["new_account"] if youth_counts else 0,
            risk["challenge_at"], risk["deny_at"], int(risk["mode"] == "shadow"), taps["max_cv"])
    numbers = (risk["shared_device"], taps["points"], taps["min_taps"],
               regular_spread(taps["max_cv"], taps["min_taps"] - 1), int(risk["crowd_alone"]),
               risk["new_account_minutes"] * 60_000)
    # As text once: redis-py would format each number on every play.
    return (*map(str, numbers), " ".join(map(str, rare)))
