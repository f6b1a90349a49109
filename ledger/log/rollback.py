"""Rollback guard: remember the newest checkpoint outside the database; refuse writes if the DB is older.

``<data_dir>/checkpoints/latest`` holds the newest checkpoint this service has signed (or received
cosigned from witnesses) as the signed note itself — usable as ``audit --from-checkpoint``. It is
replaced atomically (temp file, fsync, rename, fsync of the directory) and only by a larger size
(or the same checkpoint with more cosignatures); ``checkpoints/history.jsonl`` gets one line per
recorded checkpoint. A lock file serialises recorders across processes.

At start the database is compared with it: a log shorter than the recorded size is *behind* by K
entries (a restored backup, a lost disk, a replica promoted too early); a log whose root at the
recorded size differs is *inconsistent* (rewritten). Either way writes are refused with
ROLLBACK_DETECTED (503 over HTTP) until an operator restores the missing entries; reads still work.
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from domain.errors import LedgerError
from ledger.durable import write_atomic
from ledger.log import note, tlog
from ledger.storage.integrity import StateTampered
from ledger.storage.sql import Database, StorageError, Tx

GUARD_DIR = "checkpoints"
LATEST = "latest"
HISTORY = "history.jsonl"
BLOCKING = ("behind", "inconsistent", "unreadable", "tampered")


class RollbackDetected(StorageError):
    """The database is older than (or diverges from) a checkpoint this service already published."""

    code = "ROLLBACK_DETECTED"


def latest_path(data_dir: Path) -> Path:
    return Path(data_dir) / GUARD_DIR / LATEST


@dataclass(frozen=True)
class RollbackStatus:
    """``state``: ok | no_record | behind | inconsistent | unreadable | tampered (a stored checkpoint
    row is not one this log signed)."""

    state: str
    log_size: int
    recorded_size: int | None = None
    missing: int = 0
    message: str = ""

    @property
    def blocked(self) -> bool:
        return self.state in BLOCKING

    def to_json(self) -> dict[str, object]:
        return {
            "state": self.state,
            "log_size": self.log_size,
            "recorded_size": self.recorded_size,
            "missing": self.missing,
            "message": self.message,
        }

    def error(self) -> StorageError:
        if self.state == "tampered":
            error = StateTampered(self.message)
            error.refs = {"stream": "log"}
            return error
        return RollbackDetected(
            self.message,
            log_size=self.log_size,
            recorded_size=self.recorded_size,
            missing=self.missing,
        )


class CheckpointGuard:
    """The recorded newest checkpoint of one data dir."""

    def __init__(self, data_dir: Path, log_key: note.VerifierKey, origin: str) -> None:
        self.dir = Path(data_dir) / GUARD_DIR
        self.log_key = log_key
        self.origin = origin

    @property
    def latest(self) -> Path:
        return self.dir / LATEST

    @contextmanager
    def _locked(self) -> Iterator[None]:
        self.dir.mkdir(mode=0o700, exist_ok=True)
        fd = os.open(self.dir / ".lock", os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def recorded(self) -> note.Checkpoint | None:
        """The recorded checkpoint, verified with the log key; None when nothing was recorded yet.

        Raises LedgerError when the file exists but is not a checkpoint signed by this log."""
        try:
            raw = self.latest.read_bytes()
        except FileNotFoundError:
            return None
        return note.verify_checkpoint(raw, self.log_key, origin=self.origin).checkpoint

    def record(self, signed_note: bytes, *, signed_at: str | None = None) -> bool:
        """Remember ``signed_note`` if it is newer (or the same with more cosignatures); the history
        line keeps ``signed_at`` (the row's signing time) so that the audit can tell a re-timed row."""
        new = note.verify_checkpoint(signed_note, self.log_key, origin=self.origin).checkpoint
        with self._locked():
            current_raw, current = self._current()
            if current is not None and current.size > new.size:
                return False
            if current is not None and current.size == new.size:
                if current.root != new.root:
                    raise RollbackDetected(
                        f"a different root was already recorded for size {new.size}", size=new.size
                    )
                if len(signed_note) <= len(current_raw):
                    return False
            write_atomic(self.latest, signed_note, mode=0o600)
            self._append_history(new, signed_note, signed_at)
        return True

    def _current(self) -> tuple[bytes, note.Checkpoint | None]:
        """The recorded note and its checkpoint (signature not checked: our own file), if readable."""
        try:
            raw = self.latest.read_bytes()
            return raw, note.parse_checkpoint_body(note.open_note(raw)[0])
        except (FileNotFoundError, LedgerError):
            return b"", None

    def history(self) -> list[dict[str, object]]:
        """Every checkpoint recorded so far (one JSON object per line of ``history.jsonl``)."""
        try:
            text = (self.dir / HISTORY).read_text("utf-8")
        except FileNotFoundError:
            return []
        lines = []
        for line in text.splitlines():
            try:
                item = json.loads(line)
            except ValueError:
                continue  # a torn last line after a crash
            if isinstance(item, dict) and isinstance(item.get("size"), int) and isinstance(item.get("root"), str):
                lines.append(item)
        return lines

    def _append_history(self, checkpoint: note.Checkpoint, signed_note: bytes, signed_at: str | None) -> None:
        record: dict[str, object] = {
            "size": checkpoint.size,
            "root": base64.b64encode(checkpoint.root).decode("ascii"),
            "note": signed_note.decode("utf-8"),
        }
        if signed_at is not None:
            record["signed_at"] = signed_at
        line = json.dumps(record, sort_keys=True)
        fd = os.open(self.dir / HISTORY, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            os.write(fd, line.encode("utf-8") + b"\n")
            os.fsync(fd)
        finally:
            os.close(fd)

    def status(self, db: Database) -> RollbackStatus:
        """Compare the database's log with the recorded checkpoint (O(log n) node reads)."""
        with db.read() as tx:
            size = tlog.log_size(tx)[0]
            try:
                recorded = self.recorded()
            except LedgerError as exc:
                return RollbackStatus(
                    "unreadable",
                    size,
                    message=f"{self.latest} is not a checkpoint of this log ({exc.code}); writes are refused "
                    "until an operator checks the database and replaces or removes that file",
                )
            if recorded is None:
                return RollbackStatus(
                    "no_record", size, message="no checkpoint recorded outside the database yet"
                )
            if size < recorded.size:
                missing = recorded.size - size
                return RollbackStatus(
                    "behind",
                    size,
                    recorded.size,
                    missing,
                    f"the database holds {size} log entries but checkpoint {recorded.size} was already "
                    f"published: {missing} entries are missing (restored backup?); writes are refused",
                )
            root = _root_or_none(tx, recorded.size)
        if root != recorded.root:
            return RollbackStatus(
                "inconsistent",
                size,
                recorded.size,
                0,
                f"the database's tree at size {recorded.size} does not have the root already published "
                "for that size: the log was rewritten; writes are refused",
            )
        return RollbackStatus("ok", size, recorded.size)


def _root_or_none(tx: Tx, size: int) -> bytes | None:
    try:
        return tlog.root_at(tx, size)
    except LedgerError:
        return None
