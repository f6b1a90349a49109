"""Go interop for the tiled log: Go's own tile code reads the directory the ledger writes.

``ops/interop/gocheck tiles`` reads our C2SP tlog-tiles through ``tlog.TileHashReader`` (which
authenticates every tile it reads against the checkpoint's root) with a ``TileReader`` mapping
sumdb's ``tile/8/L/N`` paths to C2SP's ``tile/L/N``; its TreeHash, ProveRecord and ProveTree must
equal ours, every entry bundle must hash to its level-0 tile, and every tile path must round-trip
through ``tlog.ParseTilePath``. A tile with one flipped byte on the path Go authenticates must make
Go fail. (x/mod 0.7.0's TileHashReader skips authenticating some full tiles that are not on the
root's path when the root's subtrees share a tile — fixed in later x/mod — so the flips chosen here
are the tiles Go does check; our own ``audit --tiles`` checks every tile.) Skipped without Go, like
test_interop_go.py (a failure with CI set)."""

from __future__ import annotations

import base64
import shutil
import subprocess
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ledger.log import merkle, note, tiles
from ledger.log.tile_writer import TileWriter, directory_fetch
from ledger.store import Ledger
from ops.bench.bench_log import prefill
from tests.support.gocheck import build_gocheck, go_or_skip

SIZE = 1300  # through the ledger's writer: full and partial tiles at levels 0 and 1
BIG = 66_000  # in memory: a full level-1 tile and a level-2 tile
ORIGIN = "interop.example/log"


@pytest.fixture(scope="module")
def gocheck(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_gocheck(go_or_skip(), tmp_path_factory.mktemp("gocheck-tiles"))


def _run(binary: Path, directory: Path, vkey: str, indexes: list[int], sizes: list[int]) -> dict[str, str]:
    run = subprocess.run(
        [str(binary), "tiles", str(directory), vkey, ",".join(map(str, indexes)), ",".join(map(str, sizes))],
        capture_output=True, text=True, timeout=120,
    )
    assert run.returncode == 0, run.stderr
    out = {}
    for line in run.stdout.splitlines():
        kind, _, rest = line.partition(" ")
        key, _, value = rest.partition(" ") if kind in ("record", "tree") else (kind, "", rest)
        out[f"{kind} {key}" if kind in ("record", "tree") else kind] = value
    return out


def _b64(hashes: list[bytes]) -> str:
    return ",".join(base64.b64encode(h).decode() for h in hashes)


def _compare(binary: Path, directory: Path, vkey: str, ours: tiles.TiledTree, indexes: list[int], sizes: list[int]) -> None:
    out = _run(binary, directory, vkey, indexes, sizes)
    assert "FAIL" not in out, out["FAIL"]
    assert out["size"] == str(ours.size)
    assert base64.b64decode(out["root"]) == ours.root()
    for index in indexes:
        assert out[f"record {index}"] == _b64(ours.inclusion_proof(index)), index
    for size in sizes:
        assert out[f"tree {size}"] == _b64(ours.consistency_proof(size)), size
    assert out["entries"] == str(ours.size)
    assert int(out["paths"]) == len([p for p in (directory / "tile").rglob("*") if p.is_file()])


def _flipped(directory: Path, target: str, tmp_path: Path) -> Path:
    flipped = tmp_path / f"flipped-{target.replace('/', '-')}"
    shutil.copytree(directory, flipped)
    data = bytearray((flipped / target).read_bytes())
    data[min(40, len(data) - 1)] ^= 1
    (flipped / target).write_bytes(bytes(data))
    return flipped


@pytest.mark.parametrize("backend", ["sqlite"])
@pytest.mark.xdist_group("gocheck")
def test_go_reads_the_tiles_the_ledger_writes(gocheck: Path, ledger: Ledger, tmp_path: Path) -> None:
    directory = tmp_path / "tiles"
    writer = TileWriter(directory)
    for size in (300, SIZE):  # two checkpoints: a partial tile left by the first, full tiles after it
        prefill(ledger, size)
        ledger.checkpoint()
        writer.publish(ledger)
    log_key = ledger.rollback_guard().log_key
    assert note.verify_checkpoint((directory / "checkpoint").read_bytes(), log_key).checkpoint.size == SIZE
    ours = tiles.TiledTree(directory_fetch(directory), SIZE)
    everything = list(range(SIZE))
    _compare(gocheck, directory, str(log_key), ours, everything, [*everything[1:], SIZE])
    for index in (0, 700, SIZE - 1):  # and the database's proofs are the same
        assert ours.inclusion_proof(index) == ledger.inclusion_proof(index, SIZE)
        assert ours.consistency_proof(index + 1) == ledger.consistency_proof(index + 1, SIZE)
    for target in ("tile/0/000", "tile/1/000.p/5", "tile/entries/001", "tile/0/005.p/20"):
        assert "FAIL" in _run(gocheck, _flipped(directory, target, tmp_path), str(log_key), [0, 300], [1]), target


@pytest.mark.xdist_group("gocheck")
def test_go_reads_a_three_level_tiled_tree(gocheck: Path, tmp_path: Path) -> None:
    directory = tmp_path / "big"
    leaves = [b"big leaf %d" % i for i in range(BIG)]
    nodes = merkle.build_nodes([merkle.leaf_hash(leaf) for leaf in leaves])
    for tile in tiles.tiles_at(BIG):
        path = directory / tile.path
        path.parent.mkdir(parents=True, exist_ok=True)
        start = tile.index * tiles.WIDTH
        path.write_bytes(
            tiles.encode_bundle(leaves[start : start + tile.width]) if tile.entries
            else tiles.encode_hashes(tiles.nodes_from_store(nodes, tile))
        )
    key = Ed25519PrivateKey.from_private_bytes(bytes(32))
    root = merkle.root_from_nodes(BIG, nodes)
    (directory / "checkpoint").write_bytes(note.sign_note(note.Checkpoint(ORIGIN, BIG, root).body(), ORIGIN, key))
    vkey = str(note.make_verifier_key(ORIGIN, key.public_key()))
    ours = tiles.TiledTree(directory_fetch(directory), BIG)
    picks = [0, 1, 255, 256, 65535, 65536, 65791, 65792, BIG - 1]
    _compare(gocheck, directory, vkey, ours, picks, [p + 1 for p in picks])
    for target in ("tile/2/000.p/1", "tile/0/257.p/208", "tile/entries/100", "tile/1/001.p/1"):
        assert "FAIL" in _run(gocheck, _flipped(directory, target, tmp_path), vkey, [0, 65536], [1]), target
