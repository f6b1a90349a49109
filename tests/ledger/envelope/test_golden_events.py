"""Golden event vectors: the wire format of every event type, pinned byte for byte.

Each ``tests/vectors/events/<Type>.v1.json`` holds a fixed Ed25519 seed, the statement fields and the
exact envelope bytes. Ed25519 is deterministic, so rebuilding the envelope with ``sign_statement``
must reproduce those bytes exactly. If this fails, the wire format changed: fix the code, do not
regenerate the files (see ``tests/vectors/events/generate.py``).
"""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from domain.events import EVENT_TYPES, parse_body
from ledger.envelope.canonical import canonical, parse_canonical
from ledger.envelope.dsse import (
    PAYLOAD_TYPE,
    STATEMENT_KEYS,
    Statement,
    pae,
    parse_envelope,
    sign_statement,
    verify_envelope,
)
from ledger.envelope.keys import key_id, raw_public_key

VECTORS = Path(__file__).resolve().parents[2] / "vectors" / "events"
FILES = sorted(VECTORS.glob("*.v*.json"))


def load(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def test_there_is_one_vector_per_event_type_and_version() -> None:
    expected = {f"{name}.v{cls.VERSION}.json" for name, cls in EVENT_TYPES.items()}
    assert {p.name for p in FILES} == expected
    assert {"KeyRegistered.v1.json", "KeyRevoked.v1.json", "EvidenceAccessed.v1.json"} <= expected


@pytest.mark.parametrize("path", FILES, ids=[p.name for p in FILES])
def test_golden_envelope_is_reproduced_byte_for_byte(path: Path) -> None:
    vector = load(path)
    key = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(vector["seed_hex"]))
    fields = vector["statement"]
    assert set(fields) == STATEMENT_KEYS
    assert path.name == f"{fields['type']}.v{fields['type_version']}.json"
    assert fields["ledger"] == "golden.example/evidence-ledger"
    assert base64.b64encode(raw_public_key(key)).decode() == vector["public_key_b64"]
    assert fields["signer"] == key_id(key)

    expected = vector["envelope"].encode("utf-8")
    raw = sign_statement(Statement(**fields), key)
    assert raw == expected
    assert hashlib.sha256(raw).hexdigest() == vector["envelope_sha256"]

    # the pieces inside agree with the file, and the envelope is the canonical form of itself
    envelope = parse_envelope(expected)
    assert envelope.payload == vector["payload"].encode("utf-8") == canonical(fields)
    assert envelope.statement == Statement(**fields)
    assert base64.b64encode(envelope.sig).decode() == vector["signature"]
    assert parse_canonical(expected) == {
        "payload": base64.b64encode(envelope.payload).decode(),
        "payloadType": PAYLOAD_TYPE,
        "signatures": [{"keyid": key_id(key), "sig": vector["signature"]}],
    }
    assert key.sign(pae(PAYLOAD_TYPE, envelope.payload)) == envelope.sig
    verify_envelope(envelope, key.public_key())


@pytest.mark.parametrize("path", FILES, ids=[p.name for p in FILES])
def test_golden_body_parses_and_round_trips(path: Path) -> None:
    fields = load(path)["statement"]
    event = parse_body(fields["type"], fields["type_version"], fields["body"])
    assert type(event) is EVENT_TYPES[fields["type"]]
    assert event.to_body() == fields["body"]
    assert canonical(event.to_body()) == canonical(fields["body"])


@pytest.mark.parametrize("path", FILES, ids=[p.name for p in FILES])
def test_golden_payload_matches_an_independent_serialisation(path: Path) -> None:
    """For ASCII keys, integers and strings, sorted compact stdlib JSON is exactly RFC 8785."""
    vector = load(path)
    independent = json.dumps(vector["statement"], sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert vector["payload"] == independent
    envelope = json.loads(vector["envelope"])
    assert base64.b64decode(envelope["payload"], validate=True) == independent.encode("utf-8")
    assert vector["envelope"] == json.dumps(envelope, sort_keys=True, separators=(",", ":"))


def test_the_seeds_are_fixed_and_distinct() -> None:
    seeds = {}
    for path in FILES:
        vector = load(path)
        kind = vector["statement"]["type"]
        assert vector["seed_hex"] == hashlib.sha256(kind.encode()).hexdigest()
        seeds[vector["seed_hex"]] = kind
    assert len(seeds) == len(FILES)
