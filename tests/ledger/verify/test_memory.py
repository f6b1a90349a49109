"""The client's memory of each log (ledger.verify.memory): rollbacks, forks, consistent growth, trust on
first use, a tampered memory, concurrent processes."""

from __future__ import annotations

import json
import multiprocessing
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from domain.errors import LedgerError, MalformedInputError, NotFoundError, VerificationError
from ledger.log import merkle, note
from ledger.verify.memory import (
    ADVANCED,
    FIRST,
    OLDER_PROVEN,
    OLDER_UNPROVEN,
    SAME,
    UNPROVEN,
    CheckpointMemory,
)
from ledger.verify.state_dir import origin_dir

ORIGIN = "test.example/memory"
KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
VKEY = note.make_verifier_key(ORIGIN, KEY.public_key())


class Log:
    """An in-memory log that signs checkpoints and proves consistency, as a server would."""

    def __init__(self, prefix: bytes = b"leaf", key: Ed25519PrivateKey = KEY) -> None:
        self.prefix, self.key = prefix, key
        self.hashes: list[bytes] = []

    def grow(self, n: int, prefix: bytes | None = None) -> Log:
        for _ in range(n):
            self.hashes.append(merkle.leaf_hash((prefix or self.prefix) + str(len(self.hashes)).encode()))
        return self

    def note(self, size: int | None = None) -> bytes:
        size = len(self.hashes) if size is None else size
        body = note.Checkpoint(ORIGIN, size, merkle.root_from_leaf_hashes(self.hashes[:size])).body()
        return note.sign_note(body, ORIGIN, self.key)

    def proof(self, first: int, second: int) -> list[bytes]:
        return merkle.reference_consistency_proof(first, self.hashes[:second])

    def fork(self, at: int, prefix: bytes) -> Log:
        other = Log(prefix, self.key)
        other.hashes = self.hashes[:at]
        return other


def conflicts(root: Path) -> list[Path]:
    base = origin_dir(root, ORIGIN) / "conflicts"
    return sorted(base.iterdir()) if base.exists() else []


def test_first_checkpoint_is_remembered_with_private_modes(tmp_path: Path) -> None:
    log = Log().grow(5)
    seen = CheckpointMemory(tmp_path).observe(log.note(), VKEY, log.proof, pinned=False)
    assert seen.status == FIRST and seen.size == 5
    directory = origin_dir(tmp_path, ORIGIN)
    assert (directory / "latest").read_bytes() == log.note()
    assert (directory / "vkey").read_text().strip() == str(VKEY)
    assert stat.S_IMODE((directory / "latest").stat().st_mode) == 0o600
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700


def test_consistent_growth_advances_latest(tmp_path: Path) -> None:
    log = Log().grow(5)
    memory = CheckpointMemory(tmp_path)
    memory.observe(log.note(), VKEY, log.proof)
    assert memory.observe(log.note(), VKEY, log.proof).status == SAME
    log.grow(8)
    seen = memory.observe(log.note(), VKEY, log.proof)
    assert (seen.status, seen.remembered_size, seen.size) == (ADVANCED, 5, 13)
    assert memory.latest(ORIGIN) == log.note()


def test_rollback_is_refused_and_both_notes_are_kept(tmp_path: Path) -> None:
    log = Log().grow(9)
    memory = CheckpointMemory(tmp_path)
    memory.observe(log.note(), VKEY, log.proof)
    with pytest.raises(VerificationError) as caught:
        memory.observe(log.note(4), VKEY, log.proof, source="http://server")
    assert caught.value.code == "ROLLBACK"
    (kept,) = conflicts(tmp_path)
    assert kept.name.endswith("-ROLLBACK") and str(kept) in caught.value.message
    assert "size 4" in caught.value.message and "size 9" in caught.value.message
    assert (kept / "remembered.txt").read_bytes() == log.note(9)
    assert (kept / "presented.txt").read_bytes() == log.note(4)
    explained = json.loads((kept / "conflict.json").read_text())
    assert explained["code"] == "ROLLBACK" and explained["presented"]["size"] == 4
    assert memory.latest(ORIGIN) == log.note(9)  # the memory is not rolled back


