"""Signed receipts end to end: issued on every accepted append, kept by the client, checked against the
log (included, pending, BROKEN_PROMISE), and a second receipt for one index is EQUIVOCATION."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from domain.errors import VerificationError
from ledger.bootstrap import init_data_dir
from ledger.cli import receipt_remote
from ledger.cli.app import commands
from ledger.client import RemoteLedger
from ledger.envelope.canonical import format_time, parse_time
from ledger.log import note, receipt
from ledger.settings import Settings
from ledger.store import Ledger
from ledger.verify import check_receipt
from ledger.verify.receipt_store import Equivocation, keep_receipt, stored_receipts
from ledger.verify.state_dir import origin_dir, state_dir
from tests.support.api import Api, running_api
from tests.support.cases import Actors, case_opened, new_case_id
from tests.support.ledgers import ORIGIN, FakeClock


def _vkey(ledger: Ledger) -> note.VerifierKey:
    return note.make_verifier_key(ledger.config.log_key_name, ledger.log_key.public_key())


@pytest.fixture
def api(ledger: Ledger) -> Iterator[Api]:
    with running_api(ledger) as api:
        yield api


def _cli(*args: str, code: int) -> Any:
    result = CliRunner().invoke(commands(), list(args), terminal_width=400)
    assert result.exit_code == code, result.output
    return result


@pytest.fixture
def served(api: Api, monkeypatch: pytest.MonkeyPatch) -> Api:
    """`receipt check --server http://testserver` talks to the test app."""
    monkeypatch.setattr(receipt_remote, "remote", lambda server: RemoteLedger(client=api.client))
    return api


def test_every_accepted_append_returns_its_signed_receipt_and_a_duplicate_the_same(api: Api) -> None:
    case_id = new_case_id()
    raw = api.envelope("investigator", case_id, "CaseOpened", case_opened())
    first = api.post_raw(case_id, raw, "investigator")
    again = api.post_raw(case_id, raw, "investigator")
    assert (first.status_code, again.status_code) == (201, 200)
    body = first.json()
    assert again.json()["receipt"] == body["receipt"]
    signed = receipt.verify(body["receipt"].encode(), _vkey(api.ledger), origin=ORIGIN)
    assert (signed.index, signed.leaf_hash.hex(), signed.integrated_at, signed.envelope_sha256) == (
        body["leaf_index"], body["leaf_hash"], body["integrated_at"], body["envelope_sha256"]
    )
    assert signed.max_delay == 300


def test_the_remote_client_keeps_the_receipt_and_check_finds_it_included(served: Api, tmp_path: Path) -> None:
    api = served
    remote = RemoteLedger(token=api.token("investigator"), client=api.client, clock=api.ledger.clock)
    answer = remote.append(new_case_id(), "CaseOpened", case_opened(), api.actors.keys["investigator"])
    root = state_dir()
    assert root is not None
    kept = origin_dir(root, ORIGIN) / "receipts" / f"{answer['leaf_index']}.txt"
    assert kept.read_text("utf-8") == answer["receipt"]
    assert kept.stat().st_mode & 0o777 == 0o600 and kept.parent.stat().st_mode & 0o777 == 0o700
    api.ledger.checkpoint()
    vkey = tmp_path / "log.vkey"
    vkey.write_text(str(_vkey(api.ledger)) + "\n")
    result = _cli("receipt", "check", str(kept), "--server", "http://testserver", "--vkey", str(vkey), "--json", code=0)
    doc = json.loads(result.stdout)
    assert (doc["verdict"], doc["leaf_index"]) == ("included", answer["leaf_index"])
    _cli("receipt", "verify", str(kept), "--vkey", str(vkey), code=0)
    stored = _cli("receipt", "check", "--stored", "--server", "http://testserver", "--vkey", str(vkey), "--json",
                  code=0)
    assert json.loads(stored.stdout)["counts"] == {"included": 1}


def test_receipt_check_without_a_pinned_key_is_unpinned(served: Api, tmp_path: Path) -> None:
    answer = served.ok("investigator", new_case_id(), "CaseOpened", case_opened())
    path = tmp_path / "r.txt"
    path.write_text(answer["receipt"])
    result = _cli("receipt", "check", str(path), "--server", "http://testserver", code=4)
    assert result.stdout.startswith("UNPINNED:")
    assert _cli("receipt", "verify", str(path), code=4).stdout.startswith("UNPINNED:")


def _fetch_from(ledger: Ledger) -> Callable[[str], bytes]:
    """The log's answers as the server gives them, straight from the ledger."""
    from ledger.log.proof_json import inclusion_proof_json

    def fetch(path: str) -> bytes:
        if path == "/v1/log/checkpoint":
            cp = ledger.latest_checkpoint()
            assert cp is not None
            return cp.with_cosignatures()
        query = dict(part.split("=") for part in path.split("?", 1)[1].split("&"))
        index, size = int(query["index"]), int(query["size"])
        return json.dumps(inclusion_proof_json(index, ledger.inclusion_proof(index, size), tree_size=size)).encode()

    return fetch


