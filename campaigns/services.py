"""The campaign lifecycle: drafts, publishing immutable versions, pause/resume/end, versions and diffs.

draft -> live <-> paused -> ended. Publishing validates the whole definition
(the game's config and every reward included), writes a version row unless
the content is unchanged, and loads live state into Redis idempotently.
Each operation is one transaction, audited.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import jsonpatch
import marshmallow
import structlog
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from engine.clock import Clock, parse_instant
from engine.connections import REDIS_ERRORS
from engine.errors import HuodongError, NotFoundError, ValidationError
from engine.fairness import commitment, new_secret
from engine.game import games
from engine.snapshot import CampaignSnapshot

from . import audit
from .attributes import attribute_types
from .errors import InvalidTransitionError, PublishRaceError
from .fraud import FraudPolicyService
from .live import LiveState
from .models import Campaign, CampaignStatus, CampaignVersion
from .schemas import normalize_definition

TRANSITIONS = {
    "pause": ({CampaignStatus.LIVE, CampaignStatus.PAUSED}, CampaignStatus.PAUSED),
    "resume": ({CampaignStatus.PAUSED, CampaignStatus.LIVE}, CampaignStatus.LIVE),
    "end": ({CampaignStatus.LIVE, CampaignStatus.PAUSED, CampaignStatus.ENDED}, CampaignStatus.ENDED),
}


@dataclass(frozen=True)
class VersionView:
    version: CampaignVersion
    diff: list[dict[str, Any]]


def content_hash(definition: dict[str, Any]) -> str:
    canonical = json.dumps(definition, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def validated(document: Any, attribute_types: Mapping[str, str] | None = None) -> dict[str, Any]:
    try:
        return normalize_definition(document, attribute_types)
    except marshmallow.ValidationError as exc:
        raise ValidationError("The campaign definition is not valid.", fields=exc.normalized_messages()) from None


log = structlog.get_logger(__name__)
FINALE_RETRY_WINDOW = timedelta(days=7)


class CampaignService:
    def __init__(self, session: Session, *, live: LiveState, clock: Clock,
                 finisher: Callable[[int], object] | None = None,
                 fraud_policies: FraudPolicyService | None = None) -> None:
        self._session = session
        self._live = live
        self._clock = clock
        self._fraud_policies = fraud_policies
        # Runs a game's finale (its one payout at the end); settlement's housekeeping retries what failed.
        self._finisher = finisher

    def get(self, campaign_id: int) -> Campaign:
        campaign = self._session.get(Campaign, campaign_id)
        if campaign is None:
            raise NotFoundError("No such campaign.", campaign_id=campaign_id)
        return campaign

    def list(self, status: str | None = None, *, game: str | None = None, name_contains: str = "") -> list[Campaign]:
        """Campaigns in id order, of a status, of a game and whose name holds some text (any case), if asked."""
        query = select(Campaign).order_by(Campaign.id)
        if status:
            query = query.where(Campaign.status == status)
        if game:
            query = query.where(Campaign.game == game)
        if name_contains:
            query = query.where(Campaign.name.icontains(name_contains, autoescape=True))
        return list(self._session.scalars(query))

    def check(self, document: Any) -> dict[str, Any]:
        """A definition checked as saving it would, without saving: its canonical form and the rules players
        would be shown (the game's public view, e.g. each prize's probability)."""
        definition = validated(document, attribute_types(self._session))
        game = games.get(definition["game"])()
        return {"definition": definition, "rules": game.public_view(game.config_schema().load(definition["config"]))}

    def create(self, document: Any, *, actor: str) -> Campaign:
        definition = validated(document, attribute_types(self._session))
        now = self._clock.now()
        campaign = Campaign(name=definition["name"], game=definition["game"], status=CampaignStatus.DRAFT,
                            draft=definition, created_by=actor, created_at=now, updated_at=now)
        self._session.add(campaign)
        self._session.flush()
        audit.record(self._session, at=now, actor=actor, action="campaign.create", subject_type="campaign",
                     subject_id=campaign.id, before=None, after=definition)
        self._session.commit()
        return campaign

    def update(self, campaign_id: int, document: Any, *, actor: str) -> Campaign:
        """Replace the draft. A live campaign keeps playing its published version until the next publish."""
        campaign = self._locked(campaign_id)
        if campaign.status == CampaignStatus.ENDED:
            raise InvalidTransitionError("An ended campaign cannot be edited.")
        definition = validated(document, attribute_types(self._session))
        if campaign.live_version is not None and definition["game"] != campaign.game:
            raise ValidationError("A published campaign cannot change its game.",
                                  fields={"game": ["Cannot change after publishing."]})
        now = self._clock.now()
        before = campaign.draft
        campaign.draft, campaign.name, campaign.game, campaign.updated_at = (
            definition, definition["name"], definition["game"], now)
        audit.record(self._session, at=now, actor=actor, action="campaign.update", subject_type="campaign",
                     subject_id=campaign.id, before=before, after=definition)
        self._session.commit()
        return campaign

    def publish(self, campaign_id: int, *, actor: str) -> CampaignVersion:
        """Publish the draft as an immutable version (or re-load the same one if nothing changed)."""
        campaign = self._locked(campaign_id)
        if campaign.status == CampaignStatus.ENDED:
            raise InvalidTransitionError("An ended campaign cannot be published.")
        return self._publish(campaign, validated(campaign.draft, attribute_types(self._session)), actor=actor,
                             action="campaign.publish")

    def set_rollout(self, campaign_id: int, percent: int, *, actor: str) -> CampaignVersion:
        """Publish the live version again with another rollout percentage, and nothing else: the draft's other
        unpublished edits stay in the draft (which takes the new percentage too, so its next publish keeps
        it). Raising it keeps every player already let in (their bucket is stable)."""
        campaign = self._locked(campaign_id)
        if campaign.status == CampaignStatus.ENDED or campaign.live_version is None:
            raise InvalidTransitionError("Only a published campaign that has not ended changes its rollout; "
                                         "a draft's rollout is edited in the draft.", status=campaign.status)
        live = self.version(campaign_id, campaign.live_version).definition
        campaign.draft = {**campaign.draft, "rollout_percent": percent}
        definition = validated({**live, "rollout_percent": percent}, attribute_types(self._session))
        return self._publish(campaign, definition, actor=actor, action="campaign.rollout",
                             rollout={"before": live["rollout_percent"], "after": percent})

    def _publish(self, campaign: Campaign, definition: dict[str, Any], *, actor: str, action: str,
                 **details: Any) -> CampaignVersion:
        policy = definition["fraud"]["policy"]
        if self._fraud_policies is not None:
            if not self._fraud_policies.exists(policy):
                raise ValidationError("The campaign names a fraud policy that does not exist.",
                                      fields={"fraud": {"policy": [f"No policy named {policy!r}; save it first."]}})
            self._fraud_policies.mirror(policy)
        digest = content_hash(definition)
        latest = self._latest_version(campaign.id)
        if latest is not None and latest.definition.get("shards", 1) != definition.get("shards", 1):
            raise ValidationError("A campaign keeps the number of shards it was first published with.",
                                  fields={"shards": [f"Published with {latest.definition.get('shards', 1)}; "
                                                     "players' state lives in those groups."]})
        now = self._clock.now()
        if latest is not None and latest.content_hash == digest:
            version = latest
        else:
            secret = new_secret()
            version = CampaignVersion(
                campaign_id=campaign.id, version=(latest.version + 1) if latest else 1, definition=definition,
                content_hash=digest, published_by=actor, published_at=now, secret=secret,
                commitment=commitment(secret))
            self._session.add(version)
        before = {"status": str(campaign.status), "live_version": campaign.live_version}
        if campaign.status == CampaignStatus.DRAFT:
            campaign.status = CampaignStatus.LIVE
        campaign.live_version = version.version
        campaign.updated_at = now
        audit.record(self._session, at=now, actor=actor, action=action, subject_type="campaign",
                     subject_id=campaign.id, version=version.version, content_hash=digest, before=before,
                     after={"status": str(campaign.status), "live_version": version.version}, **details)
        try:
            self._session.commit()
        except IntegrityError:
            self._session.rollback()
            raise PublishRaceError() from None
        snapshot = CampaignSnapshot.from_definition(
            campaign.id, version.version, version.definition, secret=version.secret or "",
            shard_tags=self._live.placed(campaign.id, version.definition.get("shards", 1)))
        self._live.load(snapshot, campaign.status)
        return version

    def transition(self, campaign_id: int, action: str, *, actor: str) -> Campaign:
        allowed, target = TRANSITIONS[action]
        campaign = self._locked(campaign_id)
        if campaign.status not in allowed:
            raise InvalidTransitionError(f"A {campaign.status} campaign cannot {action}.",
                                         status=campaign.status, action=action)
        now = self._clock.now()
        before = str(campaign.status)
        campaign.status = target
        campaign.updated_at = now
        audit.record(self._session, at=now, actor=actor, action=f"campaign.{action}", subject_type="campaign",
                     subject_id=campaign.id, before={"status": before}, after={"status": str(target)})
        self._session.commit()
        # After the commit, so a retry of a half-done transition (Redis unreachable) finishes it.
        self._live.set_status(campaign.id, target)
        if target == CampaignStatus.ENDED and self._finisher is not None:
            try:
                self._finisher(campaign.id)
            except (HuodongError, *REDIS_ERRORS):
                log.warning("finale.deferred", campaign_id=campaign.id, exc_info=True)
        return campaign

    def finish_ended(self, *, within: timedelta = FINALE_RETRY_WINDOW) -> None:
        """Run the finale of every recently ended campaign that has not had it (the finale runs at most once)."""
        if self._finisher is None:
            return
        since = self._clock.now() - within
        ended = self._session.scalars(select(Campaign.id).where(
            Campaign.status == CampaignStatus.ENDED, Campaign.updated_at >= since, Campaign.live_version.is_not(None),
        )).all()
        self._session.rollback()
        for campaign_id in ended:
            try:
                self._finisher(campaign_id)
            except HuodongError:  # e.g. the budget cannot pay the pool: visible in the log, retried next time
                log.warning("finale.refused", campaign_id=campaign_id, exc_info=True)

    def end_finished(self, *, actor: str = "scheduler") -> list[int]:
        """Mark ended every live or paused campaign whose live version's end time has passed."""
        now = self._clock.now()
        running = self._session.execute(
            select(Campaign.id, CampaignVersion.definition)
            .join(CampaignVersion, (CampaignVersion.campaign_id == Campaign.id)
                  & (CampaignVersion.version == Campaign.live_version))
            .where(Campaign.status.in_([CampaignStatus.LIVE, CampaignStatus.PAUSED]))
        ).all()
        self._session.rollback()  # end the read before each transition takes its lock
        finished = [campaign_id for campaign_id, definition in running
                    if definition.get("ends_at") and parse_instant(definition["ends_at"]) <= now]
        for campaign_id in finished:
            self.transition(campaign_id, "end", actor=actor)
        return finished

    def sample_live(self) -> int:
        """Record this minute's stock and spend of every live or paused campaign (the burn-down chart);
        settlement's housekeeping calls it each minute. Answers how many were recorded now."""
        running = self._session.scalars(select(Campaign.id).where(
            Campaign.status.in_([CampaignStatus.LIVE, CampaignStatus.PAUSED]))).all()
        self._session.rollback()
        now = self._clock.now()
        return sum(self._live.sample(campaign_id, now) for campaign_id in running)

    def version(self, campaign_id: int, number: int) -> CampaignVersion:
        row = self._session.scalar(select(CampaignVersion).where(
            CampaignVersion.campaign_id == campaign_id, CampaignVersion.version == number))
        if row is None:
            raise NotFoundError("No such version.", campaign_id=campaign_id, version=number)
        return row

    def versions(self, campaign_id: int) -> list[VersionView]:
        self.get(campaign_id)
        rows = list(self._session.scalars(select(CampaignVersion).where(CampaignVersion.campaign_id == campaign_id)
                                          .order_by(CampaignVersion.version)))
        views, previous = [], {}
        for row in rows:
            views.append(VersionView(row, jsonpatch.make_patch(previous, row.definition).patch))
            previous = row.definition
        return views

    def diff(self, campaign_id: int, older: int, newer: int) -> list[dict[str, Any]]:
        """What changed from one published version to another (RFC 6902 operations)."""
        rows = {row.version: row.definition for row in self._session.scalars(select(CampaignVersion).where(
            CampaignVersion.campaign_id == campaign_id, CampaignVersion.version.in_((older, newer))))}
        missing = [v for v in (older, newer) if v not in rows]
        if missing:
            raise NotFoundError("No such version.", campaign_id=campaign_id, versions=missing)
        return jsonpatch.make_patch(rows[older], rows[newer]).patch

    def pending_changes(self, campaign_id: int) -> list[dict[str, Any]]:
        """What publishing the draft would change: an RFC 6902 patch from the latest version (or from nothing)."""
        draft = self.get(campaign_id).draft
        latest = self._latest_version(campaign_id)
        return jsonpatch.make_patch(latest.definition if latest is not None else {}, draft).patch

    def live_stats(self, campaign_id: int) -> dict[str, Any] | None:
        campaign = self.get(campaign_id)
        if campaign.live_version is None:
            return None
        return self._live.stats(campaign_id).to_dict()

    def _locked(self, campaign_id: int) -> Campaign:
        campaign = self._session.scalar(select(Campaign).where(Campaign.id == campaign_id).with_for_update())
        if campaign is None:
            raise NotFoundError("No such campaign.", campaign_id=campaign_id)
        return campaign

    def _latest_version(self, campaign_id: int) -> CampaignVersion | None:
        return self._session.scalar(select(CampaignVersion).where(CampaignVersion.campaign_id == campaign_id)
                                    .order_by(CampaignVersion.version.desc()).limit(1))
