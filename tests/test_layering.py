"""Every dependency between the project's modules is a plain import that lint-imports can see: no
``importlib.import_module`` or ``__import__`` of a project module, anywhere in the project. Tests share
helpers only through ``tests/support/``: no test module imports another. The offline verifier
(``ledger/verify/``) is used from the rest of the project only through its public surface, its
``__all__``."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType

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


# --- the offline verifier's public surface ------------------------------------------------------------

VERIFY = ROOT / "ledger" / "verify"
OUTSIDE_VERIFY = sorted(
    p for package in ("ledger", "api") for p in (ROOT / package).rglob("*.py") if VERIFY not in p.parents
)
INSIDE_VERIFY = sorted(p for p in VERIFY.rglob("*.py") if p.name != "__init__.py")


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def verifier_imports(source: str, module: str, *, is_package: bool = False) -> list[tuple[int, str, str]]:
    """(line, the module imported from or "" for ``import``, what is imported as a dotted name) of
    every import by ``module`` that reaches ``ledger.verify`` or below; relative imports resolved."""
    package = module if is_package else module.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            targets = [("", a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package.split(".")[: len(package.split(".")) - node.level + 1] if node.level else []
            origin = ".".join([*base, *([node.module] if node.module else [])])
            targets = [(origin, f"{origin}.{a.name}") for a in node.names]
        else:
            continue
        found.extend(
            (node.lineno, origin, target)
            for origin, target in targets
            if target == "ledger.verify" or target.startswith("ledger.verify.")
        )
    return found


def public_verifier() -> tuple[set[str], list[str]]:
    """(``ledger.verify.NAME`` for every name in its ``__all__``, the public modules among them)."""
    import ledger.verify

    exported = ledger.verify.__all__
    modules = [f"ledger.verify.{n}" for n in exported if isinstance(getattr(ledger.verify, n), ModuleType)]
    return {f"ledger.verify.{n}" for n in exported}, modules


def verifier_internals_used(source: str, module: str, *, is_package: bool = False) -> list[str]:
    """Outside ``ledger.verify``: imports of anything in it but a name of its ``__all__`` (or a name
    of a public module such as ``bundle_format``). Inside it: imports through the package itself
    (``from ledger.verify import …``, ``import ledger.verify``), which can cycle: its modules import
    each other by module."""
    names, modules = public_verifier()
    inside = module == "ledger.verify" or module.startswith("ledger.verify.")
    found = []
    for line, origin, target in verifier_imports(source, module, is_package=is_package):
        through_package = origin == "ledger.verify" or (origin == "" and target == "ledger.verify")
        public = target in {*names, "ledger.verify"} or any(target.startswith(f"{m}.") for m in modules)
        if inside and through_package:
            found.append(f"line {line}: {target} through the package")
        elif not inside and not public:
            found.append(f"line {line}: {target}")
    return found


@pytest.mark.parametrize("path", OUTSIDE_VERIFY, ids=lambda p: str(p.relative_to(ROOT)))
def test_the_project_uses_only_the_verifiers_public_surface(path: Path) -> None:
    source, is_package = path.read_text("utf-8"), path.name == "__init__.py"
    assert verifier_internals_used(source, module_name(path), is_package=is_package) == []


@pytest.mark.parametrize("path", INSIDE_VERIFY, ids=lambda p: str(p.relative_to(ROOT)))
def test_the_verifiers_modules_import_each_other_by_module(path: Path) -> None:
    assert verifier_internals_used(path.read_text("utf-8"), module_name(path)) == []


def test_the_verifier_check_finds_what_it_forbids() -> None:
    source = (
        "from ledger.verify import Entry, bundle_format, bundle_files\n"
        "from ledger.verify.engine import check_entries\n"
        "from ledger.verify.bundle_format import MANIFEST, member_path\n"
        "import ledger.verify\n"
        "import ledger.verify.report_html as html\n"
        "from ..verify.trust import load_pins\n"
        "from ..verify import verify_bundle\n"
        "from ledger.verifying import anything\n"
        "def later():\n"
        "    from ledger.verify.bundle_files import BundleUnusable\n"
    )
    assert verifier_internals_used(source, "ledger.cli.example") == [
        "line 1: ledger.verify.bundle_files",
        "line 2: ledger.verify.engine.check_entries",
        "line 5: ledger.verify.report_html",
        "line 6: ledger.verify.trust.load_pins",
        "line 10: ledger.verify.bundle_files.BundleUnusable",
    ]
    assert verifier_internals_used(source, "ledger.verify.example") == [
        "line 1: ledger.verify.Entry through the package",
        "line 1: ledger.verify.bundle_format through the package",
        "line 1: ledger.verify.bundle_files through the package",
        "line 4: ledger.verify through the package",
        "line 7: ledger.verify.verify_bundle through the package",
    ]
    relative = "from .engine import Entry\nfrom . import engine\n"
    assert verifier_internals_used(relative, "ledger.verify.example") == [
        "line 2: ledger.verify.engine through the package"
    ]


def test_every_name_the_verifier_exports_exists() -> None:
    import ledger.verify

    exported = ledger.verify.__all__
    assert len(set(exported)) == len(exported)
    assert [n for n in exported if not hasattr(ledger.verify, n)] == []
    # each name is the object of the module it is declared from (the imports type checkers read)
    tree = ast.parse((VERIFY / "__init__.py").read_text("utf-8"))
    declared = {
        alias.asname or alias.name: node.module
        for block in tree.body
        if isinstance(block, ast.If) and ast.unparse(block.test) == "TYPE_CHECKING"
        for node in ast.walk(block)
        if isinstance(node, ast.ImportFrom) and node.module
        for alias in node.names
    }
    modules = {n for n in exported if isinstance(getattr(ledger.verify, n), ModuleType)}
    assert set(declared) == set(exported) - modules
    assert {n: getattr(ledger.verify, n) for n in declared} == {
        n: getattr(sys.modules[m], n) for n, m in declared.items()
    }


def test_the_verifier_imports_a_module_only_when_a_name_of_it_is_used() -> None:
    """`import ledger.verify` loads only the bundle layout and the verifier page (both standard library
    only, and the bundle writer needs both) and a name loads its own module, so the
    pin-file commands do not pay for the whole verifier, nor the service (it writes bundles) for any."""
    code = (
        "import json, sys\n"
        "loaded = lambda: sorted(m for m in sys.modules if m.startswith('ledger.verify.'))\n"
        "import ledger.verify\n"
        "import ledger.evidence.bundle\n"
        "steps = [loaded()]\n"
        "from ledger.verify import PinFile, load_pins\n"
        "steps.append(loaded())\n"
        "print(json.dumps(steps))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT, timeout=60
    )
    assert json.loads(result.stdout) == [
        ["ledger.verify.bundle_format", "ledger.verify.web"],
        ["ledger.verify.bundle_format", "ledger.verify.trust", "ledger.verify.web"],
    ]
