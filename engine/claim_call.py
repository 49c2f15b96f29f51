"""The claim script's call: the request crossing into Lua whole, the reply coming back typed.

A ``ClaimRequest`` is the claim as the engine decided it, frozen; ``encode``
turns it, once, into the arguments lib/request.lua reads by name (the field
order is read from that file, where it is declared; the ops and items travel as
MessagePack). The script's reply becomes one
of the outcomes below (``outcome_of``), so no caller sees an ARGV position, a
newline-joined reply or a reply code.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, fields
from importlib import resources
from typing import Any

import msgpack

from . import errors
from .claims import Op, PlayResult

BUDGET = "budget"  # the resource a BUDGET refusal is short of; any other is a stocked item ("sku:C50")
STALE = "STALE"


def _declared_fields() -> tuple[str, ...]:
    """The fields in the order request_read (lib/request.lua) reads them from ARGV."""
    source = (resources.files("engine") / "scripts" / "lib" / "request.lua").read_text()
    places = {int(i): name for name, i in re.findall(r"(\w+) = (?:A\[\d+\] ~= '' and )?(?:cmsgpack\.unpack\()?"
                                                       r"A\[(\d+)\]", source)}
    if sorted(places) != list(range(1, len(places) + 1)) or not places:
        raise RuntimeError("lib/request.lua's request_read does not read ARGV[1..n] by name")
    return tuple(places[i] for i in sorted(places))


REQUEST_FIELDS = _declared_fields()


@dataclass(frozen=True)
class ClaimItem:
    item: str
    quantity: int
    per_user_limit: int | None


@dataclass(frozen=True)
class ClaimRequest:
    """One claim, as claim.lua takes it (each field is described in lib/request.lua, under the same name)."""

    fingerprint: str
    now: int
    idempotency_ttl: int
    day: str
    per_user: int | None
    per_user_per_day: int | None
    units: int
    cost: int
    answer: str
    event: str
    hold_deadline: int
    state_ttl: int
    order_id: str
    user_id: str
    seq: int | None
    variant: str | None
    mode: str
    items: tuple[ClaimItem, ...]
    ops: tuple[Op, ...] = ()  # with logical keys: the wrapper knows their places in KEYS

    def encode(self, wire_ops: Sequence[Sequence[Any]], *, screened: bool) -> list[Any]:
        """The request's arguments: numbers as text (as redis.call wants them), None as '', the ops (with their
        keys' indices in KEYS: the wrapper knows those) and the items packed; and whether the gate's arguments
        follow."""
        values = {name: _wire(getattr(self, name)) for name in _SCALARS}
        values["items"] = _packed([[i.item, str(i.quantity), _wire(i.per_user_limit)] for i in self.items])
        values["ops"] = _packed([list(op) for op in wire_ops]) if wire_ops else ""
        values["screened"] = "1" if screened else ""
        return [values[name] for name in REQUEST_FIELDS]


_SCALARS = tuple(f.name for f in fields(ClaimRequest) if f.name not in ("items", "ops"))


def _packed(value: Any) -> bytes:
    return msgpack.packb(value, use_bin_type=False)


def _wire(value: Any) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else str(int(value))


# -- what comes back -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Admitted:
    """Admitted now, or before under this key and request (``replayed``). ``noted``: what the fraud gate noted on
    the play (JSON; '' = nothing), which the journal keeps."""

    answer_json: str
    state_json: str = "{}"
    noted: str = ""
    replayed: bool = False

    def result(self) -> PlayResult:
        return PlayResult(answer_json=self.answer_json, state_json=self.state_json, replayed=self.replayed)

    @property
    def shadow(self) -> list[str]:
        """The shadow rules the play broke (the gate's note)."""
        return json.loads(self.noted).get("shadow", []) if self.noted else []


@dataclass(frozen=True)
class Stale:
    """The player's state changed since the plan read it: read and plan again."""


@dataclass(frozen=True)
class Short:
    """The claim's group had too little of ``resource`` (an item, or BUDGET); ``error`` is the refusal."""

    resource: str
    error: errors.HuodongError


@dataclass(frozen=True)
class GameRefused:
    """An op's guard failed: ``label`` names the game's refusal (its Claim.refusals say which error)."""

    label: str


@dataclass(frozen=True)
class FraudRefused:
    """A fraud gate check failed: the rule's label, and {score, reasons} of a risk or ring refusal."""

    label: str
    detail: dict[str, Any] | None


@dataclass(frozen=True)
class Refused:
    """Any other refusal, as the error the player gets."""

    error: errors.HuodongError


ClaimOutcome = Admitted | Stale | Short | GameRefused | FraudRefused | Refused


def outcome_of(raw: Sequence[Any]) -> ClaimOutcome:
    """claim.lua's reply (see its header), typed."""
    code = _text(raw[0])
    if code == "OK":
        return Admitted(_text(raw[1]), _text(raw[2]), _text(raw[3]))
    body = _text(raw[1])
    if code == "REPLAY":
        return replayed(body)
    if code == "FRAUD":
        detail = _text(raw[2])
        return FraudRefused(body, json.loads(detail) if detail else None)
    if code == STALE or (code == "REFUSED" and body == STALE):
        return Stale()
    if code == "REFUSED":
        return GameRefused(body)
    error = error_of(code, body)
    if code in ("SOLD_OUT", "BUDGET"):
        return Short(body or BUDGET, error)
    return Refused(error)


def replayed(stored: str) -> Admitted:
    """The answer stored under an Idempotency-Key (``answer\\nstate``), as a replayed admission."""
    answer, _, state = stored.partition("\n")
    return Admitted(answer, state or "{}", replayed=True)


def error_of(code: str, body: str) -> errors.HuodongError:
    """The error a script's refusal code stands for (claim.lua's and release.lua's)."""
    match code:
        case "REUSED":
            return errors.IdempotencyKeyReusedError()
        case "NOT_LIVE":
            return errors.CampaignNotLiveError(f"The campaign is {body}.", reason=body)
        case "NOT_STARTED":
            return errors.CampaignNotLiveError("The campaign has not started yet.", reason="not_started")
        case "ENDED":
            return errors.CampaignNotLiveError("The campaign has ended.", reason="ended")
        case "LIMIT":
            return errors.LimitReachedError(f"Limit reached ({body}).", scope=body)
        case "SOLD_OUT":
            return errors.SoldOutError(f"{body.partition(':')[2] or body} is sold out.", item=body)
        case "BUDGET":
            return errors.BudgetExhaustedError()
        case "NOT_FOUND":
            return errors.NotFoundError("No such order.")
        case "NOT_HELD":
            return errors.OrderNotHeldError(f"The order is already {body}.", status=body)
    return errors.HuodongError(f"Unexpected script reply {code}.")


def _text(value: Any) -> str:
    """A script's reply element as text (the engine's client decodes; a raw one gives bytes)."""
    return value.decode() if isinstance(value, bytes) else str(value)
