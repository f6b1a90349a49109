"""`evidence-ledger audit --tiles DIR|URL`: the tiled log checked with no database — checkpoint, every
tile and entry bundle, the root — and compared with the checkpoint this client remembers."""

from __future__ import annotations

import hashlib
import json
import shutil
import threading
from collections.abc import Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from ledger.cli.app import commands
from ledger.log import merkle, note, tiles
from ledger.log.leaf import leaf_bytes
from ledger.log.tile_writer import TileWriter
from ledger.store import Ledger
from ops.bench.bench_log import prefill

pytestmark = pytest.mark.parametrize("backend", ["sqlite"])  # the audit reads files: one backend is enough


def _audit(*args: str, code: int) -> dict[str, Any]:
    result = CliRunner().invoke(commands(), ["audit", *args, "--json"], terminal_width=400)
    assert result.exit_code == code, result.output
    report: dict[str, Any] = json.loads(result.stdout)
    return report


def _published(ledger: Ledger, directory: Path, size: int) -> Path:
    prefill(ledger, size)
    ledger.checkpoint()
    TileWriter(directory).publish(ledger)
    return directory


@pytest.fixture
def tiled(ledger: Ledger, tmp_path: Path) -> tuple[Ledger, Path, str]:
    directory = _published(ledger, tmp_path / "tiles", 600)
    return ledger, directory, str(ledger.rollback_guard().log_key)


def _flip(path: Path, at: int) -> None:
    data = bytearray(path.read_bytes())
    data[at] ^= 1
    path.write_bytes(bytes(data))


def _codes(report: dict[str, Any]) -> list[str]:
    return [f["code"] for f in report["findings"]]


def test_a_good_tiled_log_passes_and_is_remembered(tiled: tuple[Ledger, Path, str]) -> None:
    _, directory, vkey = tiled
    report = _audit("--tiles", str(directory), "--vkey", vkey, code=0)
    assert report["ok"] and report["log_size"] == 600 and report["findings"] == []
    assert report["tiles_read"] == len(tiles.tiles_at(600))  # every tile and entry bundle
    assert "client memory: first" in report["notes"][0]
    assert "client memory: same" in _audit("--tiles", str(directory), "--vkey", vkey, code=0)["notes"][0]


@pytest.mark.parametrize(
    ("target", "at", "code"),
    [
        ("tile/0/000", 100, "TILE_MISMATCH"),  # a leaf hash
        ("tile/0/002.p/88", 31, "TILE_MISMATCH"),  # a leaf hash in the partial tile
        ("tile/entries/001", 40, "TILE_MISMATCH"),  # an entry's bytes
        ("tile/1/000.p/2", 33, "TILE_MISMATCH"),  # a level-1 hash
        ("checkpoint", 3, "BAD_CHECKPOINT"),  # the signed note's origin line
    ],
)
def test_one_flipped_byte_is_found(tiled: tuple[Ledger, Path, str], target: str, at: int, code: str) -> None:
    _, directory, vkey = tiled
    _flip(directory / target, at)
    report = _audit("--tiles", str(directory), "--vkey", vkey, code=1)
    assert _codes(report)[0] == code, report["findings"]


def test_truncated_missing_and_root_mismatch(tiled: tuple[Ledger, Path, str], tmp_path: Path) -> None:
    ledger, directory, vkey = tiled
    copy = tmp_path / "copy"
    shutil.copytree(directory, copy)
    (copy / "tile/0/001").write_bytes((copy / "tile/0/001").read_bytes()[:-1])
    assert _codes(_audit("--tiles", str(copy), "--vkey", vkey, code=1)) == ["BAD_TILE"]
    (copy / "tile/0/001").unlink()
    assert _codes(_audit("--tiles", str(copy), "--vkey", vkey, code=1)) == ["MISSING_TILE"]
    body = note.Checkpoint(ledger.origin, 600, hashlib.sha256(b"another root").digest()).body()
    (directory / "checkpoint").write_bytes(note.sign_note(body, ledger.config.log_key_name, ledger.log_key))
    assert _codes(_audit("--tiles", str(directory), "--vkey", vkey, code=1)) == ["ROOT_MISMATCH"]


def test_a_leaf_with_another_index_is_bad_leaf(ledger: Ledger, tmp_path: Path) -> None:
    """Consistent tiles, signed by the log key, whose entry 5 says it is entry 6."""
    leaves = [leaf_bytes("ab" * 32, 6 if i == 5 else i, "2026-01-01T00:00:00Z") for i in range(10)]
    nodes = merkle.build_nodes([merkle.leaf_hash(leaf) for leaf in leaves])
    directory = tmp_path / "forged"
    for tile in tiles.tiles_at(10):
        (directory / tile.path).parent.mkdir(parents=True, exist_ok=True)
        (directory / tile.path).write_bytes(
            tiles.encode_bundle(leaves) if tile.entries else tiles.encode_hashes(tiles.nodes_from_store(nodes, tile))
        )
    body = note.Checkpoint(ledger.origin, 10, merkle.root_from_nodes(10, nodes)).body()
    (directory / "checkpoint").write_bytes(note.sign_note(body, ledger.config.log_key_name, ledger.log_key))
    report = _audit("--tiles", str(directory), "--vkey", str(ledger.rollback_guard().log_key), code=1)
    assert [(f["code"], f["leaf_index"]) for f in report["findings"]] == [("BAD_LEAF", 5)]


def test_a_smaller_tree_than_remembered_is_a_rollback(ledger: Ledger, tmp_path: Path) -> None:
    vkey = str(ledger.rollback_guard().log_key)
    old = tmp_path / "old"
    shutil.copytree(_published(ledger, tmp_path / "tiles", 300), old)
    _published(ledger, tmp_path / "tiles", 900)
    assert "client memory: first" in _audit("--tiles", str(tmp_path / "tiles"), "--vkey", vkey, code=0)["notes"][0]
    assert _codes(_audit("--tiles", str(old), "--vkey", vkey, code=1)) == ["ROLLBACK"]


@pytest.fixture
def served(tiled: tuple[Ledger, Path, str]) -> Iterator[str]:
    """The directory served as it is by the standard library's http.server (docs: python -m http.server)."""
    handler = partial(SimpleHTTPRequestHandler, directory=str(tiled[1]))
    handler.log_message = lambda *args: None  # type: ignore[attr-defined]
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


def test_the_audit_reads_tiles_over_http(tiled: tuple[Ledger, Path, str], served: str) -> None:
    _, directory, vkey = tiled
    assert _audit("--tiles", served, "--vkey", vkey, code=0)["log_size"] == 600
    _flip(directory / "tile/entries/000", 50)
    assert _codes(_audit("--tiles", served, "--vkey", vkey, code=1)) == ["TILE_MISMATCH"]


def test_without_a_key_it_is_unusable(tiled: tuple[Ledger, Path, str], tmp_path: Path) -> None:
    result = CliRunner().invoke(commands(), ["audit", "--tiles", str(tiled[1])], terminal_width=400)
    assert result.exit_code == 2 and "--vkey" in result.output
    result = CliRunner().invoke(commands(), ["audit", "--tiles", str(tmp_path / "nothing"), "--vkey", tiled[2]])
    assert result.exit_code == 2
