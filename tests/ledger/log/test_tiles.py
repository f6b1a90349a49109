"""C2SP tlog-tiles math (ledger/log/tiles.py): paths, which tiles a tree has, and proofs from tiles.

The tiles are built from an in-memory node store (``merkle.build_nodes``), the same (level, index)
nodes the database keeps; every root and proof read back from tiles must equal the node store's."""

from __future__ import annotations

import random
from functools import cache

import pytest

from domain.errors import LedgerError, MalformedInputError
from ledger.log import merkle, tiles
from ledger.log.tiles import Tile

MAX = 70_000


@cache
def _nodes() -> dict[merkle.Coord, bytes]:
    return merkle.build_nodes([merkle.leaf_hash(b"leaf %d" % i) for i in range(MAX)])


def _files(size: int) -> dict[str, bytes]:
    """The tiled log of the first ``size`` leaves (hash tiles and bundles) as path -> bytes."""
    nodes, out = _nodes(), {}
    for tile in tiles.tiles_at(size):
        if tile.entries:
            start = tile.index * tiles.WIDTH
            out[tile.path] = tiles.encode_bundle([b"leaf %d" % i for i in range(start, start + tile.width)])
        else:
            out[tile.path] = tiles.encode_hashes(tiles.nodes_from_store(nodes, tile))
    return out


def _tree(size: int, files: dict[str, bytes] | None = None) -> tiles.TiledTree:
    held = _files(size) if files is None else files

    def fetch(path: str) -> bytes:
        return held[path]

    return tiles.TiledTree(fetch, size)


@pytest.mark.parametrize(
    ("index", "path"),
    [(0, "000"), (7, "007"), (999, "999"), (1000, "x001/000"), (1234067, "x001/x234/067"), (10**9, "x001/x000/x000/000")],
)
def test_index_encoding_matches_the_spec(index: int, path: str) -> None:
    assert tiles.encode_index(index) == path
    assert Tile(3, index, 256).path == f"tile/3/{path}"
    assert tiles.parse_path(f"tile/entries/{path}.p/9") == Tile(None, index, 9)


@pytest.mark.parametrize(
    "path",
    [
        "tile/0/1", "tile/0/0000", "tile/0/x000/001", "tile/00/000", "tile/64/000", "tile/-1/000",
        "tile/0/000.p/0", "tile/0/000.p/256", "tile/0/000.p/007", "tile/0/000.p/", "tile/0/x001", "tile/0/001/002",
        "tile/entries/000.p/1/", "/tile/0/000", "tile/0/000/", "tile/0/../000", "tile/data/000", "tile/8/0/000",
        "tile/0/x1/000", "tile/0/000.q/5", "checkpoint", "tile/entries", "tile/0/x001/x000.p/2/000",
    ],
)
def test_strict_parsing_refuses_every_other_spelling(path: str) -> None:
    with pytest.raises(MalformedInputError):
        tiles.parse_path(path)


def test_spec_example_70000() -> None:
    """c2sp.org/tlog-tiles: 273 full level-0 tiles, a partial of 112, one full level-1 tile, a
    partial level-1 tile of 17 and a partial level-2 tile of 1."""
    hashes = tiles.tiles_at(70_000, entries=False)
    assert sum(t.level == 0 and t.full for t in hashes) == 273
    assert [t for t in hashes if not t.full] == [Tile(0, 273, 112), Tile(1, 1, 17), Tile(2, 0, 1)]
    assert [t for t in hashes if t.level == 1 and t.full] == [Tile(1, 0, 256)]
    assert tiles.tiles_at(256, entries=False) == [Tile(0, 0, 256), Tile(1, 0, 1)]
    assert tiles.tiles_at(0) == []


def test_new_tiles_are_the_difference() -> None:
    rng = random.Random(5)  # noqa: S311 - reproducible test sizes
    for _ in range(200):
        old = rng.randrange(0, 70_000)
        new = rng.randrange(old, 70_001)
        before, after = set(tiles.tiles_at(old)), set(tiles.tiles_at(new))
        assert set(tiles.new_tiles(old, new)) == after - before
        assert set(tiles.partial_tiles(new)) == {t for t in after if not t.full}


@pytest.mark.parametrize("size", [1, 2, 255, 256, 257, 511, 65535, 65536, 65537, 70_000])
def test_tiles_reproduce_root_and_proofs(size: int) -> None:
    nodes = _nodes()
    tree = _tree(size)
    assert tree.root() == merkle.root_from_nodes(size, nodes)
    rng = random.Random(size)  # noqa: S311 - reproducible test indexes
    for index in {0, size - 1, *(rng.randrange(size) for _ in range(20))}:
        expected = merkle.inclusion_proof(index, size, nodes)
        assert tree.inclusion_proof(index) == expected
        merkle.verify_inclusion(merkle.leaf_hash(b"leaf %d" % index), index, size, expected, tree.root())
        assert tree.entry(index) == b"leaf %d" % index
    for size1 in {1, size, *(rng.randrange(1, size + 1) for _ in range(20))}:
        assert tree.consistency_proof(size1) == merkle.consistency_proof(size1, size, nodes)
        assert tree.root_at(size1) == merkle.root_from_nodes(size1, nodes)


def test_every_node_of_a_small_tree_reads_from_its_tile() -> None:
    nodes, size = _nodes(), 1000
    tree = _tree(size)
    for (level, index), value in nodes.items():
        if (index + 1) << level <= size:
            assert tree.node(level, index) == value


def test_partial_tile_then_full_tile() -> None:
    """A partial tile is a prefix of the full tile that replaces it; both read the same nodes."""
    small, full = _files(300), _files(512)
    partial = small["tile/0/001.p/44"]
    assert full["tile/0/001"][: len(partial)] == partial
    assert "tile/0/001.p/44" not in full and "tile/1/000.p/2" in full and "tile/1/000.p/1" in small
    assert _tree(512).root_at(300) == _tree(300).root()


def test_bad_tile_contents_are_refused() -> None:
    files = _files(300)
    files["tile/0/000"] += b"\x00"  # trailing data
    with pytest.raises(MalformedInputError) as caught:
        _tree(300, files).inclusion_proof(0)
    assert caught.value.code == "BAD_TILE"
    bundle = Tile(None, 1, 44)
    raw = _files(300)[bundle.path]
    for bad in (raw + b"\x00", raw[:-1], raw + b"\x00\x00", b"\x00\x05abc"):
        with pytest.raises(MalformedInputError):
            tiles.parse_bundle(bundle, bad)
    assert len(tiles.parse_bundle(bundle, raw)) == 44


def test_a_flipped_hash_changes_the_root_and_an_entry_mismatch_is_found() -> None:
    files = _files(300)
    tile = bytearray(files["tile/0/000"])
    tile[5] ^= 1
    files["tile/0/000"] = bytes(tile)
    assert _tree(300, files).root_at(255) != _tree(300).root_at(255)
    files = _files(300)
    files["tile/entries/000"] = files["tile/entries/000"].replace(b"leaf 3", b"leaf 4", 1)
    with pytest.raises(LedgerError) as caught:
        _tree(300, files).entry(3)
    assert caught.value.code == "TILE_MISMATCH"


def test_long_entries_are_refused() -> None:
    with pytest.raises(ValueError):
        tiles.encode_bundle([b"x" * 65536])
    assert tiles.encode_bundle([b"x" * 65535])[:2] == b"\xff\xff"
