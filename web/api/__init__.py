"""The player API under /api/v1: login, campaigns, plays, and the player's own history."""

from flask_smorest import Blueprint

from ..jsonio import ArgumentsParser

blp = Blueprint("player", __name__, url_prefix="/api/v1", description="The mini-program's API.")
blp.ARGUMENTS_PARSER = ArgumentsParser()

# Campaign ids are SQL INTEGERs: a larger id is no campaign (404), not an overflow in the database driver.
CAMPAIGN_ID = "<int(max=2147483647):campaign_id>"

from . import auth, campaigns, me, notify  # noqa: E402,F401  (routes register on blp)
