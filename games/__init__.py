"""Game plugins: importing this package registers the built-in games with the engine."""

from . import cards, checkin, flash_sale, lottery, referral  # noqa: F401  (each registers itself)
