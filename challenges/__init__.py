"""The built-in challenge providers (engine/fraud/challenge.py): importing this package registers them."""

from . import slider, token  # noqa: F401
