"""The browser fixtures of the admin page's tests: the app on a real port, Chromium, a publisher and a viewer."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from campaigns.users import AdminUserService
from tests.support.browser import CHROMIUM, PASSWORD, playwright_api


@pytest.fixture
def server(live_url) -> str:
    return live_url


@pytest.fixture
def browser() -> Iterator[Any]:
    assert Path(CHROMIUM).exists(), "Debian's chromium is needed: apt-get install -y chromium (make install does)"
    with playwright_api.sync_playwright() as p:
        launched = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        yield launched
        launched.close()


@pytest.fixture
def users(container) -> dict[str, str]:
    with container.session_factory() as session:
        service = AdminUserService(session, clock=container.clock)
        for role in ("publisher", "viewer"):
            service.create(email=f"{role}@huodong.test", password=PASSWORD, role=role, actor="test")
    return {"publisher": "publisher@huodong.test", "viewer": "viewer@huodong.test"}
