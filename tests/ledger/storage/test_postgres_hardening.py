"""`evidence-ledger db provision` on a real server: the service runs as a least-privilege role and
history cannot be rewritten.

Each test builds a ledger owned by a throwaway owner role (LOGIN CREATEROLE, owner of the database),
runs `db provision` as that owner exactly as ops/postgres/README.md says, then runs the service as the
application role with the URL the command printed. Role names are random per test, so parallel
workers never collide; every role is dropped (``REASSIGN OWNED``/``DROP OWNED BY``) at the end.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import stat
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import httpx
import psycopg
import pytest
from psycopg import sql
from typer.testing import CliRunner

from domain.errors import LedgerError
from ledger.bootstrap import init_data_dir
from ledger.cli.app import app, commands
from ledger.envelope.keys import write_private_key
from ledger.envelope.signing import build_envelope
from ledger.log import merkle, note
from ledger.log.access_entry import AccessRecord
from ledger.replay import rebuild
from ledger.settings import Settings
from ledger.storage.schema import APPEND_ONLY_TABLES, READ_MODEL_TABLES
from ledger.store import Ledger, utc_now
from ops.procs import CLI, Server, serving
from tests.support.cases import (
    Actors,
    case_opened,
    derivative_created,
    footage_captured,
    footage_released,
    hold_placed,
    new_case_id,
    referral_made,
    report_received,
)
from tests.support.ledgers import ORIGIN, FakeClock
from tests.support.postgres import cli, drop_roles, init_as_owner, provision, provisioned_url, with_user

pytestmark = pytest.mark.postgres
commands()

APPEND_ONLY = ("ledger_events", *APPEND_ONLY_TABLES)
READ_MODELS = READ_MODEL_TABLES
# A harmless statement per operation that would still rewrite history if it were allowed.
TAMPER = {
    "UPDATE": "UPDATE {t} SET {c} = {c}",
    "DELETE": "DELETE FROM {t}",
    "TRUNCATE": "TRUNCATE {t}",
}
FIRST_COLUMN = {
    "ledger_events": "topic",
    "log_entries": "event_type",
    "log_nodes": "hash",
    "log_checkpoints": "note",
    "log_cosignatures": "line",
    "log_timestamps": "tsa",
    "api_tokens": "actor",
    "api_token_revocations": "revoked_at",
    "access_entries": "actor",
    "access_nodes": "hash",
    "access_checkpoints": "note",
}
GRANTS = {
    "access_checkpoints": "INSERT,SELECT",
    "access_entries": "INSERT,SELECT",
    "access_nodes": "INSERT,SELECT",
    "api_token_revocations": "INSERT,SELECT",
    "api_tokens": "INSERT,SELECT",
    "case_custody": "DELETE,INSERT,SELECT,UPDATE",
    "case_state": "DELETE,INSERT,SELECT,UPDATE",
    "case_timeline": "DELETE,INSERT,SELECT,UPDATE",
    "ledger_events": "DELETE,INSERT,SELECT",
    "ledger_meta": "SELECT",
    "log_checkpoints": "INSERT,SELECT",
    "log_cosignatures": "INSERT,SELECT",
    "log_entries": "INSERT,SELECT",
    "log_head": "DELETE,INSERT,SELECT,UPDATE",
    "log_nodes": "INSERT,SELECT",
    "log_timestamps": "INSERT,SELECT",
    "projection_tracking": "DELETE,INSERT,SELECT,UPDATE",
    "public_releases": "DELETE,INSERT,SELECT,UPDATE",
    "sealed_records": "DELETE,INSERT,SELECT,UPDATE",
}


@dataclass
class Hardened:
    admin_url: str  # superuser, on the test database
    owner_url: str  # the role that ran the migration and `db provision`, and owns the tables
    app_url: str  # the least-privilege service role, as `db provision` printed it
    owner: str
    app: str
    data_dir: Path
    clock: FakeClock

    def ledger(self, url: str | None = None, *, real_time: bool = False) -> Ledger:
        settings = Settings(data_dir=self.data_dir, database_url=url or self.app_url)
        return Ledger(settings) if real_time else Ledger(settings, clock=self.clock)




@pytest.fixture
def roles(pg_database: str) -> Iterator[tuple[str, str]]:
    """(owner, app) role names, unique to this test; both dropped afterwards."""
    token = secrets.token_hex(5)
    owner, app_role = f"el_owner_{token}", f"el_app_{token}"
    dbname = urlsplit(pg_database).path.lstrip("/")
    with psycopg.connect(pg_database, autocommit=True) as conn:
        # README step 0: an owner that may create the application role, owning the database (and so,
        # on PostgreSQL 15, its `public` schema, which belongs to pg_database_owner).
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN CREATEROLE").format(sql.Identifier(owner)))
        conn.execute(
            sql.SQL("ALTER DATABASE {} OWNER TO {}").format(sql.Identifier(dbname), sql.Identifier(owner))
        )
    try:
        yield owner, app_role
    finally:
        drop_roles(pg_database, [app_role, owner])




@pytest.fixture
def hardened(pg_database: str, roles: tuple[str, str], tmp_path: Path) -> Hardened:
    owner, app_role = roles
    data_dir, clock, owner_url = init_as_owner(pg_database, owner, tmp_path)
    app_url = provisioned_url(owner_url, data_dir, app_role)
    return Hardened(pg_database, owner_url, app_url, owner, app_role, data_dir, clock)


def _rejects(url: str, statement: str, **params: str) -> psycopg.Error:
    """Run one statement in its own transaction; return the error it must raise."""
    with psycopg.connect(url) as conn:
        for name, value in params.items():
            conn.execute(sql.SQL("SET {} = {}").format(sql.Identifier(name), sql.Literal(value)))
        with pytest.raises(psycopg.Error) as info:
            conn.execute(statement)  # type: ignore[arg-type]
    return info.value


def _counts(url: str) -> dict[str, int]:
    with psycopg.connect(url, autocommit=True) as conn:
        return {
            t: int(conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(t))).fetchone()[0])  # type: ignore[index]
            for t in APPEND_ONLY
        }


def _grants(admin_url: str, role: str) -> dict[str, str]:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT table_name, string_agg(privilege_type, ',' ORDER BY privilege_type)"
            " FROM information_schema.role_table_grants WHERE grantee = %s GROUP BY table_name ORDER BY 1",
            (role,),
        ).fetchall()
    return {str(table): str(privileges) for table, privileges in rows}


def _triggers(admin_url: str) -> int:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_trigger WHERE tgname LIKE 'evidence_ledger_append_only_%%' AND tgenabled = 'A'"
        ).fetchone()
    return int(row[0]) if row else 0


def _populate(h: Hardened) -> None:
    """A few events, a checkpoint, a cosignature and a time-stamp row and a revoked token, all as the application role,
    so every append-only table has rows."""
    with h.ledger() as ledger:
        actors = Actors.register(ledger)
        case_id = new_case_id()
        actors.ok("investigator", case_id, "CaseOpened", case_opened())
        actors.ok("investigator", case_id, "FootageCaptured", footage_captured())
        checkpoint = ledger.checkpoint()
        assert checkpoint is not None
        # the access log, as the application role too (its writers' advisory lock needs no grant)
        ledger.access_log.append([AccessRecord(action="case.read", actor="Det. A. Rivera", case_id=case_id)])
        assert ledger.access_log.checkpoint() is not None
    with psycopg.connect(h.app_url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO log_cosignatures (size, witness, line, received_at) VALUES (%s, %s, %s, %s)",
            (checkpoint.size, "witness.example", "— witness.example AAAA\n", "2026-02-05T17:00:00Z"),
        )
        conn.execute(  # a time-stamp row (its content is the audit's business, not the privileges')
            "INSERT INTO log_timestamps (size, tsa, token, received_at) VALUES (%s, %s, %s, %s)",
            (checkpoint.size, "tsa.example", b"\x30\x00", "2026-02-05T17:00:00Z"),
        )
    issued = cli(h.app_url, h.data_dir, "tokens", "issue", "--actor", "Det. A. Rivera", "--role", "investigator")
    assert issued.exit_code == 0, issued.output
    token_id = issued.stdout.split()[2]
    revoked = cli(h.app_url, h.data_dir, "tokens", "revoke", token_id)
    assert revoked.exit_code == 0, revoked.output


# -- the service works as the application role --------------------------------------------------------


def test_the_service_runs_as_the_application_role(hardened: Hardened) -> None:
    with hardened.ledger() as ledger:
        with ledger.db.read() as tx:
            assert tx.one("SELECT current_user") == (hardened.app,)
        ledger.db.check_schema()
        assert ledger.db.durability_problems() == []
        actors = Actors.register(ledger)
        case_id = new_case_id()
        actors.ok("investigator", case_id, "CaseOpened", case_opened())
        actors.ok("investigator", case_id, "FootageCaptured", footage_captured())
        stale = actors.refused("investigator", case_id, "FootageCaptured", footage_captured("ftg-2"), seq=2)
        assert stale.code == "SEQ_CONFLICT"  # a conflict is still a clean 409, not a privilege error
        batch = ledger.append(
            [
                actors.envelope("investigator", other, "CaseOpened", case_opened(f"CPD-2026-{n:04d}"))
                for n, other in enumerate([new_case_id(), new_case_id()], start=2)
            ]
        )
        assert all(not isinstance(o, LedgerError) for o in batch)
        size = ledger.log_size()

        checkpoint = ledger.checkpoint()
        assert checkpoint is not None and checkpoint.size == size
        leaves = [merkle.leaf_hash(e.leaf) for e in ledger.iter_entries()]
        assert checkpoint.root == merkle.root_from_leaf_hashes(leaves)
        assert ledger.checkpoint() == ledger.latest_checkpoint()  # nothing new: no second row

        view = ledger.case_view(case_id)
        timeline = ledger.timeline(case_id)
        assert rebuild(ledger.db, ledger.appender, from_zero=True) == size  # DELETEs + refills read models
        assert ledger.case_view(case_id) == view and ledger.timeline(case_id) == timeline
        assert rebuild(ledger.db, ledger.appender, from_zero=False) == 0

        store = ledger.sealed_store()
        ref = store.seal({"name": "reporter"}, now=hardened.clock())
        assert store.unseal(ref.sealed_ref)[0] == {"name": "reporter"}

    with hardened.ledger() as reopened:  # a second process-like instance sees the same state
        assert reopened.log_size() == size and reopened.case_view(case_id) == view


def test_the_operator_commands_run_as_the_application_role(hardened: Hardened, tmp_path: Path) -> None:
    """`tokens issue|list|revoke`, `seal`, `append`, `replay` and `log checkpoint` need nothing more."""
    with hardened.ledger(real_time=True) as ledger:
        actors = Actors.register(ledger)
    url, data_dir = hardened.app_url, hardened.data_dir
    issued = cli(url, data_dir, "tokens", "issue", "--actor", "Det. A. Rivera", "--role", "investigator")
    assert issued.exit_code == 0, issued.output
    token_id = issued.stdout.split()[2]
    listed = cli(url, data_dir, "tokens", "list")
    assert listed.exit_code == 0 and token_id in listed.stdout, listed.output
    revoked = cli(url, data_dir, "tokens", "revoke", token_id)
    assert revoked.exit_code == 0, revoked.output
    data = tmp_path / "reporter.json"
    data.write_text('{"name": "reporter"}', encoding="utf-8")
    sealed = cli(url, data_dir, "seal", "--data-file", str(data))
    assert sealed.exit_code == 0 and "sealed_ref" in sealed.stdout, sealed.output
    key = tmp_path / "investigator.pem"
    write_private_key(actors.keys["investigator"], key)
    case_id = new_case_id()
    appended = cli(url, data_dir, "append", case_id, "CaseOpened", "--key", str(key), "--body", "@" + str(
        _write(tmp_path / "body.json", case_opened())
    ))
    assert appended.exit_code == 0, appended.output
    checkpoint = cli(url, data_dir, "log", "checkpoint")
    assert checkpoint.exit_code == 0 and checkpoint.stdout.startswith(ORIGIN), checkpoint.output
    replayed = cli(url, data_dir, "replay")
    assert replayed.exit_code == 0 and "replayed" in replayed.stdout, replayed.output


def _write(path: Path, data: Any) -> Path:
    import json

    path.write_text(json.dumps(data), "utf-8")
    return path


def test_the_application_role_has_no_ddl_ownership_or_escape_hatch(hardened: Hardened) -> None:
    url = hardened.app_url
    for statement in (
        "CREATE TABLE el_probe (x int)",
        "CREATE SCHEMA el_probe",
        "ALTER TABLE ledger_events DISABLE TRIGGER USER",
        "ALTER TABLE log_entries ADD COLUMN x int",
        "ALTER TABLE api_tokens DISABLE TRIGGER evidence_ledger_append_only_row",
        "DROP TRIGGER evidence_ledger_append_only_row ON log_entries",
        "CREATE OR REPLACE FUNCTION evidence_ledger_reject_change() RETURNS trigger"
        " LANGUAGE plpgsql AS $$BEGIN RETURN NULL; END$$",
        "DROP TABLE case_state",
        "SET session_replication_role = replica",
        "UPDATE ledger_meta SET value = '2'",
        "INSERT INTO ledger_meta (key, value) VALUES ('x', 'y')",
        "SELECT setval('ledger_events_notification_id_seq', 1)",
        "LOCK TABLE log_entries IN EXCLUSIVE MODE",
        "LOCK TABLE api_tokens IN EXCLUSIVE MODE",
    ):
        error = _rejects(url, statement)
        assert isinstance(error, psycopg.errors.InsufficientPrivilege), (statement, error)
    with psycopg.connect(url) as conn:
        conn.execute("LOCK TABLE ledger_events IN EXCLUSIVE MODE")  # the library's write lock: allowed
        conn.rollback()
        conn.execute("GRANT UPDATE ON log_entries TO PUBLIC")  # no grant option: only a warning ...
        conn.commit()
        assert conn.execute("SELECT has_table_privilege('public', 'log_entries', 'UPDATE')").fetchone() == (
            False,
        )
    with psycopg.connect(hardened.admin_url, autocommit=True) as conn:
        attrs = conn.execute(
            "SELECT rolsuper, rolcreatedb, rolcreaterole, rolreplication, rolbypassrls, rolcanlogin, rolinherit"
            " FROM pg_roles WHERE rolname = %s",
            (hardened.app,),
        ).fetchone()
        owned = conn.execute(
            "SELECT count(*) FROM pg_class WHERE relowner = %s::regrole", (hardened.app,)
        ).fetchone()
        column_grants = conn.execute(
            "SELECT count(*) FROM information_schema.column_privileges WHERE grantee = %s"
            " AND privilege_type IN ('UPDATE', 'REFERENCES')",
            (hardened.app,),
        ).fetchone()
    assert attrs == (False, False, False, False, False, True, True)
    assert owned == (0,)
    assert _grants(hardened.admin_url, hardened.app) == GRANTS
    # the read models' UPDATE shows up per column; nothing else does
    assert column_grants is not None and column_grants[0] > 0
    with psycopg.connect(hardened.admin_url, autocommit=True) as conn:
        updatable = conn.execute(
            "SELECT DISTINCT table_name FROM information_schema.column_privileges WHERE grantee = %s"
            " AND privilege_type IN ('UPDATE', 'REFERENCES') ORDER BY 1",
            (hardened.app,),
        ).fetchall()
    # ... and sealed_records, whose case binding the append path sets (docs/privacy.md)
    assert {t for (t,) in updatable} == {*READ_MODELS, "sealed_records"}


# -- history cannot be rewritten ----------------------------------------------------------------------


@pytest.mark.parametrize("operation", sorted(TAMPER))
def test_the_application_role_cannot_rewrite_append_only_tables(hardened: Hardened, operation: str) -> None:
    _populate(hardened)
    before = _counts(hardened.admin_url)
    assert all(before.values()), before
    for table in APPEND_ONLY:
        statement = TAMPER[operation].format(t=table, c=FIRST_COLUMN[table])
        error = _rejects(hardened.app_url, statement)
        if operation == "DELETE" and table == "ledger_events":
            # DELETE is granted only so LOCK ... EXCLUSIVE works; the trigger refuses the DELETE itself.
            assert isinstance(error, psycopg.errors.RaiseException), (statement, error)
            assert "append-only table public.ledger_events: DELETE is not allowed" in str(error)
        else:
            assert isinstance(error, psycopg.errors.InsufficientPrivilege), (statement, error)
        # Even a statement that matches no row is refused (statement-level trigger or privilege).
        narrowed = (
            _rejects(hardened.app_url, statement + " WHERE false") if operation != "TRUNCATE" else error
        )
        assert isinstance(narrowed, (psycopg.errors.InsufficientPrivilege, psycopg.errors.RaiseException))
    assert _counts(hardened.admin_url) == before


@pytest.mark.parametrize("operation", sorted(TAMPER))
def test_the_triggers_refuse_even_the_owner(hardened: Hardened, operation: str) -> None:
    _populate(hardened)
    before = _counts(hardened.admin_url)
    for table in APPEND_ONLY:
        statement = TAMPER[operation].format(t=table, c=FIRST_COLUMN[table])
        for url in (hardened.owner_url, hardened.admin_url):
            error = _rejects(url, statement)
            assert isinstance(error, psycopg.errors.RaiseException), (url, statement, error)
            assert f"append-only table public.{table}: {operation} is not allowed" in str(error)
            assert error.sqlstate == "P0001"
        # ENABLE ALWAYS: the superuser's usual trigger bypass does not skip them either.
        error = _rejects(hardened.admin_url, statement, session_replication_role="replica")
        assert isinstance(error, psycopg.errors.RaiseException), (statement, error)
    assert _counts(hardened.admin_url) == before


def test_read_models_stay_writable_and_inserts_still_work_for_the_owner(hardened: Hardened) -> None:
    _populate(hardened)
    with psycopg.connect(hardened.app_url, autocommit=True) as conn:
        for table in READ_MODELS:
            conn.execute(sql.SQL("DELETE FROM {} WHERE false").format(sql.Identifier(table)))
        conn.execute("UPDATE case_state SET view = view")
        # sealed ciphertext (no keys in it): bound to its case by the append path, deleted by a shred
        conn.execute("UPDATE sealed_records SET case_id = case_id WHERE false")
        conn.execute("DELETE FROM sealed_records WHERE false")
        conn.execute("UPDATE log_head SET size = size")
    with hardened.ledger(hardened.owner_url) as ledger:  # the owner may still run the service, if it must
        actors = Actors.register(ledger)
        actors.ok("investigator", new_case_id(), "CaseOpened", case_opened())


def test_what_the_controls_do_not_stop_is_caught_by_the_signed_checkpoint(hardened: Hardened) -> None:
    """The owner can disable its own triggers; the tampering then shows against the signed root."""
    _populate(hardened)
    with hardened.ledger() as ledger:
        checkpoint = ledger.latest_checkpoint()
        assert checkpoint is not None and checkpoint.size == ledger.log_size()
    with psycopg.connect(hardened.owner_url) as conn:
        conn.execute("ALTER TABLE log_entries DISABLE TRIGGER USER")
        conn.execute(
            "UPDATE log_entries SET leaf = convert_to(replace(convert_from(leaf, 'UTF8'), '\"v\":1', '\"v\":2'),"
            " 'UTF8') WHERE leaf_index = 0"
        )
        for trigger in ("evidence_ledger_append_only_row", "evidence_ledger_append_only_stmt"):
            conn.execute(f"ALTER TABLE log_entries ENABLE ALWAYS TRIGGER {trigger}")
        conn.commit()
    with hardened.ledger() as ledger:
        leaves = [merkle.leaf_hash(e.leaf) for e in ledger.iter_entries()]
        assert len(leaves) == checkpoint.size
        assert merkle.root_from_leaf_hashes(leaves) != checkpoint.root


# -- db provision itself ---------------------------------------------------------------------------------


def test_provision_twice_converges(pg_database: str, roles: tuple[str, str], tmp_path: Path) -> None:
    owner, app_role = roles
    data_dir, _, owner_url = init_as_owner(pg_database, owner, tmp_path)
    first = provision(owner_url, data_dir, app_role)
    assert first.exit_code == 0, first.output
    assert f"role {app_role} created" in first.stdout
    with psycopg.connect(pg_database, autocommit=True) as conn:  # drift: a stray grant and a lost trigger
        conn.execute(sql.SQL("GRANT UPDATE, TRUNCATE ON log_entries TO {}").format(sql.Identifier(app_role)))
        conn.execute("ALTER TABLE api_tokens DISABLE TRIGGER evidence_ledger_append_only_stmt")
    drifted = cli(owner_url, data_dir, "db", "provision", "--app-role", app_role, "--check")
    assert drifted.exit_code == 1
    assert "may TRUNCATE log_entries" in drifted.output and "may UPDATE append-only log_entries" in drifted.output
    assert "append-only triggers missing or not ENABLE ALWAYS on api_tokens" in drifted.output
    second = provision(owner_url, data_dir, app_role)
    assert second.exit_code == 0, second.output
    assert f"role {app_role} exists" in second.stdout
    checked = cli(owner_url, data_dir, "db", "provision", "--app-role", app_role, "--check")
    assert checked.exit_code == 0, checked.output
    assert first.stdout.splitlines()[-1] != second.stdout.splitlines()[-1]  # a new password each run
    as_json = json.loads(provision(owner_url, data_dir, app_role, "--json").stdout)  # one document, nothing else
    assert set(as_json) == {"action", "role", "database", "tables", "created", "password_set", "url", "url_file"}
    assert (as_json["action"], as_json["role"], as_json["created"], as_json["password_set"]) == (
        "provision", app_role, False, True)
    assert as_json["url"].startswith("postgresql://") and set(as_json["tables"]) == set(APPEND_ONLY)
    checked_json = json.loads(cli(owner_url, data_dir, "db", "provision", "--app-role", app_role, "--check",
                                  "--json").stdout)
    assert checked_json == {"action": "check", "role": app_role, "database": as_json["database"],
                            "least_privilege": True}
    Ledger(Settings(data_dir=data_dir, database_url=owner_url), create_tables=True).close()  # migrate still runs
    assert _grants(pg_database, app_role) == GRANTS
    assert _triggers(pg_database) == 2 * len(APPEND_ONLY)


def test_print_sql_runs_nothing(pg_database: str, roles: tuple[str, str], tmp_path: Path) -> None:
    owner, app_role = roles
    data_dir, _, owner_url = init_as_owner(pg_database, owner, tmp_path)
    printed = provision(owner_url, data_dir, app_role, "--print-sql")
    assert printed.exit_code == 0, printed.output
    script = printed.stdout
    assert script.count("CREATE TRIGGER") == 2 * len(APPEND_ONLY)
    assert f'GRANT SELECT, INSERT, DELETE ON "public"."ledger_events" TO "{app_role}"' in script
    assert f'GRANT SELECT, INSERT ON "public"."api_tokens" TO "{app_role}"' in script
    granted = [line for line in script.splitlines() if line.startswith("GRANT ")]
    assert len(granted) == 2 + len(GRANTS) + 2  # database, schema, the tables, sequence, type
    assert not any(p in line for line in granted for p in ("TRUNCATE", "REFERENCES", "TRIGGER", "CREATE", "ALL"))
    assert "PASSWORD '<" in script  # a placeholder: no password is ever printed
    with psycopg.connect(pg_database, autocommit=True) as conn:
        assert conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (app_role,)).fetchone() is None
    assert _triggers(pg_database) == 0
    no_password = provision(owner_url, data_dir, app_role, "--print-sql", "--no-password")
    assert "PASSWORD" not in no_password.stdout
    as_json = json.loads(provision(owner_url, data_dir, app_role, "--print-sql", "--json").stdout)
    assert as_json["action"] == "print-sql" and as_json["sql"] == script and as_json["role"] == app_role


def test_sqlite_is_refused(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    init_data_dir(data_dir, ORIGIN, Settings(data_dir=data_dir), now=utc_now())
    for args in ((), ("--print-sql",)):
        refused = CliRunner().invoke(
            app, ["db", "provision", "--app-role", "el_app", "--data-dir", str(data_dir), *args],
            env={"EVIDENCE_LEDGER_DATABASE_URL": None},
        )
        assert refused.exit_code == 2, refused.output
        assert refused.stdout == ""
        (line,) = refused.stderr.splitlines()
        assert "db provision is for PostgreSQL" in line


@pytest.mark.parametrize("bad", ["pg_monitor", "public", "", "x" * 64])
def test_reserved_role_names_are_refused(tmp_path: Path, bad: str) -> None:
    refused = provision("postgresql://nobody@127.0.0.1:1/none", tmp_path, bad)
    assert refused.exit_code == 2, refused.output
    assert len(refused.stderr.splitlines()) == 1


def test_the_owner_and_powerful_roles_are_never_the_application_role(
    pg_database: str, roles: tuple[str, str], tmp_path: Path
) -> None:
    owner, app_role = roles
    data_dir, _, owner_url = init_as_owner(pg_database, owner, tmp_path)
    itself = provision(owner_url, data_dir, owner)
    assert itself.exit_code == 2 and "must not run as the owner" in itself.stderr, itself.output
    with psycopg.connect(pg_database, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN CREATEDB").format(sql.Identifier(app_role)))
    powerful = provision(owner_url, data_dir, app_role)
    assert powerful.exit_code == 1 and "refusing to change it" in powerful.stderr, powerful.output
    assert _triggers(pg_database) == 0  # one transaction: the triggers went with the refusal


def test_a_public_create_on_the_schema_fails_the_check_with_its_hint(
    pg_database: str, roles: tuple[str, str], tmp_path: Path
) -> None:
    owner, app_role = roles
    data_dir, _, owner_url = init_as_owner(pg_database, owner, tmp_path)
    with psycopg.connect(pg_database, autocommit=True) as conn:  # as on a database from before PostgreSQL 15
        conn.execute("GRANT CREATE ON SCHEMA public TO PUBLIC")
    refused = provision(owner_url, data_dir, app_role)
    assert refused.exit_code == 1, refused.output
    (line,) = refused.stderr.splitlines()
    assert "NOT_LEAST_PRIVILEGE" in line and "nothing was changed" in line
    assert f"role {app_role} may CREATE in schema public (REVOKE CREATE ON SCHEMA public FROM PUBLIC)" in line
    with psycopg.connect(pg_database, autocommit=True) as conn:
        assert conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (app_role,)).fetchone() is None
        conn.execute("REVOKE CREATE ON SCHEMA public FROM PUBLIC")
    assert _triggers(pg_database) == 0
    assert provision(owner_url, data_dir, app_role).exit_code == 0


def _scram_matches(verifier: str, password: str) -> bool:
    """Does a SCRAM-SHA-256 verifier (pg_authid.rolpassword) belong to this password? (RFC 5802/7677)"""
    method, rest = verifier.split("$", 1)
    assert method == "SCRAM-SHA-256"
    params, keys = rest.split("$")
    iterations, salt = params.split(":")
    stored_key, _server_key = keys.split(":")
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), base64.b64decode(salt), int(iterations))
    client_key = hmac.new(salted, b"Client Key", "sha256").digest()
    return hashlib.sha256(client_key).digest() == base64.b64decode(stored_key)


def _rolpassword(admin_url: str, role: str) -> str | None:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        row = conn.execute("SELECT rolpassword FROM pg_authid WHERE rolname = %s", (role,)).fetchone()
    assert row is not None
    return None if row[0] is None else str(row[0])


def test_the_printed_url_works(pg_database: str, roles: tuple[str, str], tmp_path: Path) -> None:
    owner, app_role = roles
    owner_url = with_user(pg_database, owner)
    with psycopg.connect(pg_database, autocommit=True) as conn:  # an owner URL with a schema parameter
        conn.execute(sql.SQL("CREATE SCHEMA el_ledger AUTHORIZATION {}").format(sql.Identifier(owner)))
    schema_url = owner_url + "?schema=el_ledger"
    data_dir = tmp_path / "data"
    init_data_dir(data_dir, ORIGIN, Settings(data_dir=data_dir, database_url=schema_url), now=utc_now())

    url = provisioned_url(schema_url, data_dir, app_role)
    parts = urlsplit(url)
    assert (parts.hostname, parts.port, parts.path, parts.query) == ("127.0.0.1", 5432, urlsplit(owner_url).path,
                                                                    "schema=el_ledger")
    assert unquote(parts.username or "") == app_role and parts.password
    verifier = _rolpassword(pg_database, app_role)
    assert verifier is not None and _scram_matches(verifier, unquote(parts.password))
    with psycopg.connect(url.split("?")[0]) as conn:
        assert conn.execute("SELECT current_user").fetchone() == (app_role,)
    with Ledger(Settings(data_dir=data_dir, database_url=url)) as ledger:
        with ledger.db.read() as tx:
            assert tx.one("SELECT current_user, current_schema()") == (app_role, "el_ledger")
        Actors.register(ledger)  # appends, as the application role, in the schema from the URL

    # --url-file: the URL goes to a 0600 file, and stdout carries no password.
    url_file = tmp_path / "app.url"
    url_file.write_text("old\n")
    url_file.chmod(0o644)
    done = provision(schema_url, data_dir, app_role, "--url-file", str(url_file))
    assert done.exit_code == 0, done.output
    written = url_file.read_text().strip()
    assert stat.S_IMODE(url_file.stat().st_mode) == 0o600
    password = unquote(urlsplit(written).password or "")
    assert password and password not in done.output
    assert _scram_matches(_rolpassword(pg_database, app_role) or "", password)

    # --no-password: the URL has none and the role's password is left alone.
    before = _rolpassword(pg_database, app_role)
    bare = provisioned_url(schema_url, data_dir, app_role, "--no-password")
    assert urlsplit(bare).password is None and unquote(urlsplit(bare).username or "") == app_role
    assert bare.endswith("?schema=el_ledger")
    assert _rolpassword(pg_database, app_role) == before
    assert _grants(pg_database, app_role) == GRANTS  # all of them in el_ledger; nothing in public


# -- the service, as a process, as the application role ---------------------------------------------------


def _env(h: Hardened) -> dict[str, str]:
    return {**os.environ, "EVIDENCE_LEDGER_DATA_DIR": str(h.data_dir), "EVIDENCE_LEDGER_DATABASE_URL": h.app_url}


def _serving(h: Hardened, log_path: Path) -> Any:
    """`evidence-ledger serve` as a process on a free port, as the application role, until stopped."""
    return serving(_env(h), log_path)


def _issue(h: Hardened, actor: str, role: str, *extra: str) -> str:
    """`evidence-ledger tokens issue`, as a process, as the application role."""
    issued = subprocess.run(
        [*CLI, "tokens", "issue", "--actor", actor, "--role", role, "--expires-in", "1h", *extra],
        env=_env(h), capture_output=True, text=True, timeout=120, check=False,
    )
    assert issued.returncode == 0, issued.stderr
    return issued.stdout.strip().splitlines()[-1]


class Caller:
    """One actor over HTTP: a bearer token and a signing key; signs for a position it is told."""

    def __init__(self, server: Server, token: str, key: Any, origin: str) -> None:
        self.client = httpx.Client(
            base_url=server.url, headers={"Authorization": f"Bearer {token}"}, timeout=30
        )
        self.key, self.origin = key, origin

    def append(self, case_id: str, event_type: str, body: dict[str, Any], *, head: tuple[int, str | None]
               ) -> httpx.Response:
        raw = build_envelope(
            origin=self.origin, case_id=case_id, event_type=event_type, body=body, key=self.key,
            seq=head[0] + 1, prev=head[1], occurred_at=utc_now(),
        )
        return self.client.post(f"/v1/cases/{case_id}/events", content=raw,
                                headers={"Content-Type": "application/json"})


def _log_size(url: str) -> int:
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute("SELECT count(*) FROM log_entries").fetchone()
    return int(row[0]) if row else 0


@dataclass
class Scenario:
    """The Cambridge case after CaseClosed: where it stands and who may act on it."""

    origin: str
    case_id: str
    head: tuple[int, str]
    token: str  # the investigator's bearer token
    key: Any  # the investigator's signing key


def test_serve_as_the_application_role_runs_the_cambridge_scenario_and_catches_tampering(
    hardened: Hardened, tmp_path: Path
) -> None:
    log_path = tmp_path / "server.log"
    with _serving(hardened, log_path) as server:
        scenario = _cambridge_over_http(hardened, server)
        _no_rewrite_as_the_application_role(hardened)
        _tamper_and_act(hardened, server, scenario, restarted=False)
    with _serving(hardened, log_path) as server:  # a fresh process: a restart, or another worker
        _tamper_and_act(hardened, server, scenario, restarted=True)

    # `replay`, as the application role, rebuilds the read models from the signed events.
    replayed = cli(hardened.app_url, hardened.data_dir, "replay")
    assert replayed.exit_code == 0, replayed.output
    with _serving(hardened, log_path) as server:
        caller = Caller(server, scenario.token, scenario.key, scenario.origin)
        view = caller.client.get(f"/v1/cases/{scenario.case_id}")
        assert view.status_code == 200 and view.json()["status"] == "closed", view.text
        closed = caller.append(scenario.case_id, "ReferralMade", _second_referral(), head=scenario.head)
        assert (closed.status_code, closed.json()["code"]) == (422, "CASE_CLOSED")  # the true rule again
        caller.client.close()
    log = log_path.read_text(errors="replace")
    assert "a reporter" not in log and "617-555-0100" not in log and scenario.token not in log


def _cambridge_over_http(hardened: Hardened, server: Server) -> Scenario:
    """The case over HTTP, against the server running as the application role."""
    with hardened.ledger(real_time=True) as ledger:  # the keys, registered as the application role
        actors = Actors.register(ledger)
        origin = ledger.origin
    token = _issue(hardened, "Det. A. Rivera", "investigator")
    investigator = Caller(server, token, actors.keys["investigator"], origin)
    supervisor = Caller(server, _issue(hardened, "Sgt. B. Chen", "supervisor"), actors.keys["supervisor"], origin)
    prosecutor = Caller(
        server, _issue(hardened, "ADA C. Okafor", "prosecutor", "--authority", "middlesex_da"),
        actors.keys["prosecutor"], origin,
    )
    case_id = new_case_id()
    head: tuple[int, str | None] = (0, None)

    def step(caller: Caller, event_type: str, body: dict[str, Any], status: int = 201) -> dict[str, Any]:
        nonlocal head
        response = caller.append(case_id, event_type, body, head=head)
        assert response.status_code == status, (event_type, response.status_code, response.text)
        result: dict[str, Any] = response.json()
        if status == 201:
            head = (int(result["seq"]), str(result["envelope_sha256"]))
        return result

    sealed = investigator.client.post("/v1/sealed", json={"name": "a reporter", "phone": "617-555-0100"})
    assert sealed.status_code == 201, sealed.text
    step(investigator, "CaseOpened", case_opened())
    step(investigator, "ReportReceived", report_received(sealed.json()))
    step(investigator, "FootageCaptured", footage_captured())
    step(investigator, "InvestigationHoldPlaced", hold_placed())
    refused = step(supervisor, "FootageReleased", footage_released(derivative=False), status=422)
    assert refused["code"] == "RELEASE_UNDER_HOLD"
    step(supervisor, "InvestigationHoldLifted", {"hold_id": "hold-1", "reason": "DA cleared"})
    step(investigator, "FootageDerivativeCreated", derivative_created())
    step(supervisor, "FootageReleased", footage_released())
    step(investigator, "ReferralMade", referral_made())
    step(prosecutor, "ReferralAcknowledged", {"referral_id": "ref-1", "note": "Received"})
    step(supervisor, "CaseClosed", {"disposition": "referred"})

    view = investigator.client.get(f"/v1/cases/{case_id}")
    assert view.status_code == 200, view.text
    assert (view.json()["version"], view.json()["status"]) == (10, "closed")
    timeline = investigator.client.get(f"/v1/cases/{case_id}/timeline")
    assert timeline.status_code == 200, timeline.text
    assert "ReferralAcknowledged" in timeline.text and "CaseClosed" in timeline.text
    releases = httpx.get(f"{server.url}/v1/public/releases", timeout=30)
    assert releases.status_code == 200 and "ftg-1" in releases.text, releases.text
    vkey = note.parse_verifier_key(investigator.client.get("/v1/log/key").text.strip())
    checkpoint = investigator.client.get("/v1/log/checkpoint")
    assert checkpoint.status_code == 200, checkpoint.text
    assert note.verify_checkpoint(checkpoint.content, vkey).checkpoint.origin == origin
    for caller in (investigator, supervisor, prosecutor):
        caller.client.close()
    with psycopg.connect(hardened.admin_url, autocommit=True) as conn:  # the server's pool: the app role only
        users = conn.execute(
            "SELECT DISTINCT usename FROM pg_stat_activity WHERE datname = current_database()"
            " AND pid <> pg_backend_pid()"
        ).fetchall()
    assert {u for (u,) in users} == {hardened.app}
    assert head[1] is not None
    return Scenario(origin, case_id, (head[0], head[1]), token, actors.keys["investigator"])


def _no_rewrite_as_the_application_role(hardened: Hardened) -> None:
    for table in ("ledger_events", "log_entries", "log_checkpoints"):
        column = FIRST_COLUMN[table]
        for statement in (f"UPDATE {table} SET {column} = {column}", f"DELETE FROM {table}"):
            error = _rejects(hardened.app_url, statement)
            assert isinstance(error, (psycopg.errors.InsufficientPrivilege, psycopg.errors.RaiseException)), (
                statement, error)


def _second_referral() -> dict[str, Any]:
    return referral_made() | {"referral_id": "ref-2"}


def _tamper_and_act(hardened: Hardened, server: Server, scenario: Scenario, *, restarted: bool) -> None:
    """Reopen the closed case by editing its read model, as the application role may; the service
    refuses to act on the edited row, the log does not grow, and the audit names the case."""
    with psycopg.connect(hardened.app_url, autocommit=True) as conn:
        edited = conn.execute(
            "UPDATE case_state SET status = 'open', view = replace(view, '\"closed\"', '\"open\"')"
            " WHERE case_id = %s",
            (scenario.case_id,),
        )
        assert edited.rowcount == 1
    size = _log_size(hardened.app_url)
    caller = Caller(server, scenario.token, scenario.key, scenario.origin)
    try:
        shown = caller.client.get(f"/v1/cases/{scenario.case_id}")
        assert shown.status_code == 503 and shown.json()["code"] == "STATE_TAMPERED", shown.text
        appended = caller.append(scenario.case_id, "ReferralMade", _second_referral(), head=scenario.head)
        outcome = (appended.status_code, appended.json()["code"])
        if restarted:
            assert outcome == (503, "STATE_TAMPERED"), appended.text
        else:
            # The process that wrote the row decides from the head it keeps in memory, never from the
            # edited row: for it the case is still closed.
            assert outcome in {(422, "CASE_CLOSED"), (503, "STATE_TAMPERED")}, appended.text
    finally:
        caller.client.close()
    assert _log_size(hardened.app_url) == size
    audited = cli(hardened.app_url, hardened.data_dir, "audit", "--json", "--workers", "1")
    assert audited.exit_code == 1, audited.output
    assert "PROJECTION_DRIFT" in audited.stdout and scenario.case_id in audited.stdout
