"""A reporter's canary, end to end: sealed, disclosed after two approvals, then shredded.

A unique marker goes into every personal field of a sealed record, and into every refused attempt to
put it elsewhere (free text, a malformed seal, a bad disclosure). Before the shred the marker is
only ciphertext: no database file (WAL included), no `pg_dump`, no key file holds it in plain text.
After the shred nothing on the machine recovers it: the record's key and row are gone, and the
marker is in no server log line, error body, database file, `pg_dump`, keystore file, bundle,
access-log entry or `/metrics`. Every signature, proof and bundle still verifies.
"""

from __future__ import annotations

import io
import json
import subprocess
import uuid
import zipfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from ledger.log import note
from ledger.store import Ledger
from ledger.verify.bundle import VerifyOptions, verify_bundle
from tests.support.api import COUNSEL, Api, add_counsel, captured_logs, problem, running_api
from tests.support.cases import ROLES, case_opened, new_case_id, report_received

CANARY = f"CANARY{uuid.uuid4().hex}"
PERSON = {
    "name": f"{CANARY}-name",
    "phone": f"{CANARY}-phone",
    "address": f"{CANARY}-address",
    "date_of_birth": f"{CANARY}-dob",
    "immigration_status": f"{CANARY}-status",
}


@pytest.fixture
def log_buffer() -> Iterator[io.StringIO]:
    with captured_logs() as buffer:
        yield buffer


@pytest.fixture
def api(ledger: Ledger, log_buffer: io.StringIO) -> Iterator[Api]:
    with running_api(ledger) as running:
        add_counsel(running)
        yield running


def _stores(ledger: Ledger, tmp_path: Path) -> dict[str, bytes]:
    """Every file of the data dir (database, WAL, keystore in demo mode, keys) and, on PostgreSQL, a
    `pg_dump` of the database, by name."""
    roots = [ledger.data_dir, tmp_path]  # the keystore (demo mode: inside the data dir) and anything written
    found = {str(p): p.read_bytes() for root in roots for p in sorted(root.rglob("*")) if p.is_file()}
    url = ledger.settings.database_url
    if url:
        dump = subprocess.run(["pg_dump", "--no-owner", url], capture_output=True, check=True)
        found["pg_dump"] = dump.stdout
    return found


def _hits(stores: dict[str, bytes]) -> list[str]:
    marker = CANARY.encode()
    return [name for name, data in stores.items() if marker in data]


def test_a_canary_sealed_disclosed_and_shredded_leaves_no_trace(
    api: Api, log_buffer: io.StringIO, tmp_path: Path
) -> None:
    errors: list[httpx.Response] = []

    def refused(response: httpx.Response, status: int, code: str) -> None:
        problem(response, status, code)
        errors.append(response)

    # attempts to put the canary where it does not belong are refused without echoing it
    refused(api.client.post("/v1/sealed", content=b'{"name": "' + CANARY.encode() + b'"',
                            headers=api.auth("investigator")), 400, "MALFORMED_JSON")
    sealed = api.client.post("/v1/sealed", content=json.dumps(PERSON), headers=api.auth("investigator"))
    assert sealed.status_code == 201, sealed.text
    ref = str(sealed.json()["sealed_ref"])
    case_id = new_case_id()
    api.ok("investigator", case_id, "CaseOpened", case_opened())
    leaky = {**report_received(sealed.json()), "narrative": f"Caller {CANARY} at 617-555-0142 saw agents."}
    refused(api.post("investigator", case_id, "ReportReceived", leaky), 422, "PERSONAL_DATA_IN_FREE_TEXT")
    api.ok("investigator", case_id, "ReportReceived", report_received(sealed.json()))

    # two-person disclosure: requested by the investigator, approved by a supervisor and by counsel
    request = {"request_id": "dreq-1", "sealed_ref": ref, "purpose": "court order", "legal_basis": "Summons 17"}
    api.ok("investigator", case_id, "SealedDisclosureRequested", request)
    api.ok("supervisor", case_id, "SealedDisclosureApproved", {"request_id": "dreq-1"})
    api.ok("counsel", case_id, "SealedDisclosureApproved", {"request_id": "dreq-1"})
    approvers = sorted([ROLES["supervisor"][0], COUNSEL])
    disclosed = api.client.post(
        f"/v1/sealed/{ref}/disclosure",
        content=api.envelope("investigator", case_id, "SealedRecordDisclosed",
                             {"request_id": "dreq-1", "sealed_ref": ref, "approvers": approvers}),
        headers=api.auth("investigator"),
    )
    assert disclosed.status_code == 200, disclosed.text
    assert disclosed.json()["data"] == PERSON  # the one place the data goes: the requester, once

    # before the shred: only ciphertext anywhere
    assert api.ledger.sealed_store().row_exists(ref) and api.ledger.keystore().has(ref)
    before = _stores(api.ledger, tmp_path)
    database = [name for name in before if ".sqlite3" in name or name == "pg_dump"]
    assert database and any(ref.encode() in before[name] for name in database)  # the scan does see the rows
    assert _hits(before) == []

    api.ok("supervisor", case_id, "SealedRecordShredded", {"sealed_ref": ref, "reason": "retention period ended"})
    assert not api.ledger.sealed_store().row_exists(ref) and not api.ledger.keystore().has(ref)
    again = {**request, "request_id": "dreq-2"}
    refused(api.post("investigator", case_id, "SealedDisclosureRequested", again), 410, "SHREDDED")

    # after the shred: every store, every answer, every log line
    bundle = api.client.get(f"/v1/cases/{case_id}/bundle", headers=api.auth("supervisor"))
    assert bundle.status_code == 200
    bundle_path = tmp_path / "case.zip"
    bundle_path.write_bytes(bundle.content)
    with zipfile.ZipFile(bundle_path) as archive:
        members = {f"bundle:{name}": archive.read(name) for name in archive.namelist()}
    answers = {
        "access-log": api.client.get("/v1/access-log", headers=api.auth("auditor")).content,
        "metrics": api.client.get("/metrics").content,
        "case": api.client.get(f"/v1/cases/{case_id}", headers=api.auth("supervisor")).content,
        "timeline": api.client.get(f"/v1/cases/{case_id}/timeline", headers=api.auth("supervisor")).content,
        "events": api.client.get(f"/v1/cases/{case_id}/events", headers=api.auth("supervisor")).content,
        "logs": log_buffer.getvalue().encode(),
    }
    answers.update({f"error:{i}": r.content for i, r in enumerate(errors)})
    assert b"/v1/sealed/{sealed_ref}/disclosure" in answers["logs"]  # the log did capture the requests
    assert all(b'"data"' not in data for name, data in answers.items() if name != "metrics")
    assert _hits({**_stores(api.ledger, tmp_path), **members, **answers}) == []

    # and the record stays verifiable: the bundle's signatures and proofs hold without the data
    vkey = note.make_verifier_key(api.ledger.config.log_key_name, api.ledger.log_key.public_key())
    result = verify_bundle(bundle_path, VerifyOptions(vkey=vkey, trust_root=api.ledger.config.admin_key_id))
    assert result.verdict == "verified" and result.findings == []
