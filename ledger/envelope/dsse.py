"""DSSE envelopes over RFC 8785 statements, signed with Ed25519.

Wire format (permanent; see docs/formats.md):

* statement: canonical JSON ``{"body", "case_id", "event_id", "ledger", "occurred_at", "prev", "seq",
  "signer", "type", "type_version"}``;
* envelope: canonical JSON ``{"payload": b64(statement), "payloadType": PAYLOAD_TYPE,
  "signatures": [{"keyid": <signer>, "sig": b64(Ed25519(PAE(payloadType, statement)))}]}``.

``parse_envelope`` checks form only and returns *unverified* data; ``verify_envelope`` checks the
signature over the exact bytes received and returns nothing.
"""

from __future__ import annotations

import base64
import hashlib
import re
import uuid
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from domain.errors import MalformedInputError, VerificationError
from ledger.envelope.b64 import b64decode
from ledger.envelope.canonical import canonical, parse_canonical, parse_time
from ledger.envelope.keys import key_id

PAYLOAD_TYPE = "application/vnd.evidence-ledger.event.v1+json"
REGISTRY_CASE_ID = "00000000-0000-0000-0000-000000000000"
STATEMENT_KEYS = frozenset(
    {"ledger", "case_id", "event_id", "seq", "prev", "type", "type_version", "occurred_at", "signer", "body"}
)
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_TYPE_NAME = re.compile(r"^[A-Z][A-Za-z0-9]{0,63}$")
_ORIGIN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/:-]{0,199}$")


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE pre-authentication encoding: ``DSSEv1 SP len(type) SP type SP len(body) SP body``."""
    kind = payload_type.encode("utf-8")
    return b"DSSEv1 %d %s %d %s" % (len(kind), kind, len(payload), payload)


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def b64decode_strict(text: object, *, what: str) -> bytes:
    """Standard, padded, canonical base64 only."""
    return b64decode(text, what=what, code="MALFORMED_ENVELOPE")


@dataclass(frozen=True, slots=True)
class Statement:
    """The signed payload of one event."""

    ledger: str
    case_id: str
    event_id: str
    seq: int
    prev: str | None
    type: str
    type_version: int
    occurred_at: str
    signer: str
    body: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return {
            "ledger": self.ledger,
            "case_id": self.case_id,
            "event_id": self.event_id,
            "seq": self.seq,
            "prev": self.prev,
            "type": self.type,
            "type_version": self.type_version,
            "occurred_at": self.occurred_at,
            "signer": self.signer,
            "body": self.body,
        }

    def to_bytes(self) -> bytes:
        return canonical(self.to_json())


@dataclass(frozen=True, slots=True)
class UnverifiedEnvelope:
    """A well-formed envelope whose signature has not been checked yet."""

    raw: bytes
    payload: bytes
    keyid: str
    sig: bytes
    statement: Statement

    @property
    def sha256(self) -> str:
        return sha256_hex(self.raw)


def _canonical_uuid(value: object, field: str) -> str:
    if not isinstance(value, str):
        raise MalformedInputError(f"statement field '{field}' must be a UUID string", code="BAD_STATEMENT")
    try:
        parsed = uuid.UUID(value)
    except ValueError:
        raise MalformedInputError(f"statement field '{field}' is not a UUID", code="BAD_STATEMENT") from None
    if str(parsed) != value:
        raise MalformedInputError(
            f"statement field '{field}' must be a lowercase hyphenated UUID", code="BAD_STATEMENT"
        )
    return value


def _positive_int(value: object, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise MalformedInputError(f"statement field '{field}' must be an integer >= 1", code="BAD_STATEMENT")
    return value


def _hex64(value: object, field: str) -> str:
    if not isinstance(value, str) or not _HEX64.fullmatch(value):
        raise MalformedInputError(
            f"statement field '{field}' must be 64 lowercase hex characters", code="BAD_STATEMENT"
        )
    return value


def statement_from_json(data: object) -> Statement:
    """Check the shape of a parsed statement (not its signature, not its place in the chain)."""
    if not isinstance(data, dict):
        raise MalformedInputError("statement must be a JSON object", code="BAD_STATEMENT")
    keys = set(data)
    if keys != STATEMENT_KEYS:
        missing = sorted(STATEMENT_KEYS - keys)
        extra = sorted(keys - STATEMENT_KEYS)
        raise MalformedInputError(
            f"statement fields wrong (missing: {missing}, unexpected: {len(extra)})", code="BAD_STATEMENT"
        )
    ledger_origin = data["ledger"]
    if not isinstance(ledger_origin, str) or not _ORIGIN.fullmatch(ledger_origin):
        raise MalformedInputError("statement field 'ledger' must be a ledger origin", code="BAD_STATEMENT")
    seq = _positive_int(data["seq"], "seq")
    prev = data["prev"]
    if seq == 1 and prev is not None:
        raise MalformedInputError("statement with seq 1 must have prev null", code="BAD_STATEMENT")
    if seq > 1:
        _hex64(prev, "prev")
    kind = data["type"]
    if not isinstance(kind, str) or not _TYPE_NAME.fullmatch(kind):
        from domain.events import type_hint

        raise MalformedInputError(
            f"statement field 'type' must be an event type name (UpperCamelCase); {type_hint(kind)}",
            code="BAD_STATEMENT",
        )
    if not isinstance(data["body"], dict):
        raise MalformedInputError("statement field 'body' must be a JSON object", code="BAD_STATEMENT")
    if not isinstance(data["occurred_at"], str):
        raise MalformedInputError("statement field 'occurred_at' must be a string", code="BAD_STATEMENT")
    parse_time(data["occurred_at"], field="occurred_at")
    return Statement(
        ledger=ledger_origin,
        case_id=_canonical_uuid(data["case_id"], "case_id"),
        event_id=_canonical_uuid(data["event_id"], "event_id"),
        seq=seq,
        prev=prev,
        type=kind,
        type_version=_positive_int(data["type_version"], "type_version"),
        occurred_at=data["occurred_at"],
        signer=_hex64(data["signer"], "signer"),
        body=data["body"],
    )


def parse_envelope(raw: bytes) -> UnverifiedEnvelope:
    """Strictly parse envelope bytes and the statement inside; the signature is NOT checked."""
    data = parse_canonical(raw, what="envelope")
    if not isinstance(data, dict) or set(data) != {"payload", "payloadType", "signatures"}:
        raise MalformedInputError(
            "envelope must have exactly payload, payloadType and signatures", code="MALFORMED_ENVELOPE"
        )
    if data["payloadType"] != PAYLOAD_TYPE:
        raise MalformedInputError(f"payloadType must be {PAYLOAD_TYPE}", code="MALFORMED_ENVELOPE")
    signatures = data["signatures"]
    if not isinstance(signatures, list) or len(signatures) != 1:
        raise MalformedInputError("envelope must carry exactly one signature", code="MALFORMED_ENVELOPE")
    entry = signatures[0]
    if not isinstance(entry, dict) or set(entry) != {"keyid", "sig"}:
        raise MalformedInputError("signature must have exactly keyid and sig", code="MALFORMED_ENVELOPE")
    keyid = entry["keyid"]
    if not isinstance(keyid, str) or not _HEX64.fullmatch(keyid):
        raise MalformedInputError("signature keyid must be 64 lowercase hex", code="MALFORMED_ENVELOPE")
    sig = b64decode_strict(entry["sig"], what="signature")
    if len(sig) != 64:
        raise MalformedInputError("an Ed25519 signature is 64 bytes", code="MALFORMED_ENVELOPE")
    payload = b64decode_strict(data["payload"], what="payload")
    statement = statement_from_json(parse_canonical(payload, what="statement"))
    if statement.signer != keyid:
        raise MalformedInputError("statement signer differs from the signature keyid", code="BAD_STATEMENT")
    return UnverifiedEnvelope(raw=raw, payload=payload, keyid=keyid, sig=sig, statement=statement)


def verify_envelope(envelope: UnverifiedEnvelope, public_key: Ed25519PublicKey) -> None:
    """Check the Ed25519 signature over PAE of the exact payload bytes; raise on failure."""
    if key_id(public_key) != envelope.keyid:
        raise VerificationError("public key does not match the envelope's key id", code="BAD_SIGNATURE")
    try:
        public_key.verify(envelope.sig, pae(PAYLOAD_TYPE, envelope.payload))
    except InvalidSignature:
        raise VerificationError("envelope signature does not verify", code="BAD_SIGNATURE") from None


def sign_statement(statement: Statement, private_key: Ed25519PrivateKey) -> bytes:
    """Return canonical envelope bytes for a statement signed by ``private_key``."""
    if statement.signer != key_id(private_key):
        raise ValueError("statement signer must be the signing key's id")
    payload = statement.to_bytes()
    sig = private_key.sign(pae(PAYLOAD_TYPE, payload))
    return canonical(
        {
            "payload": base64.b64encode(payload).decode("ascii"),
            "payloadType": PAYLOAD_TYPE,
            "signatures": [{"keyid": statement.signer, "sig": base64.b64encode(sig).decode("ascii")}],
        }
    )
