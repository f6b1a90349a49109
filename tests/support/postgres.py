"""PostgreSQL roles and provisioned ledgers for the hardening and tamper tests."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg import sql
from typer.testing import CliRunner, Result

from ledger.bootstrap import init_data_dir
from ledger.cli.app import commands
from ledger.settings import Settings
from tests.support.ledgers import ORIGIN, FakeClock


def with_user(url: str, user: str) -> str:
    parts = urlsplit(url)
    host = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit(parts._replace(netloc=f"{user}@{host}"))


def cli(database_url: str | None, data_dir: Path, *args: str) -> Result:
    env = {"EVIDENCE_LEDGER_DATA_DIR": str(data_dir), "EVIDENCE_LEDGER_DATABASE_URL": database_url}
    return CliRunner().invoke(commands(), list(args), env=env)  # type: ignore[arg-type]


def provision(owner_url: str, data_dir: Path, app_role: str, *args: str) -> Result:
    return cli(owner_url, data_dir, "db", "provision", "--app-role", app_role, *args)


def provisioned_url(owner_url: str, data_dir: Path, app_role: str, *args: str) -> str:
    done = provision(owner_url, data_dir, app_role, *args)
    assert done.exit_code == 0, f"db provision exited {done.exit_code}: {done.output}"
    return done.stdout.strip().splitlines()[-1]


def drop_roles(admin_url: str, roles: list[str]) -> None:
    """REASSIGN/DROP OWNED BY in the test database, then drop the roles (cluster-wide objects)."""
    with psycopg.connect(admin_url, autocommit=True) as conn:
        for role in roles:
            exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone()
            if exists is None:
                continue
            conn.execute(sql.SQL("REASSIGN OWNED BY {} TO CURRENT_USER").format(sql.Identifier(role)))
            conn.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(role)))
            conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))


def init_as_owner(pg_database: str, owner: str, tmp_path: Path) -> tuple[Path, FakeClock, str]:
    """`evidence-ledger init` as the owner role: keys, tables, trust root."""
    data_dir = tmp_path / "data"
    clock = FakeClock()
    owner_url = with_user(pg_database, owner)
    init_data_dir(data_dir, ORIGIN, Settings(data_dir=data_dir, database_url=owner_url), now=clock())
    return data_dir, clock, owner_url

