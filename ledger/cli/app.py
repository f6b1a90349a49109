"""The `evidence-ledger` command line: the Typer app, its groups and the options every command shares.

The commands live beside this module, one module per group (``keys``, ``cases``, ``events``, ``db``, ``log``,
``witness``, ``verify``, ``trust``, ``bundle``, ``audit``, ``tokens``, ``sealed``); :func:`commands` imports
them, which registers them. Every command has ``--help``; errors go through ``ledger.cli.errors``.
Heavy modules are imported inside the commands so that the offline commands (``verify``, ``log
verify-*``) start without a web framework or a database driver. The HTTP service (``serve``) is
added by ``api.cli``, whose ``main`` is the installed ``evidence-ledger`` script.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from ledger.cli.args import read_json_arg
from ledger.cli.errors import cli_errors, fail

__all__ = ["DataDir", "KeystoreDir", "app", "cli_errors", "commands", "fail", "main", "open_ledger", "print_json",
           "read_json_arg", "settings_for"]

app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,  # locals may hold personal data or key material
    help="Signed, append-only, verifiable evidence ledger.",
)
keys_app = typer.Typer(no_args_is_help=True, help="Signing keys and the key registry.")
case_app = typer.Typer(no_args_is_help=True, help="Open, list and read cases.")
db_app = typer.Typer(no_args_is_help=True, help="Database administration.")
sealed_app = typer.Typer(no_args_is_help=True, help="Sealed personal data: two-person disclosure, shredding.")
retention_app = typer.Typer(no_args_is_help=True, help="Retention of sealed personal data.")
app.add_typer(keys_app, name="keys")
app.add_typer(sealed_app, name="sealed")
app.add_typer(retention_app, name="retention")
app.add_typer(case_app, name="case")
app.add_typer(db_app, name="db")

DataDir = Annotated[
    Path | None,
    typer.Option("--data-dir", envvar="EVIDENCE_LEDGER_DATA_DIR", help="data directory created by `init`"),
]
KeystoreDir = Annotated[
    Path | None,
    typer.Option(
        "--keystore-dir",
        envvar="EVIDENCE_LEDGER_KEYSTORE_DIR",
        help="the keystore of sealed records' keys, outside the data dir (unset: the demo keystore in the data dir)",
    ),
]


def settings_for(data_dir: Path | None, keystore_dir: Path | None = None) -> Any:
    from ledger.settings import Settings

    overrides: dict[str, Any] = {}
    if data_dir is not None:
        overrides["data_dir"] = data_dir
    if keystore_dir is not None:
        overrides["keystore_dir"] = keystore_dir
    return Settings(**overrides)


def open_ledger(data_dir: Path | None, keystore_dir: Path | None = None) -> Any:
    from ledger.store import Ledger

    return Ledger(settings_for(data_dir, keystore_dir))


def print_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False))


_registered: list[bool] = []  # the offline commands are added once


def commands() -> typer.Typer:
    """The app with every ledger command registered (the modules register themselves on import)."""
    from ledger.cli import audit, bundle, cases, db, events, keys, log, sealed, tokens, trust, verify, witness

    assert all((audit, bundle, cases, db, events, keys, log, sealed, tokens, witness))
    if not _registered:
        app.command("verify")(verify.verify)
        app.add_typer(trust.trust_app, name="trust")
        _registered.append(True)
    return app


def main() -> None:
    """`python -m ledger`: every ledger command (``serve`` comes with ``api.cli.main``)."""
    commands()()
