"""Shared fixtures: throwaway ledgers on SQLite and on PostgreSQL.

PostgreSQL tests create their own database (``el_test_<random>``) and drop it afterwards. Where no
server is reachable they are skipped with a loud reason — except in CI (``CI`` set) or when
``EVIDENCE_LEDGER_TEST_POSTGRES=required``, where that is a failure.
"""

from __future__ import annotations

import os
import secrets
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import click
import psycopg
import pytest
import typer
import typer.testing
from hypothesis import settings as hypothesis_settings

from ledger.bootstrap import init_data_dir
from ledger.settings import Settings
from ledger.store import Ledger
from tests.support.ledgers import ORIGIN, PG_ADMIN_URL, FakeClock

# Hypothesis would pick its "ci" profile when CI is set: derandomized, the same examples on every run.
# Ours draws new examples on every run, from the seed `make test` prints (and replays with it).
hypothesis_settings.register_profile(
    "ledger",
    derandomize=False,
    deadline=None,
    print_blob=True,
    **({"database": None} if os.environ.get("CI") else {}),
)
hypothesis_settings.load_profile("ledger")


def _command_shape(app: typer.Typer) -> tuple[object, ...]:
    """What the click command built from ``app`` depends on: its commands and groups, recursively."""
    groups = tuple((g.name, _command_shape(g.typer_instance)) for g in app.registered_groups if g.typer_instance)
    return (id(app), len(app.registered_commands), groups)


_commands_built: dict[tuple[object, ...], click.Command] = {}


def _built_once(app: typer.Typer) -> click.Command:
    """Typer's CliRunner converts the whole command tree (every annotation evaluated) on every invoke;
    the tests invoke the same tree thousands of times, so it is built once per shape of the tree."""
    shape = _command_shape(app)
    if shape not in _commands_built:
        _commands_built[shape] = _build_command(app)
    return _commands_built[shape]


_build_command = typer.testing._get_command
typer.testing._get_command = _built_once


@pytest.fixture(autouse=True)
def _client_state_dir(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own client state directory (remembered checkpoints, receipts): what one test's
    client saw never makes another's interaction a rollback, and a developer's own state is never touched."""
    path = tmp_path_factory.mktemp("client-state")
    monkeypatch.setenv("EVIDENCE_LEDGER_STATE_DIR", str(path))
    return path



def postgres_required() -> bool:
    return bool(os.environ.get("CI")) or os.environ.get("EVIDENCE_LEDGER_TEST_POSTGRES") == "required"


def _admin_connect() -> psycopg.Connection:
    return psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=5)


@pytest.fixture(scope="session")
def pg_server() -> str:
    """The admin URL of a reachable PostgreSQL server, or a skip (a failure in CI)."""
    try:
        with _admin_connect():
            pass
    except psycopg.OperationalError as exc:
        reason = f"PostgreSQL not reachable at {PG_ADMIN_URL}: {str(exc).strip()[:200]}"
        if postgres_required():
            pytest.fail(f"{reason} — PostgreSQL tests must run here")
        warnings.warn(f"SKIPPING POSTGRESQL TESTS: {reason}", stacklevel=1)
        pytest.skip(f"SKIPPING POSTGRESQL TESTS: {reason}")
    return PG_ADMIN_URL


@pytest.fixture
def pg_database(pg_server: str) -> Iterator[str]:
    """A fresh database URL, dropped after the test."""
    name = f"el_test_{secrets.token_hex(6)}"
    with _admin_connect() as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = pg_server.rsplit("/", 1)[0]
    try:
        yield f"{base}/{name}"
    finally:
        with _admin_connect() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')




@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def database_url(backend: str, request: pytest.FixtureRequest) -> str | None:
    if backend == "sqlite":
        return None
    return str(request.getfixturevalue("pg_database"))


@pytest.fixture
def make_ledger(tmp_path: Path, database_url: str | None) -> Iterator[Callable[..., Ledger]]:
    """Initialise a data dir (keys, tables, trust root) and open ledgers on it."""
    opened: list[Ledger] = []
    data_dir = tmp_path / "data"
    clock = FakeClock()
    settings = Settings(data_dir=data_dir, database_url=database_url)
    init_data_dir(data_dir, ORIGIN, settings, now=clock())

    def factory(**overrides: object) -> Ledger:
        ledger = Ledger(settings.model_copy(update=overrides), clock=clock)
        opened.append(ledger)
        return ledger

    factory.clock = clock  # type: ignore[attr-defined]
    factory.settings = settings  # type: ignore[attr-defined]
    yield factory
    for ledger in opened:
        ledger.close()


@pytest.fixture
def ledger(make_ledger: Callable[..., Ledger]) -> Ledger:
    return make_ledger()
