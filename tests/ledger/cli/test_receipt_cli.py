"""`receipt verify` (in `evidence-ledger-verify` too, with nothing but the base package), the local `append`
keeping its receipt, and the receipt delay setting."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from ledger.envelope.canonical import canonical
from ledger.log import note, receipt
from ledger.settings import ConfigurationError, Settings
from ledger.store import Ledger
from ledger.verify.state_dir import origin_dir, state_dir
from tests.support.bundles import run_offline
from tests.support.cli import Cli, error_line
from tests.support.ledgers import ORIGIN


@pytest.fixture
def cli(ledger: Ledger, database_url: str | None, tmp_path: Path) -> Cli:
    return Cli(ledger, database_url, tmp_path)


def _vkey(ledger: Ledger) -> str:
    return str(note.make_verifier_key(ledger.config.log_key_name, ledger.log_key.public_key()))


def _case_opened() -> dict[str, str]:
    from tests.support.cases import case_opened

    return case_opened()


def test_a_local_append_keeps_its_receipt_which_verifies_offline(cli: Cli, tmp_path: Path) -> None:
    import uuid

    result = cli.run("append", str(uuid.uuid4()), "CaseOpened", "--key", cli.key_file("investigator"),
                     "--body", json.dumps(_case_opened()), "--json", code=0)
    answer = json.loads(result.stdout)
    root = state_dir()
    assert root is not None
    kept = origin_dir(root, ORIGIN) / "receipts" / f"{answer['leaf_index']}.txt"
    assert kept.read_text("utf-8") == answer["receipt"]
    vkey = _vkey(cli.ledger)
    ok = run_offline("receipt", "verify", str(kept), "--vkey", vkey, "--json")
    assert ok.returncode == 0 and "LEAKED" not in ok.stderr, ok.stderr
    doc = json.loads(ok.stdout)
    assert (doc["verdict"], doc["leaf_index"], doc["envelope_checked"]) == ("verified", answer["leaf_index"], False)
    envelope = tmp_path / "envelope.json"
    stored = cli.ledger.entries(answer["leaf_index"], 1)[0].envelope
    envelope.write_bytes(stored)
    assert hashlib.sha256(stored).hexdigest() == answer["envelope_sha256"]
    assert run_offline("receipt", "verify", str(kept), "--vkey", vkey, "--envelope", str(envelope)).returncode == 0
    envelope.write_bytes(canonical({"other": "envelope"}))
    other = run_offline("receipt", "verify", str(kept), "--vkey", vkey, "--envelope", str(envelope))
    assert other.returncode == 1 and other.stderr.startswith("error: BAD_RECEIPT: ")


def test_receipt_verify_refuses_a_forgery_a_checkpoint_and_is_unpinned_without_a_key(cli: Cli, tmp_path: Path) -> None:
    cli.ledger.checkpoint()
    latest = cli.ledger.latest_checkpoint()
    assert latest is not None
    checkpoint = tmp_path / "checkpoint.txt"
    checkpoint.write_bytes(latest.with_cosignatures())
    vkey = _vkey(cli.ledger)
    as_receipt = cli.run("receipt", "verify", str(checkpoint), "--vkey", vkey, code=2)
    assert error_line(as_receipt).startswith("error: BAD_RECEIPT: unusable input: receipt: ")
    signed = receipt.sign(
        receipt.Receipt(ORIGIN, 3, bytes(32), "2026-02-05T17:00:00.000000Z", 300, "0" * 64),
        cli.ledger.config.log_key_name, cli.ledger.log_key,
    )
    path = tmp_path / "r.txt"
    path.write_bytes(signed.replace(b"\n3\n", b"\n4\n"))
    forged = cli.run("receipt", "verify", str(path), "--vkey", vkey, code=1)
    assert error_line(forged).startswith("error: BAD_RECEIPT: verification failed: ")
    path.write_bytes(signed)
    unpinned = cli.run("receipt", "verify", str(path), code=4)
    assert unpinned.stdout.startswith("UNPINNED: ") and "evidence-ledger trust pin --origin" in unpinned.stdout
    assert cli.run("receipt", "verify", str(path), "--allow-unpinned", code=0).stdout.startswith("UNPINNED: ")
    # a receipt is never taken for a checkpoint either
    assert cli.run("log", "verify-checkpoint", str(path), "--vkey", vkey, code=2).stdout == ""


def test_the_receipt_delay_must_exceed_the_checkpoint_interval(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings().receipt_max_delay == 300
    monkeypatch.setenv("EVIDENCE_LEDGER_RECEIPT_MAX_DELAY", "2")
    monkeypatch.setenv("EVIDENCE_LEDGER_CHECKPOINT_INTERVAL", "2")
    with pytest.raises(ConfigurationError) as exc:
        Settings()
    assert exc.value.code == "CONFIGURATION" and "RECEIPT_MAX_DELAY" in exc.value.message
    monkeypatch.setenv("EVIDENCE_LEDGER_CHECKPOINT_INTERVAL", "1.5")
    assert Settings().receipt_max_delay == 2
