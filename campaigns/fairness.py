"""Provably fair draws, after the fact: the reveal and the re-derivation of every recorded outcome.

Each version's secret stays hidden (only its SHA-256 commitment is shown)
until the campaign ends. Then ``fairness`` reveals it, and ``verify``
re-runs every stateful play's pure plan from the claim log -- the request,
the state the plan read, the player's sequence number and the secret -- and
compares what it derives with what was recorded and granted.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import marshmallow
from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.claims import CARRY
from engine.clock import iso
from engine.errors import HuodongError, NotFoundError
from engine.fairness import commitment, draw_seed
from engine.game import PlayContext
from engine.runtime import FINALE_PLAYER
from engine.snapshot import CampaignSnapshot
from engine.state import GameState

from .models import Campaign, CampaignStatus, CampaignVersion, ClaimRecord, Grant

SCHEME = ("seed = first 16 bytes (big-endian) of HMAC-SHA256(key=bytes.fromhex(secret), msg=f'{user_id}:{seq}'); "
          "draws come from numpy.random.default_rng(seed); commitment = sha256(bytes.fromhex(secret)).")
PAGE = 1000


def fairness_report(session: Session, campaign_id: int) -> dict[str, Any]:
    """Every version's commitment; its secret too once the campaign has ended."""
    campaign = session.get(Campaign, campaign_id)
    if campaign is None or campaign.live_version is None:
        raise NotFoundError("No such published campaign.", campaign_id=campaign_id)
    revealed = campaign.status == CampaignStatus.ENDED
    versions = session.scalars(select(CampaignVersion).where(CampaignVersion.campaign_id == campaign_id)
                               .order_by(CampaignVersion.version))
    return {
        "campaign_id": campaign_id,
        "status": campaign.status,
        "revealed": revealed,
        "scheme": SCHEME,
        "versions": [{"version": v.version, "published_at": iso(v.published_at), "commitment": v.commitment,
                      "secret": v.secret if revealed else None} for v in versions],
    }


@dataclass
class Mismatch:
    claim_id: str
    reason: str

    def to_dict(self) -> dict[str, str]:
        return {"claim_id": self.claim_id, "reason": self.reason}


@dataclass
class VerifyReport:
    campaign_id: int
    checked: int = 0
    skipped: int = 0
    mismatches: list[Mismatch] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.mismatches

    def to_dict(self) -> dict[str, Any]:
        return {"campaign_id": self.campaign_id, "checked": self.checked, "skipped": self.skipped,
                "ok": self.ok, "mismatches": [m.to_dict() for m in self.mismatches]}


def verify(session: Session, campaign_id: int) -> VerifyReport:
    """Re-derive every recorded stateful play of a campaign; stateless plays (no draw) are counted as skipped."""
    if session.get(Campaign, campaign_id) is None:
        raise NotFoundError("No such campaign.", campaign_id=campaign_id)
    report = VerifyReport(campaign_id)
    snapshots = _snapshots(session, campaign_id, report)
    for claim in _claims(session, campaign_id):
        if not claim.draw:
            report.skipped += 1
            continue
        report.checked += 1
        snapshot = snapshots.get(claim.version)
        if snapshot is None:
            report.mismatches.append(Mismatch(claim.id, f"version {claim.version} is not usable"))
            continue
        rows = session.scalars(select(Grant).where(Grant.claim_id == claim.id)).all()
        # Grant ids end in the grant's index in hex (engine.runtime.grant_id): order by that number.
        granted = [g.reward for g in sorted(rows, key=lambda g: int(g.id[len(claim.id) + 1:], 16))]
        reason = _rederive(snapshot, claim, granted)
        if reason:
            report.mismatches.append(Mismatch(claim.id, reason))
    return report


def _snapshots(session: Session, campaign_id: int, report: VerifyReport) -> dict[int, CampaignSnapshot]:
    snapshots = {}
    for version in session.scalars(select(CampaignVersion).where(CampaignVersion.campaign_id == campaign_id)):
        if not version.secret or commitment(version.secret) != version.commitment:
            report.mismatches.append(Mismatch(f"version:{version.version}",
                                              "the secret does not match its commitment"))
            continue
        snapshots[version.version] = CampaignSnapshot.from_definition(
            campaign_id, version.version, version.definition, secret=version.secret)
    return snapshots


def _claims(session: Session, campaign_id: int) -> Iterator[ClaimRecord]:
    after = ""
    while True:
        page = list(session.scalars(select(ClaimRecord).where(ClaimRecord.campaign_id == campaign_id,
                                                              ClaimRecord.id > after)
                                    .order_by(ClaimRecord.id).limit(PAGE)))
        yield from page
        if len(page) < PAGE:
            return
        after = page[-1].id


def _rederive(snapshot: CampaignSnapshot, claim: ClaimRecord, granted: list[dict[str, Any]]) -> str | None:
    """Why the recorded outcome is not what the plan derives (None: it is)."""
    game = snapshot.plugin
    draw = claim.draw or {}
    ctx = PlayContext(
        campaign_id=claim.campaign_id, version=claim.version, user_id=claim.user_id, claim_id=claim.id,
        now=claim.created_at, day=date.fromisoformat(draw["day"]),
        seed=draw_seed(snapshot.secret, claim.user_id, int(draw["seq"])),
        state=GameState.from_dict(draw["state"]), variant=claim.variant, starts_on=snapshot.starts_on,
        groups=snapshot.shard_count,
    )
    config = snapshot.config_for(claim.variant)
    try:
        if claim.action == "finale" and claim.user_id == FINALE_PLAYER:
            plan = game.finale(config, ctx)
        elif claim.action == CARRY:
            plan = game.carry(config, claim.request, ctx)
        else:
            payload = game.actions[claim.action]().load(claim.request)
            plan = game.plan(config, claim.action, payload, ctx)
    except (HuodongError, marshmallow.ValidationError, KeyError) as exc:
        return f"the plan does not re-derive: {type(exc).__name__}: {exc}"
    if plan is None or not hasattr(plan, "outcome"):
        return "the plan derives no claim"
    derived = _plain(plan.outcome)
    recorded = {k: claim.outcome.get(k) for k in derived}
    if recorded != derived:
        return f"outcome differs: recorded {recorded}, derived {derived}"
    rewards = [_plain(g.reward) for g in getattr(plan, "grants", ())]
    if rewards != granted:
        return f"grants differ: recorded {granted}, derived {rewards}"
    return None


def _plain(value: Any) -> Any:
    """As the value reads back from JSON (tuples become lists, keys strings)."""
    return json.loads(json.dumps(value))
