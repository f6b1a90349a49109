"""A bundle's access entries (format 2), verified offline: the access checkpoint's signature and origin,
every inclusion proof, every entry naming the bundle's case; a format 1 bundle still verifies."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ledger.envelope.canonical import canonical
from ledger.log.access_entry import DENIED, AccessRecord
from ledger.log.proof_json import inclusion_proof_json
from ledger.store import Ledger
from tests.support.bundles import (
    Exported,
    Members,
    codes,
    export_scenario,
    only,
    read_members,
    run_verify,
    tampered,
    verify,
    write_members,
)
from tests.support.cases import new_case_id

OTHER = new_case_id()
TOKEN_ID = "0123456789abcdef"  # noqa: S105 - a token's public id, not a secret


def pins(exported: Exported) -> tuple[str, ...]:
    return ("--vkey", exported.log_vkey, "--trust-root", exported.trust_root)


def _record_reads(ledger: Ledger, case_id: str) -> None:
    def read(case: str, action: str = "case.read", **fields: object) -> AccessRecord:
        return AccessRecord(action=action, actor="Det. A. Rivera", role="investigator", token_id=TOKEN_ID,
                            case_id=case, request_id="req-00000001", **fields)  # type: ignore[arg-type]

    ledger.access_log.append([
        read(case_id),
        read(OTHER),
        read(case_id, "evidence.download", item="a" * 64),
        read(case_id, outcome=DENIED, code="CASE_NOT_FOUND"),
    ])
    ledger.access_log.checkpoint()


@pytest.fixture
def with_access(ledger: Ledger, tmp_path: Path) -> Exported:
    return export_scenario(
        ledger, tmp_path / "case.zip", before_export=lambda actors, case_id: _record_reads(ledger, case_id)
    )


def test_access_entries_verify_and_are_reported_by_id(with_access: Exported, tmp_path: Path) -> None:
    rc, report = verify(with_access.path, *pins(with_access))
    assert rc == 0 and report["findings"] == []
    assert {s["step"]: s["status"] for s in report["steps"]}[13] == "passed"
    assert report["manifest"]["format"] == "evidence-ledger-bundle/3" and report["manifest"]["access_entries"] == 3
    access = report["access"]
    assert access["checkpoint"]["origin"] == with_access.ledger.origin + "/access"
    assert access["checkpoint"]["signature_valid"] is True
    rows = access["entries"]
    assert [r["index"] for r in rows] == [0, 2, 3] and all(r["ok"] and r["case_id"] == with_access.case_id for r in rows)
    assert [(r["action"], r["outcome"], r["code"]) for r in rows] == [
        ("case.read", "allowed", None), ("evidence.download", "allowed", None), ("case.read", "denied", "CASE_NOT_FOUND")
    ]
    text = run_verify(str(with_access.path), *pins(with_access)).stdout
    assert "Access log: checkpoint" in text and "3 access entries of this case" in text
    assert "evidence.download" in text and "denied CASE_NOT_FOUND" in text
    html = run_verify(str(with_access.path), *pins(with_access), "--html", str(tmp_path / "r.html"))
    assert html.returncode == 0
    page = (tmp_path / "r.html").read_text()
    assert "Access log (reads, downloads and refusals of this case)" in page and "CASE_NOT_FOUND" in page


def _flip(members: Members) -> None:
    raw = members["access/entries/2.json"]  # its item is "aaa…a": one bit of one byte flipped ("a" -> "c")
    members["access/entries/2.json"] = raw.replace(b"aaaa", b"aaac", 1)


def test_a_flipped_bit_in_an_access_entry_is_refused(with_access: Exported, tmp_path: Path) -> None:
    path = tampered(with_access.path, tmp_path / "t.zip", _flip)
    report = only(path, "BAD_ACCESS_INCLUSION", *pins(with_access))
    (finding,) = report["findings"]
    assert finding["step"] == 13 and finding["evidence"]["access_index"] == 2
    assert report["access"]["entries"][1]["ok"] is False


def test_an_access_entry_of_another_case_is_refused(with_access: Exported, tmp_path: Path) -> None:
    ledger = with_access.ledger
    checkpoint = ledger.access_log.latest_checkpoint()
    assert checkpoint is not None
    (stranger,) = ledger.access_log.entries(case_id=OTHER)
    proof = ledger.access_log.inclusion_proof(stranger.index, checkpoint.size)

    def smuggle(members: Members) -> None:  # a genuine entry with a genuine proof, of another case
        members[f"access/entries/{stranger.index}.json"] = stranger.entry
        members[f"access/proofs/{stranger.index}.json"] = canonical(
            inclusion_proof_json(stranger.index, proof, tree_size=checkpoint.size)
        )
        manifest = json.loads(members["manifest.json"])
        manifest["access_entries"] += 1
        members["manifest.json"] = json.dumps(manifest).encode()

    report = only(tampered(with_access.path, tmp_path / "t.zip", smuggle), "ACCESS_ENTRY_OTHER_CASE", *pins(with_access))
    assert report["findings"][0]["evidence"]["access_index"] == stranger.index


def test_a_case_log_checkpoint_cannot_stand_in_for_the_access_checkpoint(with_access: Exported, tmp_path: Path) -> None:
    def swap(members: Members) -> None:
        members["access/checkpoint.txt"] = members["checkpoint.txt"]

    report = only(tampered(with_access.path, tmp_path / "t.zip", swap), "BAD_ACCESS_CHECKPOINT", *pins(with_access))
    assert "origin" in report["findings"][0]["message"]


def test_a_format_1_bundle_still_verifies(with_access: Exported, tmp_path: Path) -> None:
    def downgrade(members: Members) -> None:
        for name in [n for n in members if n.startswith("access/")]:
            del members[name]
        manifest = json.loads(members["manifest.json"])
        manifest["format"] = "evidence-ledger-bundle/1"
        del manifest["access_entries"], manifest["access_checkpoint_size"]
        members["manifest.json"] = json.dumps(manifest).encode()

    path = tampered(with_access.path, tmp_path / "v1.zip", downgrade)
    rc, report = verify(path, *pins(with_access))
    assert rc == 0 and report["verdict"] == "verified", report["findings"]
    assert {s["step"]: s["status"] for s in report["steps"]}[13] == "not applicable"
    assert report["access"] == {"checkpoint": {}, "entries": []}
    assert "Access log" not in run_verify(str(path), *pins(with_access)).stdout

    members = read_members(path)
    manifest = json.loads(members["manifest.json"])
    manifest["access_entries"] = 0  # a format 2 key in a format 1 manifest: the bundle is unusable
    members["manifest.json"] = json.dumps(manifest).encode()
    unusable = run_verify(str(write_members(members, tmp_path / "mixed.zip")), *pins(with_access))
    assert unusable.returncode == 2 and "unknown keys" in unusable.stderr + unusable.stdout


def test_a_bundle_exported_before_any_access_checkpoint_has_no_access_entries(
    ledger: Ledger, tmp_path: Path
) -> None:
    exported = export_scenario(ledger, tmp_path / "case.zip")
    rc, report = verify(exported.path, *pins(exported))
    assert rc == 0 and report["manifest"]["access_entries"] == 0
    assert report["manifest"]["access_checkpoint_size"] is None
    assert codes(report) == set() and report["access"]["entries"] == []
