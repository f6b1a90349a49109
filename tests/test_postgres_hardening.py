"""ops/postgres/*.sql on a real server: the service runs as a least-privilege role, history cannot be rewritten.

Each test builds a ledger owned by a throwaway owner role, applies ``append_only.sql`` (as the owner)
and ``roles.sql`` (as the superuser) with ``psql``, exactly as ops/postgres/README.md says, then runs
the service as the application role. Role names are random per test, so parallel workers never
collide; every role is dropped (``REASSIGN OWNED``/``DROP OWNED BY``) at the end.
"""

from __future__ import annotations

import secrets
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
from psycopg import sql

from domain.errors import LedgerError
from ledger import merkle
from ledger.bootstrap import init_data_dir
from ledger.projection import rebuild
from ledger.settings import Settings
from ledger.store import Ledger
from tests.conftest import ORIGIN, FakeClock, postgres_required
from tests.support import Actors, case_opened, footage_captured, new_case_id

pytestmark = pytest.mark.postgres

OPS = Path(__file__).resolve().parent.parent / "ops" / "postgres"
APPEND_ONLY = ("ledger_events", "log_entries", "log_nodes", "log_checkpoints", "log_cosignatures")
READ_MODELS = ("case_state", "case_timeline", "public_releases", "projection_tracking")
# A harmless statement per (operation) that would still rewrite history if it were allowed.
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
}


def _with_user(url: str, user: str) -> str:
    parts = urlsplit(url)
    host = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit(parts._replace(netloc=f"{user}@{host}"))


def _psql(script: str, url: str, **variables: str) -> subprocess.CompletedProcess[str]:
    args = ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "--single-transaction"]
    for name, value in variables.items():
        args += ["-v", f"{name}={value}"]
    args += ["-f", str(OPS / script), url]
    return subprocess.run(args, capture_output=True, text=True, timeout=60, check=False)


def _apply(script: str, url: str, **variables: str) -> None:
    done = _psql(script, url, **variables)
    assert done.returncode == 0, f"{script} failed ({done.returncode}): {done.stderr}"


@dataclass
class Hardened:
    admin_url: str  # superuser, on the test database
    owner_url: str  # the role that ran the migration and owns the tables
    app_url: str  # the least-privilege service role
    owner: str
    app: str
    data_dir: Path
    clock: FakeClock

    def ledger(self, url: str | None = None) -> Ledger:
        settings = Settings(data_dir=self.data_dir, database_url=url or self.app_url)
        return Ledger(settings, clock=self.clock)


def _require_psql() -> None:
    if shutil.which("psql") is None:
        if postgres_required():
            pytest.fail("psql is not installed; the hardening scripts cannot be tested")
        pytest.skip("psql is not installed")


def _drop_roles(admin_url: str, roles: list[str]) -> None:
    """REASSIGN/DROP OWNED BY in the test database, then drop the roles (cluster-wide objects)."""
    with psycopg.connect(admin_url, autocommit=True) as conn:
        for role in roles:
            exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone()
            if exists is None:
                continue
            conn.execute(sql.SQL("REASSIGN OWNED BY {} TO CURRENT_USER").format(sql.Identifier(role)))
            conn.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(role)))
            conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))


@pytest.fixture
def roles(pg_database: str) -> Iterator[tuple[str, str]]:
    """(owner, app) role names, unique to this test; both dropped afterwards."""
    _require_psql()
    token = secrets.token_hex(5)
    owner, app = f"el_owner_{token}", f"el_app_{token}"
    dbname = urlsplit(pg_database).path.lstrip("/")
    with psycopg.connect(pg_database, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(owner)))
        # The owner of the database owns its `public` schema (pg_database_owner), so it can migrate.
        conn.execute(
            sql.SQL("ALTER DATABASE {} OWNER TO {}").format(sql.Identifier(dbname), sql.Identifier(owner))
        )
    try:
        yield owner, app
    finally:
        _drop_roles(pg_database, [app, owner])


def _migrate(pg_database: str, owner: str, tmp_path: Path) -> tuple[Path, FakeClock, str]:
    """`evidence-ledger init` as the owner role: keys, tables, trust root."""
    data_dir = tmp_path / "data"
    clock = FakeClock()
    owner_url = _with_user(pg_database, owner)
    init_data_dir(data_dir, ORIGIN, Settings(data_dir=data_dir, database_url=owner_url), now=clock())
    return data_dir, clock, owner_url


