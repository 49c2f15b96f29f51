"""The player API under /api/v1: login, campaigns, plays, and the player's own history."""

from flask_smorest import Blueprint

blp = Blueprint("player", __name__, url_prefix="/api/v1", description="The mini-program's API.")

from . import auth, campaigns, me  # noqa: E402,F401  (routes register on blp)
