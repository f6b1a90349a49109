"""Least-privilege PostgreSQL for the ledger: append-only triggers, the application role, a check.

``evidence-ledger db provision`` runs this as the OWNER of the ledger's database (or schema), after
the tables exist (:meth:`ledger.store.Ledger.migrate`). In one transaction it

1. installs the append-only triggers on the events table and on every table of
   :data:`ledger.storage.schema.APPEND_ONLY_TABLES` (they reject ``UPDATE``, ``DELETE`` and ``TRUNCATE``
   for every role, the owner included);
2. creates the application role if it is absent, revokes everything it holds in the schema and
   grants exactly what the running service uses (:func:`grants`);
3. checks the role's EFFECTIVE privileges (``has_table_privilege`` and friends, which include grants
   to ``PUBLIC`` and role memberships) and rolls everything back if the role could do more, or less,
   than the service needs (:func:`verify`);
4. sets a password, sent as a SCRAM verifier computed on the client (the password itself never
   reaches the server, its logs or ``pg_stat_activity``).

Every name is quoted with :class:`psycopg.sql.Identifier` and every value is a parameter or a
:class:`psycopg.sql.Literal`; no SQL is built by string formatting.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import psycopg
from psycopg import sql

from domain.errors import LedgerError, MalformedInputError
from ledger.settings import ConfigurationError, DatabaseTarget
from ledger.storage.app import LedgerApplication
from ledger.storage.schema import APPEND_ONLY_TABLES, READ_MODEL_TABLES, SCHEMA_VERSION

#: the eventsourcing library's events table and composite type (``<application name>_events``,
#: ``stored_event_<originator id type>``); the provisioning itself reads them from the open recorder.
EVENTS_TABLE = f"{LedgerApplication.name.lower()}_events"
EVENT_TYPE = "stored_event_uuid"
SEALED_TABLE = "sealed_records"
META_TABLE = "ledger_meta"

REJECT_FUNCTION = "evidence_ledger_reject_change"
ROW_TRIGGER = "evidence_ledger_append_only_row"
STATEMENT_TRIGGER = "evidence_ledger_append_only_stmt"

ROLE_ATTRIBUTES = "LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS INHERIT"
_RESERVED_ROLES = {"public", "none", "current_role", "current_user", "session_user"}


class ProvisionError(LedgerError):
    """The database could not be provisioned as asked; nothing was changed (the transaction rolled back)."""

    code = "PROVISION_FAILED"


class NotLeastPrivilege(ProvisionError):
    """After the grants, the application role can do more (or less) than the service needs."""

    code = "NOT_LEAST_PRIVILEGE"


@dataclass(frozen=True)
class Plan:
    """What to provision: one schema of one database, for one application role."""

    database: str
    schema: str
    app_role: str
    events_table: str = EVENTS_TABLE
    event_type: str = EVENT_TYPE

    @property
    def append_only(self) -> tuple[str, ...]:
        """The tables that only ever get INSERTs: the events table first, then the log and tokens."""
        return (self.events_table, *APPEND_ONLY_TABLES)

    @property
    def read_write(self) -> tuple[str, ...]:
        """Rebuildable read models: upserted, and DELETEd by ``replay``."""
        return READ_MODEL_TABLES

    def table(self, name: str) -> sql.Identifier:
        return sql.Identifier(self.schema, name)

    @property
    def role(self) -> sql.Identifier:
        return sql.Identifier(self.app_role)


def check_role_name(name: str) -> str:
    """A name PostgreSQL accepts for a new role (quoted, so any case and punctuation is kept)."""
    if not name or "\x00" in name or len(name.encode("utf-8")) > 63:
        raise MalformedInputError("--app-role: 1 to 63 bytes, no NUL", code="BAD_ARGUMENT")
    if name.lower() in _RESERVED_ROLES or name.lower().startswith("pg_"):
        raise MalformedInputError(f"--app-role: {name!r} is reserved by PostgreSQL", code="BAD_ARGUMENT")
    return name


def plan_for(target: DatabaseTarget, app_role: str) -> Plan:
    if target.kind != "postgres":
        raise ConfigurationError(
            "db provision is for PostgreSQL: set EVIDENCE_LEDGER_DATABASE_URL to the owner's postgresql:// URL"
        )
    return Plan(database=target.dbname, schema=target.schema, app_role=check_role_name(app_role))


# -- the SQL ----------------------------------------------------------------------------------------


# A constant (no name or value is spliced into it), dollar-quoted so that --print-sql reads as written.
_REJECT_BODY = """$fn$
BEGIN
    RAISE EXCEPTION 'append-only table %.%: % is not allowed', TG_TABLE_SCHEMA, TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'P0001',
              HINT = 'the evidence ledger only ever INSERTs into this table; see ops/postgres/README.md';
