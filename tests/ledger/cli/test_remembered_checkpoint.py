"""Every command that talks to a server checks the server's log against the checkpoint this client
remembers (ledger.cli.remembered): a rollback or a fork fails the command (exit 1) before it writes."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from domain.errors import NotFoundError, VerificationError
from ledger.cli.app import commands
from ledger.cli.remembered import check_log
from ledger.client import RemoteLedger
from ledger.envelope.keys import write_private_key
from ledger.log import note
from ledger.store import Ledger
from ledger.verify.state_dir import origin_dir
from tests.support.cases import case_opened, new_case_id
from tests.support.cli import command_tree, error_line, leaves
from tests.support.forks import Fork, fork_ledgers, served

pytestmark = pytest.mark.parametrize("backend", ["sqlite"])  # the fork copies a sqlite data dir


@pytest.fixture
def fork(make_ledger: Any, tmp_path: Path) -> Fork:
    return fork_ledgers(make_ledger, tmp_path)


def seen(ledger: Ledger, monkeypatch: pytest.MonkeyPatch) -> Any:
    """check_log against the API on ``ledger``."""
    with served(ledger, monkeypatch) as client:
        return check_log(RemoteLedger(client=client))


def memory_dir(ledger: Ledger, state: Path) -> Path:
    return origin_dir(state, ledger.origin)


def kept(ledger: Ledger, state: Path) -> list[Path]:
    base = memory_dir(ledger, state) / "conflicts"
    return sorted(base.iterdir()) if base.exists() else []


def test_first_contact_remembers_and_consistent_growth_advances(
    fork: Fork, monkeypatch: pytest.MonkeyPatch, _client_state_dir: Path
) -> None:
    first = seen(fork.a, monkeypatch)
    assert first.status == "first" and first.size == fork.shared
    assert (memory_dir(fork.a, _client_state_dir) / "vkey").exists()  # trusted on first use, recorded
    size = fork.grow("a", 3)
    later = seen(fork.a, monkeypatch)
    assert (later.status, later.remembered_size, later.size) == ("advanced", fork.shared, size)
    latest = (memory_dir(fork.a, _client_state_dir) / "latest").read_bytes()
    assert latest == fork.a.latest_checkpoint().note  # type: ignore[union-attr]


def test_restored_backup_is_a_rollback(fork: Fork, monkeypatch: pytest.MonkeyPatch, _client_state_dir: Path) -> None:
    fork.grow("a", 2)
    seen(fork.a, monkeypatch)
    with pytest.raises(VerificationError) as caught:
        seen(fork.b, monkeypatch)  # b is the copy taken before: an old backup put back in place
    assert caught.value.code == "ROLLBACK"
    (conflict,) = kept(fork.a, _client_state_dir)
    assert (conflict / "remembered.txt").read_bytes() == fork.a.latest_checkpoint().note  # type: ignore[union-attr]
    assert (conflict / "presented.txt").read_bytes() == fork.b.latest_checkpoint().note  # type: ignore[union-attr]


def test_same_size_other_history_is_equivocation(
    fork: Fork, monkeypatch: pytest.MonkeyPatch, _client_state_dir: Path
) -> None:
    assert fork.grow("a", 2) == fork.grow("b", 2)
    seen(fork.a, monkeypatch)
    with pytest.raises(VerificationError) as caught:
        seen(fork.b, monkeypatch)
    assert caught.value.code == "EQUIVOCATION"
    assert len(kept(fork.a, _client_state_dir)) == 1


def test_larger_fork_cannot_prove_consistency(
    fork: Fork, monkeypatch: pytest.MonkeyPatch, _client_state_dir: Path
) -> None:
    fork.grow("a", 1)
    seen(fork.a, monkeypatch)
    fork.grow("b", 4)
    with pytest.raises(VerificationError) as caught:
        seen(fork.b, monkeypatch)
    assert caught.value.code == "EQUIVOCATION" and "consistency proof" in caught.value.message
    (conflict,) = kept(fork.a, _client_state_dir)
    assert json.loads((conflict / "conflict.json").read_text())["presented"]["size"] == fork.b.log_size()


@pytest.mark.parametrize("answer", ["404", "malformed"])
def test_cli_a_server_that_will_not_prove_its_own_growth_is_equivocating(
    fork: Fork, monkeypatch: pytest.MonkeyPatch, _client_state_dir: Path, answer: str
) -> None:
    seen(fork.a, monkeypatch)
    fork.grow("a", 2)  # an honest larger tree, but the server does not prove it extends the remembered one

    def refused(self: RemoteLedger, first: int, second: int) -> bytes:
        if answer == "404":
            raise NotFoundError("no proof for these sizes", code="HTTP_404")
        return b'{"consistency": ["not base64"]}'

    monkeypatch.setattr(RemoteLedger, "consistency_proof", refused)
    with served(fork.a, monkeypatch) as client:
        url = "http://testserver"
        result = CliRunner().invoke(commands(), ["case", "list", "--server", url, "--token", token(client, fork.a)])
    assert result.exit_code == 1, result.output
    assert error_line(result).startswith("error: EQUIVOCATION: ")
    (conflict,) = kept(fork.a, _client_state_dir)
    assert (conflict / "remembered.txt").exists() and (conflict / "presented.txt").exists()
    assert json.loads((conflict / "conflict.json").read_text())["presented"]["size"] == fork.a.log_size()


def token(client: TestClient, ledger: Ledger) -> str:
    tokens = client.app.state.runtime.tokens  # type: ignore[attr-defined]
    issued = tokens.issue(actor="Det. A. Rivera", role="investigator", authority=None, expires_in=timedelta(hours=1),
                          now=ledger.clock())
    return str(issued.token)


def test_cli_refuses_a_forked_server_before_appending(
    fork: Fork, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, _client_state_dir: Path
) -> None:
    key = tmp_path / "investigator.pem"
    write_private_key(fork.actors_a.keys["investigator"], key)
    url = "http://ledger.test"

    def run(ledger: Ledger, *args: str) -> Any:
        with served(ledger, monkeypatch) as client:
            remote = ["--server", url, "--token", token(client, ledger), "--json"]
            return CliRunner().invoke(commands(), [*args, *remote])

    fork.grow("a", 1)
    listed = run(fork.a, "case", "list")
    assert listed.exit_code == 0, listed.output
    fork.grow("b", 2)
    before = fork.b.log_size()
    body = json.dumps(case_opened())
    # the same URL now serves the other history
    refused = run(fork.b, "append", new_case_id(), "CaseOpened", "--key", str(key), "--body", body)
    assert refused.exit_code == 1
    assert error_line(refused).startswith("error: EQUIVOCATION: ")
    assert str(kept(fork.a, _client_state_dir)[0]) in refused.stderr
    assert fork.b.log_size() == before  # nothing was appended to the forked log


def test_cli_append_without_a_receipt_in_the_answer_is_bad_receipt(
    fork: Fork, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from ledger.transport import Transport

    key = tmp_path / "investigator.pem"
    write_private_key(fork.actors_a.keys["investigator"], key)
    real = Transport.call

    def call(self: Transport, method: str, path: str, **kw: Any) -> Any:
        answer = real(self, method, path, **kw)
        if method != "POST":
            return answer
        return httpx.Response(answer.status_code, json={k: v for k, v in answer.json().items() if k != "receipt"})

    monkeypatch.setattr(Transport, "call", call)
    monkeypatch.setattr("ledger.client.datetime", type("Clock", (), {"now": staticmethod(lambda tz: fork.a.clock())}))
    before = fork.a.log_size()
    with served(fork.a, monkeypatch) as client:
        result = CliRunner().invoke(commands(), [
            "append", new_case_id(), "CaseOpened", "--key", str(key), "--body", json.dumps(case_opened()),
            "--server", "http://ledger.test", "--token", token(client, fork.a),
        ])
    assert result.exit_code == 1, result.output
    assert error_line(result).startswith("error: BAD_RECEIPT: the server accepted the append")
    assert "resubmit the same envelope" in result.stderr
    assert fork.a.log_size() == before + 1  # committed: the message says so


def test_cli_refuses_a_changed_log_key(
    fork: Fork, monkeypatch: pytest.MonkeyPatch, _client_state_dir: Path
) -> None:
    seen(fork.a, monkeypatch)
    vkey = memory_dir(fork.a, _client_state_dir) / "vkey"
    name = vkey.read_text().split("+", 1)[0]
    other = note.make_verifier_key(name, Ed25519PrivateKey.generate().public_key())
    vkey.write_text(f"{other}\n")  # the key first seen was another one: the server now shows a new key
    with pytest.raises(VerificationError) as caught:
        seen(fork.a, monkeypatch)
    assert caught.value.code == "KEY_CHANGED"


EXTRA = {"case new": ["--category", "violence", "--summary", "s"]}


def _value(name: str, tmp_path: Path, fork: Fork) -> str:
    """A usable value for a required parameter of a server command."""
    if name == "key":
        path = tmp_path / "signer.pem"
        if not path.exists():
            write_private_key(fork.actors_a.keys["investigator"], path)
        return str(path)
    if name == "public_key":
        path = tmp_path / "new.pub"
        path.write_bytes(Ed25519PrivateKey.generate().public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
        return str(path)
    if name == "envelopes":
        path = tmp_path / "envelopes.jsonl"
        path.write_text("{}\n")
        return str(path)
    return {
        "case_id": new_case_id(), "event_type": "CaseOpened", "body": json.dumps(case_opened()),
        "role": "investigator", "key_id": "0" * 64,
    }.get(name, "x")


def test_every_command_that_talks_to_a_server_checks_its_log_first(
    fork: Fork, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    fork.grow("a", 2)
    seen(fork.a, monkeypatch)
    before = fork.b.log_size()
    checked = []
    servers = {path: c for path, c in leaves(command_tree()) if any("--server" in p.opts for p in c.params)}
    for path, command in sorted(servers.items()):
        if path == "verify":  # asks a server only for proofs: tests/ledger/verify/test_verify_memory.py
            continue
        args = path.split()
        for param in command.params:
            if param.required:
                value = _value(str(param.name), tmp_path, fork)
                args += [param.opts[0], value] if param.param_type_name == "option" else [value]
        args += EXTRA.get(path, [])
        if path == "receipt check":  # reads public endpoints only; with --vkey the log is checked first
            args += ["--stored", "--vkey", str(note.make_verifier_key(fork.a.config.log_key_name,
                                                                      fork.a.log_key.public_key()))]
        names = {param.name for param in command.params}
        args += ["--server", "http://ledger.test"]
        args += ["--token", "t0k"] if "token" in names else []
        args += ["--data-dir", str(fork.b.data_dir)] if "data_dir" in names else []
        with served(fork.b, monkeypatch):  # the server now shows an old backup
            result = CliRunner().invoke(commands(), args)
        assert result.exit_code == 1, (path, result.output)
        assert result.stdout == "" and "error: ROLLBACK: " in result.stderr, (path, result.output)
        checked.append(path)
    assert fork.b.log_size() == before  # none of them wrote anything
    assert len(checked) >= 12


def test_a_server_stating_a_key_that_is_no_log_key_is_refused_not_a_crash(
    fork: Fork, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without a pin the key the server states is used; a cosignature (type 0x04) key there is a clear
    refusal (a LedgerError, one `error:` line), never a ValueError escaping as a traceback."""
    from domain.errors import LedgerError

    stated = note.make_verifier_key(fork.a.origin, Ed25519PrivateKey.generate().public_key(),
                                    note.SIG_TYPE_COSIGNATURE_V1)
    monkeypatch.setattr(RemoteLedger, "log_key", lambda self: str(stated))
    with pytest.raises(LedgerError, match="not a log key"):
        seen(fork.a, monkeypatch)
