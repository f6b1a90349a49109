"""Signed receipts: strict parsing, signatures, determinism, and never confused with a checkpoint."""

from __future__ import annotations

import hashlib

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from domain.errors import LedgerError, MalformedInputError, VerificationError
from ledger.envelope.b64 import b64encode
from ledger.log import note, receipt

ORIGIN = "ledger.example/evidence/v1"
NAME = ORIGIN


def _key(label: str) -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(hashlib.sha256(label.encode()).digest())


LOG_SK, OTHER_SK = _key("log"), _key("other")
LOG_VK = note.make_verifier_key(NAME, LOG_SK.public_key())
OTHER_VK = note.make_verifier_key(NAME, OTHER_SK.public_key())
LEAF_HASH = hashlib.sha256(b"leaf").digest()
ENV_SHA = hashlib.sha256(b"envelope").hexdigest()
RECEIPT = receipt.Receipt(ORIGIN, 41, LEAF_HASH, "2026-02-05T17:00:00.123456Z", 300, ENV_SHA)
SIGNED = receipt.sign(RECEIPT, NAME, LOG_SK)
BODY_LINES = RECEIPT.body().decode().split("\n")[:-1]


def _signed(lines: list[str]) -> bytes:
    return note.sign_note("".join(line + "\n" for line in lines).encode(), NAME, LOG_SK)


def test_a_receipt_is_the_documented_seven_lines_and_verifies() -> None:
    assert [
        "evidence-ledger receipt v1", ORIGIN, "41", b64encode(LEAF_HASH), "2026-02-05T17:00:00.123456Z", "300", ENV_SHA,
    ] == BODY_LINES
    assert receipt.verify(SIGNED, LOG_VK) == RECEIPT
    assert receipt.verify(SIGNED, LOG_VK, origin=ORIGIN).due.isoformat() == "2026-02-05T17:05:00.123456+00:00"
    assert receipt.parse(SIGNED) == RECEIPT


def test_the_same_entry_and_delay_give_the_same_bytes() -> None:
    again = receipt.Receipt(ORIGIN, 41, LEAF_HASH, "2026-02-05T17:00:00.123456Z", 300, ENV_SHA)
    assert receipt.sign(again, NAME, LOG_SK) == SIGNED
    assert receipt.sign(receipt.Receipt(ORIGIN, 41, LEAF_HASH, RECEIPT.integrated_at, 301, ENV_SHA), NAME, LOG_SK) != SIGNED
    assert receipt.Signer(NAME, LOG_SK).sign(again) == SIGNED  # the service's signer: the same bytes


@pytest.mark.parametrize("line", range(1, 7))
def test_every_field_flipped_under_the_old_signature_fails(line: int) -> None:
    """Each field changed to another valid value, the signature kept: the signature no longer verifies."""
    other = {1: "ledger.example/other", 2: "42", 3: b64encode(hashlib.sha256(b"x").digest()),
             4: "2026-02-05T17:00:00.123457Z", 5: "3000", 6: hashlib.sha256(b"y").hexdigest()}[line]
    lines = list(BODY_LINES)
    lines[line] = other
    forged = "".join(x + "\n" for x in lines).encode() + SIGNED[SIGNED.rfind(b"\n\n") + 1 :]
    receipt.parse(forged)  # well-formed ...
    with pytest.raises(VerificationError) as exc:
        receipt.verify(forged, LOG_VK)  # ... but not what the log signed
    assert exc.value.code == "BAD_RECEIPT"


def test_a_receipt_signed_by_another_key_fails() -> None:
    with pytest.raises(VerificationError) as exc:
        receipt.verify(receipt.sign(RECEIPT, NAME, OTHER_SK), LOG_VK)
    assert exc.value.code == "BAD_RECEIPT"
    with pytest.raises(VerificationError):
        receipt.verify(SIGNED, OTHER_VK)


def test_another_origin_than_expected_fails() -> None:
    with pytest.raises(VerificationError) as exc:
        receipt.verify(SIGNED, LOG_VK, origin="ledger.example/other")
    assert exc.value.code == "BAD_RECEIPT"


