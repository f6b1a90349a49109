"""The footage store: content addressing, atomic writes, traversal and symlink refusal, fixity,
`stored: true` enforcement, access records and the `evidence` commands."""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from domain.errors import MalformedInputError, NotFoundError, VerificationError
from ledger.cli.app import app, commands
from ledger.envelope.dsse import parse_envelope
from ledger.envelope.keys import key_id, load_private_key
from ledger.evidence.fixity import check_fixity, expected_files
from ledger.evidence.footage import (
    EvidenceTooLarge,
    FootageStore,
    UnsafeStoreEntry,
    require_evidence,
)
from ledger.settings import key_path
from ledger.store import Ledger
from tests.support.cases import FOOTAGE_BYTES, FOOTAGE_SHA, Actors, case_opened, footage_captured, new_case_id

commands()

TRAVERSAL = [
    "../../etc/passwd",
    "../" * 20 + "etc/passwd",
    "..%2f..%2fetc%2fpasswd",
    "%2e%2e%2f%2e%2e%2fetc%2fpasswd",
    "/etc/passwd",
    "/" + "a" * 63,
    "a" * 63 + "\x00",
    "\uff0e\uff0e\uff0f" + "a" * 61,  # full-width dots and slash
    "a" * 62 + "/.",
    FOOTAGE_SHA.upper(),
    FOOTAGE_SHA + "\n",
    FOOTAGE_SHA[:-1],
    FOOTAGE_SHA + "0",
    "\u0660" * 64,  # Arabic-Indic digits are digits, not hex
    "ａ" * 64,
    "",
]


@pytest.fixture
def store(tmp_path: Path) -> FootageStore:
    return FootageStore(tmp_path / "footage")


def chunks(data: bytes, size: int = 1000) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


def test_put_stream_is_content_addressed_read_only_and_written_once(store: FootageStore) -> None:
    sha, size, created = store.put_stream(chunks(FOOTAGE_BYTES))
    assert (sha, size, created) == (FOOTAGE_SHA, len(FOOTAGE_BYTES), True)
    path = store.root / sha[:2] / sha[2:4] / sha
    assert store.path_of(sha) == path and path.read_bytes() == FOOTAGE_BYTES
    assert stat.S_IMODE(path.stat().st_mode) == 0o400
    inode = path.stat().st_ino
    assert store.put_stream([FOOTAGE_BYTES]) == (FOOTAGE_SHA, len(FOOTAGE_BYTES), False)
    assert path.stat().st_ino == inode  # not written twice
    assert store.exists(sha) and not store.exists("0" * 64)
    with store.open(sha) as handle:
        assert handle.read() == FOOTAGE_BYTES
    assert list((store.root / ".tmp").iterdir()) == []


def test_size_cap_and_digest_mismatch_leave_nothing_behind(store: FootageStore) -> None:
    with pytest.raises(EvidenceTooLarge):
        store.put_stream(chunks(FOOTAGE_BYTES), max_bytes=len(FOOTAGE_BYTES) - 1)
    with pytest.raises(VerificationError) as caught:
        store.put_stream([FOOTAGE_BYTES], expected_sha256="0" * 64)
    assert caught.value.code == "DIGEST_MISMATCH"
    assert not store.exists(FOOTAGE_SHA) and list((store.root / ".tmp").iterdir()) == []
    small = FootageStore(store.root, max_bytes=10)
    with pytest.raises(EvidenceTooLarge):
        small.put_stream([b"x" * 11])
    assert small.put_stream([b"x" * 10])[1] == 10


def test_a_failing_stream_leaves_nothing_behind(store: FootageStore) -> None:
    def broken() -> Iterator[bytes]:
        yield b"partial"
        raise ConnectionError("client went away")

    with pytest.raises(ConnectionError):
        store.put_stream(broken())
    assert list((store.root / ".tmp").iterdir()) == []


@pytest.mark.parametrize("bad", TRAVERSAL)
def test_no_client_chosen_path_reaches_the_filesystem(store: FootageStore, bad: str) -> None:
    with pytest.raises(MalformedInputError):
        store.path_of(bad)
    with pytest.raises(MalformedInputError):
        store.open(bad)
    with pytest.raises(MalformedInputError):
        store.put_stream([b"x"], expected_sha256=bad)
    assert store.exists(bad) is False


