"""RFC 6962 / RFC 9162 Merkle tree: hashing, node-store proofs and strict proof verification.

Hashing (RFC 6962 §2.1): a leaf is SHA-256(0x00 || data), an interior node SHA-256(0x01 || left ||
right); the tree over n > 1 leaves splits at the largest power of two strictly below n. The empty
tree's root is SHA-256 of nothing (RFC 6962), not Go ``tlog``'s 32 zero bytes.

Node store. A node ``(level, index)`` is the hash of the *perfect* subtree over the leaves
``[index * 2**level, (index + 1) * 2**level)``; level 0 holds the leaf hashes. The database keeps
every complete perfect node, so any tree size is described by O(log n) of them: the root folds the
"frontier" (one perfect node per set bit of the size, largest first) and every proof element is
either a perfect node or an incomplete right-edge subtree folded from the perfect nodes that tile it.
Callers ask for the ``*_coords``, fetch them in one query and pass the mapping to the matching
builder. A coordinate missing from the mapping raises KeyError; arguments outside a function's
domain (an index past the end of the tree, a hash that is not 32 bytes) raise ValueError. Both are
caller bugs, not bad input.

Verification transcribes RFC 9162 §2.1.3.2 and §2.1.4.2. The verifiers raise MalformedInputError
for values that cannot be hashes or tree sizes and VerificationError for proofs that do not check
out; they return None.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence

from domain.errors import MalformedInputError, VerificationError

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()

Coord = tuple[int, int]
"""``(level, index)`` of a perfect subtree."""
Node = tuple[int, int, bytes]
"""``(level, index, hash)``."""
LeafRange = tuple[int, int]
"""``[start, end)`` in leaf positions."""


# --- hashing ----------------------------------------------------------------------------------


def leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split_point(n: int) -> int:
    """The largest power of two strictly below ``n`` (n > 1)."""
    return 1 << ((n - 1).bit_length() - 1)


def root_from_leaf_hashes(hashes: Sequence[bytes]) -> bytes:
    """MTH(D[n]) straight from the RFC 6962 definition (O(n); for tests and small inputs)."""
    if not hashes:
        return EMPTY_ROOT
    if len(hashes) == 1:
        return hashes[0]
    k = _split_point(len(hashes))
    return node_hash(root_from_leaf_hashes(hashes[:k]), root_from_leaf_hashes(hashes[k:]))


def reference_inclusion_path(index: int, hashes: Sequence[bytes]) -> list[bytes]:
    """PATH(m, D[n]) exactly as RFC 6962 §2.1.1 defines it (in memory; for tests)."""
    _require_index(index, len(hashes))
    if len(hashes) == 1:
        return []
    k = _split_point(len(hashes))
    if index < k:
        return [*reference_inclusion_path(index, hashes[:k]), root_from_leaf_hashes(hashes[k:])]
    return [*reference_inclusion_path(index - k, hashes[k:]), root_from_leaf_hashes(hashes[:k])]


def reference_consistency_proof(size1: int, hashes: Sequence[bytes]) -> list[bytes]:
    """PROOF(m, D[n]) exactly as RFC 6962 §2.1.2 defines it (in memory; for tests)."""
    _require_sizes(size1, len(hashes))
    return _reference_subproof(size1, hashes, complete=True)


def _reference_subproof(m: int, hashes: Sequence[bytes], *, complete: bool) -> list[bytes]:
    if m == len(hashes):
        return [] if complete else [root_from_leaf_hashes(hashes)]
    k = _split_point(len(hashes))
    if m <= k:
        return [*_reference_subproof(m, hashes[:k], complete=complete), root_from_leaf_hashes(hashes[k:])]
    return [*_reference_subproof(m - k, hashes[k:], complete=False), root_from_leaf_hashes(hashes[:k])]


# --- node-store coordinates -------------------------------------------------------------------


def _require_size(size: int) -> None:
    if isinstance(size, bool) or not isinstance(size, int) or size < 0:
        raise ValueError(f"a tree size is an int >= 0, found {size!r}")


def _require_index(index: int, size: int) -> None:
    _require_size(size)
    if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < size:
        raise ValueError(f"a leaf index of a tree of size {size} is in [0, {size}), found {index!r}")


def _require_sizes(size1: int, size2: int) -> None:
    _require_size(size2)
    if isinstance(size1, bool) or not isinstance(size1, int) or not 0 < size1 <= size2:
        raise ValueError(f"a consistency proof needs 0 < size1 <= size2, found {size1!r} and {size2!r}")


def _tiling(start: int, end: int) -> list[Coord]:
    """The perfect subtrees that tile ``[start, end)``, largest first.

    Only called for ranges of the RFC 6962 tree: perfect subtrees and right-edge subtrees
    ``[j * 2**L, n)`` with ``n - j * 2**L < 2**L``, so each piece is aligned to its own size.
    """
    coords: list[Coord] = []
    while start < end:
        level = (end - start).bit_length() - 1
        coords.append((level, start >> level))
        start += 1 << level
    return coords


def frontier_coords(size: int) -> list[Coord]:
    """The perfect subtrees making up a tree of ``size`` leaves: one per set bit, left to right."""
    _require_size(size)
    return _tiling(0, size)


def root_coords(size: int) -> list[Coord]:
    return frontier_coords(size)


def _inclusion_ranges(index: int, size: int) -> list[LeafRange]:
    """The subtrees whose hashes form PATH(index, D[size]), leaf to root."""
    ranges: list[LeafRange] = []
    for level in range((size - 1).bit_length()):
        start = ((index >> level) ^ 1) << level
        if start < size:  # a sibling past the end means this level is promoted unchanged
            ranges.append((start, min(start + (1 << level), size)))
    return ranges


def _consistency_ranges(size1: int, size2: int) -> list[LeafRange]:
    """The subtrees whose hashes form PROOF(size1, D[size2]) (RFC 6962 §2.1.2), leaf to root."""
    ranges: list[LeafRange] = []
    start, end, complete = 0, size2, True
    while size1 != end:  # descend through SUBPROOF until the subtree ends where the old tree does
        k = _split_point(end - start)
        if size1 <= start + k:
            ranges.append((start + k, end))
            end = start + k
        else:
            ranges.append((start, start + k))
            start, complete = start + k, False
    if not complete:
        ranges.append((start, end))
    ranges.reverse()
    return ranges


def _coords_of(ranges: Iterable[LeafRange]) -> list[Coord]:
    return [coord for start, end in ranges for coord in _tiling(start, end)]


def inclusion_coords(index: int, size: int) -> list[Coord]:
    _require_index(index, size)
    return _coords_of(_inclusion_ranges(index, size))


def consistency_coords(size1: int, size2: int) -> list[Coord]:
    _require_sizes(size1, size2)
    return _coords_of(_consistency_ranges(size1, size2))


# --- building hashes from fetched nodes -------------------------------------------------------


def _lookup(nodes: Mapping[Coord, bytes], coord: Coord) -> bytes:
    try:
        value = nodes[coord]
    except KeyError:
        raise KeyError(f"node (level, index) = {coord} was not supplied") from None
    _require_hash_arg(value, f"node {coord}")
    return value


def _describe(value: object) -> str:
    return f"{len(value)} bytes" if isinstance(value, bytes) else type(value).__name__


def _require_hash_arg(value: object, what: str) -> None:
    if not isinstance(value, bytes) or len(value) != HASH_SIZE:
        raise ValueError(f"{what} must be {HASH_SIZE} bytes, found {_describe(value)}")


def _fold(hashes: Sequence[bytes]) -> bytes:
    """Combine subtree hashes, largest (leftmost) first, into the hash of their union."""
    if not hashes:
        return EMPTY_ROOT
    acc = hashes[-1]
    for left in reversed(hashes[:-1]):
        acc = node_hash(left, acc)
    return acc


def _range_hash(leaf_range: LeafRange, nodes: Mapping[Coord, bytes]) -> bytes:
    return _fold([_lookup(nodes, coord) for coord in _tiling(*leaf_range)])


def root_from_nodes(size: int, nodes: Mapping[Coord, bytes]) -> bytes:
    _require_size(size)
    return _range_hash((0, size), nodes)


def inclusion_proof(index: int, size: int, nodes: Mapping[Coord, bytes]) -> list[bytes]:
    """RFC 6962 PATH(index, D[size]) from the nodes named by ``inclusion_coords(index, size)``."""
    _require_index(index, size)
    return [_range_hash(r, nodes) for r in _inclusion_ranges(index, size)]


def consistency_proof(size1: int, size2: int, nodes: Mapping[Coord, bytes]) -> list[bytes]:
    """RFC 6962 PROOF(size1, D[size2]) from the nodes named by ``consistency_coords``."""
    _require_sizes(size1, size2)
    return [_range_hash(r, nodes) for r in _consistency_ranges(size1, size2)]


def build_nodes(leaf_hashes: Sequence[bytes]) -> dict[Coord, bytes]:
    """Every complete perfect node of the tree over ``leaf_hashes``, built level by level."""
    nodes: dict[Coord, bytes] = {}
    level, row = 0, list(leaf_hashes)
    for value in row:
        _require_hash_arg(value, "a leaf hash")
    while row:
        nodes.update(((level, index), value) for index, value in enumerate(row))
        row = [node_hash(row[i], row[i + 1]) for i in range(0, len(row) - 1, 2)]
        level += 1
    return nodes


# --- appending --------------------------------------------------------------------------------


class CompactRange:
    """The frontier of a tree, held in memory so that a batch of leaves appends in O(log n) each.

    Build it from the tree size and the fetched ``frontier_coords(size)`` nodes, call ``append``
    for each new leaf hash and store the nodes it returns.
    """

    def __init__(self, size: int, frontier: Mapping[Coord, bytes]) -> None:
        self._size = size
        self._stack: list[Node] = [
            (lvl, idx, _lookup(frontier, (lvl, idx))) for lvl, idx in frontier_coords(size)
        ]

    @classmethod
    def empty(cls) -> CompactRange:
        return cls(0, {})

    @property
    def size(self) -> int:
        return self._size

    @property
    def frontier(self) -> dict[Coord, bytes]:
        return {(level, index): value for level, index, value in self._stack}

    def root(self) -> bytes:
        return _fold([value for _, _, value in self._stack])

    def append(self, leaf: bytes) -> list[Node]:
        """Add the leaf hash at index ``size``; return it and every parent node it completes."""
        _require_hash_arg(leaf, "a leaf hash")
        level, index, value = 0, self._size, leaf
        created: list[Node] = [(level, index, value)]
        while self._stack and self._stack[-1][0] == level:
            _, _, left = self._stack.pop()
            level, index, value = level + 1, index >> 1, node_hash(left, value)
            created.append((level, index, value))
        self._stack.append((level, index, value))
        self._size += 1
        return created


def append_nodes(size: int, leaf: bytes, frontier: Mapping[Coord, bytes]) -> list[Node]:
    """The nodes created by appending ``leaf`` (a leaf hash) to a tree of ``size`` leaves."""
    return CompactRange(size, frontier).append(leaf)


# --- verification (RFC 9162) ------------------------------------------------------------------


def _check_hash(value: object, what: str) -> bytes:
    if not isinstance(value, bytes) or len(value) != HASH_SIZE:
        raise MalformedInputError(f"{what} must be a {HASH_SIZE}-byte SHA-256 hash, found {_describe(value)}")
    return value


def _check_count(value: object, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise MalformedInputError(f"{what} must be an integer >= 0, found {value!r}")
    return value


def _check_proof(proof: Sequence[bytes]) -> list[bytes]:
    return [_check_hash(p, f"proof element {i}") for i, p in enumerate(proof)]


def _shift_until_odd_or_zero(fn: int, sn: int) -> tuple[int, int]:
    while fn & 1 == 0 and fn != 0:
        fn, sn = fn >> 1, sn >> 1
    return fn, sn


def root_from_inclusion_proof(leaf: bytes, index: int, size: int, proof: Sequence[bytes]) -> bytes:
    """The root implied by an inclusion proof (RFC 9162 §2.1.3.2 steps 1-5 without the compare)."""
    leaf = _check_hash(leaf, "leaf hash")
    index, size = _check_count(index, "leaf index"), _check_count(size, "tree size")
    path = _check_proof(proof)
    if index >= size:
        raise VerificationError(f"leaf index must be below the tree size {size}, found {index}")
    fn, sn, r = index, size - 1, leaf
    for p in path:
        if sn == 0:
            raise VerificationError(
                f"inclusion proof for leaf {index} of {size} has too many hashes ({len(path)})"
            )
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            fn, sn = _shift_until_odd_or_zero(fn, sn)
        else:
            r = node_hash(r, p)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:
        raise VerificationError(
            f"inclusion proof for leaf {index} of {size} has too few hashes ({len(path)})"
        )
    return r


def verify_inclusion(leaf: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes) -> None:
    """RFC 9162 §2.1.3.2: raise unless ``proof`` shows leaf hash ``leaf`` at ``index`` under ``root``."""
    root = _check_hash(root, "root hash")
    if root_from_inclusion_proof(leaf, index, size, proof) != root:
        raise VerificationError(
            f"inclusion proof for leaf {index} does not lead to the root of the tree of size {size}",
            leaf_index=index,
            tree_size=size,
        )


def verify_consistency(size1: int, size2: int, proof: Sequence[bytes], root1: bytes, root2: bytes) -> None:
    """RFC 9162 §2.1.4.2: raise unless ``proof`` shows tree ``size1`` is a prefix of tree ``size2``."""
    size1, size2 = _check_count(size1, "first tree size"), _check_count(size2, "second tree size")
    root1, root2 = _check_hash(root1, "first root hash"), _check_hash(root2, "second root hash")
    path = _check_proof(proof)
    if size1 == 0:
        raise VerificationError("no consistency proof exists from an empty tree (first size is 0)")
    if size1 > size2:
        raise VerificationError(f"first tree size must not exceed the second ({size2}), found {size1}")
    if size1 == size2:
        _verify_equal_trees(size1, path, root1, root2)
        return
    if not path:
        raise VerificationError(f"consistency proof from {size1} to {size2} must not be empty")
    if size1 & (size1 - 1) == 0:  # step 2: a power of two is its own subtree; its hash is not sent
        path = [root1, *path]
    fn, sn = size1 - 1, size2 - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise VerificationError(f"consistency proof from {size1} to {size2} has too many hashes")
        if fn & 1 or fn == sn:
            fr, sr = node_hash(c, fr), node_hash(c, sr)
            fn, sn = _shift_until_odd_or_zero(fn, sn)
        else:
            sr = node_hash(sr, c)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:
        raise VerificationError(f"consistency proof from {size1} to {size2} has too few hashes")
    if fr != root1 or sr != root2:
        raise VerificationError(
            f"consistency proof from {size1} to {size2} does not lead to both roots",
            first_size=size1,
            second_size=size2,
        )


def _verify_equal_trees(size: int, path: list[bytes], root1: bytes, root2: bytes) -> None:
    if path:
        raise VerificationError(f"equal tree sizes ({size}) need an empty proof, found {len(path)} hashes")
    if root1 != root2:
        raise VerificationError(f"two trees of the same size {size} must have the same root")
