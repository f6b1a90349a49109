"""An online, consistent copy of a SQLite ledger database (``evidence-ledger db backup``).

A plain file copy of a live database in WAL mode can miss committed pages still in ``-wal`` or
catch a page half-written by a checkpoint; SQLite's backup API copies a consistent snapshot while
the service keeps writing. The copy is written beside its destination under a temporary name,
checked (``PRAGMA integrity_check``), fsynced and renamed into place, mode 0600.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import sqlite3
from pathlib import Path

from domain.errors import LedgerError
from ledger.durable import fsync_dir


class BackupError(LedgerError):
    code = "BACKUP_FAILED"


def backup_sqlite(source: Path, out: Path, *, pages_per_step: int = 1024) -> int:
    """Copy the SQLite database ``source`` to the new file ``out``; returns its size in bytes."""
    if not source.is_file():
        raise BackupError(f"the database {source} does not exist")
    tmp = out.with_name(f".{out.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.close(fd)
    try:
        src = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
        try:
            dst = sqlite3.connect(tmp)
            try:
                src.backup(dst, pages=pages_per_step)
                problems = [row[0] for row in dst.execute("PRAGMA integrity_check")]
                if problems != ["ok"]:
                    raise BackupError(f"the copy of {source} fails its integrity check: {problems[0]}")
                dst.execute("PRAGMA journal_mode=DELETE")  # one self-contained file, no -wal beside it
            finally:
                dst.close()
        finally:
            src.close()
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())
        if out.exists():
            raise BackupError(f"{out} appeared while the backup ran; refusing to overwrite it")
        os.replace(tmp, out)
    except sqlite3.Error as exc:
        raise BackupError(f"cannot back up {source}: {exc}") from None
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    fsync_dir(out.parent)
    return out.stat().st_size
