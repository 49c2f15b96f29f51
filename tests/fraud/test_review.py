"""Referral rings and the review queue: ring assists and the cash-out of a suspicious tree are held, their
grants are never issued until a person approves, a rejection gives budget and stock back exactly once, and
every decision is audited."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from campaigns.models import AuditEntry, ClaimRecord, Grant
from engine.keys import CampaignKeys
from rewards.recovery import recover_day
from tests.games.test_referral import definition
from tests.web.test_bad_input import error_of

ADMIN = "/admin/api/v1"


@pytest.fixture
def policy(client, admin):
    """A referral campaign under a policy with only the ring rules on (as given); answers its id."""

    def make(campaign_options: dict[str, Any] | None = None, **referral: Any) -> int:
        document = {"replay": {"mode": "off"}, "rate_limits": [], "risk": {"mode": "off"},
                    "devices": {"mode": "off"}, "referral": {"mode": "enforce", **referral}}
        name = "ring" + uuid.uuid4().hex[:6]
        assert client.put(f"{ADMIN}/fraud-policies/{name}", json=document, headers=admin).status_code == 200
        return name

    return make


class Friends:
    """Players of one referral campaign over HTTP, each on a phone and address of their own unless told."""

    def __init__(self, client, factory, campaign: int) -> None:
        self.client, self.factory, self.campaign = client, factory, campaign
        self.tokens: dict[str, str] = {}

    def act(self, user: str, action: str, body: dict[str, Any], *, device: str | None = None,
            ip: str | None = None, days: int = 30) -> Any:
        if user not in self.tokens:
            self.tokens[user] = self.factory.token(user, registered_days_ago=days)
        headers = {"Authorization": f"Bearer {self.tokens[user]}", "Idempotency-Key": str(uuid.uuid4())}
        if device:
            headers["X-Device-Id"] = device
        return self.client.post(f"/api/v1/campaigns/{self.campaign}/actions/{action}", json=body, headers=headers,
                                environ_base={"REMOTE_ADDR": ip} if ip else None)

    def open(self, user: str, **where: Any) -> str:
        opened = self.act(user, "open", {}, **where)
        assert opened.status_code == 200, opened.json
        return opened.json["outcome"]["share_code"]

    def assist(self, user: str, code: str, **where: Any) -> Any:
        return self.act(user, "assist", {"share_code": code}, **where)

    def cashout(self, user: str, code: str, **where: Any) -> Any:
        return self.act(user, "cashout", {"packet_id": code}, **where)

    def flagged_packet(self) -> str:
        """A full packet whose first helper used the owner's phone: its tree is flagged."""
        code = self.open("owner", device="one-phone")
        for i in range(4):
            self.assist(f"f{i}", code, device="one-phone" if i == 0 else None)
        return code


@pytest.fixture
def ring(client, factory, policy):
    def make(**referral: Any) -> Friends:
        campaign = definition(budget_fen=100_000)
        campaign["fraud"] = {"policy": policy(**referral)}
        return Friends(client, factory, factory.campaign(campaign))

    return make


def test_an_assist_from_the_owners_phone_is_held_with_the_tree_around_it(ring, settle, db_session, client,
                                                                                  admin):
    friends = ring()
    code = friends.open("owner", device="owners-phone")
    held = friends.assist("sock-puppet", code, device="owners-phone")
    assert held.status_code == 200 and held.json["outcome"]["held"] is True

    settle()
    db_session.rollback()
    claim = db_session.scalars(select(ClaimRecord).where(ClaimRecord.user_id == "sock-puppet")).one()
    assert claim.review == "held" and claim.fraud["held"] == ["ring:shared_device"]

    queue = client.get(f"{ADMIN}/campaigns/{friends.campaign}/review", headers=admin).json
    assert [(q["user_id"], q["reasons"]) for q in queue] == [("sock-puppet", ["ring:shared_device"])]
    item = client.get(f"{ADMIN}/review/{claim.id}", headers=admin).json
    assert item["graph"]["owner"] == "owner" and item["graph"]["shared"]["devices"] == ["owners-phone"]
    assert {(e["from"], e["to"]) for e in item["graph"]["edges"]} == {("sock-puppet", "owner")}


