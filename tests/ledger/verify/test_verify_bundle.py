"""`evidence-ledger verify`: a real bundle verifies clean offline; each tampering gives its finding.

Every verification runs `evidence-ledger verify` in a fresh interpreter in which FastAPI, Starlette,
eventsourcing, psycopg and sqlite3 cannot be imported. Each tampered bundle is the real one altered
in exactly one way; where a deeper check must be reached, the manifest is updated too (and
`test_a_changed_member_without_manifest_update_is_a_manifest_mismatch` shows what happens if not).
Codes that need an envelope the ledger itself would refuse are produced by a "compromised server":
a properly signed envelope spliced in with a rebuilt tree and a checkpoint re-signed with the data
dir's real log key.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import threading
from collections.abc import Callable, Iterator
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from api.witness_app import make_server
from ledger.envelope.canonical import canonical
from ledger.envelope.dsse import REGISTRY_CASE_ID
from ledger.evidence.footage import FootageStore
from ledger.log import note
from ledger.log.witnessing import configure_witness
from ledger.store import Ledger
from ledger.witness.cosigner import Witness
from tests.support.bundles import (
    Exported,
    Forger,
    Members,
    case_indexes,
    codes,
    drop_entry,
    export_scenario,
    flip_sig,
    forged,
    index_of,
    only,
    read_members,
    run_verify,
    statement,
    tampered,
    verify,
)
from tests.support.cases import FOOTAGE_BYTES, REDACTED_BYTES

NARRATIVE = "Caller saw masked agents break a car window."


@pytest.fixture(autouse=True)
def no_pin_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No developer's pin file (~/.config/evidence-ledger/trust.toml) applies here."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.delenv("EVIDENCE_LEDGER_TRUST_FILE", raising=False)


def pins(exported: Exported) -> tuple[str, ...]:
    return ("--vkey", exported.log_vkey, "--trust-root", exported.trust_root)


# --- clean ------------------------------------------------------------------------------------------


def test_a_clean_bundle_verifies_offline_with_pinned_keys(exported: Exported) -> None:
    rc, report = verify(exported.path, *pins(exported))
    assert rc == 0 and report["verdict"] == "verified" and report["findings"] == []
    assert report["checkpoint"]["key_source"] == "--vkey" and report["trust_root"]["pinned"] is True
    assert [r["seq"] for r in report["timeline"]] == list(range(1, 12))
    case = report["case"]
    assert case["status"] == "closed" and case["footage"][0]["release_status"] == "released"
    assert case["referrals"][0]["authority"] == "middlesex_da" and case["referrals"][0]["acknowledged_at"]
    statuses = {s["step"]: s["status"] for s in report["steps"]}
    assert statuses == {**dict.fromkeys([*range(1, 12), 13, 14], "passed"), 6: "not applicable", 11: "not applicable"}


def test_the_text_report_names_its_caveats_and_never_shows_narratives(exported: Exported) -> None:
    result = run_verify(str(exported.path))
    assert result.returncode == 4, result.stderr  # nothing pinned: UNPINNED, never VERIFIED
    assert "UNPINNED" in result.stdout and "not an independent check" in result.stdout
    assert "NOT pinned" in result.stdout
    for secret in (NARRATIVE, "Jane Caller", "617-555-0100", "Vehicle damaged", "Active DA investigation"):
        assert secret not in result.stdout


def test_the_html_report_is_self_contained_and_escaped(ledger: Ledger, tmp_path: Path) -> None:
    from tests.support.cases import ROLES

    ROLES["investigator"] = ("<script>alert(1)</script> & Co", None)
    try:
        exported = export_scenario(ledger, tmp_path / "case.zip")
    finally:
        ROLES["investigator"] = ("Det. A. Rivera", None)
    html_path = tmp_path / "report.html"
    result = run_verify(str(exported.path), *pins(exported), "--html", str(html_path))
    assert result.returncode == 0, result.stderr
    page = html_path.read_text("utf-8")
    assert "<script>alert(1)" not in page and "&lt;script&gt;alert(1)&lt;/script&gt; &amp; Co" in page
    assert "src=" not in page and "href=" not in page and "@import" not in page  # no external assets
    for text in (
        "VERIFIED",
        "Case timeline",
        "ReferralAcknowledged",
        "Checkpoint and witnesses",
        exported.case_id,
    ):
        assert text in page
    assert NARRATIVE not in page and "Jane Caller" not in page


# --- step 1: manifest ---------------------------------------------------------------------------------


def test_a_changed_member_without_manifest_update_is_a_manifest_mismatch(
    exported: Exported, tmp_path: Path
) -> None:
    last = case_indexes(read_members(exported.path), exported.case_id)[-1]
    path = tampered(exported.path, tmp_path / "t.zip", lambda m: flip_sig(m, last), manifest=False)
    rc, report = verify(path)
    assert rc == 1 and "MANIFEST_MISMATCH" in codes(report)
    mismatch = next(f for f in report["findings"] if f["code"] == "MANIFEST_MISMATCH")
    assert mismatch["evidence"]["path"] == f"envelopes/{last}.json"
    assert {"BAD_SIGNATURE", "LEAF_MISMATCH"} <= codes(report)  # verification went on


def test_an_unlisted_or_missing_file_is_a_manifest_mismatch(exported: Exported, tmp_path: Path) -> None:
    extra = tampered(
        exported.path, tmp_path / "a.zip", lambda m: m.update({"notes.txt": b"x"}), manifest=False
    )
    report = only(extra, "MANIFEST_MISMATCH")
    assert report["findings"][0]["evidence"]["path"] == "notes.txt"
    gone = tampered(exported.path, tmp_path / "b.zip", lambda m: m.pop("HOW-TO-VERIFY.txt"), manifest=False)
    assert only(gone, "MANIFEST_MISMATCH")["findings"][0]["evidence"]["path"] == "HOW-TO-VERIFY.txt"


# --- steps 2-5 and 10 -------------------------------------------------------------------------------


def test_bad_signature(exported: Exported, tmp_path: Path) -> None:
    def build(f: Forger) -> None:
        last = case_indexes(f.members, exported.case_id)[-1]
        env = dict(f.members)
        flip_sig(env, last)
        f.replace(last, env[f"envelopes/{last}.json"])

    report = only(forged(exported, tmp_path, build), "BAD_SIGNATURE")
    assert report["findings"][0]["seq"] == 11


def test_non_canonical(exported: Exported, tmp_path: Path) -> None:
    def build(f: Forger) -> None:
        last = case_indexes(f.members, exported.case_id)[-1]
        f.replace(last, json.dumps(json.loads(f.members[f"envelopes/{last}.json"]), indent=1).encode())

    only(forged(exported, tmp_path, build), "NON_CANONICAL")


def test_malformed_entry_is_a_finding_not_a_crash(exported: Exported, tmp_path: Path) -> None:
    last = case_indexes(read_members(exported.path), exported.case_id)[-1]
    path = tampered(
        exported.path, tmp_path / "t.zip", lambda m: m.update({f"envelopes/{last}.json": b"\x00{oops"})
    )
    rc, report = verify(path)
    assert rc == 1 and "MALFORMED_ENTRY" in codes(report)
    assert next(f for f in report["findings"] if f["code"] == "MALFORMED_ENTRY")["leaf_index"] == last
    assert codes(report) == {"MALFORMED_ENTRY", "LEAF_MISMATCH"}  # the leaf commits to the real bytes
    assert len(report["timeline"]) == 10 and report["case"]["version"] == 10  # the other checks still ran


def test_unknown_key_when_the_signer_registration_is_missing(exported: Exported, tmp_path: Path) -> None:
    prosecutor = exported.actors.key_id("prosecutor")

    def drop(m: Members) -> None:
        drop_entry(
            m, index_of(m, lambda s: s["type"] == "KeyRegistered" and s["body"]["key_id"] == prosecutor)
        )

    report = only(tampered(exported.path, tmp_path / "t.zip", drop), "UNKNOWN_KEY")
    assert report["findings"][0]["seq"] == 10


def test_unknown_key_when_the_pinned_trust_root_differs(exported: Exported) -> None:
    report = only(exported.path, "UNKNOWN_KEY", "--trust-root", "0" * 64)
    assert report["findings"][0]["leaf_index"] == 0


def test_revoked_key(ledger: Ledger, tmp_path: Path) -> None:
    def revoke(actors: Any, case_id: str) -> None:
        actors.revoke("investigator")

    exported = export_scenario(ledger, tmp_path / "case.zip", before_export=revoke)
    assert "KeyRevoked" in {
        statement(d)["type"] for n, d in read_members(exported.path).items() if n.startswith("env")
    }
    path = forged(
        exported,
        tmp_path,
        lambda f: f.append(f.next_envelope("investigator", "CaseReopened", {"reason": "new evidence"})),
    )
    only(path, "REVOKED_KEY")


def test_role_not_allowed(exported: Exported, tmp_path: Path) -> None:
    path = forged(
        exported,
        tmp_path,
        lambda f: f.append(f.next_envelope("prosecutor", "CaseReopened", {"reason": "new evidence"})),
    )
    assert only(path, "ROLE_NOT_ALLOWED")["findings"][0]["seq"] == 12


def test_rule_violation(exported: Exported, tmp_path: Path) -> None:
    release = {
        "footage_id": "ftg-1",
        "sha256": hashlib.sha256(FOOTAGE_BYTES).hexdigest(),
        "basis": "executive_order",
        "channel": "city website",
    }
    path = forged(
        exported, tmp_path, lambda f: f.append(f.next_envelope("supervisor", "FootageReleased", release))
    )
    report = only(path, "RULE_VIOLATION")
    assert "CASE_CLOSED" in report["findings"][0]["message"]


def test_chain_break(exported: Exported, tmp_path: Path) -> None:
    path = forged(
        exported,
        tmp_path,
        lambda f: f.append(f.next_envelope("supervisor", "CaseReopened", {"reason": "x"}, prev="ab" * 32)),
    )
    assert only(path, "CHAIN_BREAK")["findings"][0]["seq"] == 12


def test_seq_gap(exported: Exported, tmp_path: Path) -> None:
    def drop(m: Members) -> None:
        drop_entry(m, case_indexes(m, exported.case_id)[1])  # ReportReceived, seq 2

    report = only(tampered(exported.path, tmp_path / "t.zip", drop), "SEQ_GAP")
    assert report["findings"][0]["seq"] == 3


def test_a_truncated_case_is_incomplete(exported: Exported, tmp_path: Path) -> None:
    def drop(m: Members) -> None:
        drop_entry(m, case_indexes(m, exported.case_id)[-1])

    only(tampered(exported.path, tmp_path / "t.zip", drop), "SEQ_GAP")


def test_binding_mismatch(exported: Exported, tmp_path: Path) -> None:
    path = forged(
        exported,
        tmp_path,
        lambda f: f.append(
            f.next_envelope("supervisor", "CaseReopened", {"reason": "x"}, origin="evil.example/ledger")
        ),
    )
    only(path, "BINDING_MISMATCH")


def test_leaf_mismatch(exported: Exported, tmp_path: Path) -> None:
    first = case_indexes(read_members(exported.path), exported.case_id)[0]

    def change(m: Members) -> None:
        leaf = json.loads(m[f"leaves/{first}.json"])
        leaf["envelope_sha256"] = "0" * 64
        m[f"leaves/{first}.json"] = canonical(leaf)

    rc, report = verify(tampered(exported.path, tmp_path / "t.zip", change))
    assert rc == 1 and codes(report) == {"LEAF_MISMATCH", "BAD_INCLUSION", "BAD_RECEIPT"}  # the log's promise too


# --- steps 7-9 ---------------------------------------------------------------------------------------


def test_bad_inclusion(exported: Exported, tmp_path: Path) -> None:
    first = case_indexes(read_members(exported.path), exported.case_id)[0]

    def change(m: Members) -> None:
        proof = json.loads(m[f"proofs/{first}.json"])
        proof["audit_path"][0] = base64.b64encode(b"\x07" * 32).decode()
        m[f"proofs/{first}.json"] = canonical(proof)

    assert (
        only(tampered(exported.path, tmp_path / "t.zip", change), "BAD_INCLUSION")["findings"][0][
            "leaf_index"
        ]
        == first
    )


def test_bad_checkpoint(exported: Exported, tmp_path: Path) -> None:
    def change(m: Members) -> None:  # same tree, signed by a key that is not the log's
        body = note.open_note(m["checkpoint.txt"])[0]
        m["checkpoint.txt"] = note.sign_note(
            body, exported.ledger.config.log_key_name, Ed25519PrivateKey.generate()
        )

    path = tampered(exported.path, tmp_path / "t.zip", change)
    only(path, "BAD_CHECKPOINT", "--vkey", exported.log_vkey)


def test_a_bundle_log_key_that_differs_from_vkey_is_a_bad_checkpoint(
    exported: Exported, tmp_path: Path
) -> None:
    other = note.make_verifier_key(exported.ledger.origin, Ed25519PrivateKey.generate().public_key())
    only(exported.path, "BAD_CHECKPOINT", "--vkey", str(other))


def test_media_mismatch(ledger: Ledger, tmp_path: Path) -> None:
    store = FootageStore(ledger.data_dir / "footage")
    store.put_stream([FOOTAGE_BYTES])
    store.put_stream([REDACTED_BYTES])
    exported = export_scenario(ledger, tmp_path / "case.zip", with_media=True)
    rc, report = verify(exported.path, *pins(exported))
    assert rc == 0 and {m["status"] for m in report["media"]} == {"verified (bundle)"}
    # media are judged against what the signed events record, even when those events fail their own checks
    assert (
        only(exported.path, "UNKNOWN_KEY", "--trust-root", "0" * 64)["media"][0]["status"]
        == "verified (bundle)"
    )
    sha = hashlib.sha256(FOOTAGE_BYTES).hexdigest()

    def flip(m: Members) -> None:
        data = bytearray(m[f"media/{sha}"])
        data[100] ^= 0x01
        m[f"media/{sha}"] = bytes(data)

    report = only(tampered(exported.path, tmp_path / "t.zip", flip), "MEDIA_MISMATCH")
    assert report["findings"][0]["evidence"]["footage_id"] == "ftg-1"


def test_media_from_a_folder(exported: Exported, tmp_path: Path) -> None:
    folder = tmp_path / "media"
    folder.mkdir()
    (folder / hashlib.sha256(FOOTAGE_BYTES).hexdigest()).write_bytes(FOOTAGE_BYTES)
    rc, report = verify(exported.path, *pins(exported), "--media", str(folder))
    assert rc == 0 and sorted(m["status"] for m in report["media"]) == ["not provided", "verified (--media)"]
    (folder / hashlib.sha256(REDACTED_BYTES).hexdigest()).write_bytes(b"not the redacted file")
    only(exported.path, "MEDIA_MISMATCH", "--media", str(folder))


def test_a_witness_that_never_cosigned_fails_the_policy(exported: Exported) -> None:
    witness = note.make_verifier_key("w.example/w", Ed25519PrivateKey.generate().public_key(), 0x04)
    only(exported.path, "WITNESS_POLICY", "--witness", str(witness))


# --- witnesses, end to end ------------------------------------------------------------------------------


@pytest.fixture
def witness_url(ledger: Ledger, tmp_path: Path) -> Iterator[tuple[str, note.VerifierKey]]:
    log_vkey = note.make_verifier_key(ledger.config.log_key_name, ledger.log_key.public_key())
    witness = Witness.create(tmp_path / "witness", "da.example/witness", str(log_vkey))
    server = make_server(witness, "127.0.0.1", 0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", witness.verifier_key
    finally:
        server.shutdown()
        server.server_close()


def test_the_scenario_after_referral_verifies_with_one_of_one_witness_and_fails_with_two(
    ledger: Ledger, tmp_path: Path, witness_url: tuple[str, note.VerifierKey]
) -> None:
    url, wkey = witness_url
    absent = note.make_verifier_key("ag.example/witness", Ed25519PrivateKey.generate().public_key(), 0x04)
    configure_witness(ledger.data_dir, url, str(wkey))
    configure_witness(ledger.data_dir, "http://127.0.0.1:9", str(absent))  # nobody listens there
    with httpx.Client(trust_env=False, timeout=5) as client:
        exported = export_scenario(ledger, tmp_path / "case.zip", client=client)
    pinned = pins(exported)
    rc, report = verify(exported.path, *pinned, "--witness", str(wkey), "--min-witnesses", "1")
    assert rc == 0, report["findings"]
    assert [(w["name"], w["status"]) for w in report["checkpoint"]["witnesses"]] == [
        ("da.example/witness", "cosigned")
    ]
    rc, report = verify(
        exported.path, *pinned, "--witness", str(wkey), "--witness", str(absent), "--min-witnesses", "2"
    )
    assert rc == 1 and codes(report) == {"WITNESS_POLICY"}
    assert report["checkpoint"]["cosigned"] == 1 and report["checkpoint"]["required"] == 2
    members = read_members(exported.path)
    assert sorted(n for n in members if n.startswith("witnesses/")) == [
        "witnesses/ag.example_witness.vkey",
        "witnesses/da.example_witness.vkey",
    ]
    # The same bundle with the witness's cosignature line stripped (manifest updated): policy fails.
    line = f"— {wkey.name} ".encode()
    assert line in members["checkpoint.txt"]

    def strip(m: Members) -> None:
        m["checkpoint.txt"] = b"".join(
            row for row in m["checkpoint.txt"].splitlines(keepends=True) if not row.startswith(line)
        )

    stripped = tampered(exported.path, tmp_path / "stripped.zip", strip)
    report = only(stripped, "WITNESS_POLICY", *pinned, "--witness", str(wkey), "--min-witnesses", "1")
    assert report["checkpoint"]["signature_valid"] is True and report["checkpoint"]["cosigned"] == 0


# --- unusable input: exit 2 -----------------------------------------------------------------------------


def test_unusable_bundles_and_arguments_exit_2(exported: Exported, tmp_path: Path) -> None:
    not_zip = tmp_path / "x.zip"
    not_zip.write_bytes(b"PK not really")
    no_manifest = tampered(
        exported.path, tmp_path / "n.zip", lambda m: m.pop("manifest.json"), manifest=False
    )
    bad_manifest = tampered(
        exported.path, tmp_path / "b.zip", lambda m: m.update({"manifest.json": b"{"}), manifest=False
    )

    def registry_as_case(members: Members) -> None:
        manifest = json.loads(members["manifest.json"])
        members["manifest.json"] = json.dumps({**manifest, "case_id": REGISTRY_CASE_ID}).encode()

    registry_manifest = tampered(exported.path, tmp_path / "r.zip", registry_as_case)
    for args in (
        [str(not_zip)],
        [str(no_manifest)],
        [str(bad_manifest)],
        [str(registry_manifest)],
        [str(tmp_path / "missing.zip")],
        [str(exported.path), "--vkey", "nonsense+zz+zz"],
        [str(exported.path), "--min-witnesses", "-1"],
        [str(exported.path), "--trust-root", "XYZ"],
        [str(exported.path), "--media", str(tmp_path / "nope")],
    ):
        result = run_verify(*args)
        assert result.returncode == 2, (args, result.stdout, result.stderr)
        assert "Traceback" not in result.stderr


# --- the speculative parallel path gives exactly the sequential result -----------------------------------


def _flip_last_signature(m: Members, case_id: str) -> None:
    flip_sig(m, case_indexes(m, case_id)[-1])


def _edit_first_leaf(m: Members, case_id: str) -> None:
    first = case_indexes(m, case_id)[0]
    leaf = json.loads(m[f"leaves/{first}.json"])
    leaf["envelope_sha256"] = "0" * 64
    m[f"leaves/{first}.json"] = canonical(leaf)


def _edit_a_proof(m: Members, case_id: str) -> None:
    second = case_indexes(m, case_id)[1]
    proof = json.loads(m[f"proofs/{second}.json"])
    proof["audit_path"][0] = base64.b64encode(b"\x07" * 32).decode()
    m[f"proofs/{second}.json"] = canonical(proof)


def _drop_a_proof(m: Members, case_id: str) -> None:
    del m[f"proofs/{case_indexes(m, case_id)[2]}.json"]


def _drop_an_entry(m: Members, case_id: str) -> None:
    drop_entry(m, case_indexes(m, case_id)[3])


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (None, set()),
        (_flip_last_signature, {"BAD_SIGNATURE"}),
        (_edit_first_leaf, {"LEAF_MISMATCH", "BAD_INCLUSION"}),
        (_edit_a_proof, {"BAD_INCLUSION"}),
        (_drop_a_proof, {"BAD_INCLUSION"}),
        (_drop_an_entry, {"SEQ_GAP"}),
    ],
)
def test_parallel_verification_equals_sequential(
    exported: Exported,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    change: Callable[[Members, str], None] | None,
    expected: set[str],
) -> None:
    """Worker processes (signatures, inclusion proofs) give exactly the one-process report, for a
    clean bundle and for each kind of tampering they see."""
    from ledger.verify import bundle
    from ledger.verify.bundle import VerifyOptions, verify_bundle
    from ledger.verify.report import report_json

    monkeypatch.setattr(bundle, "PARALLEL_FROM", 0)
    # An earlier test in this process may have left idle threads (a PostgreSQL ledger's connection
    # pool), and the verifier then does not fork; the comparison forks anyway (the children touch
    # no connection), so that it covers the workers whatever ran before.
    monkeypatch.setattr(bundle, "can_fork", lambda: True)
    runs: list[int] = []
    real_forked = bundle.forked

    @contextmanager
    def spied(tasks: list[Callable[[], object]], processes: int) -> Iterator[object]:
        runs.append(processes)
        with real_forked(tasks, processes) as workers:
            yield workers

    monkeypatch.setattr(bundle, "forked", spied)
    path = exported.path
    if change is not None:
        path = tampered(exported.path, tmp_path / "t.zip", lambda m: change(m, exported.case_id))
    reports = [report_json(verify_bundle(path, VerifyOptions(workers=w))) for w in (1, 2)]
    assert runs == [1]  # one process, then one forked worker
    assert reports[0] == reports[1]
    assert codes(reports[1]) >= expected and (expected or not codes(reports[1]))


def _fail_in_worker() -> dict[int, bool]:
    raise RuntimeError("the signatures could not be checked")


def _die_in_worker() -> dict[int, bool]:
    os._exit(3)


@pytest.mark.parametrize(("worker", "error"), [(_fail_in_worker, RuntimeError), (_die_in_worker, BrokenProcessPool)])
def test_a_failing_worker_is_an_error_not_a_verdict(
    exported: Exported, monkeypatch: pytest.MonkeyPatch, worker: Callable[[], dict[int, bool]],
    error: type[Exception],
) -> None:
    from ledger.verify import bundle
    from ledger.verify.bundle import VerifyOptions, verify_bundle

    monkeypatch.setattr(bundle, "PARALLEL_FROM", 0)
    monkeypatch.setattr(bundle, "can_fork", lambda: True)  # as above: fork whatever ran before
    monkeypatch.setattr(bundle, "_verdicts_in_worker", worker)
    with pytest.raises(error):
        verify_bundle(exported.path, VerifyOptions(workers=2))
