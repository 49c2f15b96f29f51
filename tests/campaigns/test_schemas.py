"""The campaign definition document: what is accepted, how it is normalised, what is refused."""

from __future__ import annotations

import contextlib
import copy

import marshmallow
import pytest
from hypothesis import given
from hypothesis import strategies as st

import games  # noqa: F401  (registers the games)
import rewards  # noqa: F401  (registers the reward types)
from campaigns.schemas import normalize_definition

from ..support.factories import flash_sale_definition

BASE = flash_sale_definition(stock=100)


def _refusal(change) -> dict:
    document = copy.deepcopy(BASE)
    change(document)
    with pytest.raises(marshmallow.ValidationError) as refused:
        normalize_definition(document)
    return refused.value.normalized_messages()


def test_a_valid_definition_is_normalised_with_defaults_filled_in():
    normal = normalize_definition(BASE)
    assert normal["timezone"] == "Asia/Shanghai"
    assert normal["rollout_percent"] == 100
    assert normal["fraud"] == {"policy": "default", "expects_new_users": False}
    assert normal["starts_at"].endswith("Z")
    assert normal["config"]["skus"][0]["reward"] == {"type": "points", "amount": 50, "expires_in_days": None,
                                                      "cost_fen": 100}
    assert normalize_definition(normal) == normal  # a fixed point: export, import, same document


@pytest.mark.parametrize(("change", "field"), [
    (lambda d: d.pop("name"), "name"),
    (lambda d: d.update(game="bingo"), "game"),
    (lambda d: d.update(timezone="Mars/Olympus"), "timezone"),
    (lambda d: d.update(ends_at="2020-01-01T00:00:00Z"), "ends_at"),
    (lambda d: d.update(starts_at="2026-11-11T00:00:00"), "starts_at"),  # no zone
    (lambda d: d.update(budget_fen=-1), "budget_fen"),
    (lambda d: d.update(audience="user.tier == "), "audience"),
    (lambda d: d.update(audience="user.nope == 'gold'"), "audience"),
    (lambda d: d.update(variants=[{"name": "A", "weight": 1}]), "variants"),
    (lambda d: d.update(variants=[{"name": "A", "weight": 1},
                                  {"name": "B", "weight": 1, "config": {"skus": []}}]), "variants"),
    (lambda d: d.update(rollout_percent=101), "rollout_percent"),
    (lambda d: d.update(owner="me"), "owner"),
    (lambda d: d["limits"].update(per_user=0), "limits"),
    (lambda d: d["config"]["skus"][0].update(stock=-5), "config"),
    (lambda d: d["config"]["skus"].append(copy.deepcopy(d["config"]["skus"][0])), "config"),
    (lambda d: d["config"]["skus"][0]["reward"].update(type="gold_bars"), "config"),
    (lambda d: d["config"]["skus"][0]["reward"].update(type="points_debit"), "config"),
    (lambda d: d["config"]["skus"][0]["reward"].pop("cost_fen"), "config"),
    (lambda d: d["config"]["skus"][0]["reward"].update(amount=0), "config"),
    (lambda d: d["config"]["skus"][0].update(sku="bad sku!"), "config"),
    (lambda d: d["config"].update(payment_window_seconds=5), "config"),
    (lambda d: d["config"].update(skus=[]), "config"),
])
def test_an_invalid_definition_is_refused_at_the_failing_field(change, field):
    assert field in _refusal(change)


@given(st.dictionaries(st.text(max_size=8), st.none() | st.integers() | st.text(max_size=8), max_size=6))
def test_arbitrary_documents_are_refused_cleanly_never_crash(document):
    with contextlib.suppress(marshmallow.ValidationError):
        normalize_definition(document)
