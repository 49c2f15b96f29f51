"""The admin page (/admin): server-rendered Jinja pages for marketers, on the admin JSON API.

The pages render what the services answer and call the same JSON API that
scripts use (web/admin) from a little JavaScript, with the session's CSRF
token; no business rule lives in a template or in the JavaScript. Every page
answers with a strict Content-Security-Policy (scripts and styles from this
origin only), and follows the browser's language (zh-CN or English).
"""

from __future__ import annotations

from flask import Blueprint, Flask, Response, request
from flask_babel import Babel

CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
       "font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")

bp = Blueprint("pages", __name__, url_prefix="/admin", template_folder="templates", static_folder="static",
               static_url_path="/static")


def select_locale() -> str:
    """zh_Hans_CN for a browser asking for Chinese (zh, zh-CN, zh-Hans...), else English."""
    for language, _quality in request.accept_languages:
        if language.lower().startswith("zh"):
            return "zh_Hans_CN"
        if language.lower().startswith("en"):
            return "en"
    return "zh_Hans_CN" if not request.accept_languages else "en"


@bp.after_request
def security_headers(response: Response) -> Response:
    response.headers["Content-Security-Policy"] = CSP
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers["X-Frame-Options"] = "DENY"
    if response.mimetype == "text/html":
        response.headers["Cache-Control"] = "no-store"
    return response


def init_app(app: Flask, *, secure_cookies: bool) -> None:
    app.config.update(SESSION_COOKIE_HTTPONLY=True, SESSION_COOKIE_SAMESITE="Lax",
                      SESSION_COOKIE_SECURE=secure_cookies, SESSION_COOKIE_NAME="huodong_admin",
                      SESSION_COOKIE_PATH="/admin", BABEL_DEFAULT_LOCALE="en",
                      BABEL_TRANSLATION_DIRECTORIES=str(app.root_path + "/translations"))
    Babel(app, locale_selector=select_locale)
    from . import views  # noqa: F401  (routes register on bp)

    app.register_blueprint(bp)
