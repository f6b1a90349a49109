"""Raw database access and audit options for tests that edit a ledger behind its back."""

from __future__ import annotations

import sqlite3
import uuid
from dataclasses import replace
from typing import Any
from unittest.mock import patch

import psycopg

from ledger.audit import by_case
from ledger.audit.run import BY_CASE_PHASE, AuditOptions, AuditReport, run_audit
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


def comparable(report: AuditReport) -> dict[str, Any]:
    """The whole report but its timings (which say how long each phase took, and which path ran)."""
    return {k: v for k, v in report.to_json().items() if k != "timings"}


def by_case_ran(report: AuditReport) -> bool:
    return BY_CASE_PHASE in report.timings


def audit_both(ledger: Ledger, kept: list[bytes] | None = None) -> tuple[AuditReport, AuditReport]:
    """The audit with one worker, and the same data audited case by case on two worker processes
    (``ledger.audit.by_case``, from any size of ledger)."""
    data = read_database(ledger.db, mac=ledger.mac)
    opts = options(ledger, kept)
    serial = run_audit(data, opts)
    # A PostgreSQL ledger's connection pool has idle threads, so the audit would not fork: the
    # comparison forks anyway (the children touch no connection), to cover both backends.
    with patch.object(by_case, "MIN_ENTRIES", 0), patch.object(by_case, "can_fork", lambda: True):
        parallel = run_audit(data, replace(opts, workers=2))
    return serial, parallel


def audit(ledger: Ledger, kept: list[bytes] | None = None) -> AuditReport:
    """The audit with one worker; every call also checks that the audit case by case on two worker
    processes gives the same report, so that every tampering a test makes is checked on both paths."""
    serial, parallel = audit_both(ledger, kept)
    assert comparable(parallel) == comparable(serial)
    return serial
