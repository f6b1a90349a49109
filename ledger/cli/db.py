"""`evidence-ledger db provision`: least-privilege PostgreSQL for the service (ops/postgres/README.md).

Run it as the OWNER of the ledger's database (a role that owns the database and its schema and has
CREATEROLE, or a superuser), with ``EVIDENCE_LEDGER_DATABASE_URL`` pointing at that role and
``--data-dir`` at a data dir made by ``init``. It creates or upgrades the tables, installs the
append-only triggers, creates the application role and grants it exactly what the service uses,
checks the role's effective privileges and prints the URL ``serve`` is to use. Safe to re-run: every
run converges to the same triggers and grants (and, unless ``--no-password``, a new password).

Exit codes: 0 done, 1 refused or failed (nothing was changed), 2 unusable arguments or settings
(SQLite, a reserved role name).
"""

from __future__ import annotations

import os
import secrets
from dataclasses import replace
from pathlib import Path
from typing import Annotated, Any

import typer

from ledger.cli.app import DataDir, JsonOption, KeystoreDir, app, db_app, emit, print_json, settings_for
from ledger.cli.errors import cli_errors, fail

KEYSTORE_DEMO_WARNING = (
    "WARNING: DEMO MODE. The keys of sealed personal data are in {path}, inside the data dir: a copy of "
    "the data dir and the database unseals every record. For production, run `init --keystore-dir DIR` "
    "with a directory outside the data dir and the database's directory (docs/privacy.md)."
)
DEMO_WARNING = (
    "WARNING: DEMO MODE. The trust-root admin private key is stored in {path}: whoever holds this "
    "server can register keys. For production, generate the admin key offline (`evidence-ledger keys "
    "new`) and run `init --admin-public-key FILE` (docs/keys.md)."
)


@app.command()
@cli_errors
def init(
    origin: Annotated[
        str, typer.Option(help="log origin and key name, e.g. cambridgema.gov/evidence-ledger")
    ],
    admin_public_key: Annotated[
        Path | None,
        typer.Option(
            "--admin-public-key",
            help="the trust-root admin PUBLIC key (FILE.pub from `keys new` on an offline machine); "
            "without it the admin private key is generated into the data dir (demo mode)",
        ),
    ] = None,
    profile: Annotated[
        str,
        typer.Option(
            "--profile",
            help="standard, or production: a checkpoint is published only once 2 witnesses in other trust "
            "domains cosigned it; needs --admin-public-key and --keystore-dir (docs/witness.md)",
        ),
    ] = "standard",
    as_json: JsonOption = False,
    data_dir: DataDir = None,
    keystore_dir: KeystoreDir = None,
) -> None:
    """Create a data dir: log key, service key, state key, the keystore of sealed records' keys, tables
    (and, in demo mode only, the trust-root admin key with the registry's genesis)."""
    from ledger.bootstrap import GENESIS_REQUEST, init_data_dir
    from ledger.envelope.keys import load_public_key, raw_public_key
    from ledger.settings import keystore_location
    from ledger.store import utc_now

    settings = settings_for(data_dir, keystore_dir)
    admin_public = None if admin_public_key is None else raw_public_key(load_public_key(admin_public_key))
    result = init_data_dir(
        settings.data_dir, origin, settings, now=utc_now(), admin_public=admin_public, profile=profile
    )
    keystore = keystore_location(settings)
    if as_json:
        print_json({
            "data_dir": str(result.data_dir),
            "origin": result.origin,
            "admin_key_id": result.admin_key_id,
            "log_verifier_key": result.log_verifier_key,
            "keystore": str(keystore.path),
            "demo_mode": admin_public is None,
            "profile": profile,
            "genesis_request": None if admin_public is None else str(result.data_dir / GENESIS_REQUEST),
        })
        _warn(keystore, admin_public is None, result.data_dir)
        return
    typer.echo(f"initialised {result.data_dir} for origin {result.origin}")
    typer.echo(f"trust-root admin key id: {result.admin_key_id}")
    typer.echo(f"log verifier key: {result.log_verifier_key}")
    typer.echo(f"keystore: {keystore.path}")
    typer.echo(f"profile: {profile}")
    _warn(keystore, admin_public is None, result.data_dir)
    if profile == "production":
        typer.echo(
            "a checkpoint is published only once 2 witnesses in other trust domains cosigned it: add them with"
            " `evidence-ledger log add-witness --url URL --vkey KEY` before `serve` (docs/witness.md)"
        )
    if admin_public is None:
        return
    request = result.data_dir / GENESIS_REQUEST
    typer.echo("the key registry is empty until the admin signs its genesis offline:")
    typer.echo(f"  1. copy {request} to the offline machine that holds the admin key")
    typer.echo(f"  2. there: evidence-ledger keys genesis --admin-key ADMIN.pem --request {GENESIS_REQUEST} --out genesis.jsonl")
    typer.echo("  3. here:  evidence-ledger keys submit genesis.jsonl")


def _warn(keystore: Any, demo: bool, data_dir: Path) -> None:
    from ledger.settings import key_path

    if keystore.in_data_dir:
        typer.echo(KEYSTORE_DEMO_WARNING.format(path=keystore.path), err=True)
    if demo:
        typer.echo(DEMO_WARNING.format(path=key_path(data_dir, "admin")), err=True)


