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
from ledger.cli.errors import EXIT_CODES, cli_errors, fail

__all__ = ["DataDir", "JsonOption", "KeystoreDir", "app", "cli_errors", "commands", "emit", "fail", "main",
           "open_ledger", "print_json", "read_json_arg", "settings_for"]

#: -h and --help on every command and group (click contexts inherit it from the root)
CONTEXT = {"help_option_names": ["-h", "--help"]}


def epilog() -> str:
    """The exit codes and the output rule, shown under ``evidence-ledger --help``."""
    lines = [f"{code} {meaning}" for code, meaning in EXIT_CODES.items()]
    return (
        "Exit codes: " + "; ".join(lines) + ". Every command prints readable text, or JSON with --json;"
        " errors are one line on stderr naming the next step. Shell completion:"
        " evidence-ledger --install-completion."
    )


def package_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("evidence-ledger")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown"


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"evidence-ledger {package_version()}")
        raise typer.Exit(0)


VersionOption = Annotated[
    bool,
    typer.Option("--version", callback=_print_version, is_eager=True, help="print the version and exit"),
]

app = typer.Typer(
    no_args_is_help=True,
    add_completion=True,
    context_settings=CONTEXT,
    pretty_exceptions_show_locals=False,  # locals may hold personal data or key material
    help="Signed, append-only, verifiable evidence ledger.",
    epilog=epilog(),
)


@app.callback()
def _root(version: VersionOption = False) -> None:
    """Signed, append-only, verifiable evidence ledger."""
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


JsonOption = Annotated[bool, typer.Option("--json", help="print JSON (one stable shape) instead of text")]


def emit(data: Any, as_json: bool, text: str | list[str]) -> None:
    """The one output rule: ``data`` as JSON with ``--json``, else the readable ``text`` lines."""
    if as_json:
        print_json(data)
        return
    for line in [text] if isinstance(text, str) else text:
        typer.echo(line)


_registered: list[bool] = []  # the offline commands are added once


def commands() -> typer.Typer:
    """The app with every ledger command registered (the modules register themselves on import)."""
    from ledger.cli import audit, bundle, cases, db, events, keys, log, sealed, tokens, trust, verify, witness

    assert all((audit, bundle, cases, db, events, keys, log, sealed, tokens, witness))
    if not _registered:
        from ledger.cli.receipt_remote import receipt_app

        app.command("verify")(verify.verify)
        app.add_typer(trust.trust_app, name="trust")
        app.add_typer(receipt_app, name="receipt")
        _registered.append(True)
    return app


def main() -> None:
    """`python -m ledger`: every ledger command (``serve`` comes with ``api.cli.main``)."""
    from ledger.cli.errors import run

    run(commands())
