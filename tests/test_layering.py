"""Every dependency between the project's modules is a plain import that lint-imports can see: no
``importlib.import_module`` or ``__import__`` of a project module, anywhere in the project. Tests share
helpers only through ``tests/support/``: no test module imports another."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PROJECT = ("domain", "ledger", "api")
FILES = sorted(p for package in (*PROJECT, "ops", "tests") for p in (ROOT / package).rglob("*.py"))


def dynamic_imports(source: str) -> list[str]:
    """Calls that import a module by a computed or string name (``import_module``, ``__import__``)
    whose first argument is not a literal naming a non-project module."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
        if name not in ("import_module", "__import__"):
            continue
        first = node.args[0] if node.args else None
        literal = first.value if isinstance(first, ast.Constant) and isinstance(first.value, str) else None
        if literal is None or literal.split(".")[0] in PROJECT:
            found.append(f"line {node.lineno}: {name}({ast.unparse(first) if first else ''})")
    return found


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_dynamic_import_of_a_project_module(path: Path) -> None:
    assert dynamic_imports(path.read_text("utf-8")) == []


def test_the_check_finds_what_it_forbids() -> None:
    source = (
        "import importlib\n"
        "importlib.import_module('ledger.cli.app')\n"
        "importlib.import_module(name)\n"
        "__import__('api.cli')\n"
        "__import__('hashlib')\n"
    )
    assert dynamic_imports(source) == [
        "line 2: import_module('ledger.cli.app')",
        "line 3: import_module(name)",
        "line 4: __import__('api.cli')",
    ]


TESTS = sorted((ROOT / "tests").rglob("*.py"))


def imports_of_test_modules(source: str) -> list[str]:
    """Imports of ``tests.*`` modules other than the helpers in ``tests.support``."""
    found = []
    for node in ast.walk(ast.parse(source)):
        names = (
            [node.module or ""] if isinstance(node, ast.ImportFrom) and node.level == 0
            else [a.name for a in node.names] if isinstance(node, ast.Import) else []
        )
        for name in names:
            if name == "tests" and isinstance(node, ast.ImportFrom):
                found.extend(f"line {node.lineno}: tests.{a.name}" for a in node.names if a.name != "support")
            elif name.split(".")[0] == "tests" and name != "tests.support" and not name.startswith("tests.support."):
                found.append(f"line {node.lineno}: {name}")
    return found


@pytest.mark.parametrize("path", TESTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_tests_share_helpers_only_through_tests_support(path: Path) -> None:
    assert imports_of_test_modules(path.read_text("utf-8")) == []
    if "support" in path.relative_to(ROOT / "tests").parts:
        assert "\ndef test_" not in path.read_text("utf-8"), "tests/support holds helpers, not tests"


def test_the_test_import_check_finds_what_it_forbids() -> None:
    source = (
        "from tests.support.cases import Actors\n"
        "from tests.ledger.audit.test_audit import Raw\n"
        "from tests.conftest import ORIGIN\n"
        "from tests import test_cli\n"
        "import tests.api.test_auth\n"
    )
    assert imports_of_test_modules(source) == [
        "line 2: tests.ledger.audit.test_audit",
        "line 3: tests.conftest",
        "line 4: tests.test_cli",
        "line 5: tests.api.test_auth",
    ]