END
$fn$"""


def trigger_statements(plan: Plan) -> list[sql.Composed]:
    """The append-only triggers (same definition every run: dropped and created again)."""
    function = sql.Identifier(plan.schema, REJECT_FUNCTION)
    statements: list[sql.Composed] = [
        sql.SQL("CREATE OR REPLACE FUNCTION {}() RETURNS trigger LANGUAGE plpgsql AS " + _REJECT_BODY).format(
            function
        ),
        sql.SQL("COMMENT ON FUNCTION {}() IS {}").format(
            function,
            sql.Literal(
                "evidence-ledger: rejects UPDATE, DELETE and TRUNCATE on append-only tables (db provision)"
            ),
        ),
        # A trigger function cannot be called directly; revoke the default PUBLIC grant anyway.
        sql.SQL("REVOKE ALL ON FUNCTION {}() FROM PUBLIC").format(function),
    ]
    for name in plan.append_only:
        table = plan.table(name)
        for trigger, events, level in (
            (ROW_TRIGGER, "UPDATE OR DELETE", "ROW"),
            (STATEMENT_TRIGGER, "UPDATE OR DELETE OR TRUNCATE", "STATEMENT"),
        ):
            trig = sql.Identifier(trigger)
            statements += [
                sql.SQL("DROP TRIGGER IF EXISTS {} ON {}").format(trig, table),
                sql.SQL("CREATE TRIGGER {} BEFORE {} ON {} FOR EACH {} EXECUTE FUNCTION {}()").format(
                    trig, sql.SQL(events), table, sql.SQL(level), function
                ),
                # ALWAYS: they fire under session_replication_role = replica too.
                sql.SQL("ALTER TABLE {} ENABLE ALWAYS TRIGGER {}").format(table, trig),
            ]
    return statements


def grants(plan: Plan) -> dict[str, tuple[str, ...]]:
    """Table -> the privileges the running service needs on it (and nothing else)."""
    # The access log's tables are among them (schema.ACCESS_LOG_TABLES): only ever inserted and read;
    # its writers serialise on a transaction advisory lock, which needs no grant.
    wanted: dict[str, tuple[str, ...]] = {name: ("SELECT", "INSERT") for name in plan.append_only}
    # LOCK TABLE ... IN EXCLUSIVE MODE (the library's write lock) needs UPDATE, DELETE or TRUNCATE on
    # PostgreSQL 15; DELETE is the narrowest, and the triggers reject every actual DELETE.
    wanted[plan.events_table] = ("SELECT", "INSERT", "DELETE")
    for name in plan.read_write:
        wanted[name] = ("SELECT", "INSERT", "UPDATE", "DELETE")
    # Sealed ciphertext (its keys are in the keystore): added, bound to the one case that names it
    # (UPDATE of case_id), deleted when the record is shredded.
    wanted[SEALED_TABLE] = ("SELECT", "INSERT", "UPDATE", "DELETE")
    wanted[META_TABLE] = ("SELECT",)
    return wanted


def revoke_statements(plan: Plan) -> list[sql.Composed]:
    """Start from nothing: every privilege the role holds in the schema (and on the database)."""
    schema, role = sql.Identifier(plan.schema), plan.role
    return [
        sql.SQL("REVOKE ALL ON ALL TABLES IN SCHEMA {} FROM {}").format(schema, role),
        sql.SQL("REVOKE ALL ON ALL SEQUENCES IN SCHEMA {} FROM {}").format(schema, role),
        sql.SQL("REVOKE ALL ON ALL FUNCTIONS IN SCHEMA {} FROM {}").format(schema, role),
        sql.SQL("REVOKE ALL ON TYPE {} FROM {}").format(plan.table(plan.event_type), role),
        sql.SQL("REVOKE ALL ON SCHEMA {} FROM {}").format(schema, role),
        sql.SQL("REVOKE ALL ON DATABASE {} FROM {}").format(sql.Identifier(plan.database), role),
    ]


def grant_statements(plan: Plan, sequence: sql.Identifier) -> list[sql.Composed]:
    """Exactly what the service uses; ``sequence`` is the events table's notification_id sequence."""
    role = plan.role
    statements: list[sql.Composed] = [
        sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(sql.Identifier(plan.database), role),
        sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(sql.Identifier(plan.schema), role),
    ]
    for name, privileges in grants(plan).items():
        statements.append(
            sql.SQL("GRANT {} ON {} TO {}").format(
                sql.SQL(", ").join(sql.SQL(p) for p in privileges), plan.table(name), role
            )
        )
    statements += [
        sql.SQL("GRANT USAGE ON SEQUENCE {} TO {}").format(sequence, role),
        sql.SQL("GRANT USAGE ON TYPE {} TO {}").format(plan.table(plan.event_type), role),
    ]
    return statements


