"""RFC 6962/9162 Merkle functions against published vectors and hand-checked edge cases."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path
from typing import Any

import pytest

from domain.errors import LedgerError, MalformedInputError, VerificationError
from ledger.log import merkle
from ledger.log.proof_json import (
    consistency_proof_json,
    inclusion_proof_json,
    parse_consistency_proof,
    parse_inclusion_proof,
)

VECTORS = Path(__file__).resolve().parents[2] / "vectors"


def _load(name: str) -> Any:
    return json.loads((VECTORS / name).read_text(encoding="utf-8"))


REFERENCE = _load("rfc6962-reference-tree.json")
UPSTREAM = _load("transparency-dev-merkle-vectors.json")
REF_LEAVES = [merkle.leaf_hash(bytes.fromhex(h)) for h in REFERENCE["leaf_inputs_hex"]]
REF_ROOTS = [bytes.fromhex(h) for h in REFERENCE["root_hashes_hex_by_size"]]
REF_NODES = merkle.build_nodes(REF_LEAVES)


def _b64(value: str | None) -> bytes:
    return base64.b64decode(value or "")


def _proof(case: dict[str, Any]) -> list[bytes]:
    return [_b64(h) for h in case["proof"] or []]


def _fetch(coords: list[merkle.Coord]) -> dict[merkle.Coord, bytes]:
    """What the database layer does: one lookup of exactly the requested nodes."""
    return {c: REF_NODES[c] for c in coords}


def _reference_size(root: bytes) -> int | None:
    return REF_ROOTS.index(root) if root in REF_ROOTS else None


# --- hashing and the RFC 6962 reference tree ---------------------------------------------------


def test_hash_prefixes_and_empty_root() -> None:
    assert merkle.EMPTY_ROOT.hex() == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    assert merkle.leaf_hash(b"").hex() == REFERENCE["root_hashes_hex_by_size"][1]
    assert merkle.node_hash(REF_LEAVES[0], REF_LEAVES[1]) == REF_ROOTS[2]


@pytest.mark.parametrize("size", range(len(REF_ROOTS)))
def test_reference_tree_roots(size: int) -> None:
    assert merkle.root_from_leaf_hashes(REF_LEAVES[:size]) == REF_ROOTS[size]
    assert merkle.root_from_nodes(size, _fetch(merkle.root_coords(size))) == REF_ROOTS[size]
    tree = merkle.CompactRange.empty()
    for leaf in REF_LEAVES[:size]:
        tree.append(leaf)
    assert (tree.size, tree.root()) == (size, REF_ROOTS[size])


# --- transparency-dev/merkle vectors ----------------------------------------------------------


@pytest.mark.parametrize("case", UPSTREAM["inclusion"], ids=lambda c: c["file"])
def test_upstream_inclusion_vector(case: dict[str, Any]) -> None:
    args = (_b64(case["leafHash"]), case["leafIdx"], case["treeSize"], _proof(case), _b64(case["root"]))
    if case["wantErr"]:
        with pytest.raises((VerificationError, MalformedInputError)):
            merkle.verify_inclusion(*args)
    else:
        merkle.verify_inclusion(*args)


@pytest.mark.parametrize("case", UPSTREAM["consistency"], ids=lambda c: c["file"])
def test_upstream_consistency_vector(case: dict[str, Any]) -> None:
    args = (case["size1"], case["size2"], _proof(case), _b64(case["root1"]), _b64(case["root2"]))
    if case["file"] == "consistency/additional/sizes-are-equal-one-and-proof-is-empty.json":
        # Upstream accepts this case, but its "roots" are 12 bytes ("don't care 2"). Our verifier is
        # deliberately strict: anything that is not a 32-byte SHA-256 hash is malformed input.
        assert not case["wantErr"] and len(args[3]) == 12
        with pytest.raises(MalformedInputError, match="32-byte"):
            merkle.verify_consistency(*args)
    elif case["wantErr"]:
        with pytest.raises((VerificationError, MalformedInputError)):
            merkle.verify_consistency(*args)
    else:
        merkle.verify_consistency(*args)


def test_every_upstream_happy_path_is_exercised() -> None:
    happy = [c for c in UPSTREAM["inclusion"] + UPSTREAM["consistency"] if not c["wantErr"]]
    assert len(UPSTREAM["inclusion"]) == len(UPSTREAM["consistency"]) == 98
    assert len(happy) == 12


@pytest.mark.parametrize(
    "case",
    [c for c in UPSTREAM["inclusion"] if not c["wantErr"] and c["treeSize"] > 1],
    ids=lambda c: c["file"],
)
def test_node_store_reproduces_upstream_inclusion_proofs(case: dict[str, Any]) -> None:
    size, index = case["treeSize"], case["leafIdx"]
    assert _reference_size(_b64(case["root"])) == size, "upstream happy paths use the RFC 6962 reference tree"
    assert merkle.inclusion_proof(index, size, _fetch(merkle.inclusion_coords(index, size))) == _proof(case)
    assert merkle.reference_inclusion_path(index, REF_LEAVES[:size]) == _proof(case)


@pytest.mark.parametrize(
    "case",
    [c for c in UPSTREAM["consistency"] if not c["wantErr"] and c["size1"] < c["size2"]],
    ids=lambda c: c["file"],
)
def test_node_store_reproduces_upstream_consistency_proofs(case: dict[str, Any]) -> None:
    size1, size2 = case["size1"], case["size2"]
    assert (_reference_size(_b64(case["root1"])), _reference_size(_b64(case["root2"]))) == (size1, size2)
    nodes = _fetch(merkle.consistency_coords(size1, size2))
    assert merkle.consistency_proof(size1, size2, nodes) == _proof(case)
    assert merkle.reference_consistency_proof(size1, REF_LEAVES[:size2]) == _proof(case)


# --- node store -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("size", "coords"),
    [(0, []), (1, [(0, 0)]), (4, [(2, 0)]), (6, [(2, 0), (1, 2)]), (7, [(2, 0), (1, 2), (0, 6)])],
)
def test_frontier_coords(size: int, coords: list[merkle.Coord]) -> None:
    assert merkle.frontier_coords(size) == coords == merkle.root_coords(size)


def test_append_creates_the_leaf_and_every_completed_parent() -> None:
    frontier = _fetch(merkle.frontier_coords(3))
    created = merkle.append_nodes(3, REF_LEAVES[3], frontier)
    assert [(level, index) for level, index, _ in created] == [(0, 3), (1, 1), (2, 0)]
    assert all(REF_NODES[(level, index)] == value for level, index, value in created)
    assert merkle.append_nodes(4, REF_LEAVES[4], _fetch(merkle.frontier_coords(4))) == [(0, 4, REF_LEAVES[4])]


def test_compact_range_resumes_from_a_fetched_frontier() -> None:
    tree = merkle.CompactRange(5, _fetch(merkle.frontier_coords(5)))
    created = [node for leaf in REF_LEAVES[5:] for node in tree.append(leaf)]
    assert tree.root() == REF_ROOTS[8]
    touching_new_leaves = {c: h for c, h in REF_NODES.items() if (c[1] + 1) << c[0] > 5}
    assert {(lvl, idx): h for lvl, idx, h in created} == touching_new_leaves
    assert tree.frontier == {(3, 0): REF_ROOTS[8]}


def test_proof_coordinates_stay_logarithmic() -> None:
    size = 2**40 + 2**20 + 12345
    assert len(merkle.root_coords(size)) == bin(size).count("1")
    assert len(merkle.inclusion_coords(size - 1, size)) <= 2 * 41
    assert len(merkle.inclusion_coords(7, size)) <= 2 * 41
    assert len(merkle.consistency_coords(2**39 + 3, size)) <= 2 * 41


def test_missing_node_is_named() -> None:
    coords = merkle.inclusion_coords(2, 7)
    partial = _fetch(coords[1:])
    with pytest.raises(KeyError, match=re.escape(str(coords[0]))):
        merkle.inclusion_proof(2, 7, partial)


@pytest.mark.parametrize(
    "call",
    [
        lambda: merkle.inclusion_coords(7, 7),
        lambda: merkle.inclusion_coords(-1, 7),
        lambda: merkle.consistency_coords(0, 7),
        lambda: merkle.consistency_coords(8, 7),
        lambda: merkle.frontier_coords(-1),
        lambda: merkle.append_nodes(0, b"short", {}),
    ],
)
def test_builders_reject_arguments_outside_their_domain(call: Any) -> None:
    with pytest.raises(ValueError):
        call()


# --- strict verifiers -------------------------------------------------------------------------


PROOF_5_OF_7 = merkle.reference_inclusion_path(5, REF_LEAVES[:7])
GOOD_INCLUSION: dict[str, Any] = {
    "leaf": REF_LEAVES[5],
    "index": 5,
    "size": 7,
    "proof": PROOF_5_OF_7,
    "root": REF_ROOTS[7],
}


def test_inclusion_verifies_and_derives_the_root() -> None:
    merkle.verify_inclusion(**GOOD_INCLUSION)
    assert merkle.root_from_inclusion_proof(REF_LEAVES[5], 5, 7, PROOF_5_OF_7) == REF_ROOTS[7]


@pytest.mark.parametrize(
    ("changes", "error", "message"),
    [
        ({"proof": [*PROOF_5_OF_7, REF_ROOTS[7]]}, VerificationError, "too many"),
        ({"proof": PROOF_5_OF_7[:-1]}, VerificationError, "too few"),
        ({"index": 7}, VerificationError, "below the tree size"),
        ({"index": 4}, VerificationError, "does not lead"),
        ({"root": REF_ROOTS[6]}, VerificationError, "does not lead"),
        ({"index": True}, MalformedInputError, "leaf index"),
        ({"size": -7}, MalformedInputError, "tree size"),
        ({"leaf": REF_LEAVES[5][:31]}, MalformedInputError, "leaf hash"),
        ({"proof": [*PROOF_5_OF_7[:-1], PROOF_5_OF_7[-1] + b"\0"]}, MalformedInputError, "element 2"),
        ({"root": REF_ROOTS[7].hex()}, MalformedInputError, "root hash"),
    ],
)
def test_inclusion_rejections(changes: dict[str, Any], error: type[LedgerError], message: str) -> None:
    with pytest.raises(error, match=message):
        merkle.verify_inclusion(**{**GOOD_INCLUSION, **changes})


def _consistency_case(size1: int, size2: int) -> tuple[int, int, list[bytes], bytes, bytes]:
    proof = merkle.reference_consistency_proof(size1, REF_LEAVES[:size2])
    return size1, size2, proof, REF_ROOTS[size1], REF_ROOTS[size2]


@pytest.mark.parametrize(("size1", "size2"), [(1, 2), (2, 8), (3, 7), (4, 8), (5, 6), (7, 8), (8, 8)])
def test_consistency_verifies(size1: int, size2: int) -> None:
    merkle.verify_consistency(*_consistency_case(size1, size2))


@pytest.mark.parametrize(
    ("args", "error", "message"),
    [
        ((0, 8, [], merkle.EMPTY_ROOT, REF_ROOTS[8]), VerificationError, "empty tree"),
        ((0, 0, [], merkle.EMPTY_ROOT, merkle.EMPTY_ROOT), VerificationError, "empty tree"),
        ((8, 7, [], REF_ROOTS[8], REF_ROOTS[7]), VerificationError, "must not exceed"),
        ((8, 8, [REF_ROOTS[8]], REF_ROOTS[8], REF_ROOTS[8]), VerificationError, "empty proof"),
        ((8, 8, [], REF_ROOTS[8], REF_ROOTS[7]), VerificationError, "same root"),
        ((3, 7, [], REF_ROOTS[3], REF_ROOTS[7]), VerificationError, "must not be empty"),
        ((False, 7, [], REF_ROOTS[3], REF_ROOTS[7]), MalformedInputError, "first tree size"),
        ((3, 7, [], REF_ROOTS[3], b""), MalformedInputError, "second root"),
    ],
)
def test_consistency_rejections(args: tuple[Any, ...], error: type[LedgerError], message: str) -> None:
    with pytest.raises(error, match=message):
        merkle.verify_consistency(*args)


def test_consistency_rejects_extra_missing_and_prepended_hashes() -> None:
    size1, size2, proof, root1, root2 = _consistency_case(3, 7)
    with pytest.raises(VerificationError, match="too many"):
        merkle.verify_consistency(size1, size2, [*proof, root2], root1, root2)
    with pytest.raises(VerificationError, match="too few"):
        merkle.verify_consistency(size1, size2, proof[:-1], root1, root2)
    size1, size2, proof, root1, root2 = _consistency_case(4, 7)
    with pytest.raises(VerificationError):  # pitfall: the old root is never sent for a power of two
        merkle.verify_consistency(size1, size2, [root1, *proof], root1, root2)
    with pytest.raises(VerificationError, match="both roots"):
        merkle.verify_consistency(size1, size2, proof, REF_ROOTS[3], root2)


# --- CT v1 JSON codecs ------------------------------------------------------------------------


def test_proof_json_round_trips() -> None:
    path = PROOF_5_OF_7
    doc = inclusion_proof_json(5, path, tree_size=7)
    assert doc == {
        "leaf_index": 5,
        "audit_path": [base64.b64encode(h).decode() for h in path],
        "tree_size": 7,
    }
    assert parse_inclusion_proof(json.dumps(doc).encode(), tree_size=7) == (5, path)
    without_size = json.dumps(inclusion_proof_json(5, path)).encode()
    assert parse_inclusion_proof(without_size, tree_size=7) == (5, path)
    cpath = _consistency_case(3, 7)[2]
    assert consistency_proof_json(cpath) == {"consistency": [base64.b64encode(h).decode() for h in cpath]}
    raw = json.dumps(consistency_proof_json(cpath, first=3, second=7)).encode()
    assert parse_consistency_proof(raw, first=3, second=7) == cpath
    assert parse_consistency_proof(raw) == cpath


H = base64.b64encode(b"\xfb\xff" * 16).decode()  # has "+" and "/"


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ('{"leaf_index": 1, "leaf_index": 1, "audit_path": []}', "duplicate object key"),
        ('{"leaf_index": 1, "audit_path": [], "extra": 1}', "unknown keys"),
        ('{"audit_path": []}', "lacks"),
        ('{"leaf_index": true, "audit_path": []}', "JSON integer"),
        ('{"leaf_index": "1", "audit_path": []}', "JSON integer"),
        ('{"leaf_index": 1.0, "audit_path": []}', "non-integral"),
        ('{"leaf_index": 1e3, "audit_path": []}', "non-integral"),
        ('{"leaf_index": -1, "audit_path": []}', ">= 0"),
        ('{"leaf_index": 9223372036854775808, "audit_path": []}', "out of range"),
        ('{"leaf_index": NaN, "audit_path": []}', "NaN is not allowed"),
        ('{"leaf_index": 1, "audit_path": "' + H + '"}', "array"),
        ('{"leaf_index": 1, "audit_path": ["' + H.rstrip("=") + '"]}', "padded"),
        ('{"leaf_index": 1, "audit_path": ["' + H.replace("/", "_") + '"]}', "padded"),
        ('{"leaf_index": 1, "audit_path": ["' + H[:-2] + 'R="]}', "canonical"),
        ('{"leaf_index": 1, "audit_path": ["' + base64.b64encode(bytes(31)).decode() + '"]}', "32 bytes"),
        ('{"leaf_index": 1, "audit_path": [1]}', "base64 string"),
        ('[1, ["' + H + '"]]', "JSON object"),
        ('{"leaf_index": 1, "audit_path": [], "tree_size": -2}', ">= 0"),
    ],
)
def test_inclusion_parser_rejects(raw: str, message: str) -> None:
    with pytest.raises(MalformedInputError, match=message):
        parse_inclusion_proof(raw.encode())


def test_parsers_reject_non_utf8_and_cross_check_sizes() -> None:
    with pytest.raises(MalformedInputError, match="UTF-8"):
        parse_inclusion_proof(b'{"leaf_index": 1, "audit_path": ["\xff"]}')
    with pytest.raises(VerificationError, match="tree_size 8 but 7"):
        parse_inclusion_proof(b'{"leaf_index": 1, "audit_path": [], "tree_size": 8}', tree_size=7)
    with pytest.raises(VerificationError, match="second 9 but 8"):
        parse_consistency_proof(b'{"consistency": [], "first": 3, "second": 9}', first=3, second=8)
    with pytest.raises(MalformedInputError, match="unknown keys"):
        parse_consistency_proof(b'{"consistency": [], "tree_size": 3}')
    with pytest.raises(MalformedInputError, match="duplicate"):
        parse_consistency_proof(b'{"consistency": [], "consistency": []}')
