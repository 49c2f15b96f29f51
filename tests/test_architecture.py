"""The import rules of DESIGN.md, checked on the source: which package may import which."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("engine", "campaigns", "games", "rewards", "challenges", "alipay_platform", "web")
# The Alipay sandbox is a test and demo tool: no product package may import it but the demo command (web/cli.py),
# and it imports no product package (it checks the product; it must not agree with it by sharing its code).
SANDBOX = "alipay_sandbox"
ALLOWED = {
    "engine": set(),
    "campaigns": {"engine"},
    "games": {"engine"},
    "challenges": {"engine"},
    "rewards": {"engine", "campaigns", "alipay_platform"},
    "alipay_platform": {"engine", "campaigns"},
    "web": {"engine", "campaigns", "rewards", "alipay_platform"},
}
FRAMEWORKS_GAMES_MUST_NOT_USE = {"flask", "sqlalchemy", "redis", "rq"}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("package", PACKAGES)
def test_each_package_imports_only_what_the_architecture_allows(package):
    offenders = {}
    for path in (ROOT / package).rglob("*.py"):
        forbidden = (_imports(path) & set(PACKAGES)) - ALLOWED[package] - {package}
        if forbidden:
            offenders[str(path.relative_to(ROOT))] = sorted(forbidden)
    assert offenders == {}


def test_the_sandbox_shares_no_code_with_the_product_and_only_the_demo_starts_it():
    sandbox_imports = set().union(*(_imports(p) for p in (ROOT / SANDBOX).rglob("*.py")))
    assert sandbox_imports & set(PACKAGES) == set()
    importers = sorted(str(p.relative_to(ROOT)) for package in PACKAGES for p in (ROOT / package).rglob("*.py")
                       if SANDBOX in _imports(p))
    assert importers == ["web/cli.py"]


def test_games_use_no_flask_sql_or_redis():
    offenders = {str(p.relative_to(ROOT)): sorted(_imports(p) & FRAMEWORKS_GAMES_MUST_NOT_USE)
                 for p in (ROOT / "games").rglob("*.py") if _imports(p) & FRAMEWORKS_GAMES_MUST_NOT_USE}
    assert offenders == {}


def test_only_the_config_module_reads_the_environment():
    readers = [str(p.relative_to(ROOT)) for package in PACKAGES for p in (ROOT / package).rglob("*.py")
               if "os.environ" in p.read_text() or "getenv" in p.read_text()]
    assert readers == ["engine/config.py", "web/cli.py"]  # the CLI only passes its environment on to children


def test_every_lua_script_documents_its_keys_and_arguments():
    for script in (ROOT / "engine" / "scripts").glob("*.lua"):
        text = script.read_text()
        used_keys = {int(n) for n in __import__("re").findall(r"KEYS\[(\d+)\]", text.split("\n\n", 1)[1])}
        for n in used_keys:
            assert f"-- KEYS[{n}]" in text, f"{script.name} does not document KEYS[{n}]"
