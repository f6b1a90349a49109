"""Property tests: node-store proofs equal RFC 6962 reference proofs, verify, and break when tampered."""

from __future__ import annotations

from functools import cache

from hypothesis import given, settings
from hypothesis import strategies as st

from domain.errors import LedgerError
from ledger.log import merkle

MAX_SIZE = 300
EXAMPLES = settings(max_examples=75, deadline=None)


@cache
def _leaves(size: int) -> tuple[bytes, ...]:
    return tuple(merkle.leaf_hash(b"leaf %d" % i) for i in range(size))


@cache
def _nodes(size: int) -> dict[merkle.Coord, bytes]:
    return merkle.build_nodes(_leaves(size))


def _fetch(size: int, coords: list[merkle.Coord]) -> dict[merkle.Coord, bytes]:
    stored = _nodes(size)
    return {c: stored[c] for c in coords}


@st.composite
def _size_and_index(draw: st.DrawFn) -> tuple[int, int]:
    size = draw(st.integers(1, MAX_SIZE))
    return size, draw(st.integers(0, size - 1))


@st.composite
def _two_sizes(draw: st.DrawFn) -> tuple[int, int]:
    size2 = draw(st.integers(1, MAX_SIZE))
    return draw(st.integers(1, size2)), size2


def _flip(value: bytes, bit: int) -> bytes:
    bit %= len(value) * 8
    out = bytearray(value)
    out[bit // 8] ^= 1 << (bit % 8)
    return bytes(out)


def _rejected(check: object, *args: object) -> bool:
    try:
        check(*args)  # type: ignore[operator]
    except LedgerError:
        return True
    return False


@EXAMPLES
@given(_size_and_index())
def test_node_store_inclusion_matches_reference_and_verifies(case: tuple[int, int]) -> None:
    size, index = case
    leaves = _leaves(size)
    proof = merkle.inclusion_proof(index, size, _fetch(size, merkle.inclusion_coords(index, size)))
    assert proof == merkle.reference_inclusion_path(index, leaves)
    root = merkle.root_from_nodes(size, _fetch(size, merkle.root_coords(size)))
    assert root == merkle.root_from_leaf_hashes(leaves)
    merkle.verify_inclusion(leaves[index], index, size, proof, root)


@EXAMPLES
@given(_size_and_index(), st.integers(0, 2**16))
def test_any_flipped_bit_breaks_an_inclusion_proof(case: tuple[int, int], bit: int) -> None:
    size, index = case
    leaves = _leaves(size)
    proof = merkle.reference_inclusion_path(index, leaves)
    root = merkle.root_from_leaf_hashes(leaves)
    assert _rejected(merkle.verify_inclusion, _flip(leaves[index], bit), index, size, proof, root)
    assert _rejected(merkle.verify_inclusion, leaves[index], index, size, proof, _flip(root, bit))
    if proof:
        at = bit % len(proof)
        bad = [*proof[:at], _flip(proof[at], bit // len(proof)), *proof[at + 1 :]]
        assert _rejected(merkle.verify_inclusion, leaves[index], index, size, bad, root)


@EXAMPLES
@given(_two_sizes())
def test_node_store_consistency_matches_reference_and_verifies(sizes: tuple[int, int]) -> None:
    size1, size2 = sizes
    leaves = _leaves(size2)
    proof = merkle.consistency_proof(size1, size2, _fetch(size2, merkle.consistency_coords(size1, size2)))
    assert proof == merkle.reference_consistency_proof(size1, leaves)
    root1, root2 = merkle.root_from_leaf_hashes(leaves[:size1]), merkle.root_from_leaf_hashes(leaves)
    merkle.verify_consistency(size1, size2, proof, root1, root2)


@EXAMPLES
@given(_two_sizes(), st.integers(0, 2**16))
def test_any_flipped_bit_breaks_a_consistency_proof(sizes: tuple[int, int], bit: int) -> None:
    size1, size2 = sizes
    leaves = _leaves(size2)
    proof = merkle.reference_consistency_proof(size1, leaves)
    root1, root2 = merkle.root_from_leaf_hashes(leaves[:size1]), merkle.root_from_leaf_hashes(leaves)
    assert _rejected(merkle.verify_consistency, size1, size2, proof, _flip(root1, bit), root2)
    assert _rejected(merkle.verify_consistency, size1, size2, proof, root1, _flip(root2, bit))
    if proof:
        at = bit % len(proof)
        bad = [*proof[:at], _flip(proof[at], bit // len(proof)), *proof[at + 1 :]]
        assert _rejected(merkle.verify_consistency, size1, size2, bad, root1, root2)


@EXAMPLES
@given(_two_sizes())
def test_a_proof_for_one_size_fails_for_another(sizes: tuple[int, int]) -> None:
    size1, size2 = sizes
    leaves = _leaves(size2)
    if size1 < size2:
        proof = merkle.reference_consistency_proof(size1, leaves)
        root1, root2 = merkle.root_from_leaf_hashes(leaves[:size1]), merkle.root_from_leaf_hashes(leaves)
        assert _rejected(merkle.verify_consistency, size1 + 1, size2, proof, root1, root2)
    index = size1 - 1
    proof = merkle.reference_inclusion_path(index, leaves)
    root = merkle.root_from_leaf_hashes(leaves)
    if size2 > 1:
        other = index + 1 if index + 1 < size2 else index - 1
        assert _rejected(merkle.verify_inclusion, leaves[index], other, size2, proof, root)


@settings(max_examples=40, deadline=None)
@given(st.integers(0, MAX_SIZE), st.integers(0, MAX_SIZE))
def test_incremental_append_builds_the_same_nodes_as_a_fresh_build(start: int, extra: int) -> None:
    size = start + extra
    stored = {c: h for c, h in _nodes(size).items() if (c[1] + 1) << c[0] <= start}
    assert stored == (_nodes(start) if start else {})
    for position in range(start, size):
        for level, index, value in merkle.append_nodes(position, _leaves(size)[position], stored):
            assert (level, index) not in stored
            stored[(level, index)] = value
    assert stored == (_nodes(size) if size else {})


@settings(max_examples=40, deadline=None)
@given(st.integers(0, MAX_SIZE), st.integers(0, 64))
def test_compact_range_batch_append_matches_a_fresh_build(start: int, batch: int) -> None:
    size = start + batch
    tree = merkle.CompactRange(start, _fetch(size, merkle.frontier_coords(start)))
    created = {(lvl, idx): h for leaf in _leaves(size)[start:] for lvl, idx, h in tree.append(leaf)}
    assert created == {c: h for c, h in _nodes(size).items() if (c[1] + 1) << c[0] > start}
    assert tree.size == size
    assert tree.root() == merkle.root_from_leaf_hashes(_leaves(size))
    assert tree.frontier == _fetch(size, merkle.frontier_coords(size))
