"""domain/ imports only the standard library and never reads a clock, randomness or does I/O."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

DOMAIN = Path(__file__).resolve().parents[2] / "domain"
FILES = sorted(DOMAIN.glob("*.py"))
FORBIDDEN_MODULES = {
    "random",
    "secrets",
    "time",
    "uuid",
    "os",
    "io",
    "pathlib",
    "socket",
    "subprocess",
    "shutil",
    "tempfile",
    "sqlite3",
    "urllib",
    "http",
    "logging",
    "threading",
    "asyncio",
    "zoneinfo",
}
FORBIDDEN_NAMES = {"now", "utcnow", "today", "uuid1", "uuid4", "time_ns", "monotonic", "perf_counter"}
FORBIDDEN_CALLS = {"open", "print", "input", "exec", "eval", "__import__"}


def _import_violations(node: ast.AST) -> list[str]:
    if isinstance(node, ast.Import):
        names = [alias.name for alias in node.names]
    elif isinstance(node, ast.ImportFrom) and node.level == 0:
        names = [node.module or ""] + [f"{node.module}.{alias.name}" for alias in node.names]
    else:
        return []
    out = []
    for name in names:
        top = name.split(".")[0]
        if top in ("domain", "__future__"):
            continue
        if top not in sys.stdlib_module_names:
            out.append(f"line {node.lineno}: non-stdlib import {name}")
        elif top in FORBIDDEN_MODULES or name.split(".")[-1] in FORBIDDEN_NAMES:
            out.append(f"line {node.lineno}: forbidden import {name}")
    return out


def violations(source: str) -> list[str]:
    """Every impure import, clock/random/uuid use and I/O call in ``source``."""
    out: list[str] = []
    for node in ast.walk(ast.parse(source)):
        out += _import_violations(node)
        if isinstance(node, ast.Attribute) and node.attr in FORBIDDEN_NAMES:
            out.append(f"line {node.lineno}: uses .{node.attr}")
        elif isinstance(node, ast.Name) and node.id in FORBIDDEN_NAMES:
            out.append(f"line {node.lineno}: uses {node.id}")
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in FORBIDDEN_CALLS:
            out.append(f"line {node.lineno}: calls {node.func.id}()")
    return out


def test_domain_has_the_expected_modules() -> None:
    assert {p.name for p in FILES} >= {"events.py", "case.py", "registry.py", "projections.py", "roles.py"}


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_domain_module_is_pure(path: Path) -> None:
    assert violations(path.read_text(encoding="utf-8")) == []


def test_checker_catches_each_kind_of_violation() -> None:
    bad = (
        "import pydantic\nimport random\nfrom uuid import uuid4\nfrom time import time\n"
        "from datetime import datetime\nx = datetime.now()\nopen('f')\nimport os.path\n"
    )
    found = violations(bad)
    for needle in ("pydantic", "random", "uuid4", "import time", ".now", "open()", "os.path"):
        assert any(needle in v for v in found), needle
