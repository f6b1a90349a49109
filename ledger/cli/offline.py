"""`evidence-ledger-verify`: the offline checks alone — `verify`, `log verify-*`, `receipt verify`, `trust` — for a
prosecutor's or auditor's machine. It imports no web framework, no database driver, no HTTP client
and no eventsourcing, so it runs on the base package (``pip install evidence-ledger``, no extras);
the same commands are part of `evidence-ledger`, which falls back to them on such an install."""

from __future__ import annotations

from typing import Annotated

import typer

from ledger.cli import log_checks, receipts, trust, verify


def _print_version(value: bool) -> None:
    from importlib.metadata import PackageNotFoundError, version

    if value:
        try:
            typer.echo(f"evidence-ledger {version('evidence-ledger')}")
        except PackageNotFoundError:
            typer.echo("evidence-ledger unknown")
        raise typer.Exit(0)


app = typer.Typer(
    no_args_is_help=True,
    add_completion=True,
    context_settings={"help_option_names": ["-h", "--help"]},
    pretty_exceptions_show_locals=False,
    help="Verify evidence-ledger bundles, checkpoints and proofs offline, against keys you pinned.",
)
log_app = typer.Typer(no_args_is_help=True, help="Check checkpoints and proofs offline.")


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_print_version, is_eager=True, help="print the version and exit"),
    ] = False,
) -> None:
    """Verify evidence-ledger bundles, checkpoints and proofs offline, against keys you pinned."""


app.add_typer(log_app, name="log")
app.add_typer(trust.trust_app, name="trust")
app.add_typer(receipts.offline_receipt_app, name="receipt")
app.command("verify")(verify.verify)
log_app.command("verify-checkpoint")(log_checks.verify_checkpoint)
log_app.command("verify-inclusion")(log_checks.verify_inclusion)
log_app.command("verify-consistency")(log_checks.verify_consistency)


def main() -> None:
    from ledger.cli.errors import run

    run(app)
