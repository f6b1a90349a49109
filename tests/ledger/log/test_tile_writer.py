"""The tile writer (ledger/log/tile_writer.py): after each checkpoint, the new tiles then the checkpoint.

The log is filled with synthetic leaves through the node store (``ops.bench.bench_log.prefill``),
checkpointed at sizes that cross tile boundaries, and published after each checkpoint."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ledger.log import merkle, note, tiles
from ledger.log.rollback import latest_path
from ledger.log.tile_writer import TileConflict, TileWriter, directory_fetch, write_tiles
from ledger.store import Ledger
from ops.bench.bench_log import prefill
from tests.support.forks import fork_ledgers

SIZES = [255, 256, 257, 600]  # an initialised ledger has 2 entries (its key registry)


def _grow(ledger: Ledger, size: int) -> None:
    prefill(ledger, size)
    ledger.checkpoint()


def _verify_dir(ledger: Ledger, directory: Path) -> note.Checkpoint:
    """The directory's checkpoint is the ledger's, its tiles reproduce its root and every proof."""
    body = note.verify_checkpoint((directory / "checkpoint").read_bytes(), ledger.rollback_guard().log_key).checkpoint
    tree = tiles.TiledTree(directory_fetch(directory), body.size)
    assert tree.root() == body.root
    for index in {0, body.size // 2, body.size - 1}:
        assert tree.inclusion_proof(index) == ledger.inclusion_proof(index, body.size)
        assert merkle.leaf_hash(tree.entry(index)) == tree.leaf_hash(index)
        assert tree.entry(index) == ledger.leaf(index)
    for size1 in {1, body.size // 3 or 1, body.size}:
        assert tree.consistency_proof(size1) == ledger.consistency_proof(size1, body.size)
    return body


def test_every_checkpoint_is_published_with_tiles_reproducing_it(ledger: Ledger, tmp_path: Path) -> None:
    written: list[str] = []
    directory = tmp_path / "tiles"
    writer = TileWriter(directory, on_write=written.append)
    first = writer.publish(ledger)
    assert first is not None and first.size == 2 and written[-1] == "checkpoint"
    previous = first.size
    for size in SIZES:
        _grow(ledger, size)
        written.clear()
        assert writer.publish(ledger) is not None
        assert written[-1] == "checkpoint"  # last, after every tile it needs
        assert sorted(written[:-1]) == sorted(t.path for t in tiles.new_tiles(previous, size))
        assert _verify_dir(ledger, directory).size == size
        previous = size
    written.clear()
    assert writer.publish(ledger) is not None and written == []  # nothing changed: nothing written
    # the full tiles never change; a partial one stays (for the checkpoints that need it)
    assert (directory / "tile/0/000.p/2").is_file() and (directory / "tile/1/000.p/1").is_file()
    assert len((directory / "tile/0/000").read_bytes()) == 8192


def test_tiles_are_world_readable_whatever_the_umask(ledger: Ledger, tmp_path: Path) -> None:
    """The service runs with UMask=0077 and a web server as another user reads the tiles: the writer
    sets 0644 on files and 0755 on the directories it makes itself, whatever the umask."""
    directory = tmp_path / "public" / "tiles"
    old = os.umask(0o077)
    try:
        writer = TileWriter(directory)
        writer.publish(ledger)
        _grow(ledger, 300)
        writer.publish(ledger)
        (tmp_path / "private").write_bytes(b"")  # what the umask does to any other file
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "private").stat().st_mode) == 0o600
    files = [p for p in directory.rglob("*") if p.is_file()]
    dirs = [directory.parent, directory, *(p for p in directory.rglob("*") if p.is_dir())]
    assert "checkpoint" in {p.name for p in files} and (directory / "tile/0/000").is_file() and len(dirs) > 5
    assert {p.relative_to(directory).as_posix(): stat.S_IMODE(p.stat().st_mode) for p in files} == {
        p.relative_to(directory).as_posix(): 0o644 for p in files}
    assert {str(p): stat.S_IMODE(p.stat().st_mode) for p in dirs} == {str(p): 0o755 for p in dirs}


def test_the_directory_rebuilt_from_the_database_is_identical(ledger: Ledger, tmp_path: Path) -> None:
    incremental, rebuilt = tmp_path / "a", tmp_path / "b"
    writer = TileWriter(incremental)
    writer.publish(ledger)
    for size in (100, 300, 513):
        _grow(ledger, size)
        writer.publish(ledger)
    count, checkpoint = write_tiles(ledger, rebuilt)
    assert checkpoint is not None and checkpoint.size == 513
    files = {p.relative_to(rebuilt) for p in rebuilt.rglob("*") if p.is_file()}
    assert files == {p.relative_to(incremental) for p in incremental.rglob("*") if p.is_file()} - {
        Path("tile/0/000.p/100"), Path("tile/0/001.p/44"), Path("tile/entries/000.p/100"),
        Path("tile/entries/001.p/44"), Path("tile/1/000.p/1"), Path("tile/0/000.p/2"), Path("tile/entries/000.p/2"),
    }
    assert count == len(files)
    for name in files:
        assert (rebuilt / name).read_bytes() == (incremental / name).read_bytes()
    again, _ = write_tiles(ledger, rebuilt)
    assert again == 0  # everything already there and equal


def test_a_crash_between_tiles_and_checkpoint_leaves_the_old_checkpoint_valid(ledger: Ledger, tmp_path: Path) -> None:
    directory = tmp_path / "tiles"
    _grow(ledger, 300)
    TileWriter(directory).publish(ledger)
    old = (directory / "checkpoint").read_bytes()
    _grow(ledger, 800)

    def crash(path: str) -> None:
        if path.startswith("tile/0/"):
            raise OSError("simulated crash")

    with pytest.raises(OSError):
        TileWriter(directory, on_write=crash).publish(ledger)
    assert (directory / "checkpoint").read_bytes() == old
    assert _verify_dir(ledger, directory).size == 300
    assert not [p for p in directory.rglob(".*.tmp")]
    TileWriter(directory).publish(ledger)  # a restarted writer completes the directory
    assert _verify_dir(ledger, directory).size == 800


def test_a_tile_with_other_bytes_is_never_overwritten(ledger: Ledger, tmp_path: Path) -> None:
    directory = tmp_path / "tiles"
    _grow(ledger, 300)
    TileWriter(directory).publish(ledger)
    full = directory / "tile/0/000"
    altered = bytearray(full.read_bytes())
    altered[100] ^= 1
    full.write_bytes(bytes(altered))
    with pytest.raises(TileConflict):
        write_tiles(ledger, directory)
    assert full.read_bytes() == bytes(altered)
    _grow(ledger, 600)
    before = (directory / "checkpoint").read_bytes()
    with pytest.raises(TileConflict):  # the complete rewrite compares every tile, and stops at the first
        write_tiles(ledger, directory)
    assert (directory / "checkpoint").read_bytes() == before and full.read_bytes() == bytes(altered)


def test_a_tile_of_the_new_checkpoint_with_other_bytes_stops_the_checkpoint(ledger: Ledger, tmp_path: Path) -> None:
    directory = tmp_path / "tiles"
    _grow(ledger, 300)
    writer = TileWriter(directory)
    writer.publish(ledger)
    before = (directory / "checkpoint").read_bytes()
    _grow(ledger, 600)
    squatter = directory / "tile/0/001"
    squatter.write_bytes(b"\x00" * 8192)
    with pytest.raises(TileConflict):
        writer.publish(ledger)
    assert (directory / "checkpoint").read_bytes() == before and squatter.read_bytes() == b"\x00" * 8192


def test_the_checkpointer_publishes_the_tiles(ledger: Ledger, tmp_path: Path) -> None:
    from ledger.log.checkpointer import Checkpointer

    directory = tmp_path / "tiles"
    checkpointer = Checkpointer(ledger, interval=3600, tiles=TileWriter(directory))
    prefill(ledger, 42)
    checkpointer.tick()
    assert _verify_dir(ledger, directory).size == 42


@pytest.mark.parametrize("backend", ["sqlite"])
def test_production_publishes_the_witnessed_checkpoint_only(tmp_path: Path, database_url: str | None) -> None:
    """In the production profile `checkpoint` is the newest checkpoint cosigned by enough witnesses,
    with its cosignatures; tiles of a newer, unwitnessed checkpoint may be there, its note is not."""
    from ledger.log.witnessing import checkpoint_with_witnesses, configure_witness
    from tests.support.production import production_ledger, witnesses

    ledger = production_ledger(tmp_path, database_url)
    directory = tmp_path / "tiles"
    writer = TileWriter(directory)
    try:
        with witnesses(ledger, tmp_path, "middlesexda.gov/witness", "mass.gov/ago-witness") as (da, ag):
            for witness in (da, ag):
                configure_witness(ledger.data_dir, witness.url, str(witness.vkey))
            prefill(ledger, 300)
            published = checkpoint_with_witnesses(ledger, timeout=10)
            assert published is not None and len(published.cosignatures) == 2
            writer.publish(ledger)
            served = (directory / "checkpoint").read_bytes()
            assert served == published.with_cosignatures()
            note.verify_checkpoint(served, ledger.rollback_guard().log_key, [da.vkey, ag.vkey], 2)
            ag.stop()
            prefill(ledger, 700)
            signed = checkpoint_with_witnesses(ledger, timeout=2)
            assert signed is not None and signed.size == 700 and len(signed.cosignatures) == 1
            writer.publish(ledger)
            assert (directory / "checkpoint").read_bytes() == served  # still the witnessed one
            assert (directory / "tile/0/001").is_file() and (directory / "tile/0/002.p/188").is_file()
            assert _verify_dir(ledger, directory).size == 300
    finally:
        ledger.close()


@pytest.mark.parametrize("backend", ["sqlite"])  # the fork copies a SQLite data dir
def test_a_restored_or_forked_database_never_rewrites_the_directory(
    make_ledger: Callable[..., Ledger], tmp_path: Path
) -> None:
    """``b`` is a copy of ``a``'s data dir taken earlier: an old backup restored, then a fork."""
    fork = fork_ledgers(make_ledger, tmp_path)
    directory = tmp_path / "tiles"
    fork.grow("a", 3)
    TileWriter(directory).publish(fork.a)
    ahead = (directory / "checkpoint").read_bytes()
    with pytest.raises(TileConflict):  # the backup is behind: the published checkpoint never shrinks
        TileWriter(directory).publish(fork.b)
    assert (directory / "checkpoint").read_bytes() == ahead
    fork.grow("b", 6)  # another history, larger
    before = sorted(p for p in directory.rglob("*") if p.is_file())
    with pytest.raises(TileConflict):
        TileWriter(directory).publish(fork.b)
    assert (directory / "checkpoint").read_bytes() == ahead
    assert sorted(p for p in directory.rglob("*") if p.is_file()) == before  # refused before writing a tile