def create_role_statement(plan: Plan) -> sql.Composed:
    return sql.SQL("CREATE ROLE {} " + ROLE_ATTRIBUTES).format(plan.role)


def password_statement(plan: Plan, verifier: str) -> sql.Composed:
    """``verifier`` is the SCRAM (or md5) form from libpq, never the password itself."""
    return sql.SQL("ALTER ROLE {} PASSWORD {}").format(plan.role, sql.Literal(verifier))


def render(statements: Sequence[sql.Composable], conn: Any = None) -> str:
    return "".join(statement.as_string(conn) + ";\n" for statement in statements)


def script(plan: Plan, *, password: bool) -> str:
    """The SQL `db provision` runs, for a DBA to review (``--print-sql``)."""
    sequence = plan.table(f"{plan.events_table}_notification_id_seq")
    lines = [
        f"-- evidence-ledger db provision: database {plan.database}, schema {plan.schema}, "
        f"application role {plan.app_role}",
        "-- 1. Before this script, as the owner: the same migration as `evidence-ledger db migrate` creates or",
        f"--    upgrades every table (the events table {plan.events_table} with its type {plan.event_type},",
        f"--    then the ledger's tables at schema version {SCHEMA_VERSION}; see ledger/storage/schema.py).",
        "BEGIN;",
        "SET LOCAL client_min_messages = warning;",
        "-- 2. Append-only triggers.",
        render(trigger_statements(plan)).rstrip("\n"),
        "-- 3. The application role (created only if absent; an existing role gets LOGIN INHERIT if it",
        "--    lacks them, and is refused if it has any of SUPERUSER CREATEDB CREATEROLE REPLICATION BYPASSRLS).",
        render([create_role_statement(plan)]).rstrip("\n"),
        render(revoke_statements(plan)).rstrip("\n"),
        f"--    (the sequence is resolved with pg_get_serial_sequence('{plan.events_table}', 'notification_id'))",
        render(grant_statements(plan, sequence)).rstrip("\n"),
        "-- 4. The role's effective privileges are checked (has_table_privilege, has_schema_privilege,",
        "--    pg_has_role ..., so grants to PUBLIC and role memberships count); any problem rolls back.",
    ]
    if password:
        lines += [
            "-- 5. A new random password, sent as the verifier libpq computes (never the password itself).",
            render([password_statement(plan, "<SCRAM-SHA-256 verifier>")]).rstrip("\n"),
        ]
    else:
        lines.append("-- 5. No password is set (--no-password).")
    lines.append("COMMIT;")
    return "\n".join(lines) + "\n"


# -- the check ----------------------------------------------------------------------------------------

