"""C2SP signed notes, tlog checkpoints and Ed25519 cosignature/v1 witness signatures.

    note      = text || 0x0A || sigline+             text ends in 0x0A; separator = the LAST "\\n\\n"
    sigline   = "— " name " " base64std(keyid[4] || signature) 0x0A          (U+2014 EM DASH, space)
    keyid     = SHA-256(name || 0x0A || type || pubkey)[:4]
    vkey      = name "+" hex8(keyid) "+" base64std(type || pubkey)
    checkpoint text = origin 0x0A decimal-size 0x0A base64std(root32) 0x0A [extension 0x0A]*
    cosignature/v1 (type 0x04) payload =
              keyid || u64be(ts) || Ed25519("cosignature/v1\\ntime <ts>\\n" || text)

Byte formats follow c2sp.org/signed-note, tlog-checkpoint and tlog-cosignature and what Go's
``golang.org/x/mod/sumdb/note`` accepts. Everything is parsed strictly: invalid UTF-8, control
characters other than LF, non-canonical base64, leading zeros and malformed lines are refused with
MalformedInputError; signatures that do not verify raise VerificationError.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from domain.errors import MalformedInputError, VerificationError
from ledger.envelope.b64 import b64decode, b64encode
from ledger.envelope.keys import raw_public_key

SIG_TYPE_ED25519 = 0x01
SIG_TYPE_COSIGNATURE_V1 = 0x04
MAX_SIGNATURES = 100
MAX_TREE_SIZE = 2**63 - 1
MAX_TIMESTAMP = 2**63 - 1
KEY_ID_SIZE = 4
ROOT_SIZE = 32
_SIGNATURE_SIZE = 64
_SIG_PREFIX = "\u2014 "
_DECIMAL = re.compile(r"0|[1-9][0-9]*")
_HEX8 = re.compile(r"[0-9a-fA-F]{8}")
_GO_PRIVATE_PREFIX = "PRIVATE+KEY+"


# --- names, key ids, keys ---------------------------------------------------------------------


def _require_key_name(name: object) -> str:
    if not isinstance(name, str) or not name:
        raise MalformedInputError("a key name must be a non-empty string", code="BAD_KEY")
    if "+" in name or any(ch.isspace() or unicodedata.category(ch) == "Cc" for ch in name):
        raise MalformedInputError(
            "a key name must not contain '+', spaces or control characters", code="BAD_KEY"
        )
    return name


def key_id(name: str, sig_type: int, public_key: bytes) -> bytes:
    """The 4-byte key id: SHA-256(name || 0x0A || type || public key)[:4]."""
    digest = hashlib.sha256(name.encode("utf-8") + b"\n" + bytes([sig_type]) + public_key).digest()
    return digest[:KEY_ID_SIZE]


@dataclass(frozen=True)
class VerifierKey:
    """A parsed verifier key; ``str()`` gives the ``name+hex8+base64`` text."""

    name: str
    key_id: bytes
    type: int
    public_key: bytes

    def __str__(self) -> str:
        return f"{self.name}+{self.key_id.hex()}+{b64encode(bytes([self.type]) + self.public_key)}"

    def matches(self, line: SignatureLine) -> bool:
        return line.name == self.name and line.key_id == self.key_id


def make_verifier_key(
    name: str, public_key: bytes | Ed25519PublicKey, sig_type: int = SIG_TYPE_ED25519
) -> VerifierKey:
    raw = public_key if isinstance(public_key, bytes) else raw_public_key(public_key)
    if sig_type not in (SIG_TYPE_ED25519, SIG_TYPE_COSIGNATURE_V1):
        raise MalformedInputError(f"key type must be 0x01 or 0x04, found {sig_type:#04x}", code="BAD_KEY")
    if len(raw) != 32:
        raise MalformedInputError(f"an Ed25519 public key is 32 bytes, found {len(raw)}", code="BAD_KEY")
    return VerifierKey(_require_key_name(name), key_id(name, sig_type, raw), sig_type, raw)


def parse_verifier_key(text: str) -> VerifierKey:
    """Parse ``name+hex8(keyid)+base64(type || pubkey)`` for key types 0x01 and 0x04."""
    parts = text.split("+", 2) if isinstance(text, str) else []
    if len(parts) != 3:
        raise MalformedInputError("a verifier key is name+keyid+key", code="BAD_KEY")
    name, hex8, key64 = parts
    if not _HEX8.fullmatch(hex8):
        raise MalformedInputError(f"a verifier key id is 8 hex digits, found {hex8!r}", code="BAD_KEY")
    raw = b64decode(key64, what="verifier key", code="BAD_KEY")
    if not raw:
        raise MalformedInputError("a verifier key must not be empty", code="BAD_KEY")
    key = make_verifier_key(name, raw[1:], raw[0])
    if key.key_id != bytes.fromhex(hex8):
        raise MalformedInputError(
            f"verifier key id {hex8} does not match the key ({key.key_id.hex()})", code="BAD_KEY"
        )
    return key


def parse_go_private_key(text: str) -> tuple[str, Ed25519PrivateKey]:
    """``(name, key)`` from a Go ``note`` signer key ``PRIVATE+KEY+name+hex8+base64(0x01 || seed)``."""
    if not isinstance(text, str) or not text.startswith(_GO_PRIVATE_PREFIX):
        raise MalformedInputError("a Go signer key starts with PRIVATE+KEY+", code="BAD_KEY")
    parts = text[len(_GO_PRIVATE_PREFIX) :].split("+", 2)
    if len(parts) != 3 or not _HEX8.fullmatch(parts[1]):
        raise MalformedInputError("a Go signer key is PRIVATE+KEY+name+keyid+key", code="BAD_KEY")
    name, hex8, key64 = parts
    raw = b64decode(key64, what="signer key", code="BAD_KEY")
    if len(raw) != 33 or raw[0] != SIG_TYPE_ED25519:
        raise MalformedInputError("a Go signer key holds 0x01 and a 32-byte Ed25519 seed", code="BAD_KEY")
    private = Ed25519PrivateKey.from_private_bytes(raw[1:])
    if make_verifier_key(name, private.public_key()).key_id != bytes.fromhex(hex8):
        raise MalformedInputError(f"signer key id {hex8} does not match the key", code="BAD_KEY")
    return name, private


def _ed25519_valid(public_key: bytes, signature: bytes, message: bytes) -> bool:
    if len(signature) != _SIGNATURE_SIZE:
        return False
    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(signature, message)
    except (InvalidSignature, ValueError):
        return False
    return True


# --- text -------------------------------------------------------------------------------------


def _decode_text(data: bytes, what: str) -> str:
    if not isinstance(data, bytes):
        raise MalformedInputError(f"{what} must be bytes, found {type(data).__name__}")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise MalformedInputError(f"{what} is not valid UTF-8") from None
    if any(unicodedata.category(ch) == "Cc" and ch != "\n" for ch in text):
        raise MalformedInputError(f"{what} contains a control character other than LF")
    return text


def _require_note_text(body: bytes) -> None:
    if not _decode_text(body, "note text").endswith("\n"):
        raise MalformedInputError("note text must be non-empty and end with LF")


# --- checkpoints ------------------------------------------------------------------------------


def _require_int_in_range(value: object, what: str, maximum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= maximum:
        raise MalformedInputError(f"{what} must be an int in [0, {maximum}], found {value!r}")


def _require_line(value: object, what: str) -> str:
    if not isinstance(value, str) or not value:
        raise MalformedInputError(f"checkpoint {what} must be a non-empty string")
    if any(unicodedata.category(ch) == "Cc" for ch in value):
        raise MalformedInputError(f"checkpoint {what} must be one line without control characters")
    return value


@dataclass(frozen=True)
class Checkpoint:
    """A tlog-checkpoint body: origin, tree size, RFC 6962 root and optional extension lines."""

    origin: str
    size: int
    root: bytes
    extensions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        _require_line(self.origin, "origin")
        _require_int_in_range(self.size, "checkpoint size", MAX_TREE_SIZE)
        if not isinstance(self.root, bytes) or len(self.root) != ROOT_SIZE:
            raise MalformedInputError(f"checkpoint root must be {ROOT_SIZE} bytes")
        object.__setattr__(self, "extensions", tuple(self.extensions))
        for line in self.extensions:
            _require_line(line, "extension line")

    def body(self) -> bytes:
        lines = [self.origin, str(self.size), b64encode(self.root), *self.extensions]
        return "".join(line + "\n" for line in lines).encode("utf-8")


def parse_checkpoint_body(body: bytes) -> Checkpoint:
    text = _decode_text(body, "checkpoint")
    if not text.endswith("\n"):
        raise MalformedInputError("checkpoint must end with LF")
    lines = text[:-1].split("\n")
    if len(lines) < 3:
        raise MalformedInputError(f"checkpoint needs origin, size and root lines, found {len(lines)} lines")
    origin, size_text, root_text, *extensions = lines
    if not _DECIMAL.fullmatch(size_text) or len(size_text) > len(str(MAX_TREE_SIZE)):
        raise MalformedInputError("checkpoint size must be decimal digits without leading zeros")
    root = b64decode(root_text, what="checkpoint root")
    return Checkpoint(origin, int(size_text), root, tuple(extensions))


# --- signature lines and notes ----------------------------------------------------------------


@dataclass(frozen=True)
class SignatureLine:
    """One ``— name base64(keyid || signature)`` line; ``signature`` is everything after the key id."""

    name: str
    key_id: bytes
    signature: bytes

    def encode(self) -> bytes:
        return f"{_SIG_PREFIX}{self.name} {b64encode(self.key_id + self.signature)}\n".encode()


def _parse_signature_line(line: str) -> SignatureLine:
    if not line.startswith(_SIG_PREFIX):
        raise MalformedInputError("a signature line starts with an EM DASH (U+2014) and a space")
    name, sep, b64 = line[len(_SIG_PREFIX) :].partition(" ")
    if not sep:
        raise MalformedInputError("a signature line is '— name signature'")
    _require_key_name(name)
    data = b64decode(b64, what="signature")
    if len(data) <= KEY_ID_SIZE:
        raise MalformedInputError(f"a signature holds a key id and a signature, found {len(data)} bytes")
    return SignatureLine(name, data[:KEY_ID_SIZE], data[KEY_ID_SIZE:])


def open_note(note: bytes) -> tuple[bytes, list[SignatureLine]]:
    """Split a signed note into its text and parsed signature lines, without verifying them."""
    _decode_text(note, "note")
    split = note.rfind(b"\n\n")
    if split < 0:
        raise MalformedInputError("note has no blank line before its signatures")
    body, block = note[: split + 1], note[split + 2 :]
    if not block.endswith(b"\n"):
        raise MalformedInputError("note must end with a signature line ending in LF")
    raw_lines = block[:-1].decode("utf-8").split("\n")
    if len(raw_lines) > MAX_SIGNATURES:
        raise MalformedInputError(
            f"note has {len(raw_lines)} signatures, at most {MAX_SIGNATURES} are allowed"
        )
    return body, [_parse_signature_line(line) for line in raw_lines]


def sign_note(body: bytes, name: str, private_key: Ed25519PrivateKey) -> bytes:
    """``body`` followed by a blank line and an Ed25519 (type 0x01) signature line by ``name``."""
    _require_note_text(body)
    kid = make_verifier_key(name, private_key.public_key()).key_id
    return body + b"\n" + SignatureLine(name, kid, private_key.sign(body)).encode()


def add_signature_lines(note: bytes, lines: Iterable[bytes]) -> bytes:
    """Append already-made signature lines (each ending in LF) to a signed note."""
    _, existing = open_note(note)
    extra = list(lines)
    for line in extra:
        if not line.endswith(b"\n") or line.count(b"\n") != 1:
            raise MalformedInputError("a signature line is a single line ending in LF")
        _parse_signature_line(_decode_text(line, "signature line")[:-1])
    if len(existing) + len(extra) > MAX_SIGNATURES:
        raise MalformedInputError(f"a note carries at most {MAX_SIGNATURES} signatures")
    return note + b"".join(extra)


# --- cosignatures -----------------------------------------------------------------------------


def _cosignature_message(body: bytes, timestamp: int) -> bytes:
    return b"cosignature/v1\ntime %d\n" % timestamp + body


def cosign(
    checkpoint_body: bytes, witness_name: str, witness_private_key: Ed25519PrivateKey, timestamp: int
) -> bytes:
    """A cosignature/v1 (type 0x04) signature line over a checkpoint body, at POSIX seconds ``timestamp``."""
    parse_checkpoint_body(checkpoint_body)
    _require_int_in_range(timestamp, "cosignature time (POSIX seconds)", MAX_TIMESTAMP)
    kid = make_verifier_key(witness_name, witness_private_key.public_key(), SIG_TYPE_COSIGNATURE_V1).key_id
    signature = witness_private_key.sign(_cosignature_message(checkpoint_body, timestamp))
    return SignatureLine(witness_name, kid, timestamp.to_bytes(8, "big") + signature).encode()


@dataclass(frozen=True)
class Cosignature:
    name: str
    key_id: bytes
    timestamp: int


@dataclass(frozen=True)
class VerifiedCheckpoint:
    checkpoint: Checkpoint
    cosignatures: tuple[Cosignature, ...]


def _verify_cosignature(body: bytes, line: SignatureLine, witness: VerifierKey) -> Cosignature:
    timestamp, signature = int.from_bytes(line.signature[:8], "big"), line.signature[8:]
    message = _cosignature_message(body, timestamp)
    if timestamp > MAX_TIMESTAMP or not _ed25519_valid(witness.public_key, signature, message):
        raise VerificationError(
            f"cosignature by witness {witness.name} does not verify", code="BAD_COSIGNATURE"
        )
    return Cosignature(witness.name, witness.key_id, timestamp)


def _require_signed_by(body: bytes, lines: Sequence[SignatureLine], key: VerifierKey, code: str) -> None:
    """Every line by ``key`` must verify, and there must be at least one."""
    mine = [line for line in lines if key.matches(line)]
    if not mine:
        raise VerificationError(f"note is not signed by key {key.name}+{key.key_id.hex()}", code=code)
    if not all(_ed25519_valid(key.public_key, line.signature, body) for line in mine):
        raise VerificationError(f"signature by key {key.name}+{key.key_id.hex()} does not verify", code=code)


def verify_note(note: bytes, key: VerifierKey) -> bytes:
    """The text of ``note`` after checking its Ed25519 (type 0x01) signature by ``key``."""
    if key.type != SIG_TYPE_ED25519:
        raise ValueError(f"a note is verified with a type 0x01 key, found {key.type:#04x}")
    body, lines = open_note(note)
    _require_signed_by(body, lines, key, "BAD_SIGNATURE")
    return body


def _required_witnesses(witnesses: Sequence[VerifierKey], min_witnesses: int | None) -> int:
    if any(w.type != SIG_TYPE_COSIGNATURE_V1 for w in witnesses):
        raise ValueError("witness keys must be cosignature/v1 (type 0x04) keys")
    if len({(w.name, w.key_id) for w in witnesses}) != len(witnesses):
        raise ValueError("the same witness key is listed twice")
    required = len(witnesses) if min_witnesses is None else min_witnesses
    if not 0 <= required <= len(witnesses):
        raise ValueError(f"min_witnesses must be in [0, {len(witnesses)}], found {min_witnesses}")
    return required


def verify_checkpoint(
    note: bytes,
    log_key: VerifierKey,
    witnesses: Sequence[VerifierKey] = (),
    min_witnesses: int | None = None,
    *,
    origin: str | None = None,
) -> VerifiedCheckpoint:
    """Raise unless ``note`` is a checkpoint signed by ``log_key`` and cosigned as the policy asks.

    Lines from unknown keys are ignored; any line from a known key that fails rejects the note.
    Witness signatures never stand in for the log's. Without ``min_witnesses`` every listed
    witness must have cosigned. ``origin``, when given, must equal the checkpoint's origin.
    """
    if log_key.type != SIG_TYPE_ED25519:
        raise ValueError(f"a log key is a type 0x01 key, found {log_key.type:#04x}")
    required = _required_witnesses(witnesses, min_witnesses)
    body, lines = open_note(note)
    _require_signed_by(body, lines, log_key, "BAD_CHECKPOINT")
    checkpoint = parse_checkpoint_body(body)
    if origin is not None and checkpoint.origin != origin:
        raise VerificationError(f"checkpoint origin must be {origin!r}", code="BAD_CHECKPOINT")
    cosignatures: dict[tuple[str, bytes], Cosignature] = {}
    for line in lines:
        for witness in witnesses:
            if witness.matches(line):
                cosignatures.setdefault((line.name, line.key_id), _verify_cosignature(body, line, witness))
    if len(cosignatures) < required:
        raise VerificationError(
            f"checkpoint needs {required} witness cosignatures, found {len(cosignatures)}",
            code="WITNESS_POLICY",
        )
    return VerifiedCheckpoint(checkpoint, tuple(cosignatures.values()))
