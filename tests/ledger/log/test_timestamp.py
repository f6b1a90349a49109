"""RFC 3161 tokens over checkpoint bodies (ledger/log/timestamp.py), against a local `openssl ts` TSA."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from domain.errors import MalformedInputError
from ledger.log import note, timestamp
from tests.support.tsa import TestTSA

ORIGIN = "test.example/log"


@pytest.fixture(scope="module")
def tsa(tmp_path_factory: pytest.TempPathFactory) -> TestTSA:
    return TestTSA(tmp_path_factory.mktemp("tsa"))


@pytest.fixture(scope="module")
def other(tmp_path_factory: pytest.TempPathFactory) -> TestTSA:
    return TestTSA(tmp_path_factory.mktemp("other"), "Other TSA")


def _note(size: int) -> bytes:
    body = note.Checkpoint(ORIGIN, size, hashlib.sha256(b"%d" % size).digest()).body()
    return note.sign_note(body, ORIGIN, Ed25519PrivateKey.generate())


def _trust(*files: Path) -> timestamp.TsaTrust:
    return timestamp.load_trust(b"".join(f.read_bytes() for f in files), files[0].name)


def _stamp(tsa: TestTSA, body: bytes) -> tuple[bytes, int]:
    request = timestamp.build_request(body)
    return tsa.reply(request.der), request.nonce


def test_the_stamped_message_is_the_note_body_so_cosignatures_do_not_change_it() -> None:
    signed = _note(5)
    line = note.cosign(note.open_note(signed)[0], "witness.example", Ed25519PrivateKey.generate(), 1_770_000_000)
    cosigned = note.add_signature_lines(signed, [line])
    assert cosigned != signed
    assert timestamp.stamped_message(signed) == timestamp.stamped_message(cosigned)
    assert timestamp.stamped_message(signed) == note.Checkpoint(ORIGIN, 5, hashlib.sha256(b"5").digest()).body()


def test_a_token_verifies_under_the_tsa_s_ca_and_gives_its_gen_time(tsa: TestTSA) -> None:
    body = timestamp.stamped_message(_note(5))
    token, nonce = _stamp(tsa, body)
    verified = timestamp.verify_token(token, body, [_trust(tsa.ca_pem)], nonce=nonce)
    assert verified.tsa == "ca.pem" and verified.gen_time.tzinfo is not None
    assert timestamp.gen_time_of(token) == verified.gen_time
    # the CA with the TSA's own certificate beside it: that one TSA only
    assert timestamp.verify_token(token, body, [_trust(tsa.ca_pem, tsa.cert_pem)]).gen_time == verified.gen_time


def test_a_token_over_another_checkpoint_is_invalid(tsa: TestTSA) -> None:
    token, _ = _stamp(tsa, timestamp.stamped_message(_note(5)))
    with pytest.raises(timestamp.TimestampInvalid, match="other bytes") as refused:
        timestamp.verify_token(token, timestamp.stamped_message(_note(6)), [_trust(tsa.ca_pem)])
    assert refused.value.code == "TIMESTAMP_INVALID"


def test_a_token_of_another_tsa_is_invalid(tsa: TestTSA, other: TestTSA) -> None:
    body = timestamp.stamped_message(_note(5))
    token, _ = _stamp(tsa, body)
    with pytest.raises(timestamp.TimestampInvalid, match="not signed by a trusted TSA"):
        timestamp.verify_token(token, body, [_trust(other.ca_pem)])
    with pytest.raises(timestamp.TimestampInvalid, match="not signed by a trusted TSA"):  # right CA, other TSA pinned
        timestamp.verify_token(token, body, [_trust(tsa.ca_pem, other.cert_pem)])


def test_an_altered_token_is_invalid(tsa: TestTSA) -> None:
    body = timestamp.stamped_message(_note(5))
    token, _ = _stamp(tsa, body)
    trust = _trust(tsa.ca_pem)
    for position in (len(token) - 20, len(token) // 2, 40):
        altered = bytearray(token)
        altered[position] ^= 0x01
        with pytest.raises(timestamp.TimestampInvalid):
            timestamp.verify_token(bytes(altered), body, [trust])
    with pytest.raises(timestamp.TimestampInvalid, match="DER"):
        timestamp.verify_token(token + b"\x00", body, [trust])
    with pytest.raises(timestamp.TimestampInvalid):
        timestamp.verify_token(b"", body, [trust])


def test_a_reply_to_another_request_fails_the_nonce(tsa: TestTSA) -> None:
    body = timestamp.stamped_message(_note(5))
    token, nonce = _stamp(tsa, body)
    with pytest.raises(timestamp.TimestampInvalid, match="nonce"):
        timestamp.verify_token(token, body, [_trust(tsa.ca_pem)], nonce=nonce + 1)


def test_the_pinned_file_must_hold_a_ca(tsa: TestTSA) -> None:
    with pytest.raises(MalformedInputError, match="no self-signed CA") as refused:
        timestamp.load_trust(tsa.cert_pem.read_bytes(), "tsa.pem")
    assert refused.value.code == "BAD_TSA_CERT"
    with pytest.raises(MalformedInputError, match="not PEM"):
        timestamp.load_trust(b"hello", "x.pem")
    with pytest.raises(timestamp.TimestampInvalid, match="no TSA certificate"):
        timestamp.verify_token(b"\x30\x00", b"body", [])