def test_pending_within_the_delay_and_broken_after_it(ledger: Ledger, tmp_path: Path) -> None:
    actors = Actors.register(ledger)
    ledger.checkpoint()
    appended = ledger.with_receipt(actors.ok("investigator", new_case_id(), "CaseOpened", case_opened()))
    signed = appended.receipt.encode()
    due = parse_time(appended.integrated_at) + timedelta(seconds=300)
    fetch, vkey = _fetch_from(ledger), _vkey(ledger)
    status = check_receipt(signed, vkey, fetch, due - timedelta(seconds=10))
    assert (status.verdict, status.seconds_left) == ("pending", 10)
    assert check_receipt(signed, vkey, fetch, due).verdict == "pending"
    with pytest.raises(VerificationError) as exc:
        check_receipt(signed, vkey, fetch, due + timedelta(microseconds=1))
    assert exc.value.code == "BROKEN_PROMISE"
    ledger.checkpoint()
    assert check_receipt(signed, vkey, fetch, due + timedelta(days=1)).verdict == "included"


def test_the_command_says_pending_then_broken_promise(served: Api, tmp_path: Path) -> None:
    api = served
    answer = api.ok("investigator", new_case_id(), "CaseOpened", case_opened())
    # a receipt for a leaf beyond anything the log has checkpointed: same key, so it verifies
    future = receipt.Receipt(ORIGIN, 10**9, bytes(32), answer["integrated_at"], 300, answer["envelope_sha256"])
    path = tmp_path / "future.txt"
    path.write_bytes(receipt.sign(future, api.ledger.config.log_key_name, api.ledger.log_key))
    vkey = str(_vkey(api.ledger))
    before = format_time(future.due - timedelta(seconds=60))
    after = format_time(future.due + timedelta(seconds=1))
    pending = _cli("receipt", "check", str(path), "--server", "http://testserver", "--vkey", vkey, "--now", before,
                   code=0)
    assert pending.stdout.startswith("pending:") and "in 60 s" in pending.stdout
    broken = _cli("receipt", "check", str(path), "--server", "http://testserver", "--vkey", vkey, "--now", after,
                  code=1)
    assert broken.stderr.startswith("error: BROKEN_PROMISE: ") and broken.stdout == ""


def _sqlite_ledger(data_dir: Path, clock: FakeClock) -> Ledger:
    return Ledger(Settings(data_dir=data_dir), clock=clock)


