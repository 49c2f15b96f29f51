from __future__ import annotations

from typing import Any

import pytest

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
