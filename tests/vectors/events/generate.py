"""Generate the golden event vectors ``<Type>.v1.json`` in this directory. Run by hand only.

    . .venv/bin/activate && python tests/vectors/events/generate.py

One file per event type in :data:`domain.events.EVENT_TYPES`. Each holds a fixed Ed25519 seed (the
SHA-256 of the type name), the statement fields, the body and the exact envelope bytes that
:func:`ledger.envelope.sign_statement` produced for them, with the envelope's SHA-256 and the
signature. Ed25519 is deterministic, so ``tests/ledger/envelope/test_golden_events.py`` can rebuild every envelope
and demand byte equality: the files pin the wire format.

The files are a compatibility promise. Do NOT regenerate them to make a failing test pass: a
mismatch means the wire format changed, and envelopes already in deployed ledgers would no longer
be reproducible. Regenerate only when adding a new event type (existing files must come out
byte-identical; the script refuses to change them unless given ``--force``).
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import sys
import uuid
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from domain.events import EVENT_TYPES, parse_body
from ledger.envelope.dsse import REGISTRY_CASE_ID, Statement, parse_envelope, sign_statement, verify_envelope
from ledger.envelope.keys import key_id, raw_public_key

HERE = Path(__file__).resolve().parent
LEDGER = "golden.example/evidence-ledger"
CASE_ID = "5b0e5c1a-6f2d-4e8b-9c3a-7d1e2f3a4b5c"
FOOTAGE_SHA = hashlib.sha256(b"golden footage").hexdigest()
DERIVATIVE_SHA = hashlib.sha256(b"golden footage, redacted").hexdigest()
_REGISTERED_KEY = Ed25519PrivateKey.from_private_bytes(hashlib.sha256(b"golden registered key").digest())

#: (seq, body) per type; bodies exercise non-ASCII text, optional fields present, absent and null
BODIES: dict[str, tuple[int, dict[str, Any]]] = {
    "CaseOpened": (
        1,
        {"case_number": "CPD-2026-0001", "category": "property_damage", "summary": "Vehicle damaged on Mass Ave"},
    ),
    "ReportReceived": (
        2,
        {
            "report_id": "rpt-1",
            "channel": "911_call",
            "received_at": "2026-02-05T17:02:00Z",
            "location": "Central Square (block level)",
            "observed_agency": "ICE",
            "narrative": "Caller saw masked agents break a car window near the caf\u00e9 \u2014 \u201cthree of them\u201d.",
            "reporter": {"sealed_ref": "sealed-0001", "commitment": hashlib.sha256(b"golden reporter").hexdigest()},
        },
    ),
    "IncidentDocumented": (
        3,
        {
            "incident_id": "inc-1",
            "occurred_from": "2026-02-05T16:55:00Z",
            "occurred_to": "2026-02-05T17:10:00.123456789Z",
            "location": "Massachusetts Ave at Prospect St",
            "narrative": "Officers documented the scene.\nTwo vehicles damaged.",
            "conduct": ["property_damage", "violence"],
            "federal_officials": [
                {
                    "agency": "ICE",
                    "count": 4,
                    "identifiable_uniform": False,
                    "face_covered": True,
                    "body_camera_worn": None,
                    "identified_themselves": False,
                },
                {
                    "agency": "CBP",
                    "count": 1,
                    "identifiable_uniform": True,
                    "face_covered": None,
                    "body_camera_worn": None,
                    "identified_themselves": None,
                },
            ],
        },
    ),
    "FootageCaptured": (
        4,
        {
            "footage_id": "ftg-1",
            "source": "body_worn_camera",
            "device_id": "BWC-0042",
            "recorded_from": "2026-02-05T16:58:00Z",
            "recorded_to": "2026-02-05T17:06:00Z",
            "sha256": FOOTAGE_SHA,
            "size_bytes": 9007199254740991,
            "media_type": "video/mp4",
            "depicts": ["property_damage_by_federal_officials"],
            "custodian": "CPD Evidence Unit",
            "stored": True,
        },
    ),
    "CustodyTransferred": (
        5,
        {
            "footage_id": "ftg-1",
            "from_custodian": "CPD Evidence Unit",
            "to_custodian": "Middlesex DA",
            "purpose": "Review",
        },
    ),
    "FootageDerivativeCreated": (
        6,
        {
            "derivative_id": "ftg-1-redacted",
            "footage_id": "ftg-1",
            "sha256": DERIVATIVE_SHA,
            "size_bytes": 0,
            "kind": "redaction",
            "description": "Bystander faces blurred",
        },
    ),
    "InvestigationHoldPlaced": (
        7,
        {"hold_id": "hold-1", "scope": ["ftg-1"], "authority": "middlesex_da", "reason": "Active DA investigation"},
    ),
    "InvestigationHoldLifted": (8, {"hold_id": "hold-1", "reason": "DA cleared"}),
    "FootageReleased": (
        9,
        {
            "footage_id": "ftg-1",
            "derivative_id": "ftg-1-redacted",
            "sha256": DERIVATIVE_SHA,
            "basis": "executive_order",
            "channel": "city website",
            "url": "https://www.cambridgema.gov/police/releases/ftg-1?format=mp4&lang=en",
        },
    ),
    "ReferralMade": (
        10,
        {
            "referral_id": "ref-1",
            "authority": "middlesex_da",
            "basis": "Property damage by federal officers",
            "bundle_sha256": None,
        },
    ),
    "ReferralAcknowledged": (11, {"referral_id": "ref-1", "note": ""}),
    "CaseClosed": (12, {"disposition": "referred"}),
    "CaseReopened": (13, {"reason": "New footage \u00fcber a \U0001f4f9 upload"}),
    "EvidenceAccessed": (
        14,
        {"derivative_id": "ftg-1-redacted", "actor": "Det. A. Rivera", "purpose": "download: \"quoted\" \\ path"},
    ),
    "SealedDisclosureRequested": (
        15,
        {
            "request_id": "dreq-1",
            "sealed_ref": "3f1c2b9e-8d4a-4f1e-9b7c-0a1d2e3f4a5b",
            "purpose": "Witness interview ordered by the court (Gerichtsbeschlu\u00df)",
            "legal_basis": "Summons 2026-17 \u00a7 4",
        },
    ),
    "SealedDisclosureApproved": (16, {"request_id": "dreq-1"}),
    "SealedRecordDisclosed": (
        17,
        {
            "request_id": "dreq-1",
            "sealed_ref": "3f1c2b9e-8d4a-4f1e-9b7c-0a1d2e3f4a5b",
            "approvers": ["Counsel J. O\u2019Brien"],
        },
    ),
    "SealedDisclosureRefused": (
        18,
        {
            "request_id": "dreq-2",
            "sealed_ref": None,
            "attempted": "SealedDisclosureApproved",
            "actor": "Det. A. Rivera",
            "code": "SAME_PERSON",
        },
    ),
    "SealedRecordShredded": (
        19,
        {"sealed_ref": "3f1c2b9e-8d4a-4f1e-9b7c-0a1d2e3f4a5b", "reason": "Retention: closed > 90 days \u2014 policy 7"},
    ),
    "KeyRegistered": (
        1,
        {
            "key_id": key_id(_REGISTERED_KEY),
            "public_key": base64.b64encode(raw_public_key(_REGISTERED_KEY)).decode("ascii"),
            "actor": "Det. A. Rivera",
            "role": "investigator",
            "authority": None,
            "valid_from": "2026-02-05T17:00:00Z",
        },
    ),
    "KeyRevoked": (
        2,
        {"key_id": key_id(_REGISTERED_KEY), "reason": "Device lost", "compromised_since": "2026-02-06T08:00:00Z"},
    ),
}


def seed_for(type_name: str) -> bytes:
    return hashlib.sha256(type_name.encode("utf-8")).digest()


def statement_for(type_name: str, signer: str) -> dict[str, Any]:
    seq, body = BODIES[type_name]
    registry = type_name in {"KeyRegistered", "KeyRevoked"}
    return {
        "ledger": LEDGER,
        "case_id": REGISTRY_CASE_ID if registry else CASE_ID,
        "event_id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"https://{LEDGER}/golden/{type_name}")),
        "seq": seq,
        "prev": None if seq == 1 else hashlib.sha256(f"golden prev {type_name}".encode()).hexdigest(),
        "type": type_name,
        "type_version": EVENT_TYPES[type_name].VERSION,
        "occurred_at": f"2026-02-05T17:{seq:02d}:00.{seq * 1000:06d}Z",
        "signer": signer,
        "body": body,
    }


def vector(type_name: str) -> dict[str, Any]:
    seed = seed_for(type_name)
    key = Ed25519PrivateKey.from_private_bytes(seed)
    statement = statement_for(type_name, key_id(key))
    parsed = parse_body(type_name, statement["type_version"], statement["body"])
    assert parsed.to_body() == statement["body"], f"{type_name}: body does not round-trip"
    raw = sign_statement(Statement(**statement), key)
    envelope = parse_envelope(raw)
    verify_envelope(envelope, key.public_key())
    return {
        "description": f"Golden {type_name} v{statement['type_version']} envelope; see generate.py",
        "seed_hex": seed.hex(),
        "public_key_b64": base64.b64encode(raw_public_key(key)).decode("ascii"),
        "statement": statement,
        "payload": envelope.payload.decode("utf-8"),
        "envelope": raw.decode("utf-8"),
        "envelope_sha256": hashlib.sha256(raw).hexdigest(),
        "signature": base64.b64encode(envelope.sig).decode("ascii"),
    }


def render(data: dict[str, Any]) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--force", action="store_true", help="overwrite files whose content would change")
    args = parser.parse_args(argv)
    missing = set(EVENT_TYPES) - set(BODIES)
    if missing:
        print(f"no golden body for: {', '.join(sorted(missing))}", file=sys.stderr)
        return 1
    status = 0
    for type_name in EVENT_TYPES:
        path = HERE / f"{type_name}.v{EVENT_TYPES[type_name].VERSION}.json"
        text = render(vector(type_name))
        if path.exists() and path.read_text(encoding="utf-8") == text:
            print(f"unchanged {path.name}")
            continue
        if path.exists() and not args.force:
            print(f"REFUSED   {path.name}: the wire format changed (use --force only on purpose)", file=sys.stderr)
            status = 1
            continue
        path.write_text(text, encoding="utf-8")
        print(f"wrote     {path.name}")
    return status


if __name__ == "__main__":
    raise SystemExit(main())
