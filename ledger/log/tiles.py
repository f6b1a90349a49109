"""C2SP tlog-tiles (https://c2sp.org/tlog-tiles): paths, tile contents and proofs computed from tiles.

Pure: no database, no HTTP. The writer (``ledger.log.tile_writer``), the ``/tiles/`` route and the
verifier's ``--tiles`` reader all use it.

Layout (docs/formats.md, "Tiled log"):

* ``checkpoint`` — the signed note (with its cosignatures);
* ``tile/<L>/<N>[.p/<W>]`` — 256 (or W < 256 for a partial tile) consecutive 32-byte hashes of tree
  level ``8 * L``: hash ``i`` of tile ``N`` is the node ``(8 * L, N * 256 + i)`` of ``merkle``'s node
  store. ``N`` is written in 3-digit path elements, all but the last prefixed with ``x``
  (1234067 → ``x001/x234/067``);
* ``tile/entries/<N>[.p/<W>]`` — the leaves ``N * 256 ..`` as big-endian uint16 length-prefixed
  byte strings; leaf ``i`` hashes (RFC 6962 leaf hash) to hash ``i`` of level-0 tile ``N``.

A tree of size ``s`` has ``floor(s / 256**L) // 256`` full tiles at level ``L`` and, when
``floor(s / 256**L) % 256`` is not 0, one partial tile of that width; a tree of size 0 has no tile.

Any node ``(level, index)`` complete in the tree is read from one tile: its tile level is
``level // 8`` and it is the perfect subtree over ``2 ** (level % 8)`` consecutive hashes of that
tile. The proofs are ``merkle``'s own builders fed with nodes read that way.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from domain.errors import MalformedInputError, NotFoundError, VerificationError
from ledger.log import merkle

HEIGHT = 8
WIDTH = 1 << HEIGHT  # hashes in a full tile, entries in a full bundle
MAX_LEVEL = 63
MAX_ENTRY = 0xFFFF  # an entry's length is a uint16
CHECKPOINT = "checkpoint"

_ELEMENT = re.compile(r"x[0-9]{3}")
_LAST = re.compile(r"[0-9]{3}")
_DECIMAL = re.compile(r"0|[1-9][0-9]*")


class BadTilePath(MalformedInputError):
    code = "BAD_TILE_PATH"


@dataclass(frozen=True, order=True)
class Tile:
    """Tile ``index`` of ``level`` (``level`` None: an entry bundle), ``width`` hashes or entries."""

    level: int | None
    index: int
    width: int

    @property
    def full(self) -> bool:
        return self.width == WIDTH

    @property
    def entries(self) -> bool:
        return self.level is None

    @property
    def path(self) -> str:
        head = "tile/entries" if self.level is None else f"tile/{self.level}"
        tail = "" if self.full else f".p/{self.width}"
        return f"{head}/{encode_index(self.index)}{tail}"

    def size_bytes(self) -> int:
        """The exact length of a hash tile (entry bundles have no fixed length)."""
        return self.width * merkle.HASH_SIZE

    def hashes_tile(self) -> Tile:
        """The level-0 tile an entry bundle hashes to (a hash tile is its own)."""
        return Tile(0, self.index, self.width) if self.level is None else self


def encode_index(index: int) -> str:
    """``N`` as 3-digit path elements, all but the last prefixed with ``x``."""
    if isinstance(index, bool) or not isinstance(index, int) or index < 0:
        raise ValueError(f"a tile index is an int >= 0, found {index!r}")
    digits = str(index)
    digits = digits.zfill((len(digits) + 2) // 3 * 3)
    parts = [digits[i : i + 3] for i in range(0, len(digits), 3)]
    return "/".join([*("x" + p for p in parts[:-1]), parts[-1]])


def parse_path(path: str) -> Tile:
    """Strictly parse ``tile/<L>/<N>[.p/<W>]`` or ``tile/entries/<N>[.p/<W>]`` (no leading slash);
    BadTilePath for anything else (the path of the returned tile is exactly ``path``)."""
    bad = BadTilePath(f"not a tile path: {path[:200]!r} (tile/<L>/<N>[.p/<W>] or tile/entries/<N>[.p/<W>])")
    parts = path.split("/")
    if len(parts) < 3 or parts[0] != "tile":
        raise bad
    level: int | None
    if parts[1] == "entries":
        level = None
    elif _DECIMAL.fullmatch(parts[1]) and len(parts[1]) <= 2 and int(parts[1]) <= MAX_LEVEL:
        level = int(parts[1])
    else:
        raise bad
    rest, width = parts[2:], WIDTH
    if len(rest) >= 2 and rest[-2].endswith(".p"):
        w = rest[-1]
        if not (_DECIMAL.fullmatch(w) and len(w) <= 3 and 1 <= int(w) < WIDTH):
            raise bad
        width, rest = int(w), [*rest[:-2], rest[-2][:-2]]
    if not _LAST.fullmatch(rest[-1]) or not all(_ELEMENT.fullmatch(p) for p in rest[:-1]):
        raise bad
    digits = "".join(p.lstrip("x") for p in rest)
    if len(digits) > 18:
        raise bad
    tile = Tile(level, int(digits), width)
    if tile.path != path:
        raise bad
    return tile


def level_count(size: int, level: int) -> int:
    """How many hashes of tree level ``8 * level`` a tree of ``size`` leaves has."""
    return size >> (HEIGHT * level)


def tiles_at(size: int, *, entries: bool = True) -> list[Tile]:
    """Every tile (and entry bundle) of a tree of ``size`` leaves, level by level, in index order."""
    return new_tiles(0, size, entries=entries)


def new_tiles(old: int, new: int, *, entries: bool = True) -> list[Tile]:
    """The tiles a tree of ``new`` leaves has that one of ``old`` leaves (old <= new) has not: the
    full tiles completed since and the partial tiles of ``new``. Entry bundles first, then hash
    tiles from level 0 up."""
    if not 0 <= old <= new:
        raise ValueError(f"new_tiles needs 0 <= old <= new, found {old} and {new}")
    levels: list[int | None] = [None] if entries else []
    level = 0
    while level_count(new, level) > 0:
        levels.append(level)
        level += 1
    out: list[Tile] = []
    for lvl in levels:
        c_old, c_new = level_count(old, lvl or 0), level_count(new, lvl or 0)
        if c_old == c_new:
            continue
        out.extend(Tile(lvl, n, WIDTH) for n in range(c_old // WIDTH, c_new // WIDTH))
        if c_new % WIDTH:
            out.append(Tile(lvl, c_new // WIDTH, c_new % WIDTH))
    return out


def partial_tiles(size: int, *, entries: bool = True) -> list[Tile]:
    """The partial tiles (and partial entry bundle) of a tree of ``size`` leaves."""
    levels: list[int | None] = [None] if entries else []
    level = 0
    while level_count(size, level) > 0:
        levels.append(level)
        level += 1
    out = []
    for lvl in levels:
        count = level_count(size, lvl or 0)
        if count % WIDTH:
            out.append(Tile(lvl, count // WIDTH, count % WIDTH))
    return out


def tile_of(level: int, index: int, size: int) -> Tile:
    """The hash tile of a tree of ``size`` leaves that holds hash ``index`` of tree level ``8 * level``."""
    count = level_count(size, level)
    if not 0 <= index < count:
        raise ValueError(f"a tree of size {size} has no hash {index} at tree level {HEIGHT * level}")
    n = index // WIDTH
    return Tile(level, n, min(WIDTH, count - n * WIDTH))


def bundle_of(leaf_index: int, size: int) -> Tile:
    tile = tile_of(0, leaf_index, size)
    return Tile(None, tile.index, tile.width)


# --- contents -----------------------------------------------------------------------------------


def encode_hashes(hashes: Sequence[bytes]) -> bytes:
    for value in hashes:
        if not isinstance(value, bytes) or len(value) != merkle.HASH_SIZE:
            raise ValueError("a tile holds 32-byte hashes")
    if not 1 <= len(hashes) <= WIDTH:
        raise ValueError(f"a tile holds 1..{WIDTH} hashes, found {len(hashes)}")
    return b"".join(hashes)


def parse_hashes(tile: Tile, data: bytes) -> list[bytes]:
    """The hashes of a hash tile; MalformedInputError (BAD_TILE) unless exactly ``width`` hashes."""
    if len(data) != tile.size_bytes():
        raise MalformedInputError(
            f"{tile.path} must be {tile.size_bytes()} bytes, found {len(data)}", code="BAD_TILE", path=tile.path
        )
    return [data[i : i + merkle.HASH_SIZE] for i in range(0, len(data), merkle.HASH_SIZE)]


def encode_bundle(entries: Sequence[bytes]) -> bytes:
    if not 1 <= len(entries) <= WIDTH:
        raise ValueError(f"an entry bundle holds 1..{WIDTH} entries, found {len(entries)}")
    out = bytearray()
    for entry in entries:
        if len(entry) > MAX_ENTRY:
            raise ValueError(f"a tlog-tiles entry is at most {MAX_ENTRY} bytes, found {len(entry)}")
        out += struct.pack(">H", len(entry)) + entry
    return bytes(out)


def parse_bundle(tile: Tile, data: bytes) -> list[bytes]:
    """The entries of a bundle; MalformedInputError (BAD_TILE) unless exactly ``width`` length-prefixed
    entries with no trailing byte."""
    entries, pos = [], 0
    while pos < len(data):
        if pos + 2 > len(data):
            break
        (length,) = struct.unpack_from(">H", data, pos)
        if pos + 2 + length > len(data):
            break
        entries.append(data[pos + 2 : pos + 2 + length])
        pos += 2 + length
    if pos != len(data) or len(entries) != tile.width:
        raise MalformedInputError(
            f"{tile.path} must be {tile.width} uint16 length-prefixed entries and nothing else",
            code="BAD_TILE",
            path=tile.path,
        )
    return entries


def subtree_hash(hashes: Sequence[bytes]) -> bytes:
    """The hash of the perfect subtree whose leaves (of the subtree) are ``hashes`` (a power of two)."""
    row = list(hashes)
    if not row or len(row) & (len(row) - 1):
        raise ValueError(f"a perfect subtree has a power-of-two number of hashes, found {len(row)}")
    while len(row) > 1:
        row = [merkle.node_hash(row[i], row[i + 1]) for i in range(0, len(row), 2)]
    return row[0]


def node_in_tile(level: int, index: int) -> tuple[int, int, int]:
    """(tile level, first hash index at that tile level, hash count) of node ``(level, index)``."""
    tile_level, rise = divmod(level, HEIGHT)
    return tile_level, index << rise, 1 << rise


# --- reading a tiled tree -----------------------------------------------------------------------

Fetch = Callable[[str], bytes]
"""Read one resource of a tiled log by path (``checkpoint``, ``tile/...``); NotFoundError if absent."""


def directory_fetch(directory: Path) -> Fetch:
    """Read tiled-log resources from a directory (NotFoundError NO_TILE for a missing one)."""
    root = Path(directory)

    def fetch(path: str) -> bytes:
        try:
            return (root / path).read_bytes()
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            raise NotFoundError(f"{path} is not in {root}", code="NO_TILE", path=path) from None

    return fetch


class TiledTree:
    """The tree of ``size`` leaves read through ``fetch``: node hashes, root and RFC 6962 proofs.

    Each hash tile is read (and length-checked) once and kept. A hash tile whose hashes do not match
    what the tree needs is not detected here: the root a caller compares with a signed checkpoint,
    or the proof it verifies, is what catches it.
    """

    def __init__(self, fetch: Fetch, size: int) -> None:
        if isinstance(size, bool) or not isinstance(size, int) or size < 0:
            raise ValueError(f"a tree size is an int >= 0, found {size!r}")
        self.fetch = fetch
        self.size = size
        self._tiles: dict[Tile, list[list[bytes]]] = {}  # each tile's rows: its hashes, then each level above

    def tile(self, tile: Tile) -> list[bytes]:
        return self._rows(tile)[0]

    def _rows(self, tile: Tile) -> list[list[bytes]]:
        """The tile's hashes and the complete subtree hashes above them inside the tile (read once)."""
        if tile not in self._tiles:
            rows = [parse_hashes(tile, self.fetch(tile.path))]
            while len(rows[-1]) > 1:
                row = rows[-1]
                rows.append([merkle.node_hash(row[i], row[i + 1]) for i in range(0, len(row) - 1, 2)])
            self._tiles[tile] = rows
        return self._tiles[tile]

    def node(self, level: int, index: int) -> bytes:
        """Node ``(level, index)``: a perfect subtree complete in this tree."""
        if (index + 1) << level > self.size:
            raise ValueError(f"node ({level}, {index}) is not complete in a tree of size {self.size}")
        tile_level, first, count = node_in_tile(level, index)
        tile = tile_of(tile_level, first, self.size)
        offset = first - tile.index * WIDTH
        return self._rows(tile)[count.bit_length() - 1][offset // count]

    def nodes(self, coords: Iterable[merkle.Coord]) -> dict[merkle.Coord, bytes]:
        return {(level, index): self.node(level, index) for level, index in coords}

    def root(self) -> bytes:
        return merkle.root_from_nodes(self.size, self.nodes(merkle.root_coords(self.size)))

    def root_at(self, size: int) -> bytes:
        """The root of the tree's first ``size`` leaves (size <= this tree's)."""
        self._require_size(size)
        return merkle.root_from_nodes(size, self.nodes(merkle.root_coords(size)))

    def inclusion_proof(self, index: int, size: int | None = None) -> list[bytes]:
        size = self.size if size is None else size
        self._require_size(size)
        return merkle.inclusion_proof(index, size, self.nodes(merkle.inclusion_coords(index, size)))

    def consistency_proof(self, size1: int, size2: int | None = None) -> list[bytes]:
        size2 = self.size if size2 is None else size2
        self._require_size(size2)
        return merkle.consistency_proof(size1, size2, self.nodes(merkle.consistency_coords(size1, size2)))

    def leaf_hash(self, index: int) -> bytes:
        return self.node(0, index)

    def entry(self, index: int) -> bytes:
        """Leaf ``index``'s bytes from its entry bundle, checked against its level-0 tile hash."""
        bundle = bundle_of(index, self.size)
        entries = parse_bundle(bundle, self.fetch(bundle.path))
        entry = entries[index - bundle.index * WIDTH]
        if merkle.leaf_hash(entry) != self.leaf_hash(index):
            raise VerificationError(
                f"entry {index} in {bundle.path} does not hash to its level-0 tile hash", code="TILE_MISMATCH"
            )
        return entry

    def _require_size(self, size: int) -> None:
        if isinstance(size, bool) or not isinstance(size, int) or not 0 <= size <= self.size:
            raise ValueError(f"a tree of size {self.size} has no subtree of size {size!r}")


def nodes_from_store(nodes: Mapping[merkle.Coord, bytes], tile: Tile) -> list[bytes]:
    """The hashes of a hash tile taken from a (level, index) node mapping (``merkle.build_nodes``)."""
    assert tile.level is not None
    level = HEIGHT * tile.level
    return [nodes[(level, tile.index * WIDTH + i)] for i in range(tile.width)]


__all__ = [
    "CHECKPOINT",
    "HEIGHT",
    "WIDTH",
    "BadTilePath",
    "Fetch",
    "Tile",
    "TiledTree",
    "bundle_of",
    "directory_fetch",
    "encode_bundle",
    "encode_hashes",
    "encode_index",
    "new_tiles",
    "node_in_tile",
    "nodes_from_store",
    "parse_bundle",
    "parse_hashes",
    "parse_path",
    "partial_tiles",
    "subtree_hash",
    "tile_of",
    "tiles_at",
]
