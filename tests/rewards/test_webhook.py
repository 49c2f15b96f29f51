"""webhook rewards: a signed POST to the merchant, retried until it lands, never paid twice by the receiver."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest
from sqlalchemy import select

from campaigns.models import Grant, GrantStatus
from engine import jobs
from rewards.base import AdapterContext
from rewards.webhook import sign, verify_signature
from tests.support.factories import flash_sale_definition
from tests.support.webhook_receiver import SECRET, Receiver, serving


@pytest.fixture
def receiver() -> Iterator[tuple[Receiver, str]]:
    app = Receiver()
    with serving(app) as url:
        yield app, url


@pytest.fixture
def webhook_settings(container, settings, settle):
    """The worker's adapters sign with SECRET and give up on a delivery after one second."""
    context = container.adapter_context
    jobs.install(AdapterContext(settings=settings.replace(webhook_secret=SECRET, webhook_timeout_seconds=1),
                                      session_factory=context.session_factory, clock=context.clock))
    yield
    jobs.install(context)


def _grant(factory, settle, db_session, url: str) -> Grant:
    campaign = factory.campaign(flash_sale_definition(skus=[{
        "sku": "GIFT", "name": "Merchant gift", "price_fen": 0, "stock": 5,
        "reward": {"type": "webhook", "url": url, "data": {"gift": "mug"}, "cost_fen": 500},
    }]))
    outcome = factory.play(campaign, "w-player", "buy", {"sku": "GIFT", "quantity": 1}).outcome
    settle()
    db_session.rollback()
    return db_session.scalar(select(Grant).where(Grant.claim_id == outcome["claim_id"]))


def test_a_webhook_reward_is_a_signed_post_the_receiver_can_verify(factory, settle, db_session, receiver,
                                                                   webhook_settings):
    app, url = receiver
    grant = _grant(factory, settle, db_session, url)
    [delivery] = app.deliveries
    assert grant.status == GrantStatus.ISSUED and grant.external_id == "webhook:pay-1"
    assert delivery["valid"] and delivery["key"] == grant.id
    document = json.loads(delivery["body"])
    assert document["id"] == grant.id and document["data"] == {"gift": "mug"} and document["user_id"] == "w-player"


@pytest.mark.parametrize("answer", [(500, 0.0), (503, 0.0), (429, 0.0), (200, 1.5)])
def test_a_failed_or_slow_delivery_is_retried_with_the_same_body_and_paid_once(factory, settle, db_session,
                                                                               receiver, webhook_settings, answer):
    app, url = receiver
    app.answers.append(answer)
    grant = _grant(factory, settle, db_session, url)
    assert grant.status == GrantStatus.ISSUED and grant.attempts == 2, grant.last_error
    assert len(app.deliveries) == 2 and len({d["body"] for d in app.deliveries}) == 1
    assert all(d["valid"] for d in app.deliveries) and len(app.paid) == 1


def test_a_refusal_is_a_dead_letter_with_the_receivers_words(factory, settle, db_session, receiver,
                                                             webhook_settings):
    app, url = receiver
    app.answers.append((400, 0.0))
    grant = _grant(factory, settle, db_session, url)
    assert grant.status == GrantStatus.DEAD and grant.attempts == 1
    assert grant.last_error.startswith("HTTP 400: refused with 400")


def test_the_recipe_refuses_a_forged_a_changed_or_a_stale_delivery():
    body = b'{"id":"G1"}'
    now = int(time.time())
    header = sign(SECRET, now, body)
    assert verify_signature(SECRET, header, body)
    assert not verify_signature("another secret", header, body)
    assert not verify_signature(SECRET, header, body + b" ")
    assert not verify_signature(SECRET, sign(SECRET, now - 600, body), body)
    assert not verify_signature(SECRET, "garbage", body)


def test_without_a_secret_nothing_is_sent_and_the_grant_says_why(factory, settle, db_session, receiver):
    app, url = receiver
    grant = _grant(factory, settle, db_session, url)  # the run's settings have no webhook secret
    assert grant.status == GrantStatus.DEAD and "HUODONG_WEBHOOK_SECRET" in grant.last_error
    assert app.deliveries == []
