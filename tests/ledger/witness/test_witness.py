"""The witness (ledger.witness, ledger.witness_server) and the log's witness client (ledger.witness_client)."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import select
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from typer.testing import CliRunner

from api.witness_app import make_server
from domain.errors import MalformedInputError, VerificationError
from ledger.cli import witness as cli_witness
from ledger.cli.app import app
from ledger.envelope.b64 import b64encode
from ledger.log import merkle, note
from ledger.log.witnessing import (
    checkpoint_with_witnesses,
    collect_cosignatures,
    configure_witness,
    load_witnesses,
)
from ledger.settings import ConfigurationError
from ledger.store import Ledger
from ledger.witness import cosigner as witness_module
from ledger.witness.cosigner import (
    Witness,
    WitnessBadProof,
    WitnessConfigError,
    WitnessConflict,
    WitnessForbidden,
    WitnessFork,
    WitnessMalformed,
    WitnessUnknownLog,
)
from ledger.witness.server import parse_add_checkpoint
from tests.support.cases import Actors, case_opened, new_case_id, report_received
from tests.support.witness import ORIGIN, FakeLog, request_body

NOW = 1_770_000_000.0
SERVE = "import api.cli; from ledger.cli.app import main; main()"  # `witness serve` is the web layer's
assert cli_witness.witness_app is not None  # importing it registers `witness` and `log add-witness`


@pytest.fixture
def backend() -> str:
    """Only SQLite here: the witness does not depend on the ledger's database backend."""
    return "sqlite"




@pytest.fixture
def log() -> FakeLog:
    return FakeLog()


@pytest.fixture
def witness(tmp_path: Path, log: FakeLog) -> Witness:
    return Witness.create(tmp_path / "witness", "w.example/w1", str(log.vkey))


def cosigned_time(witness: Witness, log: FakeLog, signed: bytes, line: bytes) -> int:
    verified = note.verify_checkpoint(signed + line, log.vkey, [witness.verifier_key])
    return verified.cosignatures[0].timestamp


def evidence_files(witness: Witness) -> list[Path]:
    return sorted((witness.data_dir / "evidence").iterdir())


@pytest.fixture(autouse=True)
def fresh_evidence_warning() -> Iterator[None]:
    """Each test starts as a fresh process: the "evidence store full" warning not yet given."""
    witness_module._store_full_warned.clear()
    yield
    witness_module._store_full_warned.clear()


def junk_lines(i: int, origin: str = ORIGIN) -> list[bytes]:
    """Signature lines anyone can append to a note: cosignatures by unknown witnesses, random bytes,
    a line under the log's name with another key id."""
    stranger = Ed25519PrivateKey.generate()
    body = note.Checkpoint(origin, 1, hashlib.sha256(b"%d" % i).digest()).body()
    return [
        note.cosign(body, f"junk{i}.example/w", stranger, i),
        note.SignatureLine(f"x{i}.example", os.urandom(4), os.urandom(8 + i)).encode(),
        note.SignatureLine(origin, os.urandom(4), os.urandom(64)).encode(),
    ][: 1 + i % 3]


def warnings_in(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]


# --- the core ---------------------------------------------------------------------------------


def test_init_creates_a_0600_key_and_a_type_4_verifier_key(witness: Witness, log: FakeLog) -> None:
    mode = stat.S_IMODE(os.stat(witness.data_dir / "keys" / "witness.pem").st_mode)
    assert mode == 0o600
    assert witness.verifier_key.type == note.SIG_TYPE_COSIGNATURE_V1
    assert witness.state().logs[ORIGIN].size == 0
    with pytest.raises(WitnessConfigError):
        Witness.create(witness.data_dir, "w.example/w1", str(log.vkey))


def test_first_contact_cosigns_with_an_empty_proof(witness: Witness, log: FakeLog) -> None:
    signed = log.note(5)
    line = witness.add_checkpoint(0, [], signed, now=NOW)
    assert cosigned_time(witness, log, signed, line) == int(NOW)
    state = witness.state().logs[ORIGIN]
    assert (state.size, state.root, state.checkpoint) == (5, log.root(5), signed.decode())


