"""Signed receipts: the log's promise that an accepted entry will be in a checkpoint within a delay.

A receipt is a C2SP signed note, signed with the log key (the one that signs checkpoints), whose
text is exactly seven lines (docs/formats.md §10):

    evidence-ledger receipt v1          fixed header
    <origin>                            the log's origin
    <leaf index>                        decimal, no leading zeros
    <leaf hash>                         base64std of the RFC 6962 leaf hash (32 bytes)
    <integrated at>                     RFC 3339 UTC, the leaf's integrated_at as the service wrote it
    <max delay>                         whole seconds, decimal: a checkpoint covers the entry by
                                        integrated_at + max delay
    <envelope sha256>                   64 lowercase hex, the SHA-256 of the envelope's bytes

A receipt never parses as a checkpoint (its third line is a decimal, never the 44-character
base64 root a checkpoint holds there) and a checkpoint never parses as a receipt (its first line
is never the header: the header is followed by an origin, while a checkpoint's second line is a
size and its third a root, which is no decimal). Ed25519 is deterministic: the same entry with the
same delay gives the same bytes, so a receipt can be issued again (a duplicate append, a bundle).

Parsing is strict: any deviation is ``MalformedInputError`` with code ``BAD_RECEIPT``, a signature
that does not verify is ``VerificationError`` with code ``BAD_RECEIPT``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from domain.errors import LedgerError, MalformedInputError, VerificationError
from ledger.envelope.b64 import b64decode, b64encode
from ledger.envelope.canonical import format_time, parse_time
from ledger.log import note

HEADER = "evidence-ledger receipt v1"
CODE = "BAD_RECEIPT"
LINES = 7
MAX_INDEX = note.MAX_TREE_SIZE - 1
MAX_DELAY = 10 * 365 * 24 * 3600  # ten years: anything longer is no promise
_DECIMAL = re.compile(r"0|[1-9][0-9]*")
_HEX64 = re.compile(r"[0-9a-f]{64}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def _bad(message: str) -> MalformedInputError:
    return MalformedInputError(f"receipt: {message}", code=CODE)


@dataclass(frozen=True)
class Receipt:
    """The text of a receipt, parsed."""

    origin: str
    index: int
    leaf_hash: bytes
    integrated_at: str
    max_delay: int
    envelope_sha256: str

    def __post_init__(self) -> None:
        if not isinstance(self.origin, str) or not self.origin or "\n" in self.origin:
            raise _bad("the origin must be a non-empty line")
        if _CONTROL.search(self.origin):  # Unicode category Cc, as a checkpoint's origin
            raise _bad("the origin must be one line without control characters")
        if self.origin == HEADER:
            raise _bad("the origin must not be the receipt header")
        if type(self.index) is not int or not 0 <= self.index <= MAX_INDEX:
            raise _bad(f"the leaf index must be an integer in [0, {MAX_INDEX}]")
        if not isinstance(self.leaf_hash, bytes) or len(self.leaf_hash) != 32:
            raise _bad("the leaf hash must be 32 bytes")
        if not isinstance(self.integrated_at, str):
            raise _bad("integrated_at must be an RFC 3339 UTC timestamp")
        try:
            canonical_time = format_time(parse_time(self.integrated_at, field="integrated_at"))
        except LedgerError:
            raise _bad("integrated_at must be an RFC 3339 UTC timestamp") from None
        if canonical_time != self.integrated_at:
            raise _bad("integrated_at must be written with microseconds and a 'Z' (YYYY-MM-DDTHH:MM:SS.ffffffZ)")
        if type(self.max_delay) is not int or not 0 < self.max_delay <= MAX_DELAY:
            raise _bad(f"the max delay must be whole seconds in [1, {MAX_DELAY}]")
        if not isinstance(self.envelope_sha256, str) or not _HEX64.fullmatch(self.envelope_sha256):
            raise _bad("the envelope SHA-256 must be 64 lowercase hex digits")

    @property
    def due(self) -> datetime:
        """When a checkpoint must cover the entry at the latest."""
        return parse_time(self.integrated_at) + timedelta(seconds=self.max_delay)

    def body(self) -> bytes:
        lines = [
            HEADER, self.origin, str(self.index), b64encode(self.leaf_hash), self.integrated_at,
            str(self.max_delay), self.envelope_sha256,
        ]
        return "".join(line + "\n" for line in lines).encode("utf-8")

    def to_json(self) -> dict[str, object]:
        return {
            "origin": self.origin,
            "leaf_index": self.index,
            "leaf_hash": b64encode(self.leaf_hash),
            "integrated_at": self.integrated_at,
            "max_delay": self.max_delay,
            "due": format_time(self.due),
            "envelope_sha256": self.envelope_sha256,
        }


def parse_body(body: bytes) -> Receipt:
    """Strictly parse a receipt's text (the note without its signatures)."""
    try:
        text = body.decode("utf-8") if isinstance(body, bytes) else None
    except UnicodeDecodeError:
        text = None
    if text is None:
        raise _bad("the text is not UTF-8 bytes")
    if not text.endswith("\n"):
        raise _bad("the text must end with LF")
    lines = text[:-1].split("\n")
    if len(lines) != LINES:
        raise _bad(f"the text must be exactly {LINES} lines, found {len(lines)}")
    header, origin, index, leaf_hash, integrated_at, delay, envelope_sha256 = lines
    if header != HEADER:
        raise _bad(f"the first line must be {HEADER!r}")
    for value, what in ((index, "leaf index"), (delay, "max delay")):
        if not _DECIMAL.fullmatch(value) or len(value) > len(str(MAX_INDEX)):
            raise _bad(f"the {what} must be decimal digits without leading zeros")
    try:
        raw_hash = b64decode(leaf_hash, what="receipt leaf hash", code=CODE)
    except MalformedInputError as exc:
        raise _bad(exc.message) from None
    return Receipt(origin, int(index), raw_hash, integrated_at, int(delay), envelope_sha256)