_RELATIONS = """
SELECT c.relname, c.relkind,
       pg_has_role(%(role)s, c.relowner, 'USAGE'),
       CASE WHEN c.relkind IN ('r', 'p', 'v', 'm', 'f') THEN
           ARRAY(SELECT p FROM unnest(ARRAY['SELECT', 'INSERT', 'UPDATE', 'DELETE', 'TRUNCATE',
                                            'REFERENCES', 'TRIGGER']) AS p
                 WHERE has_table_privilege(%(role)s, c.oid, p))
       END,
       CASE WHEN c.relkind IN ('r', 'p', 'v', 'm', 'f') THEN has_any_column_privilege(%(role)s, c.oid, 'UPDATE') END,
       CASE WHEN c.relkind = 'S' THEN
           ARRAY(SELECT p FROM unnest(ARRAY['USAGE', 'SELECT', 'UPDATE']) AS p
                 WHERE has_sequence_privilege(%(role)s, c.oid, p))
       END
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = %(schema)s AND c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S', 'c')
ORDER BY c.relname
"""

_OTHER_OWNED = """
SELECT 'schema ' || n.nspname FROM pg_namespace n
 WHERE n.nspname = %(schema)s AND pg_has_role(%(role)s, n.nspowner, 'USAGE')
UNION ALL
SELECT 'database ' || d.datname FROM pg_database d
 WHERE d.datname = current_database() AND pg_has_role(%(role)s, d.datdba, 'USAGE')
UNION ALL
SELECT 'function ' || p.proname FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
 WHERE n.nspname = %(schema)s AND pg_has_role(%(role)s, p.proowner, 'USAGE')
UNION ALL
SELECT 'type ' || t.typname FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
 WHERE n.nspname = %(schema)s AND t.typrelid = 0 AND t.typcategory <> 'A'
   AND pg_has_role(%(role)s, t.typowner, 'USAGE')
"""

_ROLE_AND_SCOPE = """
SELECT r.rolsuper, r.rolcreatedb, r.rolcreaterole, r.rolreplication, r.rolbypassrls, r.rolcanlogin,
       has_database_privilege(%(role)s, current_database(), 'CONNECT'),
       has_database_privilege(%(role)s, current_database(), 'CREATE'),
       has_schema_privilege(%(role)s, %(schema)s, 'USAGE'),
       has_schema_privilege(%(role)s, %(schema)s, 'CREATE'),
       has_schema_privilege('public', %(schema)s, 'CREATE'),
       quote_ident(%(schema)s),
       has_type_privilege(%(role)s, to_regtype(%(type)s), 'USAGE')
FROM pg_roles r WHERE r.rolname = %(role)s
"""

_TRIGGERS = """
SELECT count(*) FROM pg_trigger g
 WHERE g.tgrelid = to_regclass(%(table)s)
   AND g.tgname IN (%(row)s, %(stmt)s) AND g.tgenabled = 'A' AND NOT g.tgisinternal
   AND g.tgfoid = to_regprocedure(%(function)s)
"""


def _qualified(conn: Any, plan: Plan, name: str) -> str:
    return plan.table(name).as_string(conn)


def _existing(conn: psycopg.Connection[Any], plan: Plan) -> set[str]:
    rows = conn.execute(
        "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE n.nspname = %s AND c.relkind IN ('r', 'p')",
        (plan.schema,),
    )
    return {str(name) for (name,) in rows}


