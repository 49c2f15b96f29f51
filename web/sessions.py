"""Cookie sessions only where a browser page needs them (/admin); the JSON APIs use bearer tokens.

Opening a session costs every request a signed-cookie lookup; the player API,
health and metrics never read one, so they get Flask's null session.
"""

from __future__ import annotations

from flask import Flask, Request
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface

SESSION_PREFIXES = ("/admin",)


class PageOnlySessionInterface(SecureCookieSessionInterface):
    def open_session(self, app: Flask, request: Request) -> SecureCookieSession | None:
        if not request.path.startswith(SESSION_PREFIXES):
            return None  # Flask then uses a null session, which is never saved
        return super().open_session(app, request)
