"""The review queue: plays the fraud gate held (a referral ring's assists, the cash-out of a suspicious tree).

A held play was admitted -- its stock and budget taken, its game state moved
-- but its grants wait with status ``held``, never issued. A person looks at
the reasons and the tree around it, then approves (the grants become pending
and are issued like any other) or rejects (the grants are ``rejected``, never
issued, and the play's budget and stock go back to the campaign). Either is
audited with who, when, the note and the status before and after.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from campaigns import audit
from campaigns.models import ClaimRecord, Grant, GrantStatus, ReviewStatus
from engine.clock import Clock
from engine.errors import ConflictError, NotFoundError
from engine.scripts import Scripts
from engine.shards import ShardDirectory

from .settlement import Settlement

MAX_PAGE = 200
# How many plays of one referral tree its graph shows.
MAX_TREE = 500


class ReviewClosedError(ConflictError):
    code = "REVIEW_CLOSED"
    default_message = "This play is not waiting for review (it was decided already, or never held)."


class ReviewService:
    def __init__(self, session: Session, *, settlement: Settlement, scripts: Scripts, namespace: str,
                 clock: Clock) -> None:
        self._session = session
        self._settlement = settlement
        self._scripts = scripts
        self._namespace = namespace
        self._clock = clock

    def queue(self, campaign_id: int, *, status: str = ReviewStatus.HELD, limit: int = 50) -> list[dict[str, Any]]:
        """The campaign's plays in this review status, oldest first (the queue's order)."""
        claims = self._session.scalars(
            select(ClaimRecord).where(ClaimRecord.review == status, ClaimRecord.campaign_id == campaign_id)
            .order_by(ClaimRecord.created_at, ClaimRecord.id).limit(min(limit, MAX_PAGE)))
        claims = list(claims)
        grants = self._grants([c.id for c in claims])
        return [self._view(c, grants.get(c.id, [])) for c in claims]

    def get(self, claim_id: str) -> dict[str, Any]:
        """One held (or decided) play with its grants and the referral tree around it."""
        claim = self._claim(claim_id)
        return {**self._view(claim, self._grants([claim.id]).get(claim.id, [])), "graph": self.graph(claim)}

    def approve(self, claim_id: str, *, actor: str, note: str = "") -> dict[str, Any]:
        """Release the play's grants: pending now, and enqueued to be issued."""
        released = self._decide(claim_id, ReviewStatus.APPROVED, GrantStatus.PENDING, actor=actor, note=note)
        self._settlement.issue(released)
        return self.get(claim_id)

    def reject(self, claim_id: str, *, actor: str, note: str = "") -> dict[str, Any]:
        """Never issue the play's grants, and give its budget and stock back to the campaign."""

        def give_back(claim: ClaimRecord, held: list[Grant]) -> None:
            # Inside the decision's transaction: if SQL then fails, the retried rejection finds it given back
            # (the script's marker) and gives nothing twice.
            keys = ShardDirectory(self._scripts.client, self._namespace).get(claim.campaign_id).for_user(claim.user_id)
            self._scripts.give_back(keys, claim_id=claim.id,
                                    cost_fen=sum(g.cost_fen for g in held),
                                    takes=(claim.fraud or {}).get("takes", []))

        self._decide(claim_id, ReviewStatus.REJECTED, GrantStatus.REJECTED, actor=actor, note=note,
                     before_commit=give_back)
        return self.get(claim_id)

    def graph(self, claim: ClaimRecord) -> dict[str, Any]:
        """The referral tree a play is part of: its players (device, IP, role, review) and who assisted whom;
        devices and IPs that more than one player of the tree used are listed under ``shared``."""
        ring = (claim.fraud or {}).get("ring")
        if not ring:
            return {"tree": None, "nodes": [], "edges": [], "shared": {"devices": [], "ips": []}}
        tree = ring["tree"]
        # Claim ids are time-ordered and a tree's id is the claim that opened it: its plays come from there on.
        rows = self._session.scalars(
            select(ClaimRecord).where(ClaimRecord.campaign_id == claim.campaign_id, ClaimRecord.id >= tree,
                                      ClaimRecord.game == claim.game).order_by(ClaimRecord.id).limit(20 * MAX_TREE))
        members = [r for r in rows if ((r.fraud or {}).get("ring") or {}).get("tree") == tree][:MAX_TREE]
        nodes: dict[str, dict[str, Any]] = {}
        edges = []
        for member in members:
            seen = member.fraud["ring"]
            node = nodes.setdefault(member.user_id, {"user_id": member.user_id, "roles": [], "devices": [],
                                                     "ips": [], "held": []})
            node["roles"].append(seen["role"])
            for field, value in (("devices", seen.get("device")), ("ips", seen.get("ip"))):
                if value and value not in node[field]:
                    node[field].append(value)
            node["held"] += member.fraud.get("held", [])
            if seen["role"] == "assist":
                edges.append({"from": member.user_id, "to": seen["owner"], "claim_id": member.id,
                              "review": member.review})

        def shared(field: str) -> list[str]:
            counts: dict[str, int] = {}
            for node in nodes.values():
                for value in node[field]:
                    counts[value] = counts.get(value, 0) + 1
            return sorted(v for v, n in counts.items() if n > 1)

        return {"tree": tree, "owner": ring["owner"], "nodes": list(nodes.values()), "edges": edges,
                "shared": {"devices": shared("devices"), "ips": shared("ips")}}

    def _decide(self, claim_id: str, decision: ReviewStatus, grant_status: GrantStatus, *, actor: str,
                note: str, before_commit: Callable[[ClaimRecord, list[Grant]], None] | None = None) -> list[str]:
        """Take the play out of the queue (only one of two racing reviewers can: the UPDATE is conditional and
        holds the row until commit), run ``before_commit`` and record the decision, all or nothing. Answers the
        ids of the grants that were held."""
        now = self._clock.now()
        won = self._session.execute(update(ClaimRecord).where(
            ClaimRecord.id == claim_id, ClaimRecord.review == ReviewStatus.HELD).values(review=decision)).rowcount
        if not won:
            self._session.rollback()
            raise ReviewClosedError(review=self._claim(claim_id).review)
        try:
            claim = self._session.get(ClaimRecord, claim_id, populate_existing=True)
            held = [g for g in self._grants([claim_id]).get(claim_id, []) if g.status == GrantStatus.HELD]
            if before_commit is not None:
                before_commit(claim, held)
            claim.fraud = {**(claim.fraud or {}), "review": {"decision": str(decision), "by": actor,
                                                             "at": now.isoformat(), "note": note}}
            self._session.execute(update(Grant).where(Grant.claim_id == claim_id, Grant.status == GrantStatus.HELD)
                                  .values(status=grant_status, updated_at=now))
            verb = "approve" if decision == ReviewStatus.APPROVED else "reject"
            audit.record(self._session, at=now, actor=actor, action=f"review.{verb}", subject_type="claim",
                         subject_id=claim_id, campaign_id=claim.campaign_id,
                         before={"review": str(ReviewStatus.HELD)}, after={"review": str(decision)}, note=note,
                         reasons=(claim.fraud or {}).get("held", []), grants=[g.id for g in held])
            self._session.commit()
        except BaseException:
            self._session.rollback()
            raise
        return [grant.id for grant in held]

    def _claim(self, claim_id: str) -> ClaimRecord:
        claim = self._session.get(ClaimRecord, claim_id)
        if claim is None:
            raise NotFoundError("No such play.", claim_id=claim_id)
        return claim

    def _grants(self, claim_ids: list[str]) -> dict[str, list[Grant]]:
        found: dict[str, list[Grant]] = {}
        if claim_ids:
            for grant in self._session.scalars(select(Grant).where(Grant.claim_id.in_(claim_ids)).order_by(Grant.id)):
                found.setdefault(grant.claim_id, []).append(grant)
        return found

    @staticmethod
    def _view(claim: ClaimRecord, grants: list[Grant]) -> dict[str, Any]:
        fraud = claim.fraud or {}
        return {
            "claim_id": claim.id, "campaign_id": claim.campaign_id, "user_id": claim.user_id, "action": claim.action,
            "created_at": claim.created_at, "review": claim.review, "reasons": fraud.get("held", []),
            "risk": fraud.get("risk"), "ring": fraud.get("ring"), "decision": fraud.get("review"),
            "outcome": claim.outcome,
            "grants": grants,
        }