def test_an_empty_tree_is_cosigned_only_with_the_empty_root(witness: Witness, log: FakeLog) -> None:
    with pytest.raises(WitnessBadProof):
        witness.add_checkpoint(0, [], log.note(0, root=log.root(3)), now=NOW)
    witness.add_checkpoint(0, [], log.note(0), now=NOW)
    assert Witness(witness.data_dir).state().logs[ORIGIN].root == merkle.EMPTY_ROOT
    witness.add_checkpoint(0, [], log.note(4), now=NOW)  # nothing to prove from an empty tree


def test_first_contact_refuses_a_proof(witness: Witness, log: FakeLog) -> None:
    with pytest.raises(WitnessBadProof):
        witness.add_checkpoint(0, [log.root(1)], log.note(5), now=NOW)


def test_extension_with_a_valid_consistency_proof_is_cosigned(witness: Witness, log: FakeLog) -> None:
    witness.add_checkpoint(0, [], log.note(5), now=NOW)
    signed = log.note(13)
    line = witness.add_checkpoint(5, log.proof(5, 13), signed, now=NOW + 1)
    assert cosigned_time(witness, log, signed, line) == int(NOW) + 1
    assert witness.state().logs[ORIGIN].size == 13


def test_a_bad_consistency_proof_is_refused_and_changes_nothing(witness: Witness, log: FakeLog) -> None:
    witness.add_checkpoint(0, [], log.note(5), now=NOW)
    proof = log.proof(5, 13)
    proof[0] = hashlib.sha256(b"tampered").digest()
    with pytest.raises(WitnessBadProof):
        witness.add_checkpoint(5, proof, log.note(13), now=NOW)
    with pytest.raises(WitnessBadProof):  # a proof for another size pair
        witness.add_checkpoint(5, log.proof(6, 13), log.note(13), now=NOW)
    assert witness.state().logs[ORIGIN].size == 5


def test_an_old_size_that_is_not_the_witness_size_conflicts(witness: Witness, log: FakeLog) -> None:
    witness.add_checkpoint(0, [], log.note(5), now=NOW)
    with pytest.raises(WitnessConflict) as caught:
        witness.add_checkpoint(0, [], log.note(13), now=NOW)
    assert caught.value.latest_size == 5 and type(caught.value) is WitnessConflict
    with pytest.raises(WitnessMalformed):
        witness.add_checkpoint(14, [], log.note(13), now=NOW)


