"""Every number a marketer or a player can send has a stated range.

A number without bounds reaches code that has some (numpy's seed, a Redis
TTL, a SQL integer column) and answers 500 instead of a coded 422. The
OpenAPI document's side is tests/web/test_openapi.py; this walks the
marshmallow schemas the document does not spell out: every game's config and
action bodies, every reward type's parameters, fraud policies and the forecast.
"""

from __future__ import annotations

from typing import Any

import marshmallow
import pytest
from marshmallow import fields, validate

import games  # noqa: F401  (registers the games)
import rewards  # noqa: F401  (registers the reward types)
from engine.fraud.policy import PolicySchema
from engine.game import games as game_registry
from engine.reward_types import reward_types
from engine.simulation import BehaviourSchema


def bounded(field: fields.Field) -> bool:
    ranges = [v for v in field.validators if isinstance(v, validate.Range)]
    return (any(r.min is not None for r in ranges) and any(r.max is not None for r in ranges)) or any(
        isinstance(v, validate.OneOf | validate.Equal) for v in field.validators)


def unbounded_numbers(schema: marshmallow.Schema | type[marshmallow.Schema], where: str,
                      seen: set[type] | None = None) -> list[str]:
    seen = set() if seen is None else seen
    schema_class = schema if isinstance(schema, type) else type(schema)
    if schema_class in seen:
        return []
    seen.add(schema_class)
    found: list[str] = []

    def walk(field: fields.Field, at: str) -> None:
        if field.dump_only:
            return
        if isinstance(field, fields.Nested):
            nested = field.nested() if callable(field.nested) and not isinstance(field.nested, type) else field.nested
            if isinstance(nested, type | marshmallow.Schema):
                found.extend(unbounded_numbers(nested, at, seen))
        elif isinstance(field, fields.List):
            walk(field.inner, at + "[]")
        elif isinstance(field, fields.Tuple):
            for i, inner in enumerate(field.tuple_fields):
                walk(inner, f"{at}[{i}]")
        elif isinstance(field, fields.Dict) and field.value_field is not None:
            walk(field.value_field, at + "{}")
        elif isinstance(field, fields.Number) and not bounded(field):
            found.append(at)

    for name, field in schema_class._declared_fields.items():
        walk(field, f"{where}.{name}")
    return found


def input_schemas() -> dict[str, Any]:
    schemas: dict[str, Any] = {"fraud policy": PolicySchema, "forecast behaviour": BehaviourSchema}
    for name in game_registry:
        game = game_registry.get(name)
        if game.__module__.startswith("tests."):
            continue  # the tests' own game (tests/support/ops_game.py) is no product input
        schemas[f"{name} config"] = game.config_schema
        for action, schema in game.actions.items():
            schemas[f"{name} {action}"] = schema
    for name in reward_types:
        adapter = reward_types.get(name)
        if not adapter.__module__.startswith("tests."):  # nor are the tests' own adapters
            schemas[f"reward {name}"] = adapter.params_schema
    return schemas


def test_the_walk_sees_every_plugin_and_finds_an_unbounded_number():
    schemas = input_schemas()
    assert {"flash_sale config", "lottery draw", "reward points", "reward alipay_voucher"} <= set(schemas)

    class Loose(marshmallow.Schema):
        fine = fields.Integer(validate=validate.Range(min=0, max=9))
        loose = fields.Float(validate=validate.Range(min=0))
        inner = fields.List(fields.Nested(marshmallow.Schema.from_dict({"n": fields.Integer()})))

    assert sorted(unbounded_numbers(Loose, "loose")) == ["loose.inner[].n", "loose.loose"]


@pytest.mark.parametrize("name", sorted(input_schemas()))
def test_every_number_sent_in_has_a_minimum_and_a_maximum(name):
    assert unbounded_numbers(input_schemas()[name], name) == []
