"""C2SP signed notes, checkpoints and cosignatures: published vectors plus strict-parsing edge cases."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from domain.errors import MalformedInputError, VerificationError
from ledger.log import note
from ledger.log.note import Checkpoint

VECTORS = json.loads(
    (Path(__file__).resolve().parents[2] / "vectors" / "signed-note-vectors.json").read_text(encoding="utf-8")
)
BY_NAME = {v["name"]: v for v in VECTORS["vectors"]}
ARCHE = BY_NAME["arche2025h1-staging-ct-witnessed"]
NEUMANN = BY_NAME["go-x-mod-note-PeterNeumann"]

LOG_NAME = "ledger.example/evidence/v1"
ROOT = hashlib.sha256(b"some root").digest()


def _key(label: str) -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(hashlib.sha256(label.encode()).digest())


LOG_SK, W1_SK, W2_SK = _key("log"), _key("witness 1"), _key("witness 2")
LOG_VK = note.make_verifier_key(LOG_NAME, LOG_SK.public_key())
W1_VK = note.make_verifier_key("w1.example", W1_SK.public_key(), note.SIG_TYPE_COSIGNATURE_V1)
W2_VK = note.make_verifier_key("w2.example", W2_SK.public_key(), note.SIG_TYPE_COSIGNATURE_V1)
BODY = Checkpoint(LOG_NAME, 42, ROOT).body()
SIGNED = note.sign_note(BODY, LOG_NAME, LOG_SK)


def _flip_signature(line: bytes) -> bytes:
    """The same signature line with the last signature byte changed (key id untouched)."""
    prefix, b64 = line.rstrip(b"\n").rsplit(b" ", 1)
    raw = bytearray(base64.b64decode(b64))
    raw[-1] ^= 1
    return prefix + b" " + base64.b64encode(bytes(raw)) + b"\n"


# --- published vectors ------------------------------------------------------------------------


@pytest.mark.parametrize("vector", VECTORS["vectors"], ids=lambda v: v["name"])
def test_published_note_signatures_verify(vector: dict[str, Any]) -> None:
    key = note.parse_verifier_key(vector["vkeys"][0])
    assert str(key) == vector["vkeys"][0]
    body = note.verify_note(vector["note"].encode(), key)
    assert vector["note"].encode().startswith(body + b"\n\xe2\x80\x94 ")
    if vector["expect"] == "ok":
        witnesses = [note.parse_verifier_key(w) for w in vector.get("cosigners", [])]
        checkpoint = note.verify_checkpoint(vector["note"].encode(), key, witnesses).checkpoint
        assert (checkpoint.origin, checkpoint.size) == (vector["origin"], vector["size"])
        assert checkpoint.root == base64.b64decode(vector["root"])
        assert checkpoint.body() == body
    else:
        with pytest.raises(MalformedInputError, match="checkpoint"):
            note.verify_checkpoint(vector["note"].encode(), key)


def test_peter_neumann_golden_signature() -> None:
    name, private_key = note.parse_go_private_key(NEUMANN["skey"])
    assert name == "PeterNeumann"
    assert str(note.make_verifier_key(name, private_key.public_key())) == NEUMANN["vkeys"][0]
    signed = note.sign_note(NEUMANN["text"].encode(), name, private_key)
    assert signed == NEUMANN["note"].encode()
    golden = (
        "— PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2p"
        "ZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"
    )  # §7.9 of the transparency-log notes
    assert signed.endswith(golden.encode())


def test_c2sp_example_key() -> None:
    key = note.parse_verifier_key(BY_NAME["c2sp-signed-note-example"]["vkeys"][0])
    assert (key.name, key.key_id.hex(), key.type) == ("example.com/foo", "530d903a", note.SIG_TYPE_ED25519)


def test_witnessed_arche_checkpoint_and_remora_cosignature() -> None:
    log_key = note.parse_verifier_key(ARCHE["vkeys"][0])
    remora = note.parse_verifier_key(ARCHE["cosigners"][0])
    assert remora.type == note.SIG_TYPE_COSIGNATURE_V1
    raw = ARCHE["note"].encode()
    result = note.verify_checkpoint(raw, log_key, [remora], origin=ARCHE["origin"])
    assert [(c.name, c.key_id.hex()) for c in result.cosignatures] == [("remora.n621.de", "da77ade7")]
    remora_b64 = next(line for line in ARCHE["note"].splitlines() if line.startswith("— remora.n621.de "))
    remora_payload = base64.b64decode(remora_b64.split(" ")[2])
    assert result.cosignatures[0].timestamp == int.from_bytes(remora_payload[4:12], "big")
    # The note also carries an RFC 6962 (type 0x05) line under the log's name and four unknown
    # witnesses: all ignored. Tampering with the known cosignature rejects the note.
    line = (remora_b64 + "\n").encode()
    with pytest.raises(VerificationError) as caught:
        note.verify_checkpoint(raw.replace(line, _flip_signature(line)), log_key, [remora])
    assert caught.value.code == "BAD_COSIGNATURE"
    with pytest.raises(VerificationError) as caught:
        note.verify_checkpoint(raw.replace(line, b""), log_key, [remora])
    assert caught.value.code == "WITNESS_POLICY"


def test_arche_witness_lines_alone_are_not_a_log_checkpoint() -> None:
    log_key = note.parse_verifier_key(ARCHE["vkeys"][0])
    remora = note.parse_verifier_key(ARCHE["cosigners"][0])
    body, lines = note.open_note(ARCHE["note"].encode())
    witness_only = body + b"\n" + b"".join(line.encode() for line in lines if line.name == remora.name)
    with pytest.raises(VerificationError) as caught:
        note.verify_checkpoint(witness_only, log_key, [remora], min_witnesses=1)
    assert caught.value.code == "BAD_CHECKPOINT"


# --- verifier keys ----------------------------------------------------------------------------


def test_verifier_key_text_and_key_id() -> None:
    raw = LOG_VK.public_key
    expected_id = hashlib.sha256(LOG_NAME.encode() + b"\n\x01" + raw).digest()[:4]
    assert LOG_VK.key_id == expected_id
    key64 = base64.b64encode(b"\x01" + raw).decode()
    assert str(LOG_VK) == f"{LOG_NAME}+{expected_id.hex()}+{key64}"
    assert note.parse_verifier_key(str(LOG_VK)) == LOG_VK
    upper = str(LOG_VK).replace(expected_id.hex(), expected_id.hex().upper())
    assert note.parse_verifier_key(upper) == LOG_VK
    assert W1_VK.key_id == hashlib.sha256(b"w1.example\n\x04" + W1_VK.public_key).digest()[:4]


def _vkey(name: str = LOG_NAME, hex8: str | None = None, key: bytes | None = None) -> str:
    key = b"\x01" + LOG_VK.public_key if key is None else key
    return f"{name}+{hex8 or LOG_VK.key_id.hex()}+{base64.b64encode(key).decode()}"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (_vkey(hex8="0000000g"), "8 hex"),
        (_vkey(hex8="1234567"), "8 hex"),
        (_vkey(hex8="00000000"), "does not match"),
        (_vkey(name="ledger example"), "spaces"),
        (_vkey(name="a\u00a0b"), "spaces"),
        (_vkey(name=""), "name"),
        (_vkey(key=b"\x02" + LOG_VK.public_key), "0x01 or 0x04"),
        (_vkey(key=b"\x01" + LOG_VK.public_key[:31]), "32 bytes"),
        (_vkey(key=b""), "empty"),
        (_vkey()[:-1], "padded"),
        (_vkey() + "\n", "padded"),
        (f"{LOG_NAME}+{LOG_VK.key_id.hex()}", "name\\+keyid\\+key"),
    ],
)
def test_parse_verifier_key_rejects(text: str, message: str) -> None:
    with pytest.raises(MalformedInputError, match=message):
        note.parse_verifier_key(text)


def test_parse_verifier_key_rejects_a_name_with_plus() -> None:
    # "a+b+<id>+<key>" splits as name "a", id "b": the '+' can never be part of a valid name.
    with pytest.raises(MalformedInputError):
        note.parse_verifier_key("a+" + _vkey(name="b"))
    with pytest.raises(MalformedInputError, match="'\\+'"):
        note.make_verifier_key("a+b", LOG_VK.public_key)


def test_parse_go_private_key_rejects_a_wrong_key_id() -> None:
    tampered = NEUMANN["skey"].replace("c74f20a3", "c74f20a4")
    with pytest.raises(MalformedInputError, match="does not match"):
        note.parse_go_private_key(tampered)


# --- checkpoint bodies ------------------------------------------------------------------------


def test_checkpoint_body_round_trip() -> None:
    root64 = base64.b64encode(ROOT).decode()
    expected = f"{LOG_NAME}\n42\n{root64}\n".encode()
    assert Checkpoint(LOG_NAME, 42, ROOT).body() == expected
    assert note.parse_checkpoint_body(BODY) == Checkpoint(LOG_NAME, 42, ROOT)
    with_ext = Checkpoint("go.sum database tree", 0, ROOT, ("ext one",))
    assert with_ext.body() == f"go.sum database tree\n0\n{root64}\next one\n".encode()
    assert note.parse_checkpoint_body(with_ext.body()) == with_ext


ROOT64 = base64.b64encode(ROOT).decode()


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (f"o\n042\n{ROOT64}\n", "leading zeros"),
        (f"o\n+42\n{ROOT64}\n", "leading zeros"),
        (f"o\n 42\n{ROOT64}\n", "leading zeros"),
        (f"o\n4_2\n{ROOT64}\n", "leading zeros"),
        (f"o\n\u0664\u0662\n{ROOT64}\n", "leading zeros"),
        (f"o\n{2**63}\n{ROOT64}\n", "2\\*\\*63|9223372036854775807"),
        (f"o\n42\n{ROOT64}", "end with LF"),
        (f"o\r\n42\n{ROOT64}\n", "control character"),
        (f"o\n42\n{ROOT64}\n\n", "extension line"),
        (f"\n42\n{ROOT64}\n", "origin"),
        ("o\n42\n", "origin, size and root"),
        (f"o\n42\n{ROOT64.rstrip('=')}\n", "padded"),
        (f"o\n42\n{ROOT64[:-2]}R=\n", "canonical"),
        (f"o\n42\n{base64.b64encode(ROOT[:31]).decode()}\n", "32 bytes"),
    ],
)
def test_parse_checkpoint_body_rejects(body: str, message: str) -> None:
    with pytest.raises(MalformedInputError, match=message):
        note.parse_checkpoint_body(body.encode())


def test_checkpoint_rejects_invalid_utf8_and_bad_fields() -> None:
    with pytest.raises(MalformedInputError, match="UTF-8"):
        note.parse_checkpoint_body(b"o\xff\n1\n" + ROOT64.encode() + b"\n")
    with pytest.raises(MalformedInputError, match="32 bytes"):
        Checkpoint(LOG_NAME, 1, ROOT[:31])
    with pytest.raises(MalformedInputError, match="one line"):
        Checkpoint("a\nb", 1, ROOT)
    with pytest.raises(MalformedInputError, match="checkpoint size"):
        Checkpoint(LOG_NAME, -1, ROOT)


# --- signing and opening notes ----------------------------------------------------------------


def test_sign_note_bytes() -> None:
    body, sig_line = SIGNED.split(b"\n\n")
    assert body + b"\n" == BODY
    assert sig_line.startswith(b"\xe2\x80\x94 " + LOG_NAME.encode() + b" ") and sig_line.endswith(b"\n")
    payload = base64.b64decode(sig_line.split(b" ")[2])
    assert payload[:4] == LOG_VK.key_id
    LOG_SK.public_key().verify(payload[4:], BODY)  # raises if the signature is not over exactly the body
    assert note.verify_checkpoint(SIGNED, LOG_VK).checkpoint == Checkpoint(LOG_NAME, 42, ROOT)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (SIGNED.replace("—".encode(), b"-"), "EM DASH"),
        (SIGNED.replace("—".encode(), "–".encode()), "EM DASH"),
        (SIGNED.replace("—".encode(), b"--"), "EM DASH"),
        (SIGNED + b"\n", "end with a signature line"),
        (SIGNED[:-1], "end with a signature line"),
        (SIGNED.replace(b"\n\n", b"\n"), "blank line"),
        (SIGNED.replace(b"\n", b"\r\n"), "control character"),
        (SIGNED.replace(b"42", b"4\t2"), "control character"),
        (SIGNED.replace(b"42", b"4\xff2"), "UTF-8"),
        (SIGNED.replace(f"{LOG_NAME} ".encode(), LOG_NAME.encode()), "'— name signature'"),
        (SIGNED.replace(f"{LOG_NAME} ".encode(), b"a+b "), "'\\+'"),
        (SIGNED.rstrip(b"\n") + b"@\n", "padded"),
        (BODY + b"\n\xe2\x80\x94 n AAAAAA==\n", "key id and a signature"),
    ],
)
def test_open_note_rejects(raw: bytes, message: str) -> None:
    with pytest.raises(MalformedInputError, match=message):
        note.open_note(raw)


def test_signature_count_limit() -> None:
    unknown = note.sign_note(BODY, "other.example", W1_SK).split(b"\n\n")[1]
    at_limit = SIGNED + unknown * (note.MAX_SIGNATURES - 1)
    assert note.verify_checkpoint(at_limit, LOG_VK).checkpoint.size == 42
    with pytest.raises(MalformedInputError, match="at most 100"):
        note.open_note(at_limit + unknown)
    with pytest.raises(MalformedInputError, match="at most 100"):
        note.add_signature_lines(at_limit, [unknown])


def test_sign_note_requires_text_ending_in_lf() -> None:
    with pytest.raises(MalformedInputError, match="end with LF"):
        note.sign_note(BODY.rstrip(b"\n"), LOG_NAME, LOG_SK)
    with pytest.raises(MalformedInputError, match="name"):
        note.sign_note(BODY, "bad name", LOG_SK)


# --- verify_checkpoint policy -----------------------------------------------------------------


def _code(call: Any) -> str:
    with pytest.raises(VerificationError) as caught:
        call()
    return caught.value.code


def test_unknown_keys_are_ignored_but_a_failing_known_key_rejects() -> None:
    stranger = note.sign_note(BODY, "stranger.example", W2_SK).split(b"\n\n")[1]
    assert note.verify_checkpoint(SIGNED + stranger, LOG_VK).checkpoint.size == 42
    log_line = SIGNED.split(b"\n\n")[1]
    bad_duplicate = SIGNED + _flip_signature(log_line)
    assert _code(lambda: note.verify_checkpoint(bad_duplicate, LOG_VK)) == "BAD_CHECKPOINT"
    assert _code(lambda: note.verify_checkpoint(SIGNED.replace(b"42", b"43"), LOG_VK)) == "BAD_CHECKPOINT"


def test_same_name_different_key_is_not_the_log() -> None:
    impostor = note.sign_note(BODY, LOG_NAME, W1_SK)
    assert _code(lambda: note.verify_checkpoint(impostor, LOG_VK)) == "BAD_CHECKPOINT"


def test_a_note_signed_only_by_a_witness_is_not_a_checkpoint() -> None:
    cosigned_only = BODY + b"\n" + note.cosign(BODY, W1_VK.name, W1_SK, 1_700_000_000)
    assert _code(lambda: note.verify_checkpoint(cosigned_only, LOG_VK, [W1_VK], 1)) == "BAD_CHECKPOINT"


def test_witness_policy() -> None:
    w1 = note.cosign(BODY, W1_VK.name, W1_SK, 1_700_000_000)
    w2 = note.cosign(BODY, W2_VK.name, W2_SK, 1_700_000_001)
    both = note.add_signature_lines(SIGNED, [w1, w2])
    result = note.verify_checkpoint(both, LOG_VK, [W1_VK, W2_VK])
    assert [(c.name, c.timestamp) for c in result.cosignatures] == [
        ("w1.example", 1_700_000_000),
        ("w2.example", 1_700_000_001),
    ]
    only_w1 = note.add_signature_lines(SIGNED, [w1, w1])  # a repeated line counts once
    assert _code(lambda: note.verify_checkpoint(only_w1, LOG_VK, [W1_VK, W2_VK])) == "WITNESS_POLICY"
    assert len(note.verify_checkpoint(only_w1, LOG_VK, [W1_VK, W2_VK], min_witnesses=1).cosignatures) == 1
    assert note.verify_checkpoint(SIGNED, LOG_VK, [W1_VK], min_witnesses=0).cosignatures == ()
    assert _code(lambda: note.verify_checkpoint(SIGNED, LOG_VK, [W1_VK])) == "WITNESS_POLICY"
    bad_w2 = note.add_signature_lines(SIGNED, [w1, _flip_signature(w2)])
    assert _code(lambda: note.verify_checkpoint(bad_w2, LOG_VK, [W1_VK, W2_VK], 1)) == "BAD_COSIGNATURE"


def test_cosignature_for_another_checkpoint_does_not_count() -> None:
    other = Checkpoint(LOG_NAME, 43, ROOT).body()
    stale = note.add_signature_lines(SIGNED, [note.cosign(other, W1_VK.name, W1_SK, 5)])
    assert _code(lambda: note.verify_checkpoint(stale, LOG_VK, [W1_VK])) == "BAD_COSIGNATURE"


def test_origin_check_and_policy_argument_errors() -> None:
    assert _code(lambda: note.verify_checkpoint(SIGNED, LOG_VK, origin="other")) == "BAD_CHECKPOINT"
    with pytest.raises(ValueError, match="type 0x01"):
        note.verify_checkpoint(SIGNED, W1_VK)
    with pytest.raises(ValueError, match="type 0x04"):
        note.verify_checkpoint(SIGNED, LOG_VK, [LOG_VK])
    with pytest.raises(ValueError, match="min_witnesses"):
        note.verify_checkpoint(SIGNED, LOG_VK, [W1_VK], min_witnesses=2)
    with pytest.raises(ValueError, match="twice"):
        note.verify_checkpoint(SIGNED, LOG_VK, [W1_VK, W1_VK])


# --- cosignatures -----------------------------------------------------------------------------


def test_cosignature_layout() -> None:
    line = note.cosign(BODY, W1_VK.name, W1_SK, 1_767_225_600)
    assert line.startswith("— w1.example ".encode()) and line.endswith(b"\n")
    payload = base64.b64decode(line.split(b" ")[2])
    assert len(payload) == 76
    assert payload[:4] == W1_VK.key_id
    assert payload[4:12] == (1_767_225_600).to_bytes(8, "big")
    W1_SK.public_key().verify(payload[12:], b"cosignature/v1\ntime 1767225600\n" + BODY)


@pytest.mark.parametrize("timestamp", [-1, 2**63, True])
def test_cosign_rejects_bad_timestamps(timestamp: int) -> None:
    with pytest.raises(MalformedInputError, match="cosignature time"):
        note.cosign(BODY, W1_VK.name, W1_SK, timestamp)


def test_cosign_only_signs_checkpoints_and_lines_must_be_well_formed() -> None:
    with pytest.raises(MalformedInputError, match="checkpoint"):
        note.cosign(b"hello\n", W1_VK.name, W1_SK, 1)
    with pytest.raises(MalformedInputError, match="single line"):
        note.add_signature_lines(SIGNED, [b"- w1 AAAA"])
    with pytest.raises(MalformedInputError, match="EM DASH"):
        note.add_signature_lines(SIGNED, [b"- w1 AAAAAAAA\n"])
