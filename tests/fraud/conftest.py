from __future__ import annotations

import pytest


@pytest.fixture
def admin(admin_token) -> dict[str, str]:
    """An admin's headers for the admin API."""
    return {"Authorization": f"Bearer {admin_token('admin')}"}
