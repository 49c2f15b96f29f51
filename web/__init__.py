"""The Flask application factory: player API, admin API, OpenAPI, health and metrics."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from engine.clock import Clock
from engine.config import Settings, load_settings

from .auth import PlayerTokens
from .container import Container
from .errors import register_error_handlers
from .jsonio import StrictJSONProvider, refuse_nul_in_query
from .logs import configure_logging
from .openapi import add_security, make_api
from .requestctx import close_db
from .sessions import PageOnlySessionInterface


def create_app(config: Mapping[str, Any] | Settings | None = None, *, clock: Clock | None = None) -> Flask:
    """Build the app. ``config`` is a Settings or a dict of setting overrides (tests pass one)."""
    settings = config if isinstance(config, Settings) else load_settings(config)
    configure_logging(settings)
    app = Flask(__name__, instance_path=str(settings.instance_dir.resolve()))
    app.json_provider_class = StrictJSONProvider
    app.json = StrictJSONProvider(app)
    app.config.update(SECRET_KEY=settings.secret_key, MAX_CONTENT_LENGTH=settings.max_content_length)
    app.session_interface = PageOnlySessionInterface()
    if settings.trusted_proxies:  # the client's address from the proxies' X-Forwarded-For (web/features.py)
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=settings.trusted_proxies)  # type: ignore[method-assign]

    container = Container.build(settings, clock)
    app.extensions["huodong.container"] = container
    app.extensions["huodong.player_tokens"] = PlayerTokens(settings.secret_key, settings.player_token_ttl_seconds)
    app.teardown_appcontext(close_db)
    app.before_request(refuse_nul_in_query)

    from .admin import blp as admin_blp
    from .api import blp as player_blp
    from .health import bp as health_bp

    api = make_api(app)
    api.register_blueprint(player_blp)
    api.register_blueprint(admin_blp)
    app.register_blueprint(health_bp)
    from .pages import init_app as init_pages

    init_pages(app, secure_cookies=settings.secure_cookies)
    add_security(api.spec._paths)  # apispec keeps registered paths there
    register_error_handlers(app)
    app.extensions["huodong.api"] = api
    return app
