"""``FootageCaptured`` with ``stored: true`` must declare the stored file's real size (``SIZE_MISMATCH``):
through the ledger, the HTTP API and the command line, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path

import pytest
from typer.testing import CliRunner

from domain.events import parse_body, stored_file_size
from ledger.cli.app import app, commands
from ledger.evidence.footage import FootageStore
from ledger.store import Ledger
from tests.support.api import problem, running_api
from tests.support.cases import FOOTAGE_BYTES, FOOTAGE_SHA, Actors, case_opened, footage_captured, new_case_id

commands()


def _with_size(size: int, **kw: object) -> dict[str, object]:
    body = footage_captured(stored=True, **kw)  # type: ignore[arg-type]
    body["size_bytes"] = size
    return body


def test_the_declared_size_is_only_read_from_a_stored_claim() -> None:
    assert stored_file_size(parse_body("FootageCaptured", 1, _with_size(41))) == 41
    unstored = {**footage_captured(), "size_bytes": 41}
    assert stored_file_size(parse_body("FootageCaptured", 1, unstored)) is None


@pytest.mark.parametrize("delta", [-1, 1, -len(FOOTAGE_BYTES)])
def test_a_stored_claim_with_another_size_is_refused(ledger: Ledger, delta: int) -> None:
    actors = Actors.register(ledger)
    case_id = new_case_id()
    actors.ok("investigator", case_id, "CaseOpened", case_opened())
    FootageStore(ledger.data_dir / "footage").put_stream([FOOTAGE_BYTES])
    refused = actors.refused("investigator", case_id, "FootageCaptured", _with_size(len(FOOTAGE_BYTES) + delta))
    assert refused.code == "SIZE_MISMATCH"
    assert refused.refs == {
        "footage_id": "ftg-1", "size_bytes": len(FOOTAGE_BYTES) + delta, "stored_size": len(FOOTAGE_BYTES)
    }
    assert ledger.case_view(case_id)["footage"] == []  # nothing was written
    actors.ok("investigator", case_id, "FootageCaptured", _with_size(len(FOOTAGE_BYTES)))
    # an unstored claim is about a file the ledger cannot see: its size is the signer's word
    actors.ok("investigator", case_id, "FootageCaptured", {**footage_captured("ftg-2"), "size_bytes": 7})


def test_the_size_is_the_files_own_not_a_record_of_it(ledger: Ledger) -> None:
    """An insider who swaps the stored file for a shorter one (same name, its SHA-256) does not make a
    claim of the old size pass: the size is read from the file itself at every append."""
    actors = Actors.register(ledger)
    case_id = new_case_id()
    actors.ok("investigator", case_id, "CaseOpened", case_opened())
    store = FootageStore(ledger.data_dir / "footage")
    store.put_stream([FOOTAGE_BYTES])
    path = store.path_of(FOOTAGE_SHA)
    os.chmod(path, 0o600)
    path.write_bytes(FOOTAGE_BYTES[:-1])
    refused = actors.refused("investigator", case_id, "FootageCaptured", _with_size(len(FOOTAGE_BYTES)))
    assert (refused.code, refused.refs["stored_size"]) == ("SIZE_MISMATCH", len(FOOTAGE_BYTES) - 1)
    # a symlink in its place is no stored file at all
    path.unlink()
    target = store.root / "elsewhere"
    target.write_bytes(FOOTAGE_BYTES)
    path.symlink_to(target)
    assert store.stored_size(FOOTAGE_SHA) is None
    refused = actors.refused("investigator", case_id, "FootageCaptured", _with_size(len(FOOTAGE_BYTES)))
    assert refused.code == "FOOTAGE_NOT_STORED"


def test_the_api_answers_422_size_mismatch(ledger: Ledger, tmp_path: Path) -> None:
    with running_api(ledger) as api:
        case_id = new_case_id()
        api.ok("investigator", case_id, "CaseOpened", case_opened())
        uploaded = api.client.post("/v1/evidence", content=FOOTAGE_BYTES, headers=api.auth("investigator"))
        assert uploaded.status_code == 201, uploaded.text
        body = problem(api.post("investigator", case_id, "FootageCaptured", _with_size(41)), 422, "SIZE_MISMATCH")
        assert body["refs"]["stored_size"] == uploaded.json()["size_bytes"] == len(FOOTAGE_BYTES)
        api.ok("investigator", case_id, "FootageCaptured", _with_size(uploaded.json()["size_bytes"]))


def test_the_cli_exits_1_with_size_mismatch(tmp_path: Path, database_url: str | None,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.delenv("EVIDENCE_LEDGER_TRUST_FILE", raising=False)
    env = {"EVIDENCE_LEDGER_DATA_DIR": str(tmp_path / "data")}
    if database_url:
        env["EVIDENCE_LEDGER_DATABASE_URL"] = database_url
    runner = CliRunner()

    def run(*args: str, code: int = 0) -> str:
        result = runner.invoke(app, list(args), env=env)
        assert result.exit_code == code, f"{args[:2]} exited {result.exit_code}: {result.output}"
        return result.output

    run("init", "--origin", "size.cambridgema.gov/evidence-ledger")
    key = tmp_path / "inv.pem"
    run("keys", "new", "--name", "inv", "--out", str(key))
    run("keys", "register", "--public-key", f"{key}.pub", "--actor", "inv", "--role", "investigator")
    footage = tmp_path / "clip.mp4"
    footage.write_bytes(FOOTAGE_BYTES)
    put = json.loads(run("evidence", "put", str(footage)))
    case_id = str(uuid.uuid4())

    def append(body: dict[str, object], code: int = 0) -> str:
        return run("append", case_id, body.pop("_type"), "--key", str(key), "--body",  # type: ignore[arg-type]
                   json.dumps(body), code=code)

    append({"_type": "CaseOpened", **case_opened()})
    out = append({"_type": "FootageCaptured", **_with_size(put["size"] - 1)}, code=1)
    assert "SIZE_MISMATCH" in out and out.count("\n") == 1
    append({"_type": "FootageCaptured", **_with_size(put["size"])})