def test_the_directory_checkpoint_is_recorded_in_the_rollback_guard(ledger: Ledger, tmp_path: Path) -> None:
    """Only a checkpoint of this log (key and origin), only when larger; another root for the
    recorded size is a conflict, never recorded."""
    directory = tmp_path / "tiles"
    guard = latest_path(ledger.data_dir)
    writer = TileWriter(directory)
    assert writer.guard_published(ledger) == "absent"
    older = guard.read_bytes()
    _grow(ledger, 300)
    writer.publish(ledger)
    assert writer.state() == {"size": 300, "error": None, "conflicts": 0}
    published = (directory / "checkpoint").read_bytes()
    assert TileWriter(directory).guard_published(ledger) == "kept"
    guard.write_bytes(older)  # a guard file older than the tiles (restored with the keys set)
    assert TileWriter(directory).guard_published(ledger) == "recorded"
    assert guard.read_bytes() == published

    name = ledger.config.log_key_name
    for forged in (
        note.sign_note(note.Checkpoint(ledger.origin + "/other", 900, b"\x02" * 32).body(), name, ledger.log_key),
        note.sign_note(note.Checkpoint(ledger.origin, 900, b"\x02" * 32).body(), name, Ed25519PrivateKey.generate()),
    ):
        (directory / "checkpoint").write_bytes(forged)
        untrusting = TileWriter(directory)
        assert untrusting.guard_published(ledger) == "untrusted"
        assert untrusting.published_size == 0 and "not trusted" in str(untrusting.error)
        assert guard.read_bytes() == published

    fork = note.sign_note(note.Checkpoint(ledger.origin, 300, b"\x02" * 32).body(), name, ledger.log_key)
    (directory / "checkpoint").write_bytes(fork)
    forked = TileWriter(directory)
    assert forked.guard_published(ledger) == "conflict"
    assert forked.conflicts == 1 and str(forked.error).startswith("TILE_CONFLICT: ")
    assert guard.read_bytes() == published
    with pytest.raises(TileConflict):  # not in the database's history: never replaced
        forked.publish(ledger)
    assert forked.conflicts == 2 and (directory / "checkpoint").read_bytes() == fork