@pytest.mark.parametrize(
    ("index", "value"),
    [
        (0, "evidence-ledger receipt v2"),
        (0, "evidence-ledger checkpoint v1"),
        (1, ""),
        (1, "evidence-ledger receipt v1"),
        (2, "041"),
        (2, "-1"),
        (2, "1.0"),
        (2, "9223372036854775807"),
        (3, b64encode(LEAF_HASH)[:-1]),
        (3, b64encode(LEAF_HASH[:31])),
        (3, b64encode(LEAF_HASH).replace("+", "-").replace("/", "_") + " "),
        (4, "2026-02-05T17:00:00Z"),
        (4, "2026-02-05T17:00:00.123456+00:00"),
        (4, "yesterday"),
        (5, "0"),
        (5, "0300"),
        (5, "999999999999"),
        (6, ENV_SHA.upper()),
        (6, ENV_SHA[:-1]),
    ],
)
def test_any_deviation_is_malformed(index: int, value: str) -> None:
    lines = list(BODY_LINES)
    lines[index] = value
    with pytest.raises(MalformedInputError) as exc:
        receipt.verify(_signed(lines), LOG_VK)
    assert exc.value.code == "BAD_RECEIPT"


@pytest.mark.parametrize(
    "lines",
    [BODY_LINES[:-1], [*BODY_LINES, "extension"], [*BODY_LINES[:3], "", *BODY_LINES[3:]]],
    ids=["six lines", "eight lines", "blank line"],
)
def test_a_receipt_has_exactly_seven_lines(lines: list[str]) -> None:
    with pytest.raises(MalformedInputError) as exc:
        receipt.parse(_signed(lines))
    assert exc.value.code == "BAD_RECEIPT"


@pytest.mark.parametrize("data", [b"", b"not a note", SIGNED[:-1], SIGNED.replace(b"\xe2\x80\x94", b"-"), b"\xff\n\n"])
def test_not_a_signed_note_is_malformed(data: bytes) -> None:
    with pytest.raises(MalformedInputError) as exc:
        receipt.verify(data, LOG_VK)
    assert exc.value.code == "BAD_RECEIPT"


@pytest.mark.parametrize("origin", [ORIGIN, receipt.HEADER, "7"])
def test_a_checkpoint_is_never_a_receipt(origin: str) -> None:
    """Signed by the same key, any checkpoint (even one whose origin is the header) is refused."""
    for extensions in ((), ("a", "b", "c", "d")):
        checkpoint = note.sign_note(note.Checkpoint(origin, 42, LEAF_HASH, extensions).body(), NAME, LOG_SK)
        note.verify_note(checkpoint, LOG_VK)
        with pytest.raises(MalformedInputError) as exc:
            receipt.verify(checkpoint, LOG_VK)
        assert exc.value.code == "BAD_RECEIPT"


@pytest.mark.parametrize("origin", [ORIGIN, "7", "1"])
def test_a_receipt_is_never_a_checkpoint(origin: str) -> None:
    signed = receipt.sign(receipt.Receipt(origin, 1, LEAF_HASH, RECEIPT.integrated_at, 300, ENV_SHA), NAME, LOG_SK)
    with pytest.raises(LedgerError):
        note.verify_checkpoint(signed, LOG_VK)
    with pytest.raises(MalformedInputError):
        note.parse_checkpoint_body(note.open_note(signed)[0])


def test_a_receipt_cannot_be_built_with_bad_fields() -> None:
    for bad in (
        {"index": -1}, {"index": True}, {"leaf_hash": b"short"}, {"max_delay": 0}, {"origin": "a\nb"},
        {"origin": "tab\there"}, {"envelope_sha256": "x" * 64},
    ):
        fields = {**RECEIPT.__dict__, **bad}
        with pytest.raises(MalformedInputError):
            receipt.Receipt(**fields)


def test_a_witness_key_is_no_log_key() -> None:
    witness = note.make_verifier_key("w.example", LOG_SK.public_key(), note.SIG_TYPE_COSIGNATURE_V1)
    with pytest.raises(ValueError, match="type 0x01"):
        receipt.verify(SIGNED, witness)
