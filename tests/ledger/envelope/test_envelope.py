"""DSSE envelopes over RFC 8785 statements with Ed25519: vectors, interop and strict parsing.

* RFC 8032 §7.1 Ed25519 test vectors (TEST 1, 2, 3 and SHA(abc)), typed from the RFC;
* the DSSE protocol's PAE example;
* interop with securesystemslib's DSSE implementation (both directions);
* the refusals of ``parse_envelope`` (form) and ``verify_envelope`` (signature).
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import replace
from typing import Any

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from securesystemslib import exceptions as sslib_exceptions
from securesystemslib.dsse import Envelope as SslibEnvelope
from securesystemslib.signer import CryptoSigner, SSlibKey

from domain.errors import MalformedInputError, VerificationError
from ledger.envelope.canonical import canonical
from ledger.envelope.dsse import (
    PAYLOAD_TYPE,
    Statement,
    pae,
    parse_envelope,
    sign_statement,
    verify_envelope,
)
from ledger.envelope.keys import key_id, raw_public_key

# --------------------------------------------------------------------------- RFC 8032 §7.1

RFC8032_VECTORS = {
    "TEST 1": (
        "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
        "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
        "",
        "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e06522490155"
        "5fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b",
    ),
    "TEST 2": (
        "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
        "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c",
        "72",
        "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da"
        "085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00",
    ),
    "TEST 3": (
        "c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7",
        "fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025",
        "af82",
        "6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac"
        "18ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a",
    ),
    "TEST SHA(abc)": (
        "833fe62409237b9d62ec77587520911e9a759cec1d19755b7da901b96dca3d42",
        "ec172b93ad5e563bf4932c70e1245034c35467ef2efd4d64ebf819683467e2bf",
        "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a"
        "2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f",
        "dc2a4459e7369633a52b1bf277839a00201009a3efbf3ecb69bea2186c26b589"
        "09351fc9ac90b3ecfdfbc7c66431e0303dca179c138ac17ad9bef1177331a704",
    ),
}


@pytest.mark.parametrize("name", list(RFC8032_VECTORS))
def test_rfc8032_ed25519_vectors(name: str) -> None:
    secret, public, message, signature = (bytes.fromhex(h) for h in RFC8032_VECTORS[name])
    key = Ed25519PrivateKey.from_private_bytes(secret)
    assert raw_public_key(key) == public
    assert key.sign(message) == signature
    public_key = Ed25519PublicKey.from_public_bytes(public)
    public_key.verify(signature, message)
    with pytest.raises(InvalidSignature):
        public_key.verify(signature, message + b"\x00")
    flipped = bytes([signature[0] ^ 1]) + signature[1:]
    with pytest.raises(InvalidSignature):
        public_key.verify(flipped, message)
    # a key id is the SHA-256 of the raw public key, whatever form the key is given in
    expected_id = hashlib.sha256(public).hexdigest()
    assert key_id(key) == key_id(public_key) == key_id(public) == expected_id


def test_sha_abc_message_is_sha512_of_abc() -> None:
    assert RFC8032_VECTORS["TEST SHA(abc)"][2] == hashlib.sha512(b"abc").hexdigest()


# --------------------------------------------------------------------------- DSSE PAE


def test_pae_matches_the_dsse_spec_example() -> None:
    assert pae("http://example.com/HelloWorld", b"hello world") == (
        b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
    )


def test_pae_of_empty_payload_and_type() -> None:
    assert pae("http://example.com/HelloWorld", b"") == b"DSSEv1 29 http://example.com/HelloWorld 0 "
    assert pae("", b"") == b"DSSEv1 0  0 "


def test_pae_counts_bytes_not_characters() -> None:
    assert pae("t\u00e9", "\u20ac".encode()) == b"DSSEv1 3 t\xc3\xa9 3 \xe2\x82\xac"


def test_pae_agrees_with_securesystemslib() -> None:
    for kind, body in [(PAYLOAD_TYPE, b'{"a":1}'), ("", b""), ("x y", b"1 2 3")]:
        assert pae(kind, body) == SslibEnvelope(body, kind, {}).pae()


# --------------------------------------------------------------------------- helpers

SEED = hashlib.sha256(b"test_envelope signing key").digest()
KEY = Ed25519PrivateKey.from_private_bytes(SEED)
OTHER_KEY = Ed25519PrivateKey.from_private_bytes(hashlib.sha256(b"test_envelope other key").digest())
CASE_ID = "3f1c2a4e-8b7d-4c6e-9a1b-2d3e4f5a6b7c"
EVENT_ID = "a1b2c3d4-e5f6-4789-8abc-def012345678"
PREV = hashlib.sha256(b"previous envelope").hexdigest()


def statement_json(**changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "ledger": "test.example/evidence-ledger",
        "case_id": CASE_ID,
        "event_id": EVENT_ID,
        "seq": 2,
        "prev": PREV,
        "type": "CaseClosed",
        "type_version": 1,
        "occurred_at": "2026-02-05T17:00:00.000000Z",
        "signer": key_id(KEY),
        "body": {"disposition": "referred"},
    }
    data.update(changes)
    return data


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def envelope_dict(
    payload: bytes, *, key: Ed25519PrivateKey = KEY, payload_type: str = PAYLOAD_TYPE
) -> dict[str, Any]:
    """A correctly signed envelope as a dict, signed by hand over PAE(payload_type, payload)."""
    sig = key.sign(pae(payload_type, payload))
    return {
        "payload": b64(payload),
        "payloadType": payload_type,
        "signatures": [{"keyid": key_id(key), "sig": b64(sig)}],
    }


def signed(payload: bytes, **kw: Any) -> bytes:
    return canonical(envelope_dict(payload, **kw))


def good_envelope() -> bytes:
    return sign_statement(Statement(**statement_json()), KEY)


def refused(raw: bytes, code: str) -> MalformedInputError:
    with pytest.raises(MalformedInputError) as info:
        parse_envelope(raw)
    assert info.value.code == code, (info.value.code, info.value.message)
    return info.value


# --------------------------------------------------------------------------- round trip


def test_sign_statement_parses_and_verifies() -> None:
    raw = good_envelope()
    envelope = parse_envelope(raw)
    assert envelope.raw == raw
    assert envelope.statement == Statement(**statement_json())
    assert envelope.payload == canonical(statement_json())
    assert envelope.keyid == key_id(KEY)
    assert envelope.sha256 == hashlib.sha256(raw).hexdigest()
    verify_envelope(envelope, KEY.public_key())
    # the hand-made envelope is byte-identical: sign_statement adds nothing else
    assert signed(canonical(statement_json())) == raw


def test_sign_statement_refuses_a_signer_that_is_not_the_key() -> None:
    with pytest.raises(ValueError, match="signer"):
        sign_statement(Statement(**statement_json(signer=key_id(OTHER_KEY))), KEY)


def test_verify_refuses_another_key() -> None:
    envelope = parse_envelope(good_envelope())
    with pytest.raises(VerificationError) as info:
        verify_envelope(envelope, OTHER_KEY.public_key())
    assert info.value.code == "BAD_SIGNATURE"


def test_verify_refuses_a_tampered_payload() -> None:
    data = json.loads(good_envelope())
    data["payload"] = b64(canonical(statement_json(body={"disposition": "dismissed"})))
    envelope = parse_envelope(canonical(data))  # well-formed ...
    with pytest.raises(VerificationError) as info:
        verify_envelope(envelope, KEY.public_key())  # ... but not signed
    assert info.value.code == "BAD_SIGNATURE"


def test_verify_refuses_a_signature_over_another_payload_type() -> None:
    payload = canonical(statement_json())
    data = envelope_dict(payload)
    data["signatures"][0]["sig"] = b64(KEY.sign(pae("application/json", payload)))
    envelope = parse_envelope(canonical(data))
    with pytest.raises(VerificationError):
        verify_envelope(envelope, KEY.public_key())


def test_verify_refuses_a_signature_over_the_raw_payload_without_pae() -> None:
    payload = canonical(statement_json())
    data = envelope_dict(payload)
    data["signatures"][0]["sig"] = b64(KEY.sign(payload))
    with pytest.raises(VerificationError):
        verify_envelope(parse_envelope(canonical(data)), KEY.public_key())


# --------------------------------------------------------------------------- securesystemslib interop


def sslib_key(key: Ed25519PrivateKey) -> SSlibKey:
    return SSlibKey.from_crypto(key.public_key(), keyid=key_id(key))


def test_securesystemslib_verifies_our_envelope() -> None:
    raw = good_envelope()
    theirs = SslibEnvelope.from_dict(json.loads(raw))
    assert theirs.payload_type == PAYLOAD_TYPE
    assert theirs.payload == canonical(statement_json())
    assert list(theirs.signatures) == [key_id(KEY)]
    accepted = theirs.verify([sslib_key(KEY)], 1)
    assert list(accepted) == [key_id(KEY)]


def test_securesystemslib_refuses_our_tampered_envelope() -> None:
    data = json.loads(good_envelope())
    data["payload"] = b64(canonical(statement_json(body={"disposition": "dismissed"})))
    theirs = SslibEnvelope.from_dict(data)
    with pytest.raises(sslib_exceptions.VerificationError):
        theirs.verify([sslib_key(KEY)], 1)


def test_securesystemslib_refuses_our_envelope_with_another_key_under_the_same_keyid() -> None:
    theirs = SslibEnvelope.from_dict(json.loads(good_envelope()))
    impostor = SSlibKey.from_crypto(OTHER_KEY.public_key(), keyid=key_id(KEY))
    with pytest.raises(sslib_exceptions.VerificationError):
        theirs.verify([impostor], 1)


def test_an_envelope_signed_by_securesystemslib_verifies_here() -> None:
    payload = canonical(statement_json())
    theirs = SslibEnvelope(payload, PAYLOAD_TYPE, {})
    theirs.sign(CryptoSigner(KEY, sslib_key(KEY)))
    raw = canonical(theirs.to_dict())
    assert raw == good_envelope()  # Ed25519 is deterministic: same bytes as ours
    envelope = parse_envelope(raw)
    verify_envelope(envelope, KEY.public_key())


# --------------------------------------------------------------------------- envelope refusals


def _with(change: Any) -> bytes:
    data = envelope_dict(canonical(statement_json()))
    change(data)
    return canonical(data)


def _sig(data: dict[str, Any]) -> dict[str, Any]:
    entry: dict[str, Any] = data["signatures"][0]
    return entry


def _bad_trailing_bits(text: str) -> str:
    """Same decoded bytes under a lenient decoder, but non-zero unused bits: not canonical."""
    stripped = text.rstrip("=")
    padding = text[len(stripped) :]
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    last = alphabet.index(stripped[-1])
    assert padding, "needs a padded encoding to have unused bits"
    bumped = alphabet[last | 1]
    assert bumped != stripped[-1]
    changed = stripped[:-1] + bumped + padding
    assert base64.b64decode(changed) == base64.b64decode(text)
    return changed


ENVELOPE_REFUSALS: dict[str, tuple[Any, str]] = {
    "extra envelope field": (lambda d: d.update(extra="x"), "MALFORMED_ENVELOPE"),
    "missing payload": (lambda d: d.pop("payload"), "MALFORMED_ENVELOPE"),
    "missing payloadType": (lambda d: d.pop("payloadType"), "MALFORMED_ENVELOPE"),
    "missing signatures": (lambda d: d.pop("signatures"), "MALFORMED_ENVELOPE"),
    "no signatures": (lambda d: d.update(signatures=[]), "MALFORMED_ENVELOPE"),
    "two signatures": (lambda d: d["signatures"].append(dict(_sig(d))), "MALFORMED_ENVELOPE"),
    "two signatures by different keys": (
        lambda d: d["signatures"].append(_sig(envelope_dict(base64.b64decode(d["payload"]), key=OTHER_KEY))),
        "MALFORMED_ENVELOPE",
    ),
    "signatures not a list": (lambda d: d.update(signatures=_sig(d)), "MALFORMED_ENVELOPE"),
    "extra signature field": (lambda d: _sig(d).update(cert="x"), "MALFORMED_ENVELOPE"),
    "missing keyid": (lambda d: _sig(d).pop("keyid"), "MALFORMED_ENVELOPE"),
    "missing sig": (lambda d: _sig(d).pop("sig"), "MALFORMED_ENVELOPE"),
    "uppercase keyid": (lambda d: _sig(d).update(keyid=_sig(d)["keyid"].upper()), "MALFORMED_ENVELOPE"),
    "short keyid": (lambda d: _sig(d).update(keyid=_sig(d)["keyid"][:63]), "MALFORMED_ENVELOPE"),
    "wrong payloadType": (
        lambda d: d.update(payloadType="application/vnd.in-toto+json"),
        "MALFORMED_ENVELOPE",
    ),
    "payloadType with different case": (
        lambda d: d.update(payloadType=PAYLOAD_TYPE.upper()),
        "MALFORMED_ENVELOPE",
    ),
    "payloadType not a string": (lambda d: d.update(payloadType=1), "MALFORMED_ENVELOPE"),
    "unpadded sig": (lambda d: _sig(d).update(sig=_sig(d)["sig"].rstrip("=")), "MALFORMED_ENVELOPE"),
    "url-safe sig": (
        lambda d: _sig(d).update(sig=base64.urlsafe_b64encode(b"\xfb\xff" * 32).decode()),
        "MALFORMED_ENVELOPE",
    ),
    "sig with non-zero trailing bits": (
        lambda d: _sig(d).update(sig=_bad_trailing_bits(_sig(d)["sig"])),
        "MALFORMED_ENVELOPE",
    ),
    "sig with whitespace": (lambda d: _sig(d).update(sig=" " + _sig(d)["sig"]), "MALFORMED_ENVELOPE"),
    "sig not a string": (lambda d: _sig(d).update(sig=7), "MALFORMED_ENVELOPE"),
    "63-byte signature": (
        lambda d: _sig(d).update(sig=b64(base64.b64decode(_sig(d)["sig"])[:63])),
        "MALFORMED_ENVELOPE",
    ),
    "65-byte signature": (
        lambda d: _sig(d).update(sig=b64(base64.b64decode(_sig(d)["sig"]) + b"\x00")),
        "MALFORMED_ENVELOPE",
    ),
    "unpadded payload": (lambda d: d.update(payload=d["payload"].rstrip("=")), "MALFORMED_ENVELOPE"),
    "payload with non-zero trailing bits": (
        lambda d: d.update(payload=_bad_trailing_bits(d["payload"])),
        "MALFORMED_ENVELOPE",
    ),
    "payload with a newline": (
        lambda d: d.update(payload=d["payload"][:40] + "\n" + d["payload"][40:]),
        "MALFORMED_ENVELOPE",
    ),
    "payload not a string": (lambda d: d.update(payload=None), "MALFORMED_ENVELOPE"),
}


def test_the_trailing_bits_case_really_has_a_padded_encoding() -> None:
    data = envelope_dict(canonical(statement_json()))
    assert _sig(data)["sig"].endswith("==")
    assert data["payload"].endswith("=")


@pytest.mark.parametrize("name", list(ENVELOPE_REFUSALS))
def test_parse_envelope_refuses(name: str) -> None:
    change, code = ENVELOPE_REFUSALS[name]
    refused(_with(change), code)


def test_parse_envelope_refuses_non_canonical_envelope_json() -> None:
    data = envelope_dict(canonical(statement_json()))
    refused(json.dumps(data).encode(), "NON_CANONICAL")  # ", " and ": " separators
    refused(canonical(data) + b"\n", "NON_CANONICAL")
    refused(b"[]", "MALFORMED_ENVELOPE")
    refused(b"not json", "MALFORMED_JSON")


def test_url_safe_payload_is_refused() -> None:
    payload = canonical(statement_json(body={"disposition": "???>>>"}))
    data = envelope_dict(payload)
    url_safe = base64.urlsafe_b64encode(payload).decode()
    assert url_safe != data["payload"]  # the payload's encoding uses '+' or '/'
    parse_envelope(canonical(data))
    data["payload"] = url_safe
    refused(canonical(data), "MALFORMED_ENVELOPE")


# --------------------------------------------------------------------------- statement refusals

STATEMENT_REFUSALS: dict[str, tuple[dict[str, Any], str]] = {
    "extra field": ({"extra": 1}, "BAD_STATEMENT"),
    "seq 0": ({"seq": 0, "prev": None}, "BAD_STATEMENT"),
    "seq negative": ({"seq": -1}, "BAD_STATEMENT"),
    "seq bool": ({"seq": True, "prev": None}, "BAD_STATEMENT"),
    "seq string": ({"seq": "2"}, "BAD_STATEMENT"),
    "seq null": ({"seq": None}, "BAD_STATEMENT"),
    "seq float": ({"seq": 1.5}, "MALFORMED_JSON"),
    "type_version 0": ({"type_version": 0}, "BAD_STATEMENT"),
    "type_version bool": ({"type_version": True}, "BAD_STATEMENT"),
    "prev non-null at seq 1": ({"seq": 1}, "BAD_STATEMENT"),
    "prev null at seq 2": ({"prev": None}, "BAD_STATEMENT"),
    "prev uppercase": ({"prev": PREV.upper()}, "BAD_STATEMENT"),
    "prev short": ({"prev": PREV[:63]}, "BAD_STATEMENT"),
    "uppercase case_id": ({"case_id": CASE_ID.upper()}, "BAD_STATEMENT"),
    "uppercase event_id": ({"event_id": EVENT_ID.upper()}, "BAD_STATEMENT"),
    "braced event_id": ({"event_id": "{" + EVENT_ID + "}"}, "BAD_STATEMENT"),
    "unhyphenated case_id": ({"case_id": CASE_ID.replace("-", "")}, "BAD_STATEMENT"),
    "case_id not a uuid": ({"case_id": "case-1"}, "BAD_STATEMENT"),
    "occurred_at with +00:00": ({"occurred_at": "2026-02-05T17:00:00.000000+00:00"}, "BAD_TIME"),
    "occurred_at lowercase z": ({"occurred_at": "2026-02-05T17:00:00.000000z"}, "BAD_TIME"),
    "occurred_at without zone": ({"occurred_at": "2026-02-05T17:00:00"}, "BAD_TIME"),
    "occurred_at impossible date": ({"occurred_at": "2026-02-30T17:00:00Z"}, "BAD_TIME"),
    "occurred_at not a string": ({"occurred_at": 1770310800}, "BAD_STATEMENT"),
    "signer uppercase": ({"signer": key_id(KEY).upper()}, "BAD_STATEMENT"),
    "body not an object": ({"body": ["disposition"]}, "BAD_STATEMENT"),
    "type lowercase": ({"type": "caseClosed"}, "BAD_STATEMENT"),
    "empty ledger origin": ({"ledger": ""}, "BAD_STATEMENT"),
    "ledger origin with a space": ({"ledger": "a b"}, "BAD_STATEMENT"),
}


@pytest.mark.parametrize("name", list(STATEMENT_REFUSALS))
def test_parse_envelope_refuses_bad_statements(name: str) -> None:
    changes, code = STATEMENT_REFUSALS[name]
    refused(signed(canonical(statement_json(**changes))), code)


def test_statement_with_a_missing_field_is_refused() -> None:
    for field in statement_json():
        data = statement_json()
        del data[field]
        refused(signed(canonical(data)), "BAD_STATEMENT")


def test_statement_that_is_not_an_object_is_refused() -> None:
    refused(signed(b"[]"), "BAD_STATEMENT")


def test_seq_written_as_float_is_refused_even_when_integral() -> None:
    payload = canonical(statement_json()).replace(b'"seq":2', b'"seq":2.0')
    assert payload != canonical(statement_json())
    refused(signed(payload), "MALFORMED_JSON")


def test_signer_differs_from_keyid() -> None:
    # the statement names OTHER_KEY as signer; the envelope is signed by (and names) KEY
    refused(signed(canonical(statement_json(signer=key_id(OTHER_KEY)))), "BAD_STATEMENT")
    # the statement names KEY; the envelope's keyid is OTHER_KEY's
    data = envelope_dict(canonical(statement_json()))
    _sig(data)["keyid"] = key_id(OTHER_KEY)
    refused(canonical(data), "BAD_STATEMENT")


@pytest.mark.parametrize(
    "payload",
    [
        json.dumps(statement_json()).encode(),  # separators with spaces
        json.dumps(statement_json(), separators=(",", ":")).encode(),  # insertion order, not sorted
        canonical(statement_json()) + b"\n",
        canonical(statement_json(body={"disposition": "A"})).replace(b'"A"', b'"\\u0041"'),
        canonical(statement_json(body={"disposition": "caf\u00e9"})).replace(b"caf\xc3\xa9", b"caf\\u00e9"),
    ],
    ids=["spaces", "key order", "trailing newline", "escaped A", "escaped e-acute"],
)
def test_correctly_signed_but_non_canonical_statement_is_refused(payload: bytes) -> None:
    assert payload != canonical(json.loads(payload))
    raw = signed(payload)
    # the signature itself is good: this is refused for its form alone
    KEY.public_key().verify(base64.b64decode(_sig(json.loads(raw))["sig"]), pae(PAYLOAD_TYPE, payload))
    refused(raw, "NON_CANONICAL")


def test_valid_variants_are_accepted() -> None:
    first = statement_json(seq=1, prev=None, type="CaseOpened", body={"anything": ["goes", 1]})
    assert parse_envelope(signed(canonical(first))).statement.seq == 1
    fraction = statement_json(occurred_at="2026-02-05T17:00:00Z")
    assert parse_envelope(signed(canonical(fraction))).statement.occurred_at == "2026-02-05T17:00:00Z"
    statement = Statement(**statement_json())
    assert parse_envelope(sign_statement(replace(statement, type_version=2), KEY)).statement.type_version == 2


# ------------------------------------------------- regression: a trailing newline never passes a form check


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({"occurred_at": "2026-02-05T17:00:00Z\n"}, "BAD_TIME"),
        ({"occurred_at": "2026-02-05T17:00:00.5Z\n"}, "BAD_TIME"),  # today: an uncaught ValueError
        ({"ledger": "test.example/evidence-ledger\n"}, "BAD_STATEMENT"),
        ({"prev": PREV + "\n"}, "BAD_STATEMENT"),
        ({"type": "CaseClosed\n"}, "BAD_STATEMENT"),
    ],
    ids=["occurred_at", "occurred_at with fraction", "ledger", "prev", "type"],
)
def test_statement_fields_with_a_trailing_newline_are_refused(changes: dict[str, Any], code: str) -> None:
    refused(signed(canonical(statement_json(**changes))), code)


def test_keyid_with_a_trailing_newline_is_refused() -> None:
    payload = canonical(statement_json(signer=key_id(KEY) + "\n"))
    data = envelope_dict(payload)
    _sig(data)["keyid"] = key_id(KEY) + "\n"
    refused(canonical(data), "MALFORMED_ENVELOPE")
