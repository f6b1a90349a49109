"""The README's walk-through runs as written, and the README shows exactly that script."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "ops" / "walkthrough.sh"
HTTP_SCRIPT = ROOT / "ops" / "walkthrough_http.sh"


@pytest.mark.parametrize("script", [SCRIPT, HTTP_SCRIPT], ids=["cli", "http"])
def test_readme_shows_the_walkthrough_script(script: Path) -> None:
    readme = (ROOT / "README.md").read_text("utf-8")
    body = script.read_text("utf-8").split("set -euo pipefail\n", 1)[1]
    assert body in readme


@pytest.mark.parametrize("script", [SCRIPT, HTTP_SCRIPT], ids=["cli", "http"])
def test_no_personal_data_is_given_as_an_argument(script: Path) -> None:
    """The seal steps read standard input; the retired `seal --data VALUE` form appears nowhere."""
    text = script.read_text("utf-8")
    seals = [line for line in text.splitlines() if "(caller name)" in line]
    assert seals and all(line.startswith("SEALED=$(printf '%s' '{") for line in seals)
    assert all("| evidence-ledger seal --data-file -)" in line or "| curl " in line for line in seals)
    assert "| curl " not in text or "--data-binary @-" in text
    readme = (ROOT / "README.md").read_text("utf-8")
    assert re.search(r"evidence-ledger seal --data(?!-file)", readme + text) is None


def _logging_path(bin_dir: Path, log: Path, env: dict[str, str]) -> str:
    """A PATH whose evidence-ledger and curl first append their argv (NUL-separated) to ``log``."""
    bin_dir.mkdir()
    for name in ("evidence-ledger", "curl"):
        real = shutil.which(name, path=env["PATH"])
        if real is None:
            continue
        wrapper = bin_dir / name
        wrapper.write_text(
            f"#!/usr/bin/env bash\nprintf '%s\\0' {name} \"$@\" >> '{log}'\nprintf '\\n' >> '{log}'\n"
            f"exec '{real}' \"$@\"\n",
            encoding="utf-8",
        )
        wrapper.chmod(0o755)
    return f"{bin_dir}{os.pathsep}{env['PATH']}"


def _strings(value: object) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):  # values only: keys such as "name" are no one's data
        for v in value.values():
            yield from _strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)


def _sealed_values(data_dir: Path) -> list[str]:
    """Every string value of every record in the walk-through's sealed store."""
    from ledger.settings import Settings
    from ledger.store import Ledger

    with Ledger(Settings(data_dir=data_dir)) as ledger:
        with ledger.db.read() as tx:
            refs = [str(row[0]) for row in tx.query("SELECT sealed_ref FROM sealed_records", ())]
        store = ledger.sealed_store()
        return [s for ref in refs for s in _strings(store.unseal(ref)[0])]


def _assert_no_argv_holds(log: Path, values: list[str]) -> None:
    argvs = log.read_text("utf-8").split("\0\n")
    assert any("seal" in argv.split("\0") or "--data-binary" in argv.split("\0") for argv in argvs)
    leaked = [v for v in values if any(v in argv for argv in argvs)]
    assert values and not leaked, "sealed data appeared in a command line"


@pytest.mark.slow
def test_walkthrough_runs_as_written(tmp_path: Path) -> None:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    env.pop("EVIDENCE_LEDGER_DATABASE_URL", None)
    argv_log = tmp_path / "argv.log"
    env["PATH"] = _logging_path(tmp_path / "bin", argv_log, env)
    result = subprocess.run(
        ["bash", str(SCRIPT), str(tmp_path / "walk")], capture_output=True, text=True, env=env, timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert "RELEASE_UNDER_HOLD" in result.stderr
    assert "DUPLICATE_CASE_NUMBER" in result.stderr  # a second case with the same number is refused
    assert "CPD-2026-0001" in result.stdout and '"footage_id": "<an id of' in result.stdout  # case list, template
    assert "PERSONAL_DATA_IN_FREE_TEXT" in result.stderr and "narrative: " in result.stderr and "(kind=phone)" in result.stderr
    assert "617-555-0100" not in result.stderr  # the refusal names the field, never the value
    assert "verified: leaf 5 is in cambridgema.gov/evidence-ledger" in result.stdout
    chain = [json.loads(line) for line in result.stdout.splitlines() if line.startswith('{"at"')]
    assert [(link["step"], link["to_custodian"]) for link in chain] == [(1, "CPD Evidence Unit"), (2, "Middlesex DA")]
    sealed = _sealed_values(tmp_path / "walk" / "data")
    assert "(caller name)" in sealed
    _assert_no_argv_holds(argv_log, sealed)
    _run_the_readme_consistency_example(tmp_path / "walk", env)


def readme_block(heading: str) -> str:
    """The first ```sh block of the README section that starts with ``heading``."""
    readme = (ROOT / "README.md").read_text("utf-8")
    section = readme[readme.index(heading):]
    found = re.search(r"```sh\n(.*?)```", section, re.S)
    assert found is not None, f"no sh block under {heading}"
    return found.group(1)


def _run_the_readme_consistency_example(work: Path, env: dict[str, str]) -> None:
    """The README's consistency example runs as written in the walk-through's folder: the sizes it
    uses are the ones `log checkpoints` lists."""
    block = readme_block("## Verifying by hand")
    assert "log checkpoints" in block and "prove-consistency" in block
    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", block], cwd=work, capture_output=True, text=True, timeout=120,
        check=False, env={**env, "EVIDENCE_LEDGER_DATA_DIR": "./data"},
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert re.search(r"verified: size \d+ extends size 2\n", result.stdout), result.stdout
    assert re.search(r"^ +SIZE +SIGNED AT +ROOT HASH +COSIGNATURES$", result.stdout, re.M)  # the text listing, headed


@pytest.mark.slow
def test_http_walkthrough_runs_as_written(tmp_path: Path) -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    env.pop("EVIDENCE_LEDGER_DATABASE_URL", None)
    argv_log = tmp_path / "argv.log"
    env["PATH"] = _logging_path(tmp_path / "bin", argv_log, env)
    result = subprocess.run(
        ["bash", str(HTTP_SCRIPT), str(tmp_path / "walk"), str(port)], capture_output=True, text=True, env=env,
        timeout=300, check=False,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert '"case_number":"CPD-2026-0002"' in result.stdout
    assert '"leaf_index":3' in result.stdout and "cambridgema.gov/evidence-ledger\n5\n" in result.stdout
    sealed = _sealed_values(tmp_path / "walk" / "data")
    assert "(caller name)" in sealed and json.dumps("(caller name)") not in result.stdout
    _assert_no_argv_holds(argv_log, sealed)
