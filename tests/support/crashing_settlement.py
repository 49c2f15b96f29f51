"""Run one settlement step that SIGKILLs itself right after committing rows, before enqueueing or acking.

Usage: python -m tests.support.crashing_settlement  (settings come from HUODONG_* variables)
"""

from __future__ import annotations

import os
import signal

from engine.config import load_settings
from web.container import Container


def main() -> None:
    container = Container.build(load_settings())

    def die(_grant_ids: list[str]) -> None:
        os.kill(os.getpid(), signal.SIGKILL)

    container.settlement(consumer="doomed", after_commit=die).step(block_ms=1000)


if __name__ == "__main__":
    main()