def verify(conn: psycopg.Connection[Any], plan: Plan) -> list[str]:
    """The problems with the role's EFFECTIVE privileges in the schema (empty when least-privilege)."""
    role, params = plan.app_role, {"role": plan.app_role, "schema": plan.schema}
    problems: list[str] = []
    found = conn.execute(
        _ROLE_AND_SCOPE, {**params, "type": _qualified(conn, plan, plan.event_type)}
    ).fetchone()
    if found is None:
        return [f"role {role} does not exist"]
    (superuser, createdb, createrole, replication, bypassrls, login,
     connect, db_create, usage, schema_create, public_create, quoted_schema, type_usage) = found
    attributes = [
        name
        for name, held in (("SUPERUSER", superuser), ("CREATEDB", createdb), ("CREATEROLE", createrole),
                           ("REPLICATION", replication), ("BYPASSRLS", bypassrls))
        if held
    ]
    if attributes:
        problems.append(f"role {role} has the attribute(s) {' '.join(attributes)}")
    if not login:
        problems.append(f"role {role} cannot LOGIN")
    if not connect:
        problems.append(f"role {role} may not CONNECT to database {plan.database}")
    if db_create:
        problems.append(f"role {role} may CREATE schemas in database {plan.database}")
    if not usage:
        problems.append(f"role {role} lacks USAGE on schema {plan.schema}")
    if schema_create:
        hint = f" (REVOKE CREATE ON SCHEMA {quoted_schema} FROM PUBLIC)" if public_create else ""
        problems.append(f"role {role} may CREATE in schema {plan.schema}{hint}")
    if not type_usage:
        problems.append(f"role {role} lacks USAGE on type {plan.event_type}")

    wanted = grants(plan)
    append_only = set(plan.append_only)
    seen: set[str] = set()
    sequence = events_sequence(conn, plan) if plan.events_table in _existing(conn, plan) else None
    sequence_usage = False
    for name, kind, owns, privileges, column_update, sequence_privileges in conn.execute(_RELATIONS, params):
        if owns:
            problems.append(f"role {role} owns (or acts as the owner of) {name}")
        if kind == "S":
            held = set(sequence_privileges or ())
            if "UPDATE" in held:
                problems.append(f"role {role} may UPDATE sequence {name} (setval)")
            if sequence == (plan.schema, name) and "USAGE" in held:
                sequence_usage = True
            continue
        if kind == "c":
            continue
        held = set(privileges or ())
        seen.add(name)
        for privilege in ("TRUNCATE", "REFERENCES", "TRIGGER"):
            if privilege in held:
                problems.append(f"role {role} may {privilege} {name}")
        if name in append_only:
            if "UPDATE" in held or column_update:
                problems.append(f"role {role} may UPDATE append-only {name}")
            if "DELETE" in held and name != plan.events_table:
                problems.append(f"role {role} may DELETE from append-only {name}")
        elif name == META_TABLE:
            if held & {"INSERT", "UPDATE", "DELETE"}:
                problems.append(f"role {role} may write {name}")
        elif name not in wanted and held & {"INSERT", "UPDATE", "DELETE"}:
            problems.append(f"role {role} may write {name}, which the service does not use")
        missing = [p for p in wanted.get(name, ()) if p not in held]
        if missing:
            problems.append(f"role {role} lacks {', '.join(missing)} on {name}")
    for name in wanted:
        if name not in seen:
            problems.append(f"table {plan.schema}.{name} does not exist (run `evidence-ledger db migrate`)")
    if sequence is not None and not sequence_usage:
        problems.append(f"role {role} lacks USAGE on sequence {sequence[1]}")
    for (what,) in conn.execute(_OTHER_OWNED, params):
        problems.append(f"role {role} owns (or acts as the owner of) {what}")
    function = sql.Identifier(plan.schema, REJECT_FUNCTION).as_string(conn) + "()"
    for name in plan.append_only:
        if name not in seen:
            continue
        count = conn.execute(
            _TRIGGERS,
            {"table": _qualified(conn, plan, name), "row": ROW_TRIGGER, "stmt": STATEMENT_TRIGGER,
             "function": function},
        ).fetchone()
        if count is None or count[0] != 2:
            problems.append(f"append-only triggers missing or not ENABLE ALWAYS on {name}")
    return problems


# -- running it ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Provisioned:
    created: bool  # the role did not exist before
    tables: tuple[str, ...]  # the tables that got the append-only triggers


def _connect(target: DatabaseTarget) -> psycopg.Connection[Any]:
    try:
        return psycopg.connect(
            host=target.host, port=target.port, dbname=target.dbname, user=target.user,
            password=target.password or None, connect_timeout=10, autocommit=True,
        )
    except psycopg.Error as exc:
        raise ProvisionError(f"cannot connect as the owner: {_reason(exc)}") from None


