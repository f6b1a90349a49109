"""`db migrate` brings a schema-1 database (no row MACs, no log head, tokens with a revoked_at
column, created by an earlier release) up to the current schema: read models rebuilt from the signed
events, existing tokens sealed, revocations kept, and the service works and audits clean; and a
schema-3 database (custody chains inside the case state) to schema 4 (custody links as rows)."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import pytest

from domain.errors import LedgerError
from ledger.audit.run import run_audit
from ledger.audit.source import read_database
from ledger.settings import ConfigurationError, state_key_path
from ledger.storage.read_models import log_head, write_position
from ledger.store import Ledger
from ledger.tokens import TokenStore, token_id_of
from tests.support.audit import Raw, options
from tests.support.cases import Actors, case_opened, footage_captured, hold_placed, new_case_id

# Every table of the previous release (schema 1) and its columns, as that release created them
# (ledger/storage/sql.py at schema 1, and api/tokens.py, which created api_tokens at run time).
V1_COLUMNS = {
    "ledger_meta": ["key", "value"],
    "log_entries": ["leaf_index", "event_id", "case_id", "seq", "event_type", "envelope_sha256", "leaf",
                    "integrated_at"],
    "log_nodes": ["level", "idx", "hash"],
    "log_checkpoints": ["size", "root", "note", "signed_at"],
    "log_cosignatures": ["size", "witness", "line", "received_at"],
    "case_state": ["case_id", "version", "head_sha256", "status", "category", "updated_leaf", "state", "view"],
    "case_timeline": ["case_id", "seq", "leaf_index", "entry"],
    "public_releases": ["case_id", "footage_id", "status", "entry"],
    "projection_tracking": ["name", "position"],
    "sealed_records": ["sealed_ref", "kek_id", "wrapped_key", "nonce", "ciphertext", "created_at"],
    "api_tokens": ["token_id", "token_sha256", "actor", "role", "authority", "created_at", "expires_at",
                   "revoked_at"],
}
# The previous release's tables that schema 2 changed (exactly as it created them).
V1_TOKENS = """CREATE TABLE api_tokens (
        token_id TEXT PRIMARY KEY, token_sha256 TEXT NOT NULL UNIQUE, actor TEXT NOT NULL,
        role TEXT NOT NULL, authority TEXT, created_at TEXT NOT NULL, expires_at TEXT NOT NULL,
        revoked_at TEXT)"""


V1_SEALED = """CREATE TABLE sealed_records (
        sealed_ref TEXT PRIMARY KEY, kek_id TEXT NOT NULL, wrapped_key {blob} NOT NULL,
        nonce {blob} NOT NULL, ciphertext {blob} NOT NULL, created_at TEXT NOT NULL)"""


def _as_schema_1(ledger: Ledger, tokens: list[tuple[object, ...]]) -> None:
    """Turn a fresh database into what the schema-1 release left behind."""
    raw = Raw(ledger)
    raw.run("DROP TABLE sealed_records")
    raw.run(V1_SEALED.format(blob="BYTEA" if raw.postgres else "BLOB"))
    for table in ("case_state", "case_timeline", "public_releases", "projection_tracking"):
        raw.run(f"ALTER TABLE {table} DROP COLUMN mac")
    raw.run("ALTER TABLE public_releases DROP COLUMN version")
    raw.run("ALTER TABLE case_state DROP COLUMN public_count")
    raw.run("DROP INDEX case_state_number")
    raw.run("ALTER TABLE case_state DROP COLUMN case_number")
    for table in ("log_head", "api_token_revocations", "api_tokens", "case_custody", "log_timestamps"):
        raw.run(f"DROP TABLE {table}")
    raw.run(V1_TOKENS)
    for row in tokens:
        raw.run("INSERT INTO api_tokens VALUES (?, ?, ?, ?, ?, ?, ?, ?)", row)
    raw.run("UPDATE ledger_meta SET value = '1' WHERE key = 'schema_version'")
    tables = {t: _columns(raw, t) for t in (*V1_COLUMNS, "log_head", "api_token_revocations", "case_custody")}
    assert {t: c for t, c in tables.items() if c} == V1_COLUMNS, "the previous release's schema, exactly"


def _columns(raw: Raw, table: str) -> list[str]:
    if raw.postgres:
        rows = raw.run(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = current_schema()"
            " AND table_name = ? ORDER BY ordinal_position",
            (table,),
        )
        return [str(r[0]) for r in rows]
    return [str(r[1]) for r in raw.run(f"PRAGMA table_info({table})")]


def test_a_schema_1_database_is_upgraded_and_works(make_ledger: object) -> None:
    ledger = make_ledger()  # type: ignore[operator]
    actors = Actors.register(ledger)
    case_id = new_case_id()
    actors.ok("investigator", case_id, "CaseOpened", case_opened())
    actors.ok("investigator", case_id, "FootageCaptured", footage_captured())
    actors.ok("investigator", case_id, "InvestigationHoldPlaced", hold_placed())
    store = TokenStore(ledger.db, ledger.mac, authorities=("middlesex_da",), registry=ledger.registry_state)
    kept = store.issue(actor="Det. A. Rivera", role="investigator", authority=None,
                       expires_in=timedelta(days=1), now=ledger.clock())
    revoked = store.issue(actor="Sgt. B. Chen", role="supervisor", authority=None,
                          expires_in=timedelta(days=1), now=ledger.clock())
    rows = Raw(ledger).run(
        "SELECT token_id, token_sha256, actor, role, authority, created_at, expires_at FROM api_tokens ORDER BY token_id"
    )
    v1_rows = [(*r, "2026-02-05T17:30:00.000000Z" if r[0] == token_id_of(revoked.token) else None) for r in rows]
    view = ledger.case_view(case_id)
    ledger.close()
    _as_schema_1(ledger, v1_rows)
    state_key_path(ledger.data_dir).unlink()  # the previous release had no state key either

    with pytest.raises(ConfigurationError):
        make_ledger()  # type: ignore[operator]  # refused until migrated
    settings, clock = ledger.settings, ledger.clock
    upgraded = Ledger(settings, create_tables=True, clock=clock)  # what `db migrate` runs
    try:
        assert upgraded.case_view(case_id) == view
        actors.ledger = upgraded
        refused = actors.refused("supervisor", case_id, "FootageReleased", {
            "footage_id": "ftg-1", "sha256": footage_captured()["sha256"], "basis": "executive_order",
            "channel": "city website"})
        assert refused.code == "RELEASE_UNDER_HOLD"
        tokens = TokenStore(upgraded.db, upgraded.mac, authorities=("middlesex_da",), registry=upgraded.registry_state)
        assert tokens.verify(kept.token, now=upgraded.clock()) is not None
        assert tokens.verify(revoked.token, now=upgraded.clock()) is None
        assert {r.token_id: r.status_at(upgraded.clock()) for r in tokens.list()}[token_id_of(revoked.token)] == "revoked"
        report = run_audit(read_database(upgraded.db, mac=upgraded.mac), options(upgraded))
        assert report.findings == [], report.findings
        Ledger(settings, create_tables=True, clock=clock).close()  # idempotent
    finally:
        upgraded.close()


def test_a_schema_3_database_gets_its_custody_chains_as_rows(make_ledger: object) -> None:
    """Schema 4 moves each footage item's chain of custody out of the case state into rows of their own
    (``case_custody``): `db migrate` creates the table and rebuilds the read models from the signed
    events, so every chain is there, checked, and the audit is clean."""
    ledger = make_ledger()  # type: ignore[operator]
    actors = Actors.register(ledger)
    case_id = new_case_id()
    actors.ok("investigator", case_id, "CaseOpened", case_opened())
    actors.ok("investigator", case_id, "FootageCaptured", footage_captured())
    for frm, to in (("CPD Evidence Unit", "CPD Video Lab"), ("CPD Video Lab", "Middlesex DA")):
        actors.ok("investigator", case_id, "CustodyTransferred",
                  {"footage_id": "ftg-1", "from_custodian": frm, "to_custodian": to, "purpose": "review"})
    chain, view = ledger.custody(case_id, "ftg-1"), ledger.case_view(case_id)
    with ledger.db.write() as tx:  # the schema-3 release's read models were in another format
        head, size = log_head(tx, ledger.mac)
        assert head is not None
        write_position(tx, ledger.mac, size - 1, dataclasses.replace(head, read_models="2.00000000000000ff"))
    ledger.close()
    raw = Raw(ledger)
    raw.run("DROP TABLE case_custody")
    raw.run("DROP TABLE log_timestamps")  # schema 6's
    raw.run("DROP INDEX case_state_number")  # schema 5's
    raw.run("ALTER TABLE case_state DROP COLUMN case_number")
    raw.run("UPDATE ledger_meta SET value = '3' WHERE key = 'schema_version'")

    with pytest.raises(ConfigurationError):
        make_ledger()  # type: ignore[operator]  # refused until migrated
    upgraded = Ledger(ledger.settings, create_tables=True, clock=ledger.clock)  # what `db migrate` runs
    try:
        assert upgraded.stale_read_models() is None
        assert upgraded.custody(case_id, "ftg-1") == chain and [link["step"] for link in chain] == [1, 2, 3]
        assert upgraded.case_view(case_id) == view and view["footage"][0]["custody"]["steps"] == 3
        report = run_audit(read_database(upgraded.db, mac=upgraded.mac), options(upgraded))
        assert report.findings == [], report.findings
    finally:
        upgraded.close()


def test_a_schema_5_database_gets_the_time_stamp_table(make_ledger: object) -> None:
    """Schema 6 adds ``log_timestamps`` (RFC 3161 tokens over checkpoints): `db migrate` creates it,
    empty, and the ledger signs, stores a token row and audits clean afterwards."""
    ledger = make_ledger()  # type: ignore[operator]
    actors = Actors.register(ledger)
    actors.ok("investigator", new_case_id(), "CaseOpened", case_opened())
    ledger.close()
    raw = Raw(ledger)
    raw.run("DROP TABLE log_timestamps")
    raw.run("UPDATE ledger_meta SET value = '5' WHERE key = 'schema_version'")

    with pytest.raises(ConfigurationError):
        make_ledger()  # type: ignore[operator]  # refused until migrated
    upgraded = Ledger(ledger.settings, create_tables=True, clock=ledger.clock)  # what `db migrate` runs
    try:
        assert Raw(upgraded).run("SELECT size, tsa FROM log_timestamps") == []
        assert Raw(upgraded).run("SELECT value FROM ledger_meta WHERE key = 'schema_version'") == [("6",)]
        report = run_audit(read_database(upgraded.db, mac=upgraded.mac), options(upgraded))
        assert report.findings == [], report.findings
    finally:
        upgraded.close()


def test_a_newer_schema_is_refused(ledger: Ledger) -> None:
    Raw(ledger).run("UPDATE ledger_meta SET value = '99' WHERE key = 'schema_version'")
    with pytest.raises(LedgerError) as refused:
        Ledger(ledger.settings, create_tables=True)
    assert "upgrade evidence-ledger" in refused.value.message