def test_an_older_checkpoint_is_a_plain_conflict_and_kept_nowhere(
    witness: Witness, log: FakeLog, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    witness.add_checkpoint(0, [], log.note(13), now=NOW)
    forged = log.note(5, root=hashlib.sha256(b"x").digest(), key=Ed25519PrivateKey.generate())
    for old, older in ((13, log.note(5)), (0, log.note(12))):
        with pytest.raises(WitnessConflict) as caught:
            witness.add_checkpoint(old, [], older, now=NOW)
        assert type(caught.value) is WitnessConflict and caught.value.latest_size == 13
        assert caught.value.code == "WITNESS_OLD_CHECKPOINT"
    with pytest.raises(WitnessForbidden):  # c2sp tlog-witness: the signature is checked first (403)
        witness.add_checkpoint(5, [], forged, now=NOW)
    assert evidence_files(witness) == [] and warnings_in(caplog) == []
    assert witness.state().logs[ORIGIN].size == 13


def test_replays_of_an_old_checkpoint_with_junk_lines_write_nothing_and_warn_nothing(
    witness: Witness, log: FakeLog, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    witness.add_checkpoint(0, [], log.note(8), now=NOW)
    witness.add_checkpoint(8, log.proof(8, 20), log.note(20), now=NOW)
    public = log.note(8)  # published once, cosigned once: anyone may hold it
    state_before = (witness.data_dir / "state.json").read_bytes()
    for i in range(30):
        with pytest.raises(WitnessConflict) as caught:
            witness.add_checkpoint(i % 21, [], note.add_signature_lines(public, junk_lines(i)), now=NOW + i)
        assert caught.value.latest_size == 20 and not isinstance(caught.value, WitnessFork)
    assert evidence_files(witness) == [] and warnings_in(caplog) == []
    assert (witness.data_dir / "state.json").read_bytes() == state_before


def test_a_fork_signed_by_the_real_log_key_is_refused_and_kept(
    witness: Witness, log: FakeLog, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    honest = log.note(8)
    witness.add_checkpoint(0, [], note.add_signature_lines(honest, junk_lines(2)), now=NOW)
    forked = log.note(8, root=hashlib.sha256(b"another history").digest())
    note.verify_checkpoint(forked, log.vkey)  # really signed by the log
    recorded = []
    for old in (8, 0):  # refused (and kept) whatever old size the sender claims
        with pytest.raises(WitnessFork) as caught:
            witness.add_checkpoint(old, [], forked, now=NOW)
        assert caught.value.latest_size == 8
        recorded.append(caught.value.recorded)
    assert recorded == [True, False]
    (evidence,) = evidence_files(witness)  # one file per distinct refused fork
    assert caught.value.evidence == evidence and evidence.name.startswith("fork-8-")
    record = json.loads(evidence.read_text())
    assert record["kind"] == "fork"
    assert record["cosigned"]["checkpoint"] == honest.decode()  # the log's signature only, here too
    assert record["refused"]["checkpoint"] == forked.decode()
    note.verify_checkpoint(record["refused"]["checkpoint"].encode(), log.vkey)
    assert witness.state().logs[ORIGIN].root == log.root(8)
    (warning,) = warnings_in(caplog)
    assert "fork" in warning and evidence.name in warning


def test_a_fork_replayed_with_junk_lines_is_kept_once_with_the_log_signature_only(
    witness: Witness, log: FakeLog, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    witness.add_checkpoint(0, [], log.note(8), now=NOW)
    forked = log.note(8, root=hashlib.sha256(b"another history").digest())
    log_line = forked[forked.rindex(b"\n\n") + 2 :]
    for i in range(30):
        extra = junk_lines(i) + [log_line] * (i % 2)  # the log's own line repeated is no new fork
        lines = extra[::-1] if i % 3 else extra
        with pytest.raises(WitnessFork) as caught:
            witness.add_checkpoint(i % 9, [], note.add_signature_lines(forked, lines), now=NOW + i)
        assert caught.value.latest_size == 8 and caught.value.recorded == (i == 0)
    (evidence,) = evidence_files(witness)
    assert json.loads(evidence.read_text())["refused"]["checkpoint"] == forked.decode()
    assert len(warnings_in(caplog)) == 1
    with pytest.raises(WitnessForbidden):  # a bad line under the log's own key id is not ignored
        bad = note.SignatureLine(ORIGIN, log.vkey.key_id, os.urandom(64)).encode()
        witness.add_checkpoint(8, [], note.add_signature_lines(forked, [bad]), now=NOW)
    assert len(evidence_files(witness)) == 1


def test_evidence_is_bounded_in_count_and_bytes(
    witness: Witness, log: FakeLog, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    witness.add_checkpoint(0, [], log.note(8), now=NOW)
    forks = [log.note(8, root=hashlib.sha256(b"history %d" % i).digest()) for i in range(12)]
    witness.max_evidence_files = 3
    for forked in forks[:3]:
        with pytest.raises(WitnessFork) as caught:
            witness.add_checkpoint(8, [], forked, now=NOW)
        assert caught.value.recorded
    for forked in forks[3:8]:  # the store is full: still refused, nothing written
        with pytest.raises(WitnessFork) as caught:
            witness.add_checkpoint(8, [], forked, now=NOW)
        assert caught.value.latest_size == 8 and caught.value.evidence is None and not caught.value.recorded
    assert len(evidence_files(witness)) == 3
    full = [w for w in warnings_in(caplog) if "full" in w]
    assert len(full) == 1 and len(warnings_in(caplog)) == 4  # three forks kept, one "full" warning

    with pytest.raises(WitnessFork) as caught:  # a fork already on file is still found
        witness.add_checkpoint(8, [], forks[0], now=NOW)
    assert caught.value.evidence in evidence_files(witness) and not caught.value.recorded

    witness.max_evidence_files = 100
    size = evidence_files(witness)[0].stat().st_size
    witness.max_evidence_bytes = 4 * size + size // 2  # room for one more record, not two
    for forked in forks[8:]:
        with pytest.raises(WitnessFork):
            witness.add_checkpoint(8, [], forked, now=NOW)
    assert len(evidence_files(witness)) == 4
    assert sum(p.stat().st_size for p in evidence_files(witness)) <= witness.max_evidence_bytes
    assert len([w for w in warnings_in(caplog) if "full" in w]) == 2  # once more after a file was written


def test_the_same_checkpoint_again_is_cosigned_but_only_with_an_empty_proof(witness: Witness, log: FakeLog) -> None:
    signed = log.note(8)
    witness.add_checkpoint(0, [], signed, now=NOW)
    assert cosigned_time(witness, log, signed, witness.add_checkpoint(8, [], signed, now=NOW + 5)) == int(NOW) + 5
    with pytest.raises(WitnessBadProof):
        witness.add_checkpoint(8, [log.root(1)], signed, now=NOW)


def test_unknown_origin_and_unknown_log_key_are_refused(witness: Witness, log: FakeLog) -> None:
    with pytest.raises(WitnessUnknownLog):
        witness.add_checkpoint(0, [], FakeLog("other.example/log").note(3), now=NOW)
    with pytest.raises(WitnessForbidden):  # right origin, signed by another key
        witness.add_checkpoint(0, [], log.note(3, key=Ed25519PrivateKey.generate()), now=NOW)
    with pytest.raises(WitnessMalformed):
        witness.add_checkpoint(0, [], b"not a note", now=NOW)
    assert evidence_files(witness) == [] and witness.state().logs[ORIGIN].size == 0


def test_add_log_trusts_another_log_but_not_a_second_key_for_an_origin(witness: Witness, log: FakeLog) -> None:
    other = FakeLog("other.example/log")
    assert witness.add_log(str(other.vkey)) == other.origin
    witness.add_checkpoint(0, [], other.note(2), now=NOW)
    assert witness.add_log(str(log.vkey)) == ORIGIN  # idempotent
    with pytest.raises(WitnessConfigError):
        witness.add_log(str(FakeLog().vkey))
    with pytest.raises(MalformedInputError):
        witness.add_log(str(witness.verifier_key))  # a type 0x04 key is not a log key


def test_state_is_persisted_before_the_cosignature_is_returned(
    witness: Witness, log: FakeLog, monkeypatch: pytest.MonkeyPatch
) -> None:
    witness.add_checkpoint(0, [], log.note(5), now=NOW)
    # "crash" after the reply: a fresh instance on the same dir already has the new state
    assert Witness(witness.data_dir).state().logs[ORIGIN].size == 5

    def disk_full(path: Path, data: bytes, mode: int = 0o644) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("ledger.witness.cosigner.write_atomic", disk_full)
    with pytest.raises(OSError):  # no line is handed out unless the state is on disk
        witness.add_checkpoint(5, log.proof(5, 9), log.note(9), now=NOW)
    monkeypatch.undo()
    assert Witness(witness.data_dir).state().logs[ORIGIN].size == 5
    assert not [p for p in witness.data_dir.iterdir() if p.name.endswith(".tmp")]


def test_timestamps_never_go_backwards(witness: Witness, log: FakeLog) -> None:
    first, second, third = log.note(3), log.note(5), log.note(7)
    assert cosigned_time(witness, log, first, witness.add_checkpoint(0, [], first, now=NOW)) == int(NOW)
    line = witness.add_checkpoint(3, log.proof(3, 5), second, now=NOW - 3600)
    assert cosigned_time(witness, log, second, line) == int(NOW)
    restarted = Witness(witness.data_dir)  # the high-water mark survives a restart
    line = restarted.add_checkpoint(5, log.proof(5, 7), third, now=10)
    assert cosigned_time(witness, log, third, line) == int(NOW)


def test_concurrent_forks_cannot_both_be_cosigned(witness: Witness, log: FakeLog) -> None:
    notes = [log.note(6, root=hashlib.sha256(b"history %d" % i).digest()) for i in range(8)]
    outcomes: list[object] = []
    barrier = threading.Barrier(len(notes))

    def submit(signed: bytes) -> None:
        barrier.wait()
        try:
            outcomes.append(witness.add_checkpoint(0, [], signed, now=NOW))
        except WitnessConflict as exc:
            outcomes.append(exc)

    threads = [threading.Thread(target=submit, args=(n,)) for n in notes]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(isinstance(o, bytes) for o in outcomes) == 1
    assert sum(isinstance(o, WitnessFork) for o in outcomes) == 7


# --- HTTP, in process ---------------------------------------------------------------------------


@pytest.fixture
def served(witness: Witness) -> Iterator[str]:
    server = make_server(witness, "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()




def test_parse_add_checkpoint_is_strict(log: FakeLog) -> None:
    signed = log.note(5)
    assert parse_add_checkpoint(request_body(3, log.proof(3, 5), signed)) == (3, log.proof(3, 5), signed)
    for bad in (
        b"old 03\n\n" + signed, b"old -1\n\n" + signed, b"old 1 \n\n" + signed, b"new 1\n\n" + signed,
        b"old 1\n" + b64encode(b"short").encode() + b"\n\n" + signed,
        b"old 1\n" + base64url(log.root(5)) + b"\n\n" + signed,
        b"old 1\n", b"old 1\n\n", b"old 99999999999999999999\n\n" + signed,
    ):
        with pytest.raises(MalformedInputError):
            parse_add_checkpoint(bad)


def base64url(data: bytes) -> bytes:
    return b64encode(data).replace("+", "-").replace("/", "_").rstrip("=").encode()


def test_http_add_checkpoint_statuses(served: str, log: FakeLog) -> None:
    url = f"{served}/add-checkpoint"
    with httpx.Client(trust_env=False, timeout=5) as http:
        assert http.get(f"{served}/healthz").text == "ok\n"
        ok = http.post(url, content=request_body(0, [], log.note(5)))
        assert ok.status_code == 200 and ok.headers["content-type"].startswith("text/plain")
        assert ok.text.startswith("— w.example/w1 ") and ok.text.count("\n") == 1
        conflict = http.post(url, content=request_body(0, [], log.note(9)))
        assert conflict.status_code == 409
        assert conflict.headers["content-type"] == "text/x.tlog.size" and conflict.text == "5\n"
        bad_proof = [hashlib.sha256(b"x").digest()] * len(log.proof(5, 9))
        assert http.post(url, content=request_body(5, bad_proof, log.note(9))).status_code == 422
        assert http.post(url, content=request_body(0, [], FakeLog("x.example/l").note(2))).status_code == 404
        forged = log.note(9, key=Ed25519PrivateKey.generate())
        assert http.post(url, content=request_body(5, log.proof(5, 9), forged)).status_code == 403
        malformed = http.post(url, content=b"old 05\n\n" + log.note(9))
        assert malformed.status_code == 400 and malformed.text.count("\n") == 1
        assert http.post(url, content=b"x" * (64 * 1024 + 1)).status_code == 413
        assert http.get(url).status_code == 405 and http.get(f"{served}/nope").status_code == 404
        assert http.post(url, content=request_body(5, log.proof(5, 9), log.note(9))).status_code == 200


def test_http_replays_and_forks_answer_409_and_keep_each_fork_once_within_bounds(
    served: str, witness: Witness, log: FakeLog, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    url = f"{served}/add-checkpoint"
    with httpx.Client(trust_env=False, timeout=5) as http:
        assert http.post(url, content=request_body(0, [], log.note(8))).status_code == 200
        assert http.post(url, content=request_body(8, log.proof(8, 20), log.note(20))).status_code == 200
        public = log.note(8)
        for i in range(30):  # an old checkpoint replayed with junk lines: an ordinary conflict
            body = request_body(i % 21, [], note.add_signature_lines(public, junk_lines(i)))
            answer = http.post(url, content=body)
            assert answer.status_code == 409 and answer.text == "20\n"
            assert answer.headers["content-type"] == "text/x.tlog.size"
        assert evidence_files(witness) == [] and warnings_in(caplog) == []

        forked = log.note(20, root=hashlib.sha256(b"another history").digest())
        for i in range(30):  # one fork, replayed with junk lines: kept once, warned once
            body = request_body(i % 21, [], note.add_signature_lines(forked, junk_lines(i)))
            answer = http.post(url, content=body)
            assert answer.status_code == 409 and answer.text == "20\n"
        (evidence,) = evidence_files(witness)
        assert json.loads(evidence.read_text())["refused"]["checkpoint"] == forked.decode()
        assert len(warnings_in(caplog)) == 1

        witness.max_evidence_files = 2
        for i in range(5):  # more forks than the store holds: refused, one more file, one "full" warning
            other = log.note(20, root=hashlib.sha256(b"history %d" % i).digest())
            answer = http.post(url, content=request_body(20, [], other))
            assert answer.status_code == 409 and answer.text == "20\n"
    assert len(evidence_files(witness)) == 2
    assert len(warnings_in(caplog)) == 3 and "full" in warnings_in(caplog)[-1]
    assert witness.state().logs[ORIGIN].root == log.root(20)


# --- the log side -------------------------------------------------------------------------------


def log_verifier_key(ledger: Ledger) -> note.VerifierKey:
    return note.make_verifier_key(ledger.config.log_key_name, ledger.log_key.public_key())


def start_witness_process(data_dir: Path, log_path: Path) -> tuple[subprocess.Popen[bytes], str]:
    """`evidence-ledger witness serve --port 0` in a subprocess; (process, base URL)."""
    with log_path.open("wb") as stderr:
        proc = subprocess.Popen(
            [sys.executable, "-c", SERVE, "witness", "serve", "--data-dir", str(data_dir),
             "--host", "127.0.0.1", "--port", "0"],
            stdout=subprocess.PIPE, stderr=stderr, cwd=data_dir,
        )
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], 20)
    line = proc.stdout.readline().decode() if ready else ""
    if "listening on http://127.0.0.1:" not in line:
        proc.kill()
        proc.wait()
        raise AssertionError(f"witness did not start: {line!r} {log_path.read_text()[-500:]}")
    return proc, line.split("listening on ", 1)[1].strip()


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def test_ledger_checkpoint_is_cosigned_by_a_witness_process(ledger: Ledger, tmp_path: Path) -> None:
    runner = CliRunner()
    log_vkey = log_verifier_key(ledger)
    witness_dir = tmp_path / "witness"
    result = runner.invoke(
        app, ["witness", "init", "--name", "da.example/witness", "--data-dir", str(witness_dir),
              "--log-vkey", str(log_vkey)],
    )
    assert result.exit_code == 0, result.output
    witness_vkey = note.parse_verifier_key(result.output.split("witness verifier key: ")[1].strip())
    assert runner.invoke(app, ["witness", "key", "--data-dir", str(witness_dir)]).output.strip() == str(witness_vkey)
    actors = Actors.register(ledger)
    case_id = new_case_id()
    actors.ok("investigator", case_id, "CaseOpened", case_opened())

    proc, url = start_witness_process(witness_dir, tmp_path / "witness.log")
    try:
        result = runner.invoke(
            app, ["log", "add-witness", "--url", url, "--vkey", str(witness_vkey), "--data-dir", str(ledger.data_dir)]
        )
        assert result.exit_code == 0, result.output
        client = httpx.Client(trust_env=False, timeout=5)

        first = checkpoint_with_witnesses(ledger, client=client)  # first contact (old size 0)
        assert first is not None and len(first.cosignatures) == 1
        note.verify_checkpoint(first.with_cosignatures(), log_vkey, [witness_vkey], 1)

        actors.ok("investigator", case_id, "ReportReceived", report_received(None))
        second = checkpoint_with_witnesses(ledger, client=client)  # old size = first, with a proof
        assert second is not None and second.size == first.size + 1
        note.verify_checkpoint(second.with_cosignatures(), log_vkey, [witness_vkey], 1)

        with ledger.db.write() as tx:  # the log forgot what was cosigned: 409, then a retry from 9
            tx.execute("DELETE FROM log_cosignatures")
        actors.ok("supervisor", case_id, "CaseClosed", {"disposition": "unfounded"})
        third = checkpoint_with_witnesses(ledger, client=client)
        assert third is not None and len(third.cosignatures) == 1
        note.verify_checkpoint(third.with_cosignatures(), log_vkey, [witness_vkey], 1)

        absent = note.make_verifier_key("ag.example/witness", Ed25519PrivateKey.generate().public_key(), 0x04)
        configure_witness(ledger.data_dir, "http://127.0.0.1:9", str(absent))  # nothing listens there
        assert len(collect_cosignatures(ledger, third, timeout=2, client=client)) == 1  # no exception
        note.verify_checkpoint(third.with_cosignatures(), log_vkey, [witness_vkey, absent], 1)
        with pytest.raises(VerificationError) as caught:
            note.verify_checkpoint(third.with_cosignatures(), log_vkey, [witness_vkey, absent], 2)
        assert caught.value.code == "WITNESS_POLICY"
        client.close()
    finally:
        stop(proc)
    state = json.loads((witness_dir / "state.json").read_text())
    assert state["logs"][ledger.origin]["size"] == third.size


class _Garbage(BaseHTTPRequestHandler):
    answer = b"hello\n"

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        self.send_response(200)
        self.send_header("Content-Length", str(len(self.answer)))
        self.end_headers()
        self.wfile.write(self.answer)

    def log_message(self, format: str, *args: object) -> None:
        pass


def test_the_client_rejects_garbage_and_lines_that_do_not_verify(ledger: Ledger) -> None:
    key = Ed25519PrivateKey.generate()
    vkey = note.make_verifier_key("fake.example/witness", key.public_key(), note.SIG_TYPE_COSIGNATURE_V1)
    checkpoint = ledger.checkpoint()
    assert checkpoint is not None
    other_body = note.Checkpoint(ledger.origin, checkpoint.size, hashlib.sha256(b"x").digest()).body()
    answers = [
        b"hello\n",
        b"\xff\xfe\n",
        note.cosign(other_body, vkey.name, key, 1),  # valid signature over another checkpoint
        note.cosign(note.open_note(checkpoint.note)[0], vkey.name, Ed25519PrivateKey.generate(), 1),
    ]
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Garbage)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    try:
        configure_witness(ledger.data_dir, f"http://127.0.0.1:{server.server_address[1]}/", str(vkey))
        with httpx.Client(trust_env=False, timeout=5) as client:
            for answer in answers:
                _Garbage.answer = answer
                assert collect_cosignatures(ledger, checkpoint, client=client) == []
            _Garbage.answer = note.cosign(note.open_note(checkpoint.note)[0], vkey.name, key, int(time.time()))
            assert collect_cosignatures(ledger, checkpoint, client=client) == [_Garbage.answer.decode()]
    finally:
        server.shutdown()
        server.server_close()
    assert ledger.checkpoint_at(checkpoint.size).cosignatures == (_Garbage.answer.decode(),)


def test_configure_witness_validates_and_keeps_one_key_per_name(ledger: Ledger) -> None:
    key = note.make_verifier_key("w.example/w", Ed25519PrivateKey.generate().public_key(), 0x04)
    log_key = log_verifier_key(ledger)
    with pytest.raises(MalformedInputError):
        configure_witness(ledger.data_dir, "http://127.0.0.1:1", str(log_key))  # a type 0x01 key
    for url in ("ftp://127.0.0.1", "http://user:pw@127.0.0.1", "127.0.0.1:80", "http://127.0.0.1/?x=1"):
        with pytest.raises(MalformedInputError):
            configure_witness(ledger.data_dir, url, str(key))
    configure_witness(ledger.data_dir, "http://127.0.0.1:1", str(key))
    configure_witness(ledger.data_dir, "http://127.0.0.1:2/", str(key))  # a new URL for the same key
    assert [(e.url, str(e.vkey)) for e in load_witnesses(ledger.data_dir)] == [("http://127.0.0.1:2", str(key))]
    other = note.make_verifier_key("w.example/w", Ed25519PrivateKey.generate().public_key(), 0x04)
    with pytest.raises(ConfigurationError):
        configure_witness(ledger.data_dir, "http://127.0.0.1:1", str(other))

