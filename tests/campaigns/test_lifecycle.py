"""The campaign lifecycle: draft -> live <-> paused -> ended, versions, schedule, audit."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule
from sqlalchemy import select

from campaigns import audit
from campaigns.errors import InvalidTransitionError, PublishRaceError
from campaigns.models import AuditEntry, CampaignStatus
from engine.clock import FrozenClock, SystemClock
from engine.errors import CampaignNotLiveError, NotFoundError, ValidationError

from ..support.factories import flash_sale_definition


def _service(container, session, clock=None):
    from campaigns.services import CampaignService

    return CampaignService(session, live=container.live_state, clock=clock or container.clock)


def test_a_draft_is_invisible_to_players_until_published(container, factory):
    with container.session_factory() as session:
        campaign = _service(container, session).create(flash_sale_definition(), actor="m")
        assert campaign.status == CampaignStatus.DRAFT and campaign.live_version is None
    with pytest.raises(NotFoundError):
        factory.play(campaign.id, "p")


def test_pause_refuses_plays_at_once_and_resume_lets_them_in_again(container, factory):
    campaign_id = factory.campaign(stock=5)
    with container.session_factory() as session:
        _service(container, session).transition(campaign_id, "pause", actor="m")
    with pytest.raises(CampaignNotLiveError) as refused:
        factory.play(campaign_id, "p")
    assert refused.value.details == {"reason": "paused"}
    with container.session_factory() as session:
        _service(container, session).transition(campaign_id, "resume", actor="m")
    factory.play(campaign_id, "p")


def test_an_ended_campaign_cannot_be_resumed_edited_or_published(container, factory):
    campaign_id = factory.campaign()
    with container.session_factory() as session:
        service = _service(container, session)
        service.transition(campaign_id, "end", actor="m")
        for attempt in (lambda: service.transition(campaign_id, "resume", actor="m"),
                        lambda: service.update(campaign_id, flash_sale_definition(), actor="m"),
                        lambda: service.publish(campaign_id, actor="m")):
            with pytest.raises(InvalidTransitionError):
                attempt()


def test_a_draft_cannot_be_paused(container):
    with container.session_factory() as session:
        service = _service(container, session)
        campaign = service.create(flash_sale_definition(), actor="m")
        with pytest.raises(InvalidTransitionError):
            service.transition(campaign.id, "pause", actor="m")


def test_campaigns_past_their_end_are_ended_by_the_scheduler(container, factory):
    campaign_id = factory.campaign(ends_in=timedelta(hours=1))
    later = FrozenClock(SystemClock().now() + timedelta(hours=2))
    with container.session_factory() as session:
        assert _service(container, session).end_finished() == []
        assert _service(container, session, later).end_finished() == [campaign_id]
        assert _service(container, session).get(campaign_id).status == CampaignStatus.ENDED
    assert container.live_state.stats(campaign_id).status == "ended"


def test_a_published_campaign_cannot_change_its_game(container, factory):
    campaign_id = factory.campaign()
    definition = flash_sale_definition()
    definition["game"] = "no_such_game"
    with container.session_factory() as session, pytest.raises(ValidationError):
        _service(container, session).update(campaign_id, definition, actor="m")


def test_versions_carry_a_diff_from_the_one_before(container, factory):
    definition = flash_sale_definition(stock=10)
    campaign_id = factory.campaign(definition)
    definition["config"]["skus"][0]["stock"] = 20
    with container.session_factory() as session:
        service = _service(container, session)
        service.update(campaign_id, definition, actor="m")
        service.publish(campaign_id, actor="m")
        views = service.versions(campaign_id)
    assert [v.version.version for v in views] == [1, 2]
    assert views[1].diff == [{"op": "replace", "path": "/config/skus/0/stock", "value": 20}]


def test_every_change_is_audited(container, factory, db_session):
    campaign_id = factory.campaign()
    with container.session_factory() as session:
        _service(container, session).transition(campaign_id, "pause", actor="marta")
    actions = db_session.scalars(select(AuditEntry.action).order_by(AuditEntry.id)).all()
    assert actions == ["campaign.create", "campaign.publish", "campaign.pause"]


def test_audit_entries_hold_the_before_and_after_of_each_change(container, factory, db_session):
    definition = flash_sale_definition(stock=10)
    campaign_id = factory.campaign(definition)
    with container.session_factory() as session:
        service = _service(container, session)
        service.update(campaign_id, {**definition, "name": "Renamed"}, actor="marta")
        service.transition(campaign_id, "pause", actor="marta")
    entries = {e.action: e for e in db_session.scalars(select(AuditEntry).order_by(AuditEntry.id))}
    assert audit.changes(entries["campaign.update"]) == [{"op": "replace", "path": "/name", "value": "Renamed"}]
    assert entries["campaign.create"].details["after"]["config"]["skus"][0]["stock"] == 10
    assert entries["campaign.publish"].details["before"] == {"status": "draft", "live_version": None}
    assert entries["campaign.publish"].details["after"] == {"status": "live", "live_version": 1}
    assert audit.changes(entries["campaign.pause"]) == [{"op": "replace", "path": "/status", "value": "paused"}]


class Lifecycle(RuleBasedStateMachine):
    """Any sequence of lifecycle calls keeps SQL and Redis agreeing on the status, and versions only grow."""

    container = None

    def __init__(self) -> None:
        super().__init__()
        self.session = self.container.session_factory()
        self.service = _service(self.container, self.session)
        self.definition = flash_sale_definition(stock=5)
        self.campaign_id = self.service.create(self.definition, actor="sm").id
        self.expected = CampaignStatus.DRAFT
        self.versions = 0

    def teardown(self) -> None:
        self.session.close()

    def _try(self, call, allowed_from, target):
        if self.expected in allowed_from:
            call()
            self.expected = target
        else:
            with pytest.raises(InvalidTransitionError):
                call()
            self.session.rollback()

    @rule()
    def publish(self) -> None:
        def call():
            self.service.publish(self.campaign_id, actor="sm")

        before = self.expected
        self._try(call, {CampaignStatus.DRAFT, CampaignStatus.LIVE, CampaignStatus.PAUSED},
                  CampaignStatus.LIVE if before == CampaignStatus.DRAFT else before)
        if before != CampaignStatus.ENDED:
            self.versions = max(self.versions, 1)

    @rule()
    def edit(self) -> None:
        if self.expected == CampaignStatus.ENDED:
            return
        self.definition["config"]["skus"][0]["stock"] += 1
        self.service.update(self.campaign_id, self.definition, actor="sm")

    @rule(action=st.sampled_from(["pause", "resume", "end"]))
    def transition(self, action: str) -> None:
        from campaigns.services import TRANSITIONS

        allowed, target = TRANSITIONS[action]
        self._try(lambda: self.service.transition(self.campaign_id, action, actor="sm"), allowed, target)

    @invariant()
    def sql_and_redis_agree(self) -> None:
        campaign = self.service.get(self.campaign_id)
        assert campaign.status == self.expected
        if campaign.live_version is not None:
            assert self.container.live_state.stats(self.campaign_id).status == self.expected

    @precondition(lambda self: self.versions)
    @invariant()
    def versions_are_numbered_one_by_one(self) -> None:
        numbers = [v.version.version for v in self.service.versions(self.campaign_id)]
        assert numbers == list(range(1, len(numbers) + 1))


def test_any_sequence_of_lifecycle_calls_keeps_sql_and_redis_in_step(container):
    Lifecycle.container = container
    runner = Lifecycle.TestCase()
    runner.settings = settings(max_examples=15, stateful_step_count=12, deadline=None,
                               suppress_health_check=list(HealthCheck))
    runner.runTest()


def test_the_rollout_is_raised_alone_without_publishing_the_drafts_other_edits(container, factory, client,
                                                                              admin_token, db_session):
    definition = {**flash_sale_definition(stock=10), "rollout_percent": 10}
    campaign_id = factory.campaign(definition)
    headers = {"Authorization": f"Bearer {admin_token('publisher')}"}
    client.put(f"/admin/api/v1/campaigns/{campaign_id}", json={**definition, "name": "Not yet"}, headers=headers)
    raised = client.post(f"/admin/api/v1/campaigns/{campaign_id}/rollout", json={"percent": 60}, headers=headers)
    assert raised.status_code == 200, raised.json
    assert raised.json["live_version"] == 2 and raised.json["draft"]["rollout_percent"] == 60
    assert raised.json["draft"]["name"] == "Not yet"  # still a draft edit
    with container.session_factory() as session:
        live = _service(container, session).version(campaign_id, 2).definition
    assert live["rollout_percent"] == 60 and live["name"] == definition["name"]
    assert container.snapshots.get(campaign_id).rollout_percent == 60
    entry = db_session.scalars(select(AuditEntry).where(AuditEntry.action == "campaign.rollout")).one()
    assert entry.details["rollout"] == {"before": 10, "after": 60}

    for bad in ({"percent": 101}, {"percent": "50"}, {}, {"percent": 50, "x": 1}):
        answer = client.post(f"/admin/api/v1/campaigns/{campaign_id}/rollout", json=bad, headers=headers)
        assert answer.status_code == 422 and answer.json["error"]["code"] == "VALIDATION_ERROR", bad
    viewer = {"Authorization": f"Bearer {admin_token('viewer')}"}
    assert client.post(f"/admin/api/v1/campaigns/{campaign_id}/rollout", json={"percent": 70},
                       headers=viewer).status_code == 403
    draft_only = client.post("/admin/api/v1/campaigns", json=flash_sale_definition(), headers=headers).json["id"]
    answer = client.post(f"/admin/api/v1/campaigns/{draft_only}/rollout", json={"percent": 70}, headers=headers)
    assert answer.status_code == 409 and answer.json["error"]["code"] == "INVALID_TRANSITION"


def test_racing_rollouts_and_publishes_never_share_a_version_and_the_live_one_is_the_last(container, factory):
    """Publishers raising the rollout and publishing at once: each gets its own version or a 409, and Redis plays
    the newest version SQL has."""
    campaign_id = factory.campaign({**flash_sale_definition(stock=10), "rollout_percent": 5})
    barrier = threading.Barrier(8)
    outcomes: list[str] = []

    def publisher(index: int) -> None:
        barrier.wait()
        with container.session_factory() as session:
            service = _service(container, session)
            try:
                if index % 2:
                    service.publish(campaign_id, actor=f"p{index}")
                else:
                    service.set_rollout(campaign_id, 10 + index, actor=f"p{index}")
                outcomes.append("ok")
            except PublishRaceError:
                outcomes.append("race")

    threads = [threading.Thread(target=publisher, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(outcomes) == 8 and "ok" in outcomes
    with container.session_factory() as session:
        service = _service(container, session)
        versions = [v.version.version for v in service.versions(campaign_id)]
        campaign = service.get(campaign_id)
        newest = service.version(campaign_id, max(versions)).definition
    assert versions == sorted(set(versions))  # no version twice
    assert campaign.live_version == max(versions)
    assert container.live_state.stats(campaign_id).version == max(versions)  # Redis plays the newest
    assert newest["rollout_percent"] in {5} | {10 + i for i in range(0, 8, 2)}
