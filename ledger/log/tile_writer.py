"""Publish the case log as C2SP tlog-tiles in a directory (docs/formats.md, "Tiled log").

After each checkpoint the service calls :meth:`TileWriter.publish`: it writes the tiles and entry
bundles the new tree has (and the partial ones of the published checkpoint), each atomically (temp
file, fsync, rename), fsyncs every directory it changed, checks that the tiles on disk reproduce
the checkpoint's root, and only then replaces ``checkpoint``. A reader therefore never sees a
checkpoint whose tiles are missing, and a crash leaves at worst tiles no checkpoint refers to yet.

Every tile path names fixed bytes (a full tile, and a partial tile of a given width, never change),
so a tile already on disk is compared, not rewritten: different bytes are TILE_CONFLICT (the
directory holds another log, or was altered) and nothing further is written. The checkpoint is the
published one (``Ledger.published_checkpoint``: in the production profile the newest one cosigned by
enough witnesses, with its cosignatures).

At start :meth:`TileWriter.guard_published` records the directory's checkpoint in the rollback guard
(``ledger.log.rollback``) when it verifies under the log key: a database restored to an older state
than the tiles already publish then refuses writes exactly as when the guard file itself is newer.
The writer keeps its state for ``/readyz`` and ``/metrics``: the published size, the last error and
the number of TILE_CONFLICTs seen.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from domain.errors import LedgerError
from ledger.durable import fsync_dir, make_dirs, replace_synced, write_atomic
from ledger.log import merkle, note, tiles, tlog
from ledger.log.tiles import directory_fetch
from ledger.storage.integrity import tampered

# Tiles are public by design and read by a web server running as another user (docs/deployment.md):
# files 0644 and directories 0755 exactly, whatever the service's umask (its unit sets UMask=0077).
FILE_MODE = 0o644
DIR_MODE = 0o755


class TileConflict(LedgerError):
    """A tile on disk holds other bytes than the log's: it is never overwritten."""

    code = "TILE_CONFLICT"


def _write_new(path: Path, data: bytes) -> bool:
    """Write ``path`` (temp file, fsync, rename; the directory is fsynced by the caller) unless it
    holds ``data`` already; TileConflict if it holds anything else. True when written."""
    try:
        held = path.read_bytes()
    except FileNotFoundError:
        held = None
    if held == data:
        return False
    if held is not None:
        raise TileConflict(f"{path.name} in the tiles directory holds other bytes than the log's: not overwritten")
    make_dirs(path.parent, DIR_MODE)
    replace_synced(path, data, FILE_MODE, exact_mode=True)
    return True


def tile_bytes(tx: Any, tile: tiles.Tile) -> bytes:
    """The bytes of a tile of the case log, read from the node store (and the entries)."""
    start, end = tile.index * tiles.WIDTH, tile.index * tiles.WIDTH + tile.width
    if tile.level is not None:
        return tiles.encode_hashes(tlog.nodes_between(tx, tiles.HEIGHT * tile.level, start, end))
    leaves = tlog.leaves_between(tx, start, end)
    hashes = tlog.nodes_between(tx, 0, start, end)
    if any(merkle.leaf_hash(leaf) != h for leaf, h in zip(leaves, hashes, strict=True)):
        raise tampered("the log", check="tiles: a leaf does not hash to its stored node", stream="log")
    return tiles.encode_bundle(leaves)


