"""Raw database access and audit options for tests that edit a ledger behind its back."""

from __future__ import annotations

import sqlite3
import uuid
from typing import Any

import psycopg

from ledger.audit.run import AuditOptions, AuditReport, run_audit
from ledger.audit.source import read_database
from ledger.bootstrap import log_verifier_key
from ledger.log import note
from ledger.store import Ledger
from ledger.verify.log_checks import CheckpointInput


class Raw:
    """SQL on the ledger's database through a connection of its own: outside the application."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        self.postgres = ledger.db.postgres
        self.events = ledger.db.events_table

    def _connect(self) -> Any:
        t = self.ledger.target
        if self.postgres:
            return psycopg.connect(
                host=t.host, port=t.port, dbname=t.dbname, user=t.user, password=t.password
            )
        return sqlite3.connect(str(t.sqlite_path), timeout=30)

    def run(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        conn = self._connect()
        try:
            cur = conn.cursor()
            cur.execute(sql.replace("?", "%s") if self.postgres else sql, params)
            rows = cur.fetchall() if cur.description else []
            conn.commit()
            return [tuple(r) for r in rows]
        finally:
            conn.close()

    def key(self, case_id: str) -> str:
        """A case id as the events table keys it (SQLite: uuid hex; PostgreSQL: a uuid)."""
        return case_id if self.postgres else uuid.UUID(case_id).hex

    def blob(self, value: Any) -> bytes:
        return bytes(value)


def verifier_key(ledger: Ledger) -> note.VerifierKey:
    return note.parse_verifier_key(log_verifier_key(ledger.config, ledger.log_key))


def options(ledger: Ledger, kept: list[bytes] | None = None) -> AuditOptions:
    return AuditOptions(
        log_key=verifier_key(ledger),
        independent=True,
        origin=ledger.origin,
        trust_root=ledger.config.admin_key_id,
        kept=[CheckpointInput(n, f"kept {i}", external=True) for i, n in enumerate(kept or [])],
        config=ledger.domain_config,
        workers=1,
        mac=ledger.mac,
        history=ledger.rollback_guard().history(),
        now=ledger.clock(),
    )


def audit(ledger: Ledger, kept: list[bytes] | None = None) -> AuditReport:
    return run_audit(read_database(ledger.db, mac=ledger.mac), options(ledger, kept))