@db_app.command("migrate")
@cli_errors
def db_migrate(as_json: JsonOption = False, data_dir: DataDir = None, keystore_dir: KeystoreDir = None) -> None:
    """Create or update the tables (safe to re-run; run once before starting workers). From schema 2,
    sealed records' keys move out of the database into the keystore."""
    from ledger.store import Ledger

    with Ledger(settings_for(data_dir, keystore_dir), create_tables=True) as ledger:
        target = ledger.target.describe()
    if as_json:
        print_json({"schema_ready": True, "database": target})
    else:
        typer.echo(f"schema ready on {target}")



@db_app.command("backup")
@cli_errors
def db_backup(
    out: Annotated[Path, typer.Option("--out", help="the new backup file (mode 0600); never overwritten")],
    as_json: JsonOption = False,
    data_dir: DataDir = None,
) -> None:
    """SQLite: an online, consistent copy of the database while the service runs (SQLite's backup API,
    never a file copy of a live WAL database). Holds no key: back up the keys apart (docs/operations.md).

    --json: {"database", "out", "bytes"}. PostgreSQL is backed up with pg_basebackup and WAL archiving."""
    from ledger.settings import database_target
    from ledger.storage.backup import backup_sqlite

    settings = settings_for(data_dir)
    target = database_target(settings)
    if target.kind != "sqlite" or target.sqlite_path is None:
        fail("db backup copies a SQLite database; back up PostgreSQL with pg_basebackup and WAL archiving "
             "(ops/backup/backup.sh, docs/operations.md)", 2)
    if out.exists():
        fail(f"{out} exists; refusing to overwrite it (give another --out)", 2, error="FILE_EXISTS")
    if not out.parent.is_dir():
        fail(f"--out: {out.parent} is not a directory", 2)
    size = backup_sqlite(target.sqlite_path, out)
    emit({"database": target.describe(), "out": str(out), "bytes": size}, as_json,
         f"backed up {target.describe()} to {out} ({size} bytes)")


@db_app.command("provision")
@cli_errors
def db_provision(
    app_role: Annotated[
        str, typer.Option("--app-role", help="the role `serve` runs as (created if absent, never the owner)")
    ],
    no_password: Annotated[
        bool,
        typer.Option("--no-password", help="set no password (peer or certificate auth); the URL carries none"),
    ] = False,
    url_file: Annotated[
        Path | None,
        typer.Option("--url-file", help="write the role's database URL to this file (mode 0600), not stdout"),
    ] = None,
    print_sql: Annotated[
        bool, typer.Option("--print-sql", help="print the SQL for review and run nothing")
    ] = False,
    check_only: Annotated[
        bool,
        typer.Option("--check", help="only check the triggers and the role's effective privileges; change nothing"),
    ] = False,
    as_json: JsonOption = False,
    data_dir: DataDir = None,
) -> None:
    """As the owner: tables, append-only triggers and a least-privilege role for `serve`; prints its URL.

    --json: {"action": "provision", "role", "database", "tables", "created", "password_set", "url",
    "url_file"} ("url" is null when --url-file holds it); with --check {"action": "check", "role",
    "database", "least_privilege": true}; with --print-sql {"action": "print-sql", "role", "database", "sql"}."""
    from ledger.settings import database_target
    from ledger.storage import provision as pg

    settings = settings_for(data_dir)
    target = database_target(settings)
    plan = pg.plan_for(target, app_role)
    about = {"role": app_role, "database": target.describe()}
    if print_sql:
        sql = pg.script(plan, password=not no_password)
        if as_json:
            print_json({"action": "print-sql", **about, "sql": sql})
        else:
            typer.echo(sql, nl=False)
        return
    if check_only:
        problems = pg.check(target, plan)
        if problems:
            fail(f"{pg.NotLeastPrivilege.code}: " + "; ".join(problems), 1)
        emit({"action": "check", **about, "least_privilege": True}, as_json,
             f"role {app_role}: least-privilege on {target.describe()}; append-only triggers in place")
        return
    if url_file is not None and not url_file.parent.is_dir():
        fail(f"--url-file: {url_file.parent} is not a directory", 2)

    from ledger.store import Ledger

    with Ledger(settings, create_tables=True) as ledger:  # step 1: the same migration as `db migrate`
        plan = replace(
            plan, events_table=ledger.db.events_table, event_type=ledger.db.recorder.stored_event_type_name
        )
    say = (lambda line: None) if as_json else typer.echo  # step by step for people; one document with --json
    say(f"tables ready on {target.describe()}")
    password = None if no_password else secrets.token_urlsafe(32)
    done = pg.provision(target, plan, password=password)
    say(f"append-only triggers on {', '.join(done.tables)}")
    say(
        f"role {app_role} {'created' if done.created else 'exists'}; its privileges were granted again and checked"
        + ("" if password is None else "; new password set")
    )
    url = pg.app_url(settings.database_url or "", app_role, password)
    if url_file is not None:
        _write_private(url_file, url + "\n")
    emit({
        "action": "provision", **about, "tables": list(done.tables), "created": done.created,
        "password_set": password is not None, "url": url if url_file is None else None,
        "url_file": None if url_file is None else str(url_file),
    }, as_json, url if url_file is None else f"the database URL for {app_role} is in {url_file} (mode 0600)")


def _write_private(path: Path, text: str) -> None:
    """Replace ``path`` atomically with a file only its owner can read."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            os.fchmod(handle.fileno(), 0o600)
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
