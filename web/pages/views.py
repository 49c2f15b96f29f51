"""The admin page's routes: sign-in, the campaign list, a campaign, the editor, the review queue, the preview.

Each view reads what the page shows through the services, as the JSON API
does; what a page changes it changes by calling the JSON API from the browser
(static/admin.js), with the session's CSRF token.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, time, timedelta
from functools import wraps
from typing import Any
from zoneinfo import ZoneInfo

from flask import abort, redirect, render_template, request, session, url_for
from flask_babel import get_locale, gettext
from werkzeug.wrappers import Response

from campaigns import audit as audit_log
from campaigns.activity import plays_since
from campaigns.models import AdminRole, GrantStatus
from campaigns.tokens import AdminTokenService
from campaigns.users import AdminUserService
from engine.clock import iso
from engine.errors import HuodongError, NotFoundError
from engine.fraud.policy import policy_of
from engine.game import games
from rewards.coupons import pools

from ..api import CAMPAIGN_ID
from ..auth import Admin, check_csrf, csrf_token, session_user
from ..requestctx import container, db
from . import bp
from .labels import ENUM_LABELS, FIELD_LABELS

# The campaign list's "plays today" counts from midnight in the marketers' zone.
BUSINESS_ZONE = ZoneInfo("Asia/Shanghai")
AUDIT_PAGE = 100


def page(role: AdminRole = AdminRole.VIEWER) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """A page for a signed-in admin user of at least ``role``; others go to the sign-in page."""

    def decorator(view: Callable[..., Any]) -> Callable[..., Any]:
        @wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            user = session_user(db())
            if user is None:
                return redirect(url_for("pages.login", next=request.full_path))
            admin = Admin.of_user(user)
            if not admin.may(role):
                abort(403)
            return view(admin, *args, **kwargs)

        return wrapper

    return decorator


def render(template: str, admin: Admin | None, **context: Any) -> str:
    lang = "zh-CN" if str(get_locale()).startswith("zh") else "en"
    return render_template(template, admin=admin, csrf=csrf_token(), roles=AdminRole, lang=lang, **context)


@bp.route("/login", methods=["GET", "POST"])
def login() -> Any:
    error, status = None, 200
    if request.method == "POST":
        try:
            check_csrf()
            user = AdminUserService(db(), clock=container().clock).authenticate(
                request.form.get("email", ""), request.form.get("password", ""))
        except HuodongError as exc:  # wrong credentials, a locked account, a stale form (CSRF)
            error, status = exc, exc.http_status
        else:
            session.clear()  # a new session (and CSRF token) at sign-in: no fixation
            session["admin_user_id"] = user.id
            target = request.args.get("next", "")
            return redirect(target if target.startswith("/admin") and "//" not in target else url_for("pages.index"))
    return render("admin/login.html", None, error=error), status


@bp.route("/logout", methods=["POST"])
def logout() -> Response:
    check_csrf()
    session.clear()
    return redirect(url_for("pages.login"))


@bp.route("/")
@page()
def index(admin: Admin) -> str:
    c = container()
    status, game, query = request.args.get("status") or None, request.args.get("game") or None, \
        request.args.get("q", "").strip()
    campaigns = c.campaign_service(db()).list(status=status, game=game, name_contains=query)
    midnight = datetime.combine(c.clock.now().astimezone(BUSINESS_ZONE).date(), time(), BUSINESS_ZONE)
    today = plays_since(db(), midnight)
    rows = [{"campaign": x, "live": c.live_state.stats(x.id) if x.live_version else None,
             "plays_today": today.get(x.id, 0)} for x in campaigns]
    return render("admin/campaigns.html", admin, rows=rows, games=sorted(games.keys()), status=status,
                  game=game, q=query)


@bp.route("/campaigns/new")
@page(AdminRole.MARKETER)
def new_campaign(admin: Admin) -> str:
    game = request.args.get("game", "lottery")
    if game not in games:
        abort(404)
    now = container().clock.now()
    example = games.get(game)().demo_definitions(iso(now + timedelta(hours=1)), iso(now + timedelta(days=8)))[0]
    return _editor(admin, None, game, example)


@bp.route(f"/campaigns/{CAMPAIGN_ID}/edit")
@page(AdminRole.MARKETER)
def edit_campaign(admin: Admin, campaign_id: int) -> str:
    campaign = _campaign(campaign_id)
    return _editor(admin, campaign, campaign.game, campaign.draft)


def _editor(admin: Admin, campaign: Any, game: str, definition: dict[str, Any]) -> str:
    return render("admin/editor.html", admin, campaign=campaign, game=game, definition=definition,
                  definition_json=json.dumps(definition, ensure_ascii=False, indent=2), labels=form_labels())


@bp.route(f"/campaigns/{CAMPAIGN_ID}")
@page()
def campaign(admin: Admin, campaign_id: int) -> str:
    found = _campaign(campaign_id)
    service = container().campaign_service(db())
    versions = service.versions(campaign_id)
    live = next((v.version.definition for v in versions if v.version.version == found.live_version), None)
    return render("admin/campaign.html", admin, campaign=found, versions=versions,
                  changes=service.pending_changes(campaign_id),
                  shadow_warning=container().fraud_policy_service(db()).publish_warning(policy_of(found.draft)),
                  live_rollout=live["rollout_percent"] if live else None)


@bp.route(f"/campaigns/{CAMPAIGN_ID}/review")
@page()
def review(admin: Admin, campaign_id: int) -> str:
    found = _campaign(campaign_id)
    held = container().review_service(db()).queue(campaign_id)
    return render("admin/review.html", admin, campaign=found, held=held)


@bp.route(f"/campaigns/{CAMPAIGN_ID}/preview")
@page()
def preview(admin: Admin, campaign_id: int) -> str:
    found = _campaign(campaign_id)
    return render("admin/preview.html", admin, campaign=found, dev_login=container().settings.dev_login,
                  prizes=found.draft.get("config", {}).get("prizes", []))


@bp.route("/settlement")
@page()
def settlement(admin: Admin) -> str:
    status = request.args.get("status") or None
    grants = container().grant_service(db()).list(status=status, limit=100)
    return render("admin/settlement.html", admin, grants=grants, status=status, pools=pools(db()),
                  statuses=[str(s) for s in GrantStatus])


@bp.route("/fraud")
@page()
def fraud(admin: Admin) -> str:
    c = container()
    campaigns = [{"campaign": x, **c.live_state.fraud_stats(x.id)} for x in c.campaign_service(db()).list()
                 if x.live_version]
    return render("admin/fraud.html", admin, policies=c.fraud_policy_service(db()).list(), campaigns=campaigns)


@bp.route("/fraud/policies/new")
@page(AdminRole.MARKETER)
def new_fraud_policy(admin: Admin) -> str:
    return render("admin/fraud_policy.html", admin, name=None, policy={}, labels=form_labels())


@bp.route("/fraud/policies/<string:name>")
@page()
def fraud_policy(admin: Admin, name: str) -> str:
    try:
        found = container().fraud_policy_service(db()).get(name)
    except NotFoundError:
        abort(404)
    return render("admin/fraud_policy.html", admin, name=name, policy=found["policy"], labels=form_labels(),
                  updated=found)


@bp.route("/users")
@page(AdminRole.ADMIN)
def users(admin: Admin) -> str:
    return render("admin/users.html", admin, users=AdminUserService(db(), clock=container().clock).list(),
                  all_roles=[str(r) for r in AdminRole])


@bp.route("/tokens")
@page(AdminRole.ADMIN)
def tokens(admin: Admin) -> str:
    return render("admin/tokens.html", admin, tokens=AdminTokenService(db(), clock=container().clock).list(),
                  all_roles=[str(r) for r in AdminRole])


@bp.route("/audit")
@page()
def audit(admin: Admin) -> str:
    filters = {"subject_type": request.args.get("subject_type") or None,
               "subject_id": request.args.get("subject_id", "").strip()[:64] or None,
               "actor": request.args.get("actor", "").strip()[:100] or None}
    before_id = request.args.get("before_id", type=int)
    entries = audit_log.entries(db(), **filters, before_id=before_id if before_id and before_id > 0 else None,
                                limit=AUDIT_PAGE)
    older = entries[-1].id if len(entries) == AUDIT_PAGE else None
    return render("admin/audit.html", admin, rows=[{"entry": e, "changes": audit_log.changes(e)} for e in entries],
                  filters=filters, older=older, subject_types=audit_log.SUBJECT_TYPES)


def form_labels() -> dict[str, str]:
    """The editor's field and choice labels in the page's language (a field without one shows its name)."""
    return {name: gettext(label) for name, label in {**FIELD_LABELS, **ENUM_LABELS}.items()}


def _campaign(campaign_id: int) -> Any:
    try:
        return container().campaign_service(db()).get(campaign_id)
    except NotFoundError:
        abort(404)
