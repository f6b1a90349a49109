"""The transparency logs inside the ledger's storage: leaves, tree nodes, checkpoints, proofs.

Leaf ``n`` of the case log is the RFC 8785 commitment ``{"envelope_sha256", "index", "integrated_at",
"v": 1}`` (no case content). Every complete perfect-subtree hash is stored in ``log_nodes`` as
(level, index), so appending costs O(log n) hashes and inserts, and the root or any proof needs
O(log n) node reads.

The access log (``ledger/log/access.py``) is a second tree of the same kind in its own tables; every
function here takes the :class:`Tables` of the log it works on (the case log by default).
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from domain.errors import LedgerError, NotFoundError
from ledger.envelope.canonical import format_time
from ledger.log import merkle, note
from ledger.log.leaf import leaf_bytes as leaf_bytes  # re-exported for callers of the log API
from ledger.storage.integrity import tampered
from ledger.storage.sql import Tx


@dataclass(frozen=True)
class Tables:
    """The tables one Merkle log lives in (constant names, never user input)."""

    entries: str
    index: str  # the entries' leaf index column
    nodes: str
    checkpoints: str
    cosignatures: str | None  # witness cosignature lines, when the log has any


CASE_LOG = Tables("log_entries", "leaf_index", "log_nodes", "log_checkpoints", "log_cosignatures")
ACCESS_LOG = Tables("access_entries", "entry_index", "access_nodes", "access_checkpoints", None)


def log_size(tx: Tx) -> tuple[int, str | None]:
    """(number of leaves, integrated_at of the last leaf)."""
    row = tx.one("SELECT leaf_index, integrated_at FROM log_entries ORDER BY leaf_index DESC LIMIT 1")
    return (0, None) if row is None else (int(row[0]) + 1, str(row[1]))


def fetch_nodes(
    tx: Tx, coords: Sequence[tuple[int, int]], tables: Tables = CASE_LOG
) -> dict[tuple[int, int], bytes]:
    """Read the given (level, index) nodes in one query."""
    if not coords:
        return {}
    wanted = sorted(set(coords))
    clause = " OR ".join(["(level = ? AND idx = ?)"] * len(wanted))
    params = [value for coord in wanted for value in coord]
    rows = tx.query(f"SELECT level, idx, hash FROM {tables.nodes} WHERE {clause}", params)
    found = {(int(level), int(idx)): bytes(h) for level, idx, h in rows}
    missing = [c for c in wanted if c not in found]
    if missing:
        raise NotFoundError(f"log tree node {missing[0]} is missing from storage", code="MISSING_NODE")
    return found


def load_range(tx: Tx, size: int, tables: Tables = CASE_LOG) -> merkle.CompactRange:
    coords = merkle.frontier_coords(size)
    return merkle.CompactRange(size, fetch_nodes(tx, coords, tables))


def store_nodes(tx: Tx, nodes: Sequence[tuple[int, int, bytes]], tables: Tables = CASE_LOG) -> None:
    tx.executemany(f"INSERT INTO {tables.nodes} (level, idx, hash) VALUES (?, ?, ?)", nodes)


def root_at(tx: Tx, size: int, tables: Tables = CASE_LOG) -> bytes:
    return merkle.root_from_nodes(size, fetch_nodes(tx, merkle.root_coords(size), tables))


def inclusion_proof(tx: Tx, index: int, size: int, tables: Tables = CASE_LOG) -> list[bytes]:
    return merkle.inclusion_proof(index, size, fetch_nodes(tx, merkle.inclusion_coords(index, size), tables))


def consistency_proof(tx: Tx, size1: int, size2: int, tables: Tables = CASE_LOG) -> list[bytes]:
    coords = merkle.consistency_coords(size1, size2)
    return merkle.consistency_proof(size1, size2, fetch_nodes(tx, coords, tables))


@dataclass(frozen=True)
class StoredCheckpoint:
    size: int
    root: bytes
    note: bytes
    signed_at: str
    cosignatures: tuple[str, ...] = ()

    def with_cosignatures(self) -> bytes:
        """The signed note with every collected witness cosignature line appended."""
        if not self.cosignatures:
            return self.note
        return self.note + "".join(self.cosignatures).encode("utf-8")

    @property
    def root_b64(self) -> str:
        return base64.b64encode(self.root).decode("ascii")


def _checkpoint_from_row(
    tx: Tx, row: Sequence[Any], check: CheckpointCheck | None, tables: Tables = CASE_LOG
) -> StoredCheckpoint:
    try:
        size, root, signed = int(row[0]), bytes(row[1]), str(row[2]).encode("utf-8")
    except (TypeError, ValueError):
        raise tampered(_what(tables), check="checkpoint row", stream=_stream(tables)) from None
    if check is not None:
        check.verify(size, root, signed)
    if tables.cosignatures is None:
        return StoredCheckpoint(size=size, root=root, note=signed, signed_at=str(row[3]))
    lines = tx.query(f"SELECT line FROM {tables.cosignatures} WHERE size = ? ORDER BY witness", (size,))
    return StoredCheckpoint(
        size=size, root=root, note=signed, signed_at=str(row[3]), cosignatures=tuple(str(r[0]) for r in lines)
    )


@dataclass(frozen=True)
class CheckpointCheck:
    """What a stored checkpoint row must be before the service acts on it or serves it: a note
    signed by this log's key, whose size and root are the row's, for no more entries than the log has."""

    vkey: note.VerifierKey
    origin: str
    log_size: int
    tables: Tables = CASE_LOG

    def verify(self, size: int, root: bytes, signed: bytes) -> None:
        what, stream = _what(self.tables), _stream(self.tables)
        try:
            body = note.verify_checkpoint(signed, self.vkey, origin=self.origin).checkpoint
        except LedgerError:
            raise tampered(what, check="checkpoint signature", stream=stream) from None
        if (body.size, body.root) != (size, root) or size > self.log_size:
            raise tampered(what, check="checkpoint row", stream=stream)


def _what(tables: Tables) -> str:
    return "the log" if tables == CASE_LOG else "the access log"


def _stream(tables: Tables) -> str:
    return "log" if tables == CASE_LOG else "access_log"


def _select_checkpoints(tables: Tables) -> str:
    return f"SELECT size, root, note, signed_at FROM {tables.checkpoints}"


def latest_checkpoint(
    tx: Tx, check: CheckpointCheck | None = None, tables: Tables = CASE_LOG
) -> StoredCheckpoint | None:
    row = tx.one(_select_checkpoints(tables) + " ORDER BY size DESC LIMIT 1")
    return None if row is None else _checkpoint_from_row(tx, row, check, tables)


def checkpoint_at(
    tx: Tx, size: int, check: CheckpointCheck | None = None, tables: Tables = CASE_LOG
) -> StoredCheckpoint:
    row = tx.one(_select_checkpoints(tables) + " WHERE size = ?", (size,))
    if row is None:
        raise NotFoundError(
            f"no checkpoint of size {size} was signed (the signed sizes: evidence-ledger log checkpoints)",
            code="NO_CHECKPOINT",
            size=size,
        )
    return _checkpoint_from_row(tx, row, check, tables)


def checkpoints(
    tx: Tx, check: CheckpointCheck | None = None, tables: Tables = CASE_LOG, *, after: int = 0, limit: int = 1000
) -> list[StoredCheckpoint]:
    """The signed checkpoints of size > ``after``, smallest first, at most ``limit``, each checked."""
    rows = tx.query(_select_checkpoints(tables) + " WHERE size > ? ORDER BY size LIMIT ?", (after, limit))
    return [_checkpoint_from_row(tx, row, check, tables) for row in rows]


def sign_checkpoint(
    tx: Tx,
    *,
    origin: str,
    key_name: str,
    key: Ed25519PrivateKey,
    now: datetime,
    size: int,
    root: bytes,
    tables: Tables = CASE_LOG,
) -> StoredCheckpoint | None:
    """Sign a checkpoint for ``size`` leaves with ``root`` — the checked log head the caller read
    (``ledger.read_models.log_head``; for the access log, the root its writer computed) — if none
    covers it yet (never one of size 0). The stored tree must agree with that root: the service never
    signs a root it did not compute itself; and the newest stored checkpoint must be one this log
    signed, for no more entries than it has."""
    vkey = note.make_verifier_key(key_name, key.public_key())
    latest = latest_checkpoint(tx, CheckpointCheck(vkey, origin, size, tables), tables)
    if size == 0 or (latest is not None and latest.size >= size):
        return latest
    try:
        stored_root = root_at(tx, size, tables)
    except NotFoundError:
        stored_root = b""
    if stored_root != root:
        raise tampered(_what(tables), check="tree", stream=_stream(tables))
    body = note.Checkpoint(origin=origin, size=size, root=root).body()
    signed = note.sign_note(body, key_name, key)
    signed_at = format_time(now)
    if latest is not None and signed_at < latest.signed_at:
        signed_at = latest.signed_at  # checkpoint time never goes backwards
    tx.execute(
        f"INSERT INTO {tables.checkpoints} (size, root, note, signed_at) VALUES (?, ?, ?, ?)",
        (size, root, signed.decode("utf-8"), signed_at),
    )
    return StoredCheckpoint(size=size, root=root, note=signed, signed_at=signed_at)


def entry_leaf(tx: Tx, index: int) -> bytes:
    row = tx.one("SELECT leaf FROM log_entries WHERE leaf_index = ?", (index,))
    if row is None:
        raise NotFoundError(f"no log entry {index}", code="NO_ENTRY")
    return bytes(row[0])


def nodes_between(tx: Tx, level: int, start: int, end: int, tables: Tables = CASE_LOG) -> list[bytes]:
    """The stored nodes ``(level, start) .. (level, end - 1)`` in order; MISSING_NODE if one is absent."""
    rows = tx.query(
        f"SELECT idx, hash FROM {tables.nodes} WHERE level = ? AND idx >= ? AND idx < ? ORDER BY idx",
        (level, start, end),
    )
    if len(rows) != end - start or any(int(row[0]) != start + i for i, row in enumerate(rows)):
        raise NotFoundError(f"log tree nodes of level {level} in [{start}, {end}) are missing", code="MISSING_NODE")
    return [bytes(row[1]) for row in rows]


def leaves_between(tx: Tx, start: int, end: int) -> list[bytes]:
    """The leaves ``start .. end - 1`` of the case log in order; NO_ENTRY if one is absent."""
    rows = tx.query(
        "SELECT leaf_index, leaf FROM log_entries WHERE leaf_index >= ? AND leaf_index < ? ORDER BY leaf_index",
        (start, end),
    )
    if len(rows) != end - start or any(int(row[0]) != start + i for i, row in enumerate(rows)):
        raise NotFoundError(f"log entries in [{start}, {end}) are missing", code="NO_ENTRY")
    return [bytes(row[1]) for row in rows]