@pytest.fixture
def hardened(pg_database: str, roles: tuple[str, str], tmp_path: Path) -> Hardened:
    owner, app = roles
    data_dir, clock, owner_url = _migrate(pg_database, owner, tmp_path)
    _apply("append_only.sql", owner_url, schema="public")
    _apply("roles.sql", pg_database, app_role=app, schema="public")
    return Hardened(pg_database, owner_url, _with_user(pg_database, app), owner, app, data_dir, clock)


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


def _populate(h: Hardened) -> None:
    """A few events, a cosignature row and a checkpoint, so every append-only table has rows."""
    with h.ledger() as ledger:
        actors = Actors.register(ledger)
        case_id = new_case_id()
        actors.ok("investigator", case_id, "CaseOpened", case_opened())
        actors.ok("investigator", case_id, "FootageCaptured", footage_captured())
        checkpoint = ledger.checkpoint()
        assert checkpoint is not None
    with psycopg.connect(h.app_url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO log_cosignatures (size, witness, line, received_at) VALUES (%s, %s, %s, %s)",
            (checkpoint.size, "witness.example", "— witness.example AAAA\n", "2026-02-05T17:00:00Z"),
        )


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


def test_the_application_role_has_no_ddl_ownership_or_escape_hatch(hardened: Hardened) -> None:
    url = hardened.app_url
    for statement in (
        "CREATE TABLE el_probe (x int)",
        "ALTER TABLE ledger_events DISABLE TRIGGER USER",
        "ALTER TABLE log_entries ADD COLUMN x int",
        "DROP TRIGGER evidence_ledger_append_only_row ON log_entries",
        "CREATE OR REPLACE FUNCTION evidence_ledger_reject_change() RETURNS trigger"
        " LANGUAGE plpgsql AS $$BEGIN RETURN NULL; END$$",
        "DROP TABLE case_state",
        "SET session_replication_role = replica",
        "UPDATE ledger_meta SET value = '2'",
        "INSERT INTO ledger_meta (key, value) VALUES ('x', 'y')",
        "SELECT setval('ledger_events_notification_id_seq', 1)",
        "LOCK TABLE log_entries IN EXCLUSIVE MODE",
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
            "SELECT rolsuper, rolcreatedb, rolcreaterole, rolreplication, rolbypassrls, rolcanlogin"
            " FROM pg_roles WHERE rolname = %s",
            (hardened.app,),
        ).fetchone()
        owned = conn.execute(
            "SELECT count(*) FROM pg_class WHERE relowner = %s::regrole", (hardened.app,)
        ).fetchone()
    assert attrs == (False, False, False, False, False, True)
    assert owned == (0,)


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


def test_roles_sql_refuses_to_grant_before_the_triggers_exist_and_both_scripts_rerun(
    pg_database: str, roles: tuple[str, str], tmp_path: Path
) -> None:
    owner, app = roles
    data_dir, _, owner_url = _migrate(pg_database, owner, tmp_path)
    early = _psql("roles.sql", pg_database, app_role=app)
    assert early.returncode != 0 and "append-only triggers missing" in early.stderr
    missing_var = _psql("roles.sql", pg_database)
    assert missing_var.returncode != 0 and "app_role" in missing_var.stderr + missing_var.stdout
    for _ in range(2):  # idempotent: re-running converges to the same grants; migrate still works
        _apply("append_only.sql", owner_url)
        _apply("roles.sql", pg_database, app_role=app)
        Ledger(Settings(data_dir=data_dir, database_url=owner_url), create_tables=True).close()
    with psycopg.connect(pg_database, autocommit=True) as conn:
        grants = conn.execute(
            "SELECT table_name, string_agg(privilege_type, ',' ORDER BY privilege_type)"
            " FROM information_schema.role_table_grants WHERE grantee = %s GROUP BY table_name ORDER BY 1",
            (app,),
        ).fetchall()
        triggers = conn.execute(
            "SELECT count(*) FROM pg_trigger WHERE tgname LIKE 'evidence_ledger_append_only_%%' AND tgenabled = 'A'"
        ).fetchone()
    assert dict(grants) == {
        "case_state": "DELETE,INSERT,SELECT,UPDATE",
        "case_timeline": "DELETE,INSERT,SELECT,UPDATE",
        "ledger_events": "DELETE,INSERT,SELECT",
        "ledger_meta": "SELECT",
        "log_checkpoints": "INSERT,SELECT",
        "log_cosignatures": "INSERT,SELECT",
        "log_entries": "INSERT,SELECT",
        "log_nodes": "INSERT,SELECT",
        "projection_tracking": "DELETE,INSERT,SELECT,UPDATE",
        "public_releases": "DELETE,INSERT,SELECT,UPDATE",
        "sealed_records": "DELETE,INSERT,SELECT,UPDATE",
    }
    assert triggers == (2 * len(APPEND_ONLY),)
