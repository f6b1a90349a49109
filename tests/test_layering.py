"""Every dependency between the project's modules is a plain import that lint-imports can see: no
``importlib.import_module`` or ``__import__`` of a project module, anywhere in the project."""

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
