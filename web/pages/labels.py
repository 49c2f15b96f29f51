"""Words the pages translate from data (a status, a game, a role, an action): marked here for extraction."""

from __future__ import annotations


def N_(message: str) -> str:  # noqa: N802  (gettext's name for "mark, do not translate yet")
    return message


STATUSES = [N_("draft"), N_("live"), N_("paused"), N_("ended")]
GAMES = [N_("flash_sale"), N_("checkin"), N_("lottery"), N_("cards"), N_("referral")]
ROLES = [N_("viewer"), N_("marketer"), N_("publisher"), N_("admin")]
ACTIONS = [N_("buy"), N_("cancel"), N_("draw"), N_("buy_chances"), N_("checkin"), N_("makeup"), N_("open"),
           N_("assist"), N_("cashout"), N_("gift"), N_("ask"), N_("accept"), N_("task_start"), N_("task_complete")]
GRANT_STATUSES = [N_("pending"), N_("issued"), N_("failed"), N_("unknown"), N_("dead"), N_("held"), N_("rejected")]