def _reason(exc: psycopg.Error) -> str:
    """The server's one-line message (never the statement, which may hold the password verifier)."""
    primary = exc.diag.message_primary if isinstance(exc, psycopg.DatabaseError) else None
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {primary or (lines[0] if lines else 'failed')}"


def events_sequence(conn: psycopg.Connection[Any], plan: Plan) -> tuple[str, str] | None:
    """(schema, name) of the sequence behind the events table's notification_id column."""
    return conn.execute(
        "SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE c.oid = pg_get_serial_sequence(%s, 'notification_id')::regclass",
        (_qualified(conn, plan, plan.events_table),),
    ).fetchone()


def check(target: DatabaseTarget, plan: Plan) -> list[str]:
    """Only the check (read-only): the problems :func:`verify` finds, empty when all is as provisioned."""
    with _connect(target) as conn:
        try:
            with conn.transaction():
                conn.execute("SET TRANSACTION READ ONLY")
                return verify(conn, plan)
        except psycopg.Error as exc:
            raise ProvisionError(f"cannot check: {_reason(exc)}") from None


def provision(target: DatabaseTarget, plan: Plan, *, password: str | None) -> Provisioned:
    """The triggers, the role, the check and the password, in one transaction; the tables must exist
    already (``Ledger(settings, create_tables=True)``). Any error or problem rolls everything back."""
    with _connect(target) as conn:
        try:
            verifier = None
            if password is not None:
                # libpq computes the verifier the server's password_encryption asks for (SCRAM-SHA-256).
                verifier = conn.pgconn.encrypt_password(
                    password.encode("utf-8"), plan.app_role.encode("utf-8")
                ).decode("ascii")
            with conn.transaction():
                created = _provision_in(conn, plan, verifier)
        except psycopg.Error as exc:
            raise ProvisionError(f"nothing was changed: {_reason(exc)}") from None
    return Provisioned(created=created, tables=plan.append_only)


def _provision_in(conn: psycopg.Connection[Any], plan: Plan, verifier: str | None) -> bool:
    conn.execute("SET LOCAL client_min_messages = warning")
    owner = conn.execute("SELECT current_user").fetchone()
    if owner is not None and owner[0] == plan.app_role:
        raise MalformedInputError(
            f"--app-role {plan.app_role} is the role this runs as: the service must not run as the owner",
            code="BAD_ARGUMENT",
        )
    for statement in trigger_statements(plan):
        conn.execute(statement)

    role = conn.execute(
        "SELECT rolsuper OR rolcreatedb OR rolcreaterole OR rolreplication OR rolbypassrls,"
        " rolcanlogin AND rolinherit FROM pg_roles WHERE rolname = %s",
        (plan.app_role,),
    ).fetchone()
    if role is None:
        conn.execute(create_role_statement(plan))
    elif role[0]:
        raise ProvisionError(
            f"role {plan.app_role} exists with SUPERUSER, CREATEDB, CREATEROLE, REPLICATION or BYPASSRLS: "
            "refusing to change it; pick another --app-role or remove those attributes first"
        )
    elif not role[1]:
        conn.execute(sql.SQL("ALTER ROLE {} LOGIN INHERIT").format(plan.role))

    for statement in revoke_statements(plan):
        conn.execute(statement)
    sequence = events_sequence(conn, plan)
    if sequence is None:
        raise ProvisionError(f"{plan.schema}.{plan.events_table} has no notification_id sequence")
    for statement in grant_statements(plan, sql.Identifier(*sequence)):
        conn.execute(statement)

    problems = verify(conn, plan)
    if problems:
        raise NotLeastPrivilege(
            f"application role {plan.app_role} is not least-privilege, nothing was changed: " + "; ".join(problems)
        )
    if verifier is not None:
        conn.execute(password_statement(plan, verifier))
    return role is None


def app_url(owner_url: str, app_role: str, password: str | None) -> str:
    """The owner's URL (host, port, database, ``?schema=``) with the application role as the user."""
    parts = urlsplit(owner_url)
    host = parts.netloc.rsplit("@", 1)[-1]
    user = quote(app_role, safe="")
    if password is not None:
        user += ":" + quote(password, safe="")
    return urlunsplit(parts._replace(netloc=f"{user}@{host}"))

