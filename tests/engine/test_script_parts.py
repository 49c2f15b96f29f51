"""The scripts' parts (engine/scripts.py SCRIPT_PARTS): every prelude a script loads exists, and each part calls
only what a part loaded before it (or itself) defines, so the declared order is the order that works; the claim's
request document has the fields lib/request.lua declares, no more and no fewer."""

from __future__ import annotations

import dataclasses
import re
from importlib import resources

import pytest

from engine.claim_call import REQUEST_FIELDS, ClaimRequest
from engine.scripts import SCRIPT_PARTS

FOLDER = resources.files("engine") / "scripts"
DEFINED = re.compile(r"^local function (\w+)|^local (\w+(?:, \w+)*) =", re.M)


def _source(part: str) -> str:
    return (FOLDER / "lib" / f"{part}.lua").read_text()


def _defined(source: str) -> set[str]:
    names = set()
    for function, variables in DEFINED.findall(source):
        names |= {function} if function else {v.strip() for v in variables.split(",")}
    return names


def _called(source: str, names: set[str]) -> set[str]:
    code = "\n".join(line.split("--", 1)[0] for line in source.splitlines())  # comments name parts freely
    return {name for name in names if re.search(rf"\b{name}\b", code)}


@pytest.mark.parametrize("script", sorted(SCRIPT_PARTS))
def test_each_part_uses_only_what_the_parts_before_it_define(script):
    parts = SCRIPT_PARTS[script]
    defined_by = {part: _defined(_source(part)) for part in parts}
    everything = set().union(*defined_by.values())
    known: set[str] = set()
    for part in parts:
        source = _source(part)
        used = _called(source, everything) - defined_by[part]
        assert used <= known, f"{script}: lib/{part}.lua uses {sorted(used - known)} before they are loaded"
        known |= defined_by[part]
    main = (FOLDER / f"{script}.lua").read_text()
    assert _called(main, everything), f"{script}.lua uses none of its parts"


def test_every_library_part_is_loaded_by_some_script():
    parts = {p.name.removesuffix(".lua") for p in (FOLDER / "lib").iterdir() if p.name.endswith(".lua")}
    assert parts == set().union(*SCRIPT_PARTS.values())


def test_the_request_document_is_the_claim_request_and_the_two_fields_the_wrapper_adds():
    python = {f.name for f in dataclasses.fields(ClaimRequest)}
    assert set(REQUEST_FIELDS) == python | {"screened"}
    assert len(REQUEST_FIELDS) == len(set(REQUEST_FIELDS))
