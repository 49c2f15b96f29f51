"""Game plugins: importing this package registers the built-in games with the engine."""

from . import flash_sale  # noqa: F401  (registers itself)
