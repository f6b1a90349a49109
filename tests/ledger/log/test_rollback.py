"""The rollback guard: checkpoints are remembered outside the database; a database restored from an
older copy (or rewritten) is detected at start, writes are refused, reads still work; the audit
reports the rollback with the number of missing entries (on SQLite and on PostgreSQL)."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from domain.errors import LedgerError
from ledger.log import merkle
from ledger.log.rollback import RollbackDetected, latest_path
from ledger.storage.sql import StorageError
from ledger.store import Ledger
from tests.support.audit import Raw, audit, verifier_key
from tests.support.cases import Actors, case_opened, new_case_id
from tests.support.rollback import Snapshots


@pytest.fixture
def snapshots(make_ledger: Callable[..., Ledger], backend: str, tmp_path: Path) -> Iterator[Snapshots]:
    snaps = Snapshots(make_ledger, backend, tmp_path)
    yield snaps
    snaps.drop()


def grow(ledger: Ledger, actors: Actors, cases: int) -> None:
    for n in range(cases):
        actors.ok("investigator", new_case_id(), "CaseOpened", case_opened(f"CPD-2026-{n:04d}"))
    ledger.checkpoint()


def test_every_signed_checkpoint_is_recorded_outside_the_database(ledger: Ledger) -> None:
    path = latest_path(ledger.data_dir)
    assert path.read_bytes() == ledger.checkpoint_at(ledger.log_size()).note  # init signed one already
    actors = Actors.register(ledger)
    grow(ledger, actors, 2)
    size = ledger.log_size()
    assert path.read_bytes() == ledger.checkpoint_at(size).note
    assert os.stat(path).st_mode & 0o777 == 0o600
    history = [json.loads(line) for line in (path.parent / "history.jsonl").read_text().splitlines()]
    assert [h["size"] for h in history] == [2, size]
    assert not ledger.rollback_guard().record(ledger.checkpoint_at(2).note)  # never goes backwards
    assert path.read_bytes() == ledger.checkpoint_at(size).note
    assert ledger.rollback_status().state == "ok" and ledger.write_block_reason() is None


def test_a_restored_older_database_refuses_writes_and_serves_reads(
    ledger: Ledger, snapshots: Snapshots
) -> None:
    actors = Actors.register(ledger)
    case_id = new_case_id()
    actors.ok("investigator", case_id, "CaseOpened", case_opened())
    ledger.checkpoint()
    old_size = ledger.log_size()
    ledger = snapshots.take(ledger)
    actors.ledger = ledger
    grow(ledger, actors, 3)
    published = ledger.checkpoint_at(ledger.log_size()).note

    restored = snapshots.restore(ledger)
    status = restored.rollback_status()
    assert (status.state, status.log_size, status.recorded_size, status.missing) == (
        "behind",
        old_size,
        old_size + 3,
        3,
    )
    reason = restored.write_block_reason()
    assert reason is not None and "3 entries are missing" in reason
    actors.ledger = restored
    with pytest.raises(RollbackDetected) as refused:
        restored.append([actors.envelope("investigator", case_id, "CaseClosed", {"disposition": "x"})])
    assert isinstance(refused.value, StorageError) and refused.value.code == "ROLLBACK_DETECTED"
    assert refused.value.refs["missing"] == 3
    with pytest.raises(RollbackDetected):
        restored.checkpoint()  # signing over the older log would contradict the published checkpoint
    assert restored.case_view(case_id)["status"] == "open"  # reads still work
    assert restored.log_size() == old_size

    report = audit(restored, kept=[published])
    (finding,) = report.findings
    assert finding.code == "ROLLBACK" and finding.evidence["missing"] == 3
    assert finding.evidence["size"] == old_size + 3


def test_the_audit_command_uses_the_guard_file(
    ledger: Ledger, snapshots: Snapshots, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from ledger.cli.app import app, commands

    commands()
    actors = Actors.register(ledger)
    ledger.checkpoint()
    ledger = snapshots.take(ledger)
    actors.ledger = ledger
    grow(ledger, actors, 2)
    restored = snapshots.restore(ledger)
    monkeypatch.setenv("EVIDENCE_LEDGER_DATA_DIR", str(restored.data_dir))
    if restored.settings.database_url:
        monkeypatch.setenv("EVIDENCE_LEDGER_DATABASE_URL", restored.settings.database_url)
    runner = CliRunner()
    result = runner.invoke(app, ["audit", "--vkey", str(verifier_key(restored)), "--json"])
    assert result.exit_code == 1, result.output
    (finding,) = json.loads(result.stdout)["findings"]
    assert finding["code"] == "ROLLBACK" and finding["evidence"]["missing"] == 2
    assert finding["evidence"]["source"] == "rollback guard file"
    result = runner.invoke(
        app,
        [
            "append",
            new_case_id(),
            "CaseOpened",
            "--key",
            str(restored.data_dir / "keys" / "admin.pem"),
            "--body",
            json.dumps(case_opened()),
        ],
    )
    assert result.exit_code == 1 and "ROLLBACK_DETECTED" in result.output
    result = runner.invoke(
        app,
        [
            "keys",
            "register",
            "--public-key",
            str(restored.data_dir / "keys" / "log.pem.pub"),
            "--actor",
            "x",
            "--role",
            "auditor",
        ],
    )
    assert result.exit_code == 1 and "ROLLBACK_DETECTED" in result.output


def rewrite_history(ledger: Ledger) -> None:
    """Change the first tree node the recorded root is built from (as a rewritten log would)."""
    level, index = merkle.root_coords(ledger.log_size())[0]
    Raw(ledger).run("UPDATE log_nodes SET hash = ? WHERE level = ? AND idx = ?", (b"\x05" * 32, level, index))


def test_a_rewritten_database_is_inconsistent(ledger: Ledger) -> None:
    Actors.register(ledger)
    ledger.checkpoint()
    rewrite_history(ledger)
    status = ledger.rollback_status()
    assert status.state == "inconsistent" and status.blocked
    with pytest.raises(RollbackDetected):
        ledger.append([b"{}"])


def test_an_unreadable_guard_file_blocks_until_an_operator_looks(ledger: Ledger) -> None:
    path = latest_path(ledger.data_dir)
    path.write_bytes(b"not a checkpoint\n")
    status = ledger.rollback_status()
    assert status.state == "unreadable" and ledger.write_block_reason() is not None
    path.unlink()
    # With the file gone, the database's newest checkpoint (signed by init) seeds the record again.
    status = ledger.rollback_status()
    assert status.state == "ok" and status.recorded_size == ledger.latest_checkpoint().size  # type: ignore[union-attr]
    assert ledger.write_block_reason() is None
    Actors.register(ledger)
    ledger.checkpoint()
    assert path.read_bytes() == ledger.checkpoint_at(ledger.log_size()).note


def test_the_block_is_rechecked_while_running(ledger: Ledger) -> None:
    Actors.register(ledger)
    ledger.checkpoint()
    assert ledger.write_block_reason() is None
    rewrite_history(ledger)
    assert ledger.write_block_reason() is None  # cached
    ledger._rollback = None  # the cache expired
    assert ledger.write_block_reason() is not None


def test_a_different_root_for_a_recorded_size_is_refused(ledger: Ledger) -> None:
    from ledger.envelope.keys import load_private_key
    from ledger.log import note
    from ledger.settings import key_path

    size = ledger.log_size()
    fork = note.sign_note(
        note.Checkpoint(ledger.origin, size, b"\x09" * 32).body(),
        ledger.config.log_key_name,
        load_private_key(key_path(ledger.data_dir, "log")),
    )
    with pytest.raises(LedgerError) as refused:
        ledger.rollback_guard().record(fork)
    assert refused.value.code == "ROLLBACK_DETECTED"


def test_a_checkpoint_committed_but_not_recorded_is_recorded_at_start(ledger: Ledger) -> None:
    """A crash between committing a checkpoint and writing the guard file leaves the guard behind."""
    actors = Actors.register(ledger)
    recorded = ledger.checkpoint()
    actors.ok("investigator", new_case_id(), "CaseOpened", case_opened())
    with ledger.db.write() as tx:  # signed and committed, but the process "dies" before recording it
        newer = ledger.sign_checkpoint_in(tx)
    assert recorded is not None and newer is not None and newer.size > recorded.size
    status = ledger.rollback_status()
    assert not status.blocked and status.recorded_size == newer.size