def test_non_strings_are_refused(store: FootageStore) -> None:
    for bad in (FOOTAGE_SHA.encode(), None, 42, Path(FOOTAGE_SHA)):
        with pytest.raises(MalformedInputError):
            store.path_of(bad)  # type: ignore[arg-type]


def test_a_planted_symlink_is_never_followed(store: FootageStore, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.write_bytes(b"secret outside the store")
    path = store.root / FOOTAGE_SHA[:2] / FOOTAGE_SHA[2:4] / FOOTAGE_SHA
    path.parent.mkdir(parents=True)
    path.symlink_to(outside)
    assert store.exists(FOOTAGE_SHA) is False
    with pytest.raises(UnsafeStoreEntry):
        store.open(FOOTAGE_SHA)
    with pytest.raises(UnsafeStoreEntry):
        store.put_stream([FOOTAGE_BYTES])
    assert outside.read_bytes() == b"secret outside the store"


def test_a_symlinked_folder_is_never_followed(store: FootageStore, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    (elsewhere / FOOTAGE_SHA[2:4]).mkdir(parents=True)
    (elsewhere / FOOTAGE_SHA[2:4] / FOOTAGE_SHA).write_bytes(FOOTAGE_BYTES)
    store.root.mkdir()
    (store.root / FOOTAGE_SHA[:2]).symlink_to(elsewhere)
    assert store.exists(FOOTAGE_SHA) is False
    with pytest.raises(UnsafeStoreEntry):
        store.open(FOOTAGE_SHA)
    with pytest.raises(UnsafeStoreEntry):
        store.put_stream([FOOTAGE_BYTES])


def test_fixity_finds_a_flipped_byte_a_missing_file_and_strays(store: FootageStore) -> None:
    other = b"second file" * 50
    store.put_stream([FOOTAGE_BYTES])
    other_sha, _, _ = store.put_stream([other])
    expected = {
        FOOTAGE_SHA: [{"case_id": "c", "footage_id": "ftg-1"}],
        "e" * 64: [{"case_id": "c", "footage_id": "f2"}],
    }
    seen: list[tuple[int, int]] = []
    report = check_fixity(store, expected, progress=lambda done, total: seen.append((done, total)))
    assert [(p.code, p.what) for p in report.problems] == [("MISSING", "e" * 64)]
    assert report.checked == 2 and seen[-1] == (len(FOOTAGE_BYTES) + len(other),) * 2
    path = store.path_of(FOOTAGE_SHA)
    os.chmod(path, 0o600)
    data = bytearray(path.read_bytes())
    data[10] ^= 0x01
    path.write_bytes(bytes(data))
    os.unlink(store.path_of(other_sha))
    (store.root / "stray.txt").write_bytes(b"x")
    report = check_fixity(store, {**expected, other_sha: [{"case_id": "c", "footage_id": "f3"}]})
    assert sorted((p.code, p.what) for p in report.problems) == sorted(
        [
            ("UNEXPECTED_ENTRY", "stray.txt"),
            ("HASH_MISMATCH", FOOTAGE_SHA),
            ("MISSING", "e" * 64),
            ("MISSING", other_sha),
        ]
    )


# --- with a ledger (both backends) ---------------------------------------------------------------------


def test_stored_true_needs_the_file_in_the_store(ledger: Ledger) -> None:
    actors = Actors.register(ledger)
    case_id = new_case_id()
    actors.ok("investigator", case_id, "CaseOpened", case_opened())
    refused = actors.refused("investigator", case_id, "FootageCaptured", footage_captured(stored=True))
    assert refused.code == "FOOTAGE_NOT_STORED"
    FootageStore(ledger.data_dir / "footage").put_stream([FOOTAGE_BYTES])
    actors.ok("investigator", case_id, "FootageCaptured", footage_captured(stored=True))
    assert expected_files(ledger) == {FOOTAGE_SHA: [{"case_id": case_id, "footage_id": "ftg-1", "seq": "2"}]}


def test_a_download_is_checked_before_it_is_recorded(ledger: Ledger) -> None:
    actors = Actors.register(ledger)
    store = FootageStore(ledger.data_dir / "footage")
    store.put_stream([FOOTAGE_BYTES])
    case_id = new_case_id()
    actors.ok("investigator", case_id, "CaseOpened", case_opened())
    actors.ok("investigator", case_id, "FootageCaptured", footage_captured(stored=True))
    assert require_evidence(ledger, store, case_id, FOOTAGE_SHA) == {"footage_id": "ftg-1"}
    with pytest.raises(NotFoundError, match="records no file"):
        require_evidence(ledger, store, case_id, "0" * 64)
    actors.ok("investigator", case_id, "FootageCaptured", footage_captured("ftg-2", sha="1" * 64))
    with pytest.raises(NotFoundError, match="not in the footage store"):
        require_evidence(ledger, store, case_id, "1" * 64)
    assert ledger.case_head(case_id)[0] == 3 and ledger.access_log.size() == 0  # checking records nothing


def test_earlier_evidence_accessed_events_stay_valid(ledger: Ledger, tmp_path: Path) -> None:
    """Downloads no longer append EvidenceAccessed, but the type stays registered: the events stored
    before keep verifying (bundle and audit) and counting on the case."""
    from ledger.evidence.bundle import export_bundle
    from ledger.verify import verify_bundle
    from tests.support.audit import audit

    actors = Actors.register(ledger)
    case_id = new_case_id()
    actors.ok("investigator", case_id, "CaseOpened", case_opened())
    actors.ok("investigator", case_id, "FootageCaptured", footage_captured())
    service = load_private_key(key_path(ledger.data_dir, "service"))
    body = {"footage_id": "ftg-1", "actor": "ADA C. Okafor", "purpose": "prosecution review"}
    receipt = ledger.sign_and_append(service, case_id, "EvidenceAccessed", body)
    assert receipt.seq == 3 and ledger.case_view(case_id)["accesses"] == 1
    assert parse_envelope(ledger.case_envelopes(case_id)[-1]).statement.signer == key_id(service)
    ledger.checkpoint()
    bundle = export_bundle(ledger, case_id, tmp_path / "case.zip").path
    assert verify_bundle(bundle).findings == []
    assert audit(ledger).findings == []


def test_evidence_commands(ledger: Ledger, database_url: str | None, tmp_path: Path) -> None:
    env = {"EVIDENCE_LEDGER_DATA_DIR": str(ledger.data_dir)}
    if database_url:
        env["EVIDENCE_LEDGER_DATABASE_URL"] = database_url
    runner = CliRunner()
    source = tmp_path / "clip.mp4"
    source.write_bytes(FOOTAGE_BYTES)
    result = runner.invoke(app, ["evidence", "put", str(source)], env=env)
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[:2] == [f"sha256 {FOOTAGE_SHA}", f"size {len(FOOTAGE_BYTES)} bytes"]
    result = runner.invoke(app, ["evidence", "put", str(source), "--json"], env=env)
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == {"sha256": FOOTAGE_SHA, "size": len(FOOTAGE_BYTES), "created": False}
    actors = Actors.register(ledger)
    case_id = new_case_id()
    actors.ok("investigator", case_id, "CaseOpened", case_opened())
    actors.ok("investigator", case_id, "FootageCaptured", footage_captured(stored=True))
    result = runner.invoke(app, ["evidence", "fixity"], env=env)
    assert result.exit_code == 0 and "checked 1 files" in result.output, result.output
    path = FootageStore(ledger.data_dir / "footage").path_of(FOOTAGE_SHA)
    os.chmod(path, 0o600)
    path.write_bytes(FOOTAGE_BYTES[:-1] + b"!")
    result = runner.invoke(app, ["evidence", "fixity"], env=env)
    assert result.exit_code == 1 and "HASH_MISMATCH" in result.output
    path.unlink()
    result = runner.invoke(app, ["evidence", "fixity"], env=env)
    assert result.exit_code == 1 and "MISSING" in result.output and f"case_id={case_id}" in result.output
