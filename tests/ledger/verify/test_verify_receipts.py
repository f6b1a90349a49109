"""Bundle format 3: the signed receipt of every leaf, the same bytes the append returned, checked offline
(check 14); a tampered, swapped, missing or foreign receipt is BAD_RECEIPT; format 2 still verifies."""

from __future__ import annotations

import json
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ledger.evidence.bundle import export_bundle
from ledger.log import receipt
from ledger.store import Ledger
from tests.support.bundles import (
    Exported,
    Members,
    case_indexes,
    only,
    read_members,
    tampered,
    verify,
)
from tests.support.cases import Actors, case_opened, incident_documented, new_case_id


def pins(exported: Exported) -> tuple[str, ...]:
    return ("--vkey", exported.log_vkey, "--trust-root", exported.trust_root)


def test_a_bundles_receipts_are_the_bytes_the_appends_returned(ledger: Ledger, tmp_path: Path) -> None:
    actors = Actors.register(ledger)
    case_id = new_case_id()
    appended = [  # signed as the service signs them for the caller
        ledger.with_receipt(actors.ok("investigator", case_id, "CaseOpened", case_opened())),
        ledger.with_receipt(actors.ok("investigator", case_id, "IncidentDocumented", incident_documented())),
    ]
    ledger.checkpoint()
    out = tmp_path / "case.zip"
    export_bundle(ledger, case_id, out)
    members = read_members(out)
    for outcome in appended:
        assert members[f"receipts/{outcome.leaf_index}.txt"].decode() == outcome.receipt
    leaves = sorted(int(n[7:-5]) for n in members if n.startswith("leaves/"))
    assert sorted(int(n[9:-4]) for n in members if n.startswith("receipts/")) == leaves  # registry entries too
    again = tmp_path / "again.zip"
    export_bundle(ledger, case_id, again)
    assert {n: b for n, b in read_members(again).items() if n.startswith("receipts/")} == {
        n: b for n, b in members.items() if n.startswith("receipts/")
    }
    rc, report = verify(out, *pins(Exported(ledger, actors, case_id, out)))
    assert rc == 0 and {s["step"]: s["status"] for s in report["steps"]}[14] == "passed", report["findings"]


def _first(m: Members, e: Exported) -> int:
    return case_indexes(m, e.case_id)[0]


def test_an_altered_receipt_is_bad_receipt(exported: Exported, tmp_path: Path) -> None:
    def alter(m: Members) -> None:
        name = f"receipts/{_first(m, exported)}.txt"
        m[name] = m[name].replace(b"\n300\n", b"\n3000\n")

    report = only(tampered(exported.path, tmp_path / "t.zip", alter), "BAD_RECEIPT", *pins(exported))
    assert report["findings"][0]["step"] == 14 and report["findings"][0]["leaf_index"] == _first(
        read_members(exported.path), exported
    )


def test_a_receipt_of_another_leaf_is_bad_receipt(exported: Exported, tmp_path: Path) -> None:
    def swap(m: Members) -> None:
        first, second = case_indexes(m, exported.case_id)[:2]
        m[f"receipts/{first}.txt"] = m[f"receipts/{second}.txt"]

    report = only(tampered(exported.path, tmp_path / "t.zip", swap), "BAD_RECEIPT", *pins(exported))
    assert "for leaf" in report["findings"][0]["message"]


def test_a_receipt_for_another_leaf_hash_signed_by_the_log_key_is_bad_receipt(
    exported: Exported, tmp_path: Path
) -> None:
    ledger = exported.ledger

    def resign(m: Members) -> None:
        index = _first(m, exported)
        old = receipt.parse(m[f"receipts/{index}.txt"])
        other = receipt.Receipt(old.origin, index, bytes(32), old.integrated_at, old.max_delay, old.envelope_sha256)
        m[f"receipts/{index}.txt"] = receipt.sign(other, ledger.config.log_key_name, ledger.log_key)

    report = only(tampered(exported.path, tmp_path / "t.zip", resign), "BAD_RECEIPT", *pins(exported))
    assert "leaf hash" in report["findings"][0]["message"]


def test_a_receipt_signed_by_another_key_or_missing_or_extra_is_bad_receipt(exported: Exported, tmp_path: Path) -> None:
    ledger = exported.ledger

    def foreign(m: Members) -> None:
        index = _first(m, exported)
        old = receipt.parse(m[f"receipts/{index}.txt"])
        m[f"receipts/{index}.txt"] = receipt.sign(old, ledger.config.log_key_name, Ed25519PrivateKey.generate())

    only(tampered(exported.path, tmp_path / "foreign.zip", foreign), "BAD_RECEIPT", *pins(exported))
    only(tampered(exported.path, tmp_path / "missing.zip", lambda m: m.pop(f"receipts/{_first(m, exported)}.txt")),
         "BAD_RECEIPT", *pins(exported))

    def extra(m: Members) -> None:
        m["receipts/999999.txt"] = m[f"receipts/{_first(m, exported)}.txt"]

    report = only(tampered(exported.path, tmp_path / "extra.zip", extra), "BAD_RECEIPT", *pins(exported))
    assert report["findings"][0]["leaf_index"] == 999999


def test_a_checkpoint_in_place_of_a_receipt_is_bad_receipt(exported: Exported, tmp_path: Path) -> None:
    def swap(m: Members) -> None:
        m[f"receipts/{_first(m, exported)}.txt"] = m["checkpoint.txt"]

    only(tampered(exported.path, tmp_path / "t.zip", swap), "BAD_RECEIPT", *pins(exported))


def test_a_format_2_bundle_still_verifies(exported: Exported, tmp_path: Path) -> None:
    def downgrade(m: Members) -> None:
        for name in [n for n in m if n.startswith("receipts/")]:
            del m[name]
        manifest = json.loads(m["manifest.json"])
        manifest["format"] = "evidence-ledger-bundle/2"
        m["manifest.json"] = json.dumps(manifest).encode()

    rc, report = verify(tampered(exported.path, tmp_path / "v2.zip", downgrade), *pins(exported))
    assert rc == 0 and report["verdict"] == "verified", report["findings"]
    assert {s["step"]: s["status"] for s in report["steps"]}[14] == "not applicable"