def test_an_entry_removed_after_its_receipt_is_a_broken_promise(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Ledger A receipts event X at index i; B (a copy of A from before, same keys) puts another event at i
    and signs checkpoints over it. Checked against B, X's receipt is a broken promise."""
    clock = FakeClock()
    a_dir, b_dir = tmp_path / "a", tmp_path / "b"
    init_data_dir(a_dir, ORIGIN, Settings(data_dir=a_dir), now=clock())
    with _sqlite_ledger(a_dir, clock) as first:
        keys = Actors.register(first).keys
        first.checkpoint()
    shutil.copytree(a_dir, b_dir)
    with _sqlite_ledger(a_dir, clock) as a:
        actors = Actors(a, dict(keys))
        x = a.with_receipt(actors.ok("investigator", new_case_id(), "CaseOpened", case_opened()))
        vkey = _vkey(a)
    with _sqlite_ledger(b_dir, clock) as b:
        other = b.with_receipt(Actors(b, dict(keys)).ok("investigator", new_case_id(), "CaseOpened", case_opened()))
        assert other.leaf_index == x.leaf_index and other.leaf_hash != x.leaf_hash
        with running_api(b) as api:
            b.checkpoint()
            monkeypatch.setattr(receipt_remote, "remote", lambda server: RemoteLedger(client=api.client))
            path = tmp_path / "x.txt"
            path.write_text(x.receipt)
            result = _cli("receipt", "check", str(path), "--server", "http://testserver", "--vkey", str(vkey),
                          code=1)
            assert result.stderr.startswith("error: BROKEN_PROMISE: ")
            assert f"leaf {x.leaf_index}" in result.stderr
            mine = tmp_path / "other.txt"
            mine.write_text(other.receipt)
            _cli("receipt", "check", str(mine), "--server", "http://testserver", "--vkey", str(vkey), code=0)
            # both receipts kept for the same index: the log equivocated
            keep_receipt(other.receipt.encode())
            with pytest.raises(Equivocation):
                keep_receipt(x.receipt.encode())
            root = state_dir()
            assert root is not None
            conflicts = list((origin_dir(root, ORIGIN) / "conflicts").iterdir())
            assert [p.read_text() for p in conflicts] == [x.receipt]
            assert [r.data.decode() for r in stored_receipts(ORIGIN)] == [other.receipt]


def test_a_second_different_receipt_from_the_server_fails_the_append_with_equivocation(api: Api) -> None:
    remote = RemoteLedger(token=api.token("investigator"), client=api.client, clock=api.ledger.clock)
    answer = remote.append(new_case_id(), "CaseOpened", case_opened(), api.actors.keys["investigator"])
    forged = receipt.parse(answer["receipt"].encode())
    other = receipt.Receipt(ORIGIN, forged.index, bytes(32), forged.integrated_at, 300, "0" * 64)
    signed = receipt.sign(other, api.ledger.config.log_key_name, api.ledger.log_key)
    with pytest.raises(Equivocation) as exc:
        keep_receipt(signed)
    assert exc.value.code == "EQUIVOCATION"
    # the same entry receipted again (here: another max delay) is no conflict
    again = receipt.Receipt(ORIGIN, forged.index, forged.leaf_hash, forged.integrated_at, 600, forged.envelope_sha256)
    keep_receipt(receipt.sign(again, api.ledger.config.log_key_name, api.ledger.log_key))


def test_an_unwritable_state_dir_warns_once_and_the_append_succeeds(
    api: Api, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the state dir should be")
    monkeypatch.setenv("EVIDENCE_LEDGER_STATE_DIR", str(blocker))
    monkeypatch.setattr("ledger.verify.receipt_store._warned", [])
    remote = RemoteLedger(token=api.token("investigator"), client=api.client, clock=api.ledger.clock)
    for _ in range(2):
        answer = remote.append(new_case_id(), "CaseOpened", case_opened(), api.actors.keys["investigator"])
        assert answer["receipt"].startswith("evidence-ledger receipt v1\n")
    err = capsys.readouterr().err
    assert err.count("warning: cannot write to the client state directory") == 1


def test_with_a_pinned_log_key_a_receipt_signed_by_another_key_is_refused_not_kept(
    ledger: Ledger, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from ledger.verify import LogPin, PinFile, render_pin_file

    pins = tmp_path / "trust.toml"
    pins.write_bytes(render_pin_file(PinFile(pins, (LogPin(ORIGIN, _vkey(ledger)),))))
    monkeypatch.setenv("EVIDENCE_LEDGER_TRUST_FILE", str(pins))
    genuine = receipt.Receipt(ORIGIN, 7, bytes(32), "2026-02-05T17:00:00.000000Z", 300, "0" * 64)
    forged = receipt.sign(genuine, ledger.config.log_key_name, Ed25519PrivateKey.generate())
    with pytest.raises(VerificationError) as exc:
        keep_receipt(forged)
    assert exc.value.code == "BAD_RECEIPT" and list(stored_receipts(ORIGIN)) == []
    keep_receipt(receipt.sign(genuine, ledger.config.log_key_name, ledger.log_key))
    assert [r.index for r in stored_receipts(ORIGIN)] == [7]


def test_a_production_pin_needs_a_witnessed_checkpoint_to_call_a_receipt_included(
    served: Api, tmp_path: Path
) -> None:
    """A checkpoint the pinned witnesses never cosigned may be a view shown to this client only: with a
    production pin, `receipt check` requires the pin's cosignatures before it says included."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from ledger.envelope.keys import raw_public_key
    from ledger.verify.trust import LogPin, PinFile, render_pin_file

    answer = served.ok("investigator", new_case_id(), "CaseOpened", case_opened())
    served.ledger.checkpoint()
    path = tmp_path / "r.txt"
    path.write_text(answer["receipt"])
    witnesses = tuple(
        note.make_verifier_key(f"{name}.example/witness", raw_public_key(Ed25519PrivateKey.generate()),
                               note.SIG_TYPE_COSIGNATURE_V1)
        for name in ("da", "ag")
    )
    pins = tmp_path / "trust.toml"
    pin = LogPin(ORIGIN, _vkey(served.ledger), witnesses=witnesses, profile="production")
    pins.write_bytes(render_pin_file(PinFile(pins, (pin,))))
    result = _cli("receipt", "check", str(path), "--server", "http://testserver", "--trust", str(pins), code=1)
    assert "WITNESS_POLICY" in result.output
    stored = _cli("receipt", "check", "--stored", "--server", "http://testserver", "--trust", str(pins), code=1)
    assert "WITNESS_POLICY" in stored.output


def _answers(remote: RemoteLedger, edit: Callable[[dict[str, Any]], dict[str, Any]]) -> None:
    """The server's answers to appends, as ``edit`` rewrites them (a server that lies in its answer)."""
    real = remote.transport.call

    def call(method: str, path: str, **kw: Any) -> httpx.Response:
        answer = real(method, path, **kw)
        if method != "POST":
            return answer
        return httpx.Response(answer.status_code, json=edit(answer.json()))

    remote.transport.call = call  # type: ignore[method-assign]


def test_an_answer_without_a_receipt_is_bad_receipt_and_resubmitting_returns_it(api: Api) -> None:
    remote = RemoteLedger(token=api.token("investigator"), client=api.client, clock=api.ledger.clock)
    _answers(remote, lambda doc: {k: v for k, v in doc.items() if k != "receipt"})
    case_id = new_case_id()
    raw = api.envelope("investigator", case_id, "CaseOpened", case_opened())
    with pytest.raises(VerificationError) as caught:
        remote.post_envelope(case_id, raw)
    assert caught.value.code == "BAD_RECEIPT"
    assert "accepted the append" in caught.value.message and "committed" in caught.value.message
    assert "resubmit the same envelope" in caught.value.message
    assert list(stored_receipts(ORIGIN)) == []
    again = api.post_raw(case_id, raw, "investigator")  # what the message tells to do
    assert again.status_code == 200 and again.json()["duplicate"] is True
    receipt.verify(again.json()["receipt"].encode(), _vkey(api.ledger), origin=ORIGIN)


def test_without_a_pin_a_receipt_must_verify_under_the_key_recorded_on_first_use(api: Api) -> None:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    remote = RemoteLedger(token=api.token("investigator"), client=api.client, clock=api.ledger.clock)
    remote.append(new_case_id(), "CaseOpened", case_opened(), api.actors.keys["investigator"])
    root = state_dir()
    assert root is not None
    assert (origin_dir(root, ORIGIN) / "vkey").read_text().strip() == str(_vkey(api.ledger))  # first use
    other = Ed25519PrivateKey.generate()

    def resigned(doc: dict[str, Any]) -> dict[str, Any]:  # the same promise, signed by another key
        body = receipt.parse(doc["receipt"].encode())
        return {**doc, "receipt": receipt.sign(body, api.ledger.config.log_key_name, other).decode()}

    _answers(remote, resigned)
    with pytest.raises(VerificationError) as caught:
        remote.append(new_case_id(), "CaseOpened", case_opened(), api.actors.keys["investigator"])
    assert caught.value.code == "BAD_RECEIPT"
    assert len(list(stored_receipts(ORIGIN))) == 1  # the first only: the forged one is not kept


@pytest.mark.parametrize("field", ["leaf_index", "leaf_hash", "integrated_at"])
def test_the_answer_must_state_what_the_signed_receipt_says(api: Api, field: str) -> None:
    remote = RemoteLedger(token=api.token("investigator"), client=api.client, clock=api.ledger.clock)
    lie = {"leaf_index": 999_999, "leaf_hash": "00" * 32, "integrated_at": "2000-01-01T00:00:00.000000Z"}[field]
    _answers(remote, lambda doc: {**doc, field: lie})
    with pytest.raises(VerificationError) as caught:
        remote.append(new_case_id(), "CaseOpened", case_opened(), api.actors.keys["investigator"])
    assert caught.value.code == "BAD_RECEIPT" and field in caught.value.message


def test_a_receipt_for_another_envelope_is_refused(api: Api) -> None:
    remote = RemoteLedger(token=api.token("investigator"), client=api.client, clock=api.ledger.clock)
    earlier = remote.append(new_case_id(), "CaseOpened", case_opened(), api.actors.keys["investigator"])
    _answers(remote, lambda doc: {**doc, **{k: earlier[k] for k in ("receipt", "leaf_index", "leaf_hash",
                                                                     "integrated_at", "envelope_sha256")}})
    with pytest.raises(VerificationError) as caught:
        remote.append(new_case_id(), "CaseOpened", case_opened(), api.actors.keys["investigator"])
    assert caught.value.code == "BAD_RECEIPT" and "not for the one appended" in caught.value.message


def test_what_is_returned_comes_from_the_verified_receipt(api: Api) -> None:
    remote = RemoteLedger(token=api.token("investigator"), client=api.client, clock=api.ledger.clock)
    _answers(remote, lambda doc: {k: v for k, v in doc.items() if k not in ("leaf_index", "leaf_hash")})
    answer = remote.append(new_case_id(), "CaseOpened", case_opened(), api.actors.keys["investigator"])
    signed = receipt.parse(answer["receipt"].encode())
    assert (answer["leaf_index"], answer["leaf_hash"]) == (signed.index, signed.leaf_hash.hex())
