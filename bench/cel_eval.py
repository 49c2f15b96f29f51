"""Cost of evaluating one audience rule with each Python CEL binding (to choose one for issue 3).

Runs outside the project's virtualenv, since only one binding will be kept:

    python3 -m venv /tmp/celbench
    /tmp/celbench/bin/pip install cel-python==0.5.0 common-expression-language==0.10.0
    /tmp/celbench/bin/python bench/cel_eval.py
"""

from __future__ import annotations

import datetime
import time

RULE = "user.tier in ['gold', 'platinum'] && user.orders_30d >= 2 && 'vip' in user.tags && user.city == 'Hangzhou'"
USER = {"tier": "gold", "orders_30d": 3, "tags": ["vip", "new"], "city": "Hangzhou", "points": 120,
        "registered_at": datetime.datetime(2025, 1, 1, tzinfo=datetime.UTC)}


def per_call_us(call, rounds: int) -> float:
    call()
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        for _ in range(rounds):
            call()
        best = min(best, (time.perf_counter() - started) / rounds * 1e6)
    return best


def main() -> None:
    import cel  # common-expression-language: Rust (cel-interpreter) through PyO3
    import celpy  # cel-python: pure Python on lark

    rust = cel.compile(RULE)
    assert rust.execute({"user": USER}) is True
    rust_us = per_call_us(lambda: rust.execute({"user": USER}), 20_000)

    env = celpy.Environment()
    program = env.program(env.compile(RULE))
    as_json = {k: v.isoformat() if isinstance(v, datetime.datetime) else v for k, v in USER.items()}
    assert bool(program.evaluate({"user": celpy.json_to_cel(as_json)})) is True
    pure_us = per_call_us(lambda: program.evaluate({"user": celpy.json_to_cel(as_json)}), 2_000)

    print(f"rule: {RULE}")
    print(f"common-expression-language 0.10 (Rust): {rust_us:8.1f} us per evaluation, user dict converted each call")
    print(f"cel-python 0.5 (pure Python):           {pure_us:8.1f} us per evaluation")
    print(f"ratio: {pure_us / rust_us:.0f}x")


if __name__ == "__main__":
    main()
