"""Audience rules: a CEL expression over the player's attributes, e.g. ``user.tier in ['gold']``.

Evaluated with ``common-expression-language`` (the Rust cel-interpreter
through PyO3): about 10 us per rule against 330 us for the pure-Python
binding (bench/RESULTS.md). A rule is checked at save and publish: its syntax,
that it names only ``user``, that every ``user.<attribute>`` is a known one,
and that it evaluates to a boolean over default values; errors carry their
line and column.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import cel

# Built-in attributes and their type; imported attributes add to these (see campaigns.attributes).
BUILTIN_ATTRIBUTES: dict[str, str] = {
    "tier": "string",
    "tags": "list",
    "city": "string",
    "registered_at": "timestamp",
    "orders_30d": "int",
    "points": "int",
}
ATTRIBUTE_TYPES = ("string", "int", "float", "bool", "list", "timestamp")
DEFAULTS: dict[str, Any] = {
    "string": "", "int": 0, "float": 0.0, "bool": False, "list": [],
    "timestamp": datetime(1970, 1, 1, tzinfo=UTC),
}
MAX_LENGTH = 2000

_STRING = re.compile(r"""[rRbB]?('''.*?'''|\"\"\".*?\"\"\"|'(?:\\.|[^'\\\n])*'|"(?:\\.|[^"\\\n])*")""", re.S)
_MEMBER = re.compile(r"\buser\s*\.\s*([A-Za-z_][A-Za-z0-9_]*)")
_INDEX = re.compile(r"""\buser\s*\[\s*(?:'([^']*)'|"([^"]*)")\s*\]""")
_PARSE_POSITION = re.compile(r"<input>:(\d+):(\d+):\s*(.*)")


@dataclass(frozen=True)
class RuleProblem:
    message: str
    line: int
    column: int

    def __str__(self) -> str:
        """The form a field error takes: ``line 1, column 15: Syntax error: ...``."""
        return f"line {self.line}, column {self.column}: {self.message}"


class Audience:
    """A compiled rule. ``admits`` is False for a player whose attributes make the rule fail to evaluate."""

    def __init__(self, expression: str) -> None:
        self.expression = expression
        self._program = cel.compile(expression)

    def admits(self, attributes: Mapping[str, Any], types: Mapping[str, str]) -> bool:
        context = {name: DEFAULTS[kind] for name, kind in types.items()}
        context.update(attributes)
        try:
            return self._program.execute({"user": context}) is True
        except (KeyError, TypeError, ValueError, RuntimeError):
            return False


def problems(expression: str, types: Mapping[str, str]) -> list[RuleProblem]:
    """Everything wrong with a rule, each at its position (empty: the rule is fine)."""
    if len(expression) > MAX_LENGTH:
        return [RuleProblem(f"A rule is at most {MAX_LENGTH} characters.", 1, MAX_LENGTH + 1)]
    try:
        program = cel.compile(expression)
    except ValueError as exc:
        return [_parse_problem(expression, str(exc))]
    found = []
    code = _without_strings(expression)
    for name in program.variables():
        if name != "user":
            offset = _find_word(code, name)
            found.append(RuleProblem(f"Unknown name {name!r}: a rule reads the player as user.<attribute>.",
                                     *_position(expression, offset)))
    for match in [*_MEMBER.finditer(code), *_INDEX.finditer(expression)]:
        name = next(g for g in match.groups() if g is not None)
        if name not in types:
            found.append(RuleProblem(f"Unknown attribute user.{name}. Known: {', '.join(sorted(types))}.",
                                     *_position(expression, match.start(1) if match.group(1) is not None
                                                else match.start(2))))
    if found:
        return sorted(found, key=lambda p: (p.line, p.column))
    context = {name: DEFAULTS[kind] for name, kind in types.items()}
    try:
        result = program.execute({"user": context})
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        return [RuleProblem(f"The rule cannot be evaluated: {exc}", 1, 1)]
    if not isinstance(result, bool):
        return [RuleProblem(f"A rule must answer true or false, not {type(result).__name__}.", 1, 1)]
    return []


def _parse_problem(expression: str, text: str) -> RuleProblem:
    match = _PARSE_POSITION.search(text)
    if not match:
        return RuleProblem(text, 1, 1)
    detail = match.group(3).split("\n")[0]
    return RuleProblem(f"Syntax error: {detail.removeprefix('Syntax error: ')}", int(match.group(1)),
                       int(match.group(2)))


def _without_strings(expression: str) -> str:
    """The expression with string literals blanked out (same length), so names inside quotes are not names."""
    return _STRING.sub(lambda m: " " * len(m.group(0)), expression)


def _find_word(code: str, word: str) -> int:
    match = re.search(rf"\b{re.escape(word)}\b", code)
    return match.start() if match else 0


def _position(expression: str, offset: int) -> tuple[int, int]:
    """1-based line and column of a character offset."""
    line = expression.count("\n", 0, offset) + 1
    column = offset - (expression.rfind("\n", 0, offset) + 1) + 1
    return line, column