def test_the_cash_out_of_a_flagged_tree_waits_for_review_and_approval_releases_it(ring, settle, db_session,
                                                                                   client, admin, container):
    friends = ring(max_shared_ips=2)
    code = friends.open("owner")
    answers = [friends.assist(f"f{i}", code, ip="203.0.113.9") for i in range(4)]  # one address, four friends
    assert [a.json["outcome"].get("held", False) for a in answers] == [False, False, False, True]
    assert answers[3].json["outcome"]["full"]
    paid = friends.cashout("owner", code)
    assert paid.status_code == 200 and paid.json["outcome"]["held"] is True
    assert paid.json["grants"][0]["status"] == "held"

    settle()
    db_session.rollback()
    cash = db_session.scalars(select(ClaimRecord).where(ClaimRecord.action == "cashout")).one()
    assert cash.fraud["held"] == ["ring:tree_flagged"]
    assert db_session.scalars(select(Grant.status).where(Grant.claim_id == cash.id)).all() == ["held"]

    approved = client.post(f"{ADMIN}/review/{cash.id}/approve", json={"note": "they are colleagues"}, headers=admin)
    assert approved.status_code == 200 and approved.json["review"] == "approved"
    assert approved.json["decision"]["note"] == "they are colleagues"
    settle()
    db_session.rollback()
    assert db_session.scalars(select(Grant.status).where(Grant.claim_id == cash.id)).all() == ["issued"]
    entry = db_session.scalars(select(AuditEntry).where(AuditEntry.action == "review.approve")).one()
    assert entry.subject_id == cash.id and entry.details["before"] == {"review": "held"}
    assert entry.details["after"] == {"review": "approved"} and entry.actor.endswith("test admin")
    again = client.post(f"{ADMIN}/review/{cash.id}/reject", json={}, headers=admin)
    assert error_of(again, 409, "REVIEW_CLOSED")


def test_a_rejection_gives_the_budget_back_once_even_when_reviewers_race(ring, settle, db_session, client, admin,
                                                                         container):
    friends = ring()
    code = friends.flagged_packet()
    spent_before_cashout = container.live_state.stats(friends.campaign).spent_fen
    assert friends.cashout("owner", code).json["outcome"]["held"] is True
    spent = container.live_state.stats(friends.campaign).spent_fen
    assert spent == spent_before_cashout + 600
    settle(worker=False)
    db_session.rollback()
    cash = db_session.scalars(select(ClaimRecord).where(ClaimRecord.action == "cashout")).one()

    decide = [("reject", {}), ("approve", {}), ("reject", {"note": "ring"}), ("approve", {})] * 3
    with ThreadPoolExecutor(6) as pool:
        answers = list(pool.map(lambda d: client.post(f"{ADMIN}/review/{cash.id}/{d[0]}", json=d[1],
                                                      headers=admin), decide))
    assert sorted(a.status_code for a in answers) == [200] + [409] * 11
    winner = next(a.json["review"] for a in answers if a.status_code == 200)
    db_session.rollback()
    statuses = db_session.scalars(select(Grant.status).where(Grant.claim_id == cash.id)).all()
    if winner == "rejected":
        assert statuses == ["rejected"] and container.live_state.stats(friends.campaign).spent_fen == spent - 600
    else:
        assert statuses == ["pending"] and container.live_state.stats(friends.campaign).spent_fen == spent
    assert len(db_session.scalars(select(AuditEntry).where(AuditEntry.subject_id == cash.id)).all()) == 1


def test_rejecting_returns_budget_exactly_once_when_redis_already_gave_it_back(ring, settle, db_session, container):
    friends = ring()
    code = friends.flagged_packet()
    friends.cashout("owner", code)
    settle(worker=False)
    db_session.rollback()
    cash = db_session.scalars(select(ClaimRecord).where(ClaimRecord.action == "cashout")).one()
    spent = container.live_state.stats(friends.campaign).spent_fen
    keys = CampaignKeys(container.settings.redis_namespace, friends.campaign)
    # A rejection whose SQL commit failed after Redis gave back: the retried one must not give back twice.
    assert container.scripts.give_back(keys, claim_id=cash.id, cost_fen=600, takes=[]) is True
    with container.session_factory() as session:
        container.review_service(session).reject(cash.id, actor="test")
    assert container.live_state.stats(friends.campaign).spent_fen == spent - 600


def test_circular_assists_are_held(ring, db_session, settle):
    friends = ring()
    a, b, c = friends.open("a"), friends.open("b"), friends.open("c")
    assert friends.assist("a", b).json["outcome"].get("held") is None  # a helps b
    assert friends.assist("b", c).json["outcome"].get("held") is None  # b helps c
    held = friends.assist("c", a)  # c helps a: a reaches c through b
    assert held.json["outcome"]["held"] is True
    back = friends.assist("b", a)  # b helps a, whom a helped: a circle of two
    assert back.json["outcome"]["held"] is True
    settle(worker=False)
    db_session.rollback()
    assists = db_session.scalars(select(ClaimRecord).where(ClaimRecord.action == "assist"))
    # Settlement numbers the claims in the order its batches commit, not always the plays' order: compare sets.
    assert sorted((c.user_id, c.fraud["ring"]["owner"], c.fraud.get("held") or []) for c in assists) == sorted([
        ("a", "b", []), ("b", "c", []), ("c", "a", ["ring:circular"]), ("b", "a", ["ring:circular"])])