def test_same_size_other_root_is_equivocation(tmp_path: Path) -> None:
    log = Log().grow(6)
    forked = log.fork(3, b"other").grow(3)
    memory = CheckpointMemory(tmp_path)
    memory.observe(log.note(), VKEY, log.proof)
    with pytest.raises(VerificationError) as caught:
        memory.observe(forked.note(), VKEY, forked.proof)
    assert caught.value.code == "EQUIVOCATION"
    (kept,) = conflicts(tmp_path)
    assert (kept / "presented.txt").read_bytes() == forked.note()
    assert memory.latest(ORIGIN) == log.note()


def test_larger_fork_fails_its_consistency_proof(tmp_path: Path) -> None:
    log = Log().grow(6)
    forked = log.fork(3, b"other").grow(7)
    memory = CheckpointMemory(tmp_path)
    memory.observe(log.note(), VKEY, log.proof)
    with pytest.raises(VerificationError) as caught:
        memory.observe(forked.note(), VKEY, forked.proof)  # the fork's own, honest-looking proof
    assert caught.value.code == "EQUIVOCATION" and "consistency proof" in caught.value.message
    (kept,) = conflicts(tmp_path)
    assert json.loads((kept / "conflict.json").read_text())["consistency_proof"]
    assert memory.latest(ORIGIN) == log.note()


def test_larger_without_a_proof_is_not_advanced(tmp_path: Path) -> None:
    log = Log().grow(4)
    memory = CheckpointMemory(tmp_path)
    memory.observe(log.note(), VKEY)
    log.grow(4)
    seen = memory.observe(log.note(), VKEY, None)
    assert seen.status == UNPROVEN and "not proven offline" in seen.describe()
    assert memory.latest(ORIGIN) == log.note(4)


def test_older_checkpoint_of_a_bundle_is_not_a_rollback(tmp_path: Path) -> None:
    log = Log().grow(10)
    memory = CheckpointMemory(tmp_path)
    memory.observe(log.note(), VKEY, log.proof)
    assert memory.observe(log.note(3), VKEY, None, older_ok=True).status == OLDER_UNPROVEN
    assert memory.observe(log.note(3), VKEY, log.proof, older_ok=True).status == OLDER_PROVEN
    forked = log.fork(2, b"other").grow(1)
    with pytest.raises(VerificationError) as caught:
        memory.observe(forked.note(), VKEY, log.proof, older_ok=True)
    assert caught.value.code == "EQUIVOCATION"
    assert memory.latest(ORIGIN) == log.note(10)


def test_changed_key_is_refused_without_a_pin(tmp_path: Path) -> None:
    log = Log().grow(3)
    memory = CheckpointMemory(tmp_path)
    memory.observe(log.note(), VKEY, log.proof, pinned=False)
    other_key = Ed25519PrivateKey.generate()
    other = Log(key=other_key).grow(5)
    other_vkey = note.make_verifier_key(ORIGIN, other_key.public_key())
    with pytest.raises(VerificationError) as caught:
        memory.observe(other.note(), other_vkey, other.proof, pinned=False)
    assert caught.value.code == "KEY_CHANGED"
    assert memory.latest(ORIGIN) == log.note()


def test_tampered_memory_is_its_own_error_and_is_not_overwritten(tmp_path: Path) -> None:
    log = Log().grow(5)
    memory = CheckpointMemory(tmp_path)
    memory.observe(log.note(), VKEY, log.proof)
    latest = origin_dir(tmp_path, ORIGIN) / "latest"
    forged = Log(key=Ed25519PrivateKey.generate()).grow(2).note()  # an insider "resets" the memory
    latest.write_bytes(forged)
    with pytest.raises(VerificationError) as caught:
        memory.observe(log.grow(1).note(), VKEY, log.proof)
    assert caught.value.code == "REMEMBERED_CHECKPOINT_INVALID" and str(latest) in caught.value.message
    assert latest.read_bytes() == forged


