"""`db migrate` brings a schema-2 database (every sealed record's data key wrapped by the department
key ``seal.key`` in the data dir, and kept in the record's own row) to schema 3: each key moves into
the keystore, leaves the database, the department key is destroyed, and each record is bound to the
case whose report names it."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ledger.audit.run import run_audit
from ledger.audit.source import read_database
from ledger.evidence.sealed import DepartmentKey
from ledger.settings import ConfigurationError
from ledger.store import Ledger
from tests.support.audit import Raw, options
from tests.support.cases import Actors, case_opened, new_case_id, report_received

PERSON = {"name": "Jane Caller", "phone": "617-555-0100"}
# The table as schema 2 created it (ledger/storage/schema.py before schema 3).
V2_SEALED = """CREATE TABLE sealed_records (
        sealed_ref TEXT PRIMARY KEY, kek_id TEXT NOT NULL, wrapped_key {blob} NOT NULL,
        nonce {blob} NOT NULL, ciphertext {blob} NOT NULL, created_at TEXT NOT NULL)"""


def _as_schema_2(ledger: Ledger, refs: list[str]) -> list[bytes]:
    """Rewrap each record's key with a department key into its row, as schema 2 kept it; returns the
    wrapped keys."""
    department = DepartmentKey.create(ledger.data_dir / "seal.key")
    raw = Raw(ledger)
    rows = raw.run("SELECT sealed_ref, nonce, ciphertext, created_at FROM sealed_records ORDER BY sealed_ref")
    raw.run("DROP TABLE sealed_records")
    raw.run(V2_SEALED.format(blob="BYTEA" if raw.postgres else "BLOB"))
    wrapped_keys = []
    for ref, nonce, ciphertext, created_at in rows:
        wrap_nonce = secrets.token_bytes(12)
        data_key = ledger.keystore().get(ref)
        wrapped = wrap_nonce + AESGCM(department.key).encrypt(wrap_nonce, data_key, ref.encode("ascii"))
        raw.run("INSERT INTO sealed_records VALUES (?, ?, ?, ?, ?, ?)",
                (ref, department.key_id, wrapped, bytes(nonce), bytes(ciphertext), created_at))
        ledger.keystore().destroy(ref)
        wrapped_keys.append(wrapped)
    assert sorted(r[0] for r in rows) == sorted(refs)
    raw.run("DROP TABLE log_timestamps")  # schema 6's
    raw.run("DROP INDEX case_state_number")  # schema 5's case-number lookup column was not there either
    raw.run("ALTER TABLE case_state DROP COLUMN case_number")
    raw.run("UPDATE ledger_meta SET value = '2' WHERE key = 'schema_version'")
    return wrapped_keys


def test_a_schema_2_database_moves_its_record_keys_into_the_keystore(make_ledger: Callable[..., Ledger]) -> None:
    ledger = make_ledger()
    actors = Actors.register(ledger)
    case_id = new_case_id()
    named = ledger.sealed_store().seal(PERSON, now=ledger.clock())
    unnamed = ledger.sealed_store().seal({"name": "Nobody Yet"}, now=ledger.clock())
    actors.ok("investigator", case_id, "CaseOpened", case_opened())
    actors.ok("investigator", case_id, "ReportReceived", report_received(named.to_json()))
    Raw(ledger).run("UPDATE sealed_records SET case_id = NULL")  # schema 2 had no binding
    ledger.close()
    wrapped = _as_schema_2(ledger, [named.sealed_ref, unnamed.sealed_ref])
    assert not ledger.keystore().has(named.sealed_ref)

    with pytest.raises(ConfigurationError):
        make_ledger()  # refused until migrated
    settings, clock = ledger.settings, ledger.clock
    upgraded = Ledger(settings, create_tables=True, clock=clock)  # what `db migrate` runs
    try:
        assert upgraded.keystore().has(named.sealed_ref) and upgraded.keystore().has(unnamed.sealed_ref)
        assert not (upgraded.data_dir / "seal.key").exists()
        with upgraded.db.read() as tx:
            assert upgraded.db.columns(tx, "sealed_records") == [
                "sealed_ref", "nonce", "ciphertext", "created_at", "case_id"
            ]
            assert upgraded.db.columns(tx, "sealed_keys_to_move") == []
        bound = dict(Raw(upgraded).run("SELECT sealed_ref, case_id FROM sealed_records"))
        assert bound == {named.sealed_ref: case_id, unnamed.sealed_ref: None}
        assert upgraded.sealed_store().unseal(named.sealed_ref) == (PERSON, named.commitment)
        if not upgraded.db.postgres:  # the wrapped keys left the database's files too
            contents = b"".join(p.read_bytes() for p in Path(upgraded.data_dir).glob("ledger.sqlite3*"))
            assert not any(w in contents for w in wrapped)
        other = new_case_id()
        actors.ledger = upgraded
        actors.ok("investigator", other, "CaseOpened", case_opened())
        refused = actors.refused("investigator", other, "ReportReceived", report_received(named.to_json()))
        assert refused.code == "SEALED_REF_IN_OTHER_CASE"
        report = run_audit(read_database(upgraded.db, mac=upgraded.mac), options(upgraded))
        assert report.findings == [], report.findings
        Ledger(settings, create_tables=True, clock=clock).close()  # idempotent
    finally:
        upgraded.close()


def test_a_move_interrupted_half_way_resumes(make_ledger: Callable[..., Ledger], monkeypatch: pytest.MonkeyPatch) -> None:
    ledger = make_ledger()
    refs = [ledger.sealed_store().seal({"n": i}, now=ledger.clock()).sealed_ref for i in range(3)]
    ledger.close()
    _as_schema_2(ledger, refs)
    from ledger.evidence import keystore as keystore_module

    real_put = keystore_module.FileKeyStore.put
    calls: list[str] = []

    def crash_on_second(self: keystore_module.FileKeyStore, sealed_ref: str, data_key: bytes) -> None:
        calls.append(sealed_ref)
        if len(calls) == 2:
            raise OSError("the process died here")
        real_put(self, sealed_ref, data_key)

    monkeypatch.setattr(keystore_module.FileKeyStore, "put", crash_on_second)
    with pytest.raises(OSError):
        Ledger(ledger.settings, create_tables=True, clock=ledger.clock)
    monkeypatch.undo()
    assert (ledger.data_dir / "seal.key").exists()  # destroyed only once every key moved
    with Ledger(ledger.settings, create_tables=True, clock=ledger.clock) as resumed:
        assert all(resumed.keystore().has(r) for r in refs)
        assert [resumed.sealed_store().unseal(r)[0] for r in refs] == [{"n": i} for i in range(3)]
        assert not (resumed.data_dir / "seal.key").exists()
