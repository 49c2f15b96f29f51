from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.support.client import MiniProgramClient
from tests.support.factories import Factory
from web import create_app

ADMIN = "/admin/api/v1"


@pytest.fixture
def admin(admin_token) -> dict[str, str]:
    """An admin's headers for the admin API."""
    return {"Authorization": f"Bearer {admin_token('admin')}"}


@pytest.fixture
def policy(client, admin):
    """Saves a policy under a name (every rule off unless the test turns it on) and answers the name."""

    def save(name: str = "strict", **rules: Any) -> str:
        document = {"replay": {"mode": "off"}, "devices": {"mode": "off"}, "rate_limits": [], "risk": {"mode": "off"},
                    "referral": {"mode": "off"}, **rules}
        saved = client.put(f"{ADMIN}/fraud-policies/{name}", json=document, headers=admin)
        assert saved.status_code == 200, saved.json
        return name

    return save


class ManualClock:
    def __init__(self) -> None:
        self.at = datetime.now(UTC)

    def now(self) -> datetime:
        return self.at

    def advance(self, seconds: float) -> None:
        self.at += timedelta(seconds=seconds)


@pytest.fixture
def clock() -> ManualClock:
    """Time the test moves (tap rhythms, ages and windows exact)."""
    return ManualClock()


@pytest.fixture
def world(settings, clock, admin_token):
    return make_world(settings, clock, admin_token)


def make_world(settings, clock, admin_token) -> dict[str, Any]:
    """An app on the manual clock, its test client, a factory and an admin's headers."""
    app = create_app(settings, clock=clock)
    app.config["TESTING"] = True
    app.test_client_class = MiniProgramClient
    client = app.test_client()
    container = app.extensions["huodong.container"]
    return {"client": client, "factory": Factory(container, client), "container": container,
            "admin": {"Authorization": f"Bearer {admin_token('admin')}"}}
