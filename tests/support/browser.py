"""Driving the admin page in Debian's Chromium with Playwright: signing in, screenshots, the XSS probe."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

CHROMIUM = "/usr/bin/chromium"
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"  # README: "The admin page"
PASSWORD = "correct horse battery"
XSS = '<img src=x onerror="window.__xss=1">'

playwright_api = pytest.importorskip("playwright.sync_api")
expect = playwright_api.expect


def sign_in(browser: Any, server: str, email: str, *, locale: str = "en-US") -> Any:
    page = browser.new_page(locale=locale, viewport={"width": 1280, "height": 900})
    page.dialogs = []  # the confirmations it was asked, accepted

    def accept(dialog: Any) -> None:
        page.dialogs.append(dialog.message)
        dialog.accept()

    page.on("dialog", accept)
    page.errors = []  # what the page's scripts threw
    page.on("pageerror", lambda error: page.errors.append(str(error)))
    page.goto(f"{server}/admin/")
    assert "/admin/login" in page.url
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{server}/admin/")
    return page


def shot(page: Any, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)
