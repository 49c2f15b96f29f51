"""A grant the provider will not take is retried, then left as a dead letter with its last error."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from campaigns.models import Grant, GrantStatus

from ..support import unreliable_adapters  # noqa: F401  (registers points_down and points_refused)
from ..support.factories import flash_sale_definition


@pytest.mark.parametrize(("reward_type", "attempts", "error"), [
    ("points_down", 4, "provider timed out"),  # the first try and the three retries of the test settings
    ("points_refused", 1, "payee not found"),  # refused for good: no retry
])
def test_a_grant_the_provider_never_accepts_ends_dead_with_its_error(
        reward_type, attempts, error, factory, settle, db_session):
    definition = flash_sale_definition(stock=3)
    definition["config"]["skus"][0]["reward"] = {"type": reward_type, "amount": 5, "cost_fen": 5}
    campaign_id = factory.campaign(definition)
    factory.play(campaign_id, "unlucky")

    settle()

    grant = db_session.scalar(select(Grant))
    assert grant.status == GrantStatus.DEAD
    assert grant.attempts == attempts
    assert error in grant.last_error
