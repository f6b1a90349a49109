"""Snapshots of a ledger's whole database, restored as an operator restoring a backup would."""

from __future__ import annotations

import shutil
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import psycopg

from ledger.store import Ledger
from tests.support.ledgers import PG_ADMIN_URL


@dataclass
class Snapshots:
    """Take and restore a copy of a ledger's whole database, as an operator restoring a backup would."""

    make_ledger: Callable[..., Ledger]
    backend: str
    tmp: Path
    taken: str | None = None

    def take(self, ledger: Ledger) -> Ledger:
        """Copy the database now; returns a ledger to keep working with."""
        if self.backend == "sqlite":
            target = sqlite3.connect(self.tmp / "backup.sqlite3")
            source = sqlite3.connect(str(ledger.target.sqlite_path))
            source.backup(target)
            source.close()
            target.close()
            return ledger
        ledger.close()
        self.taken = f"{ledger.target.dbname}_snap"
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{self.taken}" TEMPLATE "{ledger.target.dbname}"')
        return self.make_ledger()

    def restore(self, ledger: Ledger) -> Ledger:
        """Put the copy back in place of the live database; returns a freshly opened ledger."""
        ledger.close()
        if self.backend == "sqlite":
            path = Path(str(ledger.target.sqlite_path))
            for suffix in ("", "-wal", "-shm"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)
            shutil.copy(self.tmp / "backup.sqlite3", path)
        else:
            name = ledger.target.dbname
            with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
                conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{self.taken}"')
        return self.make_ledger()

    def drop(self) -> None:
        if self.taken is not None:
            with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{self.taken}" WITH (FORCE)')

