"""The access log in storage: its own Merkle tree over access entries, its own signed checkpoints.

Every read of a case, timeline, bundle or evidence file, and every refusal of one, is an entry
(``ledger/log/access_entry.py``) appended here — never to a case stream, so a read never takes a
case's next position and never conflicts with an append. The tree is the case log's kind (RFC 6962,
``ledger/log/merkle.py``; nodes and proofs through ``ledger/log/tlog.py`` on :data:`tlog.ACCESS_LOG`),
and its checkpoints are C2SP notes signed with the log key under the origin ``<origin>/access``.

Writers are serialised by ``Database.access_write`` (PostgreSQL: an advisory lock, not the case log's
table lock; SQLite: the database's write lock). One batch is one transaction: indexes are gapless and
in commit order, ``recorded_at`` never goes backwards. The frontier of the tree is kept in memory and
used only while the stored size is still the one it was computed for (another process may append).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from domain.errors import NotFoundError
from ledger.envelope.canonical import format_time
from ledger.log import merkle, note, tlog
from ledger.log.access_entry import AccessRecord, access_origin, entry_bytes
from ledger.storage.sql import Database, StorageError, Tx

T = tlog.ACCESS_LOG
COORDS_PER_QUERY = 400
ENTRY_COLUMNS = "entry_index, case_id, actor, action, outcome, entry, recorded_at"


class AccessLogUnavailable(StorageError):
    """The access log could not record a read: the read is refused (503), nothing is returned."""

    code = "ACCESS_LOG_UNAVAILABLE"


@dataclass(frozen=True)
class StoredAccessEntry:
    index: int
    entry: bytes  # the exact leaf bytes


def _size(tx: Tx) -> tuple[int, str | None]:
    row = tx.one("SELECT entry_index, recorded_at FROM access_entries ORDER BY entry_index DESC LIMIT 1")
    return (0, None) if row is None else (int(row[0]) + 1, str(row[1]))


class AccessLog:
    """Append access records, sign access checkpoints, read entries and proofs. Thread-safe."""

    def __init__(
        self,
        db: Database,
        *,
        origin: str,
        key_name: str,
        key: Callable[[], Ed25519PrivateKey],
        clock: Callable[[], datetime],
    ) -> None:
        self.db = db
        self.origin = access_origin(origin)
        self.key_name = key_name
        self._key = key
        self.clock = clock
        self._lock = threading.Lock()
        self._tree: merkle.CompactRange | None = None  # the frontier after the last batch this process wrote
        self._last_time = ""

    # -- writing --------------------------------------------------------------------------------

    def append(self, records: Sequence[AccessRecord]) -> list[int]:
        """Record a batch in one transaction; their indexes. Raises StorageError when it cannot."""
        if not records:
            return []
        with self._lock:
            try:
                with self.db.access_write() as tx:
                    size, last = _size(tx)
                    tree = self._frontier(tx, size)
                    when = max(format_time(self.clock()), last or "", self._last_time)
                    rows: list[tuple[Any, ...]] = []
                    nodes: list[tuple[int, int, bytes]] = []
                    for offset, record in enumerate(records):
                        raw = entry_bytes(record, size + offset, when)
                        nodes += tree.append(merkle.leaf_hash(raw))
                        rows.append(
                            (size + offset, record.case_id, record.actor, record.action, record.outcome, raw, when)
                        )
                    tx.executemany(f"INSERT INTO access_entries ({ENTRY_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
                    tlog.store_nodes(tx, nodes, T)
            except BaseException:
                self._tree = None  # the batch may not have committed: recompute from the stored nodes
                raise
            self._tree, self._last_time = tree, when
        return [row[0] for row in rows]

    def _frontier(self, tx: Tx, size: int) -> merkle.CompactRange:
        cached = self._tree
        if cached is not None and cached.size == size:
            return merkle.CompactRange(size, cached.frontier)  # a copy: the cache changes only after commit
        return tlog.load_range(tx, size, T)

    def checkpoint(self) -> tlog.StoredCheckpoint | None:
        """A signed access checkpoint covering every committed entry (signing one if needed); None
        while the access log is empty. The root signed is the one this process computed when it wrote
        the last entry, or (after another process wrote) the stored tree's."""
        with self._lock, self.db.access_write() as tx:
            size, _ = _size(tx)
            cached = self._tree
            root = cached.root() if cached is not None and cached.size == size else None
            if root is None and size:
                root = tlog.root_at(tx, size, T)
            return tlog.sign_checkpoint(
                tx, origin=self.origin, key_name=self.key_name, key=self._key(), now=self.clock(), size=size,
                root=root or b"", tables=T,
            )

    # -- reading --------------------------------------------------------------------------------

    def size(self) -> int:
        with self.db.read() as tx:
            return _size(tx)[0]

    def _check(self, tx: Tx) -> tlog.CheckpointCheck:
        vkey = note.make_verifier_key(self.key_name, self._key().public_key())
        return tlog.CheckpointCheck(vkey, self.origin, _size(tx)[0], T)

    def latest_checkpoint(self) -> tlog.StoredCheckpoint | None:
        """The newest stored access checkpoint, checked (signed by this log's key under the access
        origin, for no more entries than the access log holds)."""
        with self.db.read() as tx:
            return tlog.latest_checkpoint(tx, self._check(tx), T)

    def checkpoint_at(self, size: int) -> tlog.StoredCheckpoint:
        with self.db.read() as tx:
            return tlog.checkpoint_at(tx, size, self._check(tx), T)

    def entries(
        self,
        *,
        case_id: str | None = None,
        actor: str | None = None,
        after: int = -1,
        limit: int = 100,
        below: int | None = None,
    ) -> list[StoredAccessEntry]:
        """Entries with index > ``after`` (and < ``below``), optionally of one case and/or one actor."""
        where = "entry_index > ?"
        params: list[Any] = [after]
        for column, value in (("case_id", case_id), ("actor", actor)):
            if value is not None:
                where += f" AND {column} = ?"
                params.append(value)
        if below is not None:
            where += " AND entry_index < ?"
            params.append(below)
        with self.db.read() as tx:
            rows = tx.query(
                f"SELECT entry_index, entry FROM access_entries WHERE {where} ORDER BY entry_index LIMIT ?",
                [*params, limit],
            )
        return [StoredAccessEntry(int(i), bytes(raw)) for i, raw in rows]

    def inclusion_proof(self, index: int, size: int) -> list[bytes]:
        self._require_size(size)
        with self.db.read() as tx:
            return tlog.inclusion_proof(tx, index, size, T)

    def inclusion_proofs(self, indexes: Sequence[int], size: int) -> dict[int, list[bytes]]:
        """Proofs of many entries, reading the nodes they need in a few queries."""
        coords = sorted({c for i in indexes for c in merkle.inclusion_coords(i, size)})
        nodes: dict[tuple[int, int], bytes] = {}
        with self.db.read() as tx:
            for start in range(0, len(coords), COORDS_PER_QUERY):
                nodes.update(tlog.fetch_nodes(tx, coords[start : start + COORDS_PER_QUERY], T))
        return {i: merkle.inclusion_proof(i, size, nodes) for i in indexes}

    def consistency_proof(self, size1: int, size2: int) -> list[bytes]:
        self._require_size(size2)
        with self.db.read() as tx:
            return tlog.consistency_proof(tx, size1, size2, T)

    def _require_size(self, size: int) -> None:
        if size > self.size():
            raise NotFoundError("the access log has no tree of this size yet", code="UNKNOWN_TREE_SIZE", size=size)