def test_unsigned_presented_checkpoint_is_refused(tmp_path: Path) -> None:
    log = Log(key=Ed25519PrivateKey.generate()).grow(3)
    with pytest.raises(VerificationError):
        CheckpointMemory(tmp_path).observe(log.note(), VKEY, log.proof)
    assert CheckpointMemory(tmp_path).latest(ORIGIN) is None


SIZES = 64


def _observe_all(root: str) -> None:
    """Observe every size in turn; exit 1 if the memory ever goes back below what this process saw."""
    log = Log().grow(SIZES)
    memory = CheckpointMemory(Path(root))
    highest = 0
    for size in range(1, SIZES + 1):
        memory.observe(log.note(size), VKEY, log.proof, older_ok=True)
        remembered = memory.latest(ORIGIN)
        assert remembered is not None
        now = note.parse_checkpoint_body(note.open_note(remembered)[0]).size
        if now < max(highest, size):
            raise SystemExit(1)
        highest = now


def test_concurrent_processes_never_regress_or_tear_the_memory(tmp_path: Path) -> None:
    context = multiprocessing.get_context("fork")
    workers = [context.Process(target=_observe_all, args=(str(tmp_path),)) for _ in range(6)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert [w.exitcode for w in workers] == [0] * 6
    assert CheckpointMemory(tmp_path).latest(ORIGIN) == Log().grow(SIZES).note()
    assert conflicts(tmp_path) == []
    assert sorted(p.name for p in origin_dir(tmp_path, ORIGIN).iterdir()) == [".lock", "latest", "vkey"]


@pytest.mark.parametrize(
    "refusal",
    [
        MalformedInputError("consistency proof: not JSON"),  # a malformed proof
        NotFoundError("no such tree size", code="HTTP_404"),  # "cannot prove" for a tree it signed
        LedgerError("internal error", code="HTTP_500"),
    ],
    ids=["malformed", "404", "5xx"],
)
def test_a_server_that_answers_without_a_proof_is_equivocating(tmp_path: Path, refusal: LedgerError) -> None:
    log = Log().grow(6)
    memory = CheckpointMemory(tmp_path)
    memory.observe(log.note(), VKEY, log.proof)
    larger = log.grow(3).note()

    def no_proof(first: int, second: int) -> list[bytes]:
        raise refusal

    with pytest.raises(VerificationError) as caught:
        memory.observe(larger, VKEY, no_proof)
    assert caught.value.code == "EQUIVOCATION" and "gave no consistency proof" in caught.value.message
    (kept,) = conflicts(tmp_path)
    assert (kept / "remembered.txt").read_bytes() == log.note(6)
    assert (kept / "presented.txt").read_bytes() == larger
    explained = json.loads((kept / "conflict.json").read_text())
    assert explained["consistency_proof"] is None and refusal.message in explained["proof_error"]
    assert memory.latest(ORIGIN) == log.note(6)


@pytest.mark.parametrize("code", ["SERVER_UNREACHABLE", "BAD_ARGUMENT"])
def test_no_answer_is_not_a_finding(tmp_path: Path, code: str) -> None:
    log = Log().grow(6)
    memory = CheckpointMemory(tmp_path)
    memory.observe(log.note(), VKEY, log.proof)

    def unreachable(first: int, second: int) -> list[bytes]:
        raise LedgerError("cannot reach the server", code=code)

    with pytest.raises(LedgerError) as caught:
        memory.observe(log.grow(2).note(), VKEY, unreachable)
    assert caught.value.code == code and conflicts(tmp_path) == []
    assert memory.latest(ORIGIN) == log.note(6)
