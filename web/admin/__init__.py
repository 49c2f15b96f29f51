"""The admin JSON API under /admin/api/v1: what the admin page and merchants' scripts call."""

from flask_smorest import Blueprint

from ..jsonio import ArgumentsParser

blp = Blueprint("admin", __name__, url_prefix="/admin/api/v1", description="Campaign management.")
blp.ARGUMENTS_PARSER = ArgumentsParser()

from . import activity, audience, audit, campaigns, coupons, forms, fraud, grants, players, review, tokens, users  # noqa: E402,F401  (routes register on blp)
