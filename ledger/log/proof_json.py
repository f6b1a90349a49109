"""CT v1 JSON proof documents (RFC 6962 §4.4/§4.5), written and read strictly.

    inclusion:    {"leaf_index": 123, "audit_path": ["<b64>", ...]}        optional "tree_size"
    consistency:  {"consistency": ["<b64>", ...]}                           optional "first", "second"

Hashes are standard padded canonical base64 of 32 bytes in RFC 6962 PATH/PROOF order (leaf to
root). Integers are JSON integers in [0, 2**63 - 1] (Go's int64). The parsers refuse duplicate or
unknown keys, floats, booleans, strings in place of integers and NaN/Infinity. The optional size
fields only describe the proof; the sizes that matter come from a signed checkpoint, so when the
caller passes them, any size field in the document must agree.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from domain.errors import MalformedInputError, VerificationError
from ledger.envelope.b64 import b64decode, b64encode
from ledger.envelope.canonical import parse_strict
from ledger.log.merkle import HASH_SIZE

MAX_JSON_INT = 2**63 - 1
_CODE = "MALFORMED_PROOF"


def _load_object(raw: bytes, *, what: str, required: set[str], optional: set[str]) -> dict[str, Any]:
    if not isinstance(raw, bytes):
        raise MalformedInputError(f"{what} must be bytes, found {type(raw).__name__}", code=_CODE)
    try:
        doc = parse_strict(raw, max_int=MAX_JSON_INT)
    except MalformedInputError as exc:
        raise MalformedInputError(f"{what} is not strict JSON: {exc.message}", code=_CODE) from None
    if not isinstance(doc, dict):
        raise MalformedInputError(f"{what} must be a JSON object, found {type(doc).__name__}", code=_CODE)
    missing, unknown = required - doc.keys(), doc.keys() - required - optional
    if missing:
        raise MalformedInputError(f"{what} lacks {sorted(missing)}", code=_CODE)
    if unknown:
        raise MalformedInputError(f"{what} has unknown keys {sorted(unknown)}", code=_CODE)
    return doc


def _integer(value: object, what: str) -> int:
    if type(value) is not int or value < 0:
        raise MalformedInputError(
            f"{what} must be a JSON integer >= 0, found {type(value).__name__}", code=_CODE
        )
    return value


def _hash_list(value: object, what: str) -> list[bytes]:
    if not isinstance(value, list):
        raise MalformedInputError(f"{what} must be a JSON array, found {type(value).__name__}", code=_CODE)
    hashes = [b64decode(item, what=f"{what}[{i}]", code=_CODE) for i, item in enumerate(value)]
    for i, item in enumerate(hashes):
        if len(item) != HASH_SIZE:
            raise MalformedInputError(f"{what}[{i}] must be {HASH_SIZE} bytes, found {len(item)}", code=_CODE)
    return hashes


def _cross_check(doc: dict[str, Any], key: str, expected: int | None) -> None:
    if key not in doc:
        return
    stated = _integer(doc[key], key)
    if expected is not None and stated != expected:
        raise VerificationError(f"proof states {key} {stated} but {expected} was expected")


def inclusion_proof_json(
    index: int, path: Sequence[bytes], *, tree_size: int | None = None
) -> dict[str, object]:
    doc: dict[str, object] = {"leaf_index": index, "audit_path": [b64encode(h) for h in path]}
    if tree_size is not None:
        doc["tree_size"] = tree_size
    return doc


def consistency_proof_json(
    path: Sequence[bytes], *, first: int | None = None, second: int | None = None
) -> dict[str, object]:
    doc: dict[str, object] = {"consistency": [b64encode(h) for h in path]}
    if first is not None:
        doc["first"] = first
    if second is not None:
        doc["second"] = second
    return doc


def parse_inclusion_proof(raw: bytes, *, tree_size: int | None = None) -> tuple[int, list[bytes]]:
    """``(leaf_index, audit_path)`` from a CT v1 inclusion proof document."""
    doc = _load_object(
        raw, what="inclusion proof", required={"leaf_index", "audit_path"}, optional={"tree_size"}
    )
    index = _integer(doc["leaf_index"], "leaf_index")
    path = _hash_list(doc["audit_path"], "audit_path")
    _cross_check(doc, "tree_size", tree_size)
    return index, path


def parse_consistency_proof(
    raw: bytes, *, first: int | None = None, second: int | None = None
) -> list[bytes]:
    """The hash list of a CT v1 consistency proof document."""
    doc = _load_object(raw, what="consistency proof", required={"consistency"}, optional={"first", "second"})
    path = _hash_list(doc["consistency"], "consistency")
    _cross_check(doc, "first", first)
    _cross_check(doc, "second", second)
    return path
