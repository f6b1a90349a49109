"""`evidence-ledger append | seal | case show | case events | replay`: writing and reading cases."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from domain.errors import MalformedInputError
from ledger.cli.app import DataDir, app, case_app, open_ledger, print_json, read_json_arg, settings_for
from ledger.cli.errors import cli_errors, fail


@app.command()
@cli_errors
def append(
    case_id: Annotated[str, typer.Argument(help="case UUID")],
    event_type: Annotated[str, typer.Argument(metavar="TYPE", help="event type, e.g. CaseOpened")],
    key: Annotated[Path, typer.Option(help="signer's private key file")],
    body: Annotated[str, typer.Option(help="event body as JSON or @FILE")],
    server: Annotated[str | None, typer.Option(help="append through a running server at this URL")] = None,
    token: Annotated[
        str | None, typer.Option(envvar="EVIDENCE_LEDGER_TOKEN", help="bearer token for --server")
    ] = None,
    data_dir: DataDir = None,
) -> None:
    """Sign an event for the next position of a case and append it; prints the receipt."""
    from ledger.envelope.keys import load_private_key

    body_data = read_json_arg(body, "body")
    if not isinstance(body_data, dict):
        fail("body must be a JSON object", 2)
    signer = load_private_key(key)
    if server is not None:
        from ledger.client import append_remote

        if not token:
            fail("--server needs --token (or EVIDENCE_LEDGER_TOKEN)", 2)
        print_json(append_remote(server, token, _case_uuid(case_id), event_type, body_data, signer))
        return
    with open_ledger(data_dir) as ledger:
        receipt = ledger.sign_and_append(signer, _case_uuid(case_id), event_type, body_data)
        print_json(receipt.to_json())


def _case_uuid(value: str) -> str:
    import uuid

    try:
        parsed = uuid.UUID(value)
    except ValueError:
        raise MalformedInputError("CASE_ID must be a UUID", code="BAD_ARGUMENT") from None
    return str(parsed)


@app.command()
@cli_errors
def seal(
    data: Annotated[str, typer.Option(help="personal data as JSON or @FILE")],
    data_dir: DataDir = None,
) -> None:
    """Seal personal data outside the log; prints {"sealed_ref", "commitment"} to put in an event."""
    value = read_json_arg(data, "data")
    with open_ledger(data_dir) as ledger:
        ledger.require_writable()
        ref = ledger.sealed_store().seal(value, now=ledger.clock())
        print_json(ref.to_json())


# -- cases -----------------------------------------------------------------------------------------


@case_app.command("show")
@cli_errors
def case_show(
    case_id: str,
    as_json: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False,
    as_of: Annotated[
        str | None, typer.Option("--as-of", help="the case as the ledger knew it at this RFC 3339 time")
    ] = None,
    at_index: Annotated[
        int | None, typer.Option("--at-index", help="the case as the ledger knew it after this leaf index")
    ] = None,
    data_dir: DataDir = None,
) -> None:
    """Show a case from its projection (or, with --as-of/--at-index, replayed as it was then)."""
    with open_ledger(data_dir) as ledger:
        if as_of is None and at_index is None:
            view = ledger.case_view(_case_uuid(case_id))
        else:
            view = ledger.case_at(_case_uuid(case_id), as_of=as_of, at_index=at_index)
    if as_json:
        print_json(view)
    else:
        from ledger.cli.render import render_case

        render_case(view)


@case_app.command("events")
@cli_errors
def case_events(case_id: str, data_dir: DataDir = None) -> None:
    """The stored envelopes of a case, one per line, exactly as stored."""
    with open_ledger(data_dir) as ledger:
        envelopes = ledger.case_envelopes(_case_uuid(case_id))
    if not envelopes:
        fail("CASE_NOT_FOUND: no such case", 1)
    out = sys.stdout.buffer
    for raw in envelopes:
        out.write(raw + b"\n")
    out.flush()


@app.command()
@cli_errors
def replay(
    resume: Annotated[bool, typer.Option("--resume", help="continue from the tracked position")] = False,
    data_dir: DataDir = None,
) -> None:
    """Rebuild every projection from the stored events (from zero unless --resume)."""
    from rich.progress import Progress

    from ledger.replay import rebuild
    from ledger.store import Ledger

    settings = settings_for(data_dir)
    with Ledger(settings, check_read_models=False) as ledger, Progress(transient=True) as progress:
        task = progress.add_task("replaying", total=None)

        def report(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        resume = resume and ledger.stale_read_models() is None  # other-format read models: from zero
        applied = rebuild(ledger.db, ledger.appender, from_zero=not resume, progress=report)
    typer.echo(f"replayed {applied} entries")