def test_new_accounts_helping_a_new_account_are_held_and_established_ones_are_not(ring):
    friends = ring(min_assists=3, max_new_share=0.8)
    code = friends.open("fresh-owner", days=0)
    held = [friends.assist(f"n{i}", code, days=0).json["outcome"].get("held", False) for i in range(3)]
    assert held == [False, False, True]
    established = friends.open("old-owner", days=400)
    assert [friends.assist(f"m{i}", established, days=0).json["outcome"].get("held", False)
            for i in range(3)] == [False, False, False]


def test_with_action_deny_a_ring_assist_is_refused_and_costs_the_helper_nothing(ring, container, client, admin):
    friends = ring(action="deny")
    code = friends.open("owner", device="owners-phone")
    refused = friends.assist("puppet", code, device="owners-phone")
    details = error_of(refused, 403, "RISK_DENIED")["details"]
    assert details["rule"] == "ring:shared_device" and details["reasons"] == ["ring:shared_device"]
    keys = CampaignKeys(container.settings.redis_namespace, friends.campaign)
    assert container.redis.hgetall(keys.user("puppet")) == {}
    assert friends.assist("puppet", friends.open("stranger"), device="own-phone").status_code == 200
    stats = client.get(f"{ADMIN}/campaigns/{friends.campaign}/fraud", headers=admin).json
    assert stats["blocked"] == {"ring:shared_device": 1}
    assert stats["recent"][0]["reasons"] == "ring:shared_device"


def test_shadow_mode_holds_nothing_and_counts_what_it_would_have(ring, client, admin):
    friends = ring(mode="shadow")
    code = friends.open("owner", device="owners-phone")
    answer = friends.assist("puppet", code, device="owners-phone")
    assert answer.status_code == 200 and "held" not in answer.json["outcome"]
    stats = client.get(f"{ADMIN}/campaigns/{friends.campaign}/fraud", headers=admin).json
    assert stats["shadow"] == {"ring:shared_device": 1} and stats["held"] == {}


def test_review_endpoints_check_roles_ids_and_bodies(ring, settle, db_session, client, admin, admin_token):
    friends = ring()
    code = friends.flagged_packet()
    friends.cashout("owner", code)
    settle(worker=False)
    db_session.rollback()
    claim = db_session.scalars(select(ClaimRecord).where(ClaimRecord.review == "held",
                                                         ClaimRecord.action == "cashout")).one()
    grant = db_session.scalars(select(Grant).where(Grant.claim_id == claim.id)).one()
    viewer = {"Authorization": f"Bearer {admin_token('viewer')}"}

    assert error_of(client.post(f"{ADMIN}/review/{claim.id}/approve", json={}, headers=viewer), 403, "FORBIDDEN")
    assert error_of(client.post(f"{ADMIN}/review/{'0' * 24}/approve", json={}, headers=admin), 404, "NOT_FOUND")
    assert error_of(client.post(f"{ADMIN}/review/{claim.id}/approve", json={"verdict": "yes"}, headers=admin), 422,
                    "VALIDATION_ERROR")
    assert error_of(client.post(f"{ADMIN}/review/{claim.id}/reject", json={"note": "x" * 501}, headers=admin), 422,
                    "VALIDATION_ERROR")
    assert error_of(client.get(f"{ADMIN}/campaigns/{friends.campaign}/review?status=maybe", headers=admin), 422,
                    "VALIDATION_ERROR")
    assert error_of(client.post(f"{ADMIN}/grants/{grant.id}/retry", headers=admin), 409, "GRANT_UNDER_REVIEW")
    queue = client.get(f"{ADMIN}/campaigns/{friends.campaign}/review", headers=viewer).json
    assert [q["action"] for q in queue] == ["assist", "cashout"] and queue[1]["claim_id"] == claim.id
    not_held = db_session.scalars(select(ClaimRecord).where(ClaimRecord.review.is_(None))).first()
    assert error_of(client.post(f"{ADMIN}/review/{not_held.id}/approve", json={}, headers=admin), 409,
                    "REVIEW_CLOSED")
    db_session.rollback()
    assert db_session.scalars(select(ClaimRecord.review).where(ClaimRecord.id == claim.id)).one() == "held"


def test_a_held_play_recovered_from_the_claim_journal_is_still_held(ring, container, db_session):
    """Redis lost the outbox entry (settlement never saw it): the journal's copy carries the hold."""
    friends = ring()
    code = friends.flagged_packet()
    assert friends.cashout("owner", code).json["outcome"]["held"] is True
    now = container.clock.now()
    report = recover_day(container.session_factory, container.settlement(), container.journal_reader,
                         now.astimezone(UTC).date(), admitted_before=now + timedelta(seconds=1), now=now)
    db_session.rollback()
    cash = db_session.scalars(select(ClaimRecord).where(ClaimRecord.action == "cashout")).one()
    assert cash.id in report.recovered and cash.review == "held" and cash.fraud["held"] == ["ring:tree_flagged"]
    assert db_session.scalars(select(Grant.status).where(Grant.claim_id == cash.id)).all() == ["held"]
    assert not any(g.startswith(f"G{cash.id}") for g in report.grants_enqueued)