class TileWriter:
    """Writes the tiled log of one ledger into ``directory``; thread-safe, incremental."""

    def __init__(self, directory: Path, *, on_write: Callable[[str], None] | None = None) -> None:
        self.directory = Path(directory)
        self.on_write = on_write  # called with each path written (tests: the order of writes)
        self._lock = threading.Lock()
        self._done: int | None = None  # every tile of this size and below is on disk (None: not known yet)
        self.published_size = 0  # the size of the directory's checkpoint, as last written or verified
        self.error: str | None = None  # why the last publication failed ("CODE: reason"), None after a success
        self.conflicts = 0  # TILE_CONFLICTs seen since start (publications refused)

    def guard_published(self, ledger: Any) -> str:
        """Record the directory's checkpoint in the rollback guard (``CheckpointGuard.record``: only a
        larger one, or the same one with more cosignatures, replaces the record) — before the rollback
        status is computed, so that a database older than the published tiles refuses writes.

        Returns ``absent`` (no checkpoint), ``untrusted`` (not a checkpoint of this log: not recorded),
        ``recorded``, ``kept`` (the guard already holds it or a newer one) or ``conflict`` (the guard
        holds another root for the same size). Never raises for the directory's content."""
        data = self._read(tiles.CHECKPOINT)
        if data is None:
            return "absent"
        guard = ledger.rollback_guard()
        try:
            body = note.verify_checkpoint(data, guard.log_key, origin=ledger.origin).checkpoint
        except LedgerError as exc:
            self.error = f"{exc.code}: the tiles directory's checkpoint does not verify under the log key (not trusted)"
            return "untrusted"
        self.published_size = int(body.size)
        try:
            return "recorded" if guard.record(data) else "kept"
        except LedgerError as exc:
            self.conflicts += 1
            self.error = f"TILE_CONFLICT: {exc.message}"
            return "conflict"

    def state(self) -> dict[str, object]:
        """For /readyz: the published size, the last error (None when the last publication succeeded)
        and the TILE_CONFLICTs seen since start."""
        return {"size": self.published_size, "error": self.error, "conflicts": self.conflicts}

    @property
    def written_size(self) -> int:
        return self._done or 0

    def publish(self, ledger: Any) -> tlog.StoredCheckpoint | None:
        """Write what the newest checkpoint and the published one need, then the published checkpoint.
        Returns the checkpoint written (None when there is none to publish yet)."""
        try:
            published = self._publish(ledger)
        except TileConflict as exc:
            self.conflicts += 1
            self.error = f"{exc.code}: {exc.message}"
            raise
        except LedgerError as exc:
            self.error = exc.code
            raise
        self.error = None
        if published is not None:
            self.published_size = published.size
        return published

    def _publish(self, ledger: Any) -> tlog.StoredCheckpoint | None:
        with self._lock:
            latest = ledger.latest_checkpoint()
            if latest is None:
                return None
            published = ledger.published_checkpoint()
            held = self._read(tiles.CHECKPOINT)
            self._never_backwards(ledger, held, published or latest)  # before any tile is written
            if self._done is None:
                self._done = self._resume(ledger)
            sizes = sorted({latest.size, *([] if published is None else [published.size])})
            dirs: set[Path] = set()
            with ledger.db.read() as tx:
                for size in sizes:
                    if size >= self._done:
                        todo = tiles.new_tiles(self._done, size)
                    else:  # a published checkpoint older than what is written: its partial tiles
                        todo = tiles.partial_tiles(size)
                    for tile in todo:
                        self._write(self.directory / tile.path, tile_bytes(tx, tile), tile.path, dirs)
            for directory in sorted(dirs, key=lambda d: len(d.parts), reverse=True):
                fsync_dir(directory)
            self._done = max(self._done, sizes[-1])
            if published is None:
                return None
            self._check_root(published)
            data = published.with_cosignatures()
            if held != data:
                write_atomic(self.directory / tiles.CHECKPOINT, data, FILE_MODE, exact_mode=True)
                if self.on_write is not None:
                    self.on_write(tiles.CHECKPOINT)
            return published

    def _write(self, path: Path, data: bytes, name: str, dirs: set[Path]) -> None:
        if not path.parent.exists():
            parent = path.parent
            while not parent.exists():  # new directories: their parents' entries must be fsynced too
                dirs.add(parent.parent)
                parent = parent.parent
        if _write_new(path, data):
            dirs.add(path.parent)
            if self.on_write is not None:
                self.on_write(name)

    def _read(self, name: str) -> bytes | None:
        try:
            return (self.directory / name).read_bytes()
        except FileNotFoundError:
            return None

    def _never_backwards(self, ledger: Any, held: bytes | None, published: tlog.StoredCheckpoint) -> None:
        """The directory's checkpoint (when this log signed it) is only replaced by one that extends it:
        never by a smaller one (a database restored from an older backup) nor by another history (a
        forked database): clients would see the log shrink or fork. TileConflict instead."""
        if held is None:
            return
        try:
            body = note.verify_checkpoint(held, ledger.rollback_guard().log_key, origin=ledger.origin).checkpoint
        except LedgerError:
            return  # not this log's note: replaced
        if body.size > published.size:
            raise TileConflict(
                f"the tiles directory publishes a checkpoint of size {body.size}, larger than the database's"
                f" published one ({published.size}): not moved backwards (was the database rolled back?)"
            )
        with ledger.db.read() as tx:
            ours = tlog.root_at(tx, body.size) if body.size else merkle.EMPTY_ROOT
        if ours != body.root:
            raise TileConflict(
                f"the tiles directory publishes a checkpoint of size {body.size} that is not in the database's"
                " history: not replaced (another log's directory, or a forked database)"
            )

    def _check_root(self, checkpoint: tlog.StoredCheckpoint) -> None:
        """The tiles on disk must reproduce the checkpoint's root before it is published."""
        tree = tiles.TiledTree(directory_fetch(self.directory), checkpoint.size)
        try:
            root = tree.root()
        except LedgerError as exc:
            raise TileConflict(f"the tiles of size {checkpoint.size} are unreadable: {exc.message}") from None
        if root != checkpoint.root:
            raise TileConflict(f"the tiles of size {checkpoint.size} do not reproduce its checkpoint's root")

    def _resume(self, ledger: Any) -> int:
        """The size whose tiles are all on disk already: the directory's checkpoint's, when it is one
        this log signed, its tiles reproduce its root and the database agrees; else 0 (every tile is
        then compared or written once)."""
        data = self._read(tiles.CHECKPOINT)
        if data is None:
            return 0
        try:
            body = note.verify_checkpoint(data, ledger.rollback_guard().log_key, origin=ledger.origin).checkpoint
            if body.size > ledger.log_size():
                return 0
            with ledger.db.read() as tx:
                if tlog.root_at(tx, body.size) != body.root:
                    return 0
            if tiles.TiledTree(directory_fetch(self.directory), body.size).root() != body.root:
                return 0
        except LedgerError:
            return 0
        return int(body.size)


def write_tiles(ledger: Any, directory: Path) -> tuple[int, tlog.StoredCheckpoint | None]:
    """Write (or complete) a tiles directory from the database: (files written, checkpoint published)."""
    written: list[str] = []
    writer = TileWriter(directory, on_write=written.append)
    writer._done = 0  # compare every tile already there, not only those after its checkpoint
    checkpoint = writer.publish(ledger)
    return len(written), checkpoint


__all__ = ["TileConflict", "TileWriter", "directory_fetch", "tile_bytes", "write_tiles"]