def parse(data: bytes) -> Receipt:
    """Strictly parse a signed receipt without checking its signature (see :func:`verify`)."""
    try:
        body, _ = note.open_note(data)
    except MalformedInputError as exc:
        raise _bad(f"not a signed note: {exc.message}") from None
    return parse_body(body)


def sign(receipt: Receipt, key_name: str, key: Ed25519PrivateKey) -> bytes:
    """The receipt as a signed note by the log key ``key_name``: deterministic bytes."""
    return note.sign_note(receipt.body(), key_name, key)


class Signer:
    """Signs receipts with one log key, its key id derived once (deriving it costs as much as a
    signature): the same bytes as :func:`sign`."""

    def __init__(self, key_name: str, key: Ed25519PrivateKey) -> None:
        self.key_name, self.key = key_name, key
        self.key_id = note.make_verifier_key(key_name, key.public_key()).key_id

    def sign(self, receipt: Receipt) -> bytes:
        body = receipt.body()  # a checked Receipt: one line per field, no control characters
        return body + b"\n" + note.SignatureLine(self.key_name, self.key_id, self.key.sign(body)).encode()


def verify(data: bytes, log_key: note.VerifierKey, *, origin: str | None = None) -> Receipt:
    """The parsed receipt once its signature by ``log_key`` is checked; raise otherwise (BAD_RECEIPT).

    ``origin``, when given, must be the receipt's origin."""
    if log_key.type != note.SIG_TYPE_ED25519:
        raise ValueError(f"a log key is a type 0x01 key, found {log_key.type:#04x}")
    receipt = parse(data)
    try:
        note.verify_note(data, log_key)
    except VerificationError as exc:
        raise VerificationError(f"receipt: {exc.message}", code=CODE) from None
    if origin is not None and receipt.origin != origin:
        raise VerificationError(f"receipt: the origin must be {origin!r}", code=CODE)
    return receipt
