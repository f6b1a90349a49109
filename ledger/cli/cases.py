"""`evidence-ledger append | seal | case new | case list | case show | case events | case custody |
replay`: writing and reading cases."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, BinaryIO

import typer

from domain.errors import MalformedInputError
from ledger.cli.app import DataDir, app, case_app, emit, open_ledger, print_json, read_json_arg, settings_for
from ledger.cli.errors import cli_errors, fail
from ledger.cli.remembered import check_log


@app.command()
@cli_errors
def append(
    case_id: Annotated[str, typer.Argument(help="case UUID")],
    event_type: Annotated[str, typer.Argument(metavar="TYPE", help="event type, e.g. CaseOpened")],
    key: Annotated[Path, typer.Option(help="signer's private key file")],
    body: Annotated[
        str, typer.Option(help="event body as JSON, @FILE or - (standard input); `events template TYPE` prints one")
    ],
    server: Annotated[str | None, typer.Option(help="append through a running server at this URL")] = None,
    token: Annotated[
        str | None, typer.Option(envvar="EVIDENCE_LEDGER_TOKEN", help="bearer token for --server")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the receipt as JSON")] = False,
    data_dir: DataDir = None,
) -> None:
    """Sign an event for the next position of a case and append it; prints the receipt (--json: as JSON)."""
    from ledger.cli.events import type_name_arg
    from ledger.envelope.keys import load_private_key

    event_type = type_name_arg(event_type, "UNKNOWN_EVENT_TYPE")  # before reading a key or signing
    body_data = read_json_arg(body, "body")
    if not isinstance(body_data, dict):
        fail("body must be a JSON object", 2)
    signer = load_private_key(key)
    if server is not None:
        from ledger.client import append_remote

        if not token:
            fail("--server needs --token (or EVIDENCE_LEDGER_TOKEN)", 2)
        receipt = append_remote(
            server, token, _case_uuid(case_id), event_type, body_data, signer, guard=check_log
        )
        _print_receipt(receipt, event_type, as_json)
        return
    with open_ledger(data_dir) as ledger:
        receipt = ledger.sign_and_append(signer, _case_uuid(case_id), event_type, body_data)
    _print_receipt(receipt.to_json(), event_type, as_json)


def _print_receipt(receipt: dict[str, object], event_type: str, as_json: bool) -> None:
    if as_json:
        print_json(receipt)
        return
    typer.echo(
        f"appended {event_type} as seq {receipt.get('seq')} of case {receipt.get('case_id')}:"
        f" leaf {receipt.get('leaf_index')}, event {receipt.get('event_id')}, at {receipt.get('integrated_at')}"
    )


AsJson = Annotated[bool, typer.Option("--json", help="machine-readable output")]
Server = Annotated[str | None, typer.Option(help="work through a running server at this URL")]
Token = Annotated[str | None, typer.Option(envvar="EVIDENCE_LEDGER_TOKEN", help="bearer token for --server")]


@case_app.command("new")
@cli_errors
def case_new(
    number: Annotated[str, typer.Option("--number", help="the case number, e.g. CPD-2026-0001 (one case per number)")],
    key: Annotated[Path, typer.Option(help="signer's private key file (an investigator's or supervisor's)")],
    category: Annotated[
        str | None, typer.Option(help="the case category (`events schema CaseOpened` lists them)")
    ] = None,
    summary: Annotated[str | None, typer.Option(help="one line about the case (no personal data)")] = None,
    body: Annotated[
        str | None, typer.Option(help="the rest of the CaseOpened body as JSON, @FILE or - (standard input)")
    ] = None,
    server: Server = None,
    token: Token = None,
    as_json: AsJson = False,
    data_dir: DataDir = None,
) -> None:
    """Open a case: a new case id, and its CaseOpened signed and appended. Prints the case id
    (--json: {"case_id", "receipt"}). A case number already used by another case is refused
    (DUPLICATE_CASE_NUMBER, naming that case)."""
    import uuid

    from ledger.envelope.keys import load_private_key

    opened = _opening_body(number, category, summary, body)
    signer = load_private_key(key)
    case_id = str(uuid.uuid4())
    if server is not None:
        from ledger.client import append_remote

        if not token:
            fail("--server needs --token (or EVIDENCE_LEDGER_TOKEN)", 2)
        receipt = append_remote(server, token, case_id, "CaseOpened", opened, signer, guard=check_log)
    else:
        with open_ledger(data_dir) as ledger:
            receipt = ledger.sign_and_append(signer, case_id, "CaseOpened", opened).to_json()
    if as_json:
        print_json({"case_id": case_id, "receipt": receipt})
    else:
        typer.echo(case_id)
        typer.echo(f"opened case {opened['case_number']} (leaf {receipt['leaf_index']})", err=True)


def _opening_body(number: str, category: str | None, summary: str | None, body: str | None) -> dict[str, object]:
    """The CaseOpened body from the options and --body (an option and --body may not disagree)."""
    opened = {} if body is None else read_json_arg(body, "body")
    if not isinstance(opened, dict):
        fail("body must be a JSON object", 2)
    for name, value in (("case_number", number), ("category", category), ("summary", summary)):
        if value is None:
            continue
        if name in opened and opened[name] != value:
            fail(f"--{'number' if name == 'case_number' else name} and the body's {name} differ; give it once", 2)
        opened[name] = value
    missing = [name for name in ("category", "summary") if name not in opened]
    if missing:
        fail(f"give {' and '.join('--' + m for m in missing)} (or put them in --body)", 2)
    return opened


@case_app.command("list")
@cli_errors
def case_list(
    number: Annotated[str | None, typer.Option("--number", help="only the case opened with this case number")] = None,
    status: Annotated[str | None, typer.Option(help="only cases with this status: open or closed")] = None,
    category: Annotated[str | None, typer.Option(help="only cases of this category")] = None,
    after: Annotated[str | None, typer.Option(help="cursor: list the cases after this case id (the last `next`)")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="at most this many cases")] = 50,
    server: Server = None,
    token: Token = None,
    as_json: AsJson = False,
    data_dir: DataDir = None,
) -> None:
    """Cases in case id order, each checked against the signed log (--json: {"items": \\[case views],
    "next": the cursor for --after, or null})."""
    from domain.case_state import CASE_STATUSES

    if status is not None and status not in CASE_STATUSES:
        raise MalformedInputError(
            f"--status must be one of: {', '.join(CASE_STATUSES)}", code="BAD_ARGUMENT"
        )
    if after is not None:
        after = _case_uuid(after, "--after")
    if server is not None:
        from ledger.client import list_cases_remote

        if not token:
            fail("--server needs --token (or EVIDENCE_LEDGER_TOKEN)", 2)
        page = list_cases_remote(
            server, token, check_log, number=number, status=status, category=category, after=after, limit=limit
        )
    else:
        with open_ledger(data_dir) as ledger:
            items = ledger.list_cases(status=status, category=category, number=number, after=after, limit=limit + 1)
        page = {"items": items[:limit], "next": items[limit - 1]["case_id"] if len(items) > limit else None}
    if as_json:
        print_json(page)
        return
    from ledger.cli.render import render_case_list

    render_case_list(page["items"], page["next"])


def _case_uuid(value: str, name: str = "CASE_ID") -> str:
    import uuid

    try:
        parsed = uuid.UUID(value)
    except ValueError:
        raise MalformedInputError(
            f"{name} must be a case id (a UUID, as `evidence-ledger case list` shows)", code="BAD_ARGUMENT"
        ) from None
    return str(parsed)


#: how much the seal command reads at most (the sealed store itself keeps 64 KiB of canonical JSON)
SEAL_READ_LIMIT = 1024 * 1024
DATA_ON_COMMAND_LINE = (
    "--data is refused: a value on the command line is visible to every local user (ps, /proc) and"
    " kept in shell history; give the personal data with --data-file PATH or --data-file - (standard input)"
)


@app.command()
@cli_errors
def seal(
    data_file: Annotated[
        str | None,
        typer.Option(
            "--data-file",
            metavar="PATH",
            help="file with the personal data as JSON, or - for standard input (never on the command line)",
        ),
    ] = None,
    data: Annotated[str | None, typer.Option("--data", hidden=True, show_default=False)] = None,
    data_dir: DataDir = None,
) -> None:
    """Seal personal data outside the log; prints {"sealed_ref", "commitment"} to put in an event.

    The data is read from a file or standard input, never from an argument: arguments are visible to
    every local user and kept in shell history."""
    if data is not None:
        fail(DATA_ON_COMMAND_LINE, 2, error="BAD_ARGUMENT")  # the value itself is never repeated
    if data_file is None:
        fail("give the personal data with --data-file PATH or --data-file - (standard input)", 2)
    value = _read_sealed_data(data_file)
    with open_ledger(data_dir) as ledger:
        ledger.require_writable()
        ref = ledger.sealed_store().seal(value, now=ledger.clock())
        print_json(ref.to_json())


def _read_sealed_data(source: str) -> object:
    from ledger.envelope.canonical import parse_strict

    if source == "-":
        if sys.stdin.isatty():
            typer.echo("reading the personal data (JSON) from standard input; end with Ctrl-D", err=True)
        raw = sys.stdin.buffer.read(SEAL_READ_LIMIT + 1)
    else:
        with _open_data_file(Path(source)) as handle:
            raw = handle.read(SEAL_READ_LIMIT + 1)
    if len(raw) > SEAL_READ_LIMIT:
        raise MalformedInputError("the data to seal is larger than 1 MiB", code="BAD_ARGUMENT")
    if not raw.strip():
        raise MalformedInputError("the data to seal is empty", code="BAD_ARGUMENT")
    try:
        return parse_strict(raw)
    except MalformedInputError:  # the parser's detail may quote a key of the data: not repeated
        raise MalformedInputError(
            "the data to seal is not strict JSON (UTF-8, no duplicate keys, integers within 2**53)",
            code="BAD_ARGUMENT",
        ) from None


def _open_data_file(path: Path) -> BinaryIO:
    try:
        return path.open("rb")
    except OSError as exc:
        raise MalformedInputError(f"cannot read the data file: {exc.strerror}", code="BAD_ARGUMENT") from None


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
    server: Server = None,
    token: Token = None,
    data_dir: DataDir = None,
) -> None:
    """Show a case from its projection (or, with --as-of/--at-index, replayed as it was then): its
    footage, holds, releases, referrals and timeline (--json: the case view). With --server, the
    server's view of it (GET /v1/cases/{id}: a prosecutor sees only the cases referred to them)."""
    timeline: list[dict[str, object]] = []
    if server is not None:
        from ledger.client import case_remote

        if not token:
            fail("--server needs --token (or EVIDENCE_LEDGER_TOKEN)", 2)
        view, timeline = case_remote(
            server, token, _case_uuid(case_id), as_of=as_of, at_index=at_index, timeline=not as_json,
            guard=check_log,
        )
        _show(view, timeline, as_json)
        return
    with open_ledger(data_dir) as ledger:
        if as_of is None and at_index is None:
            view = ledger.case_view(_case_uuid(case_id))
        else:
            view = ledger.case_at(_case_uuid(case_id), as_of=as_of, at_index=at_index)
        if not as_json:  # the timeline up to the version shown, page by page, each line checked
            while len(timeline) < view["version"]:
                page = ledger.timeline(view["case_id"], after=len(timeline), limit=TIMELINE_PAGE)
                timeline += page[: view["version"] - len(timeline)]
                if len(page) < TIMELINE_PAGE:
                    break
    _show(view, timeline, as_json)


def _show(view: dict[str, object], timeline: list[dict[str, object]], as_json: bool) -> None:
    if as_json:
        print_json(view)
    else:
        from ledger.cli.render import render_case

        render_case(view, timeline)


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


@case_app.command("custody")
@cli_errors
def case_custody(
    case_id: str,
    footage_id: Annotated[str, typer.Argument(help="the footage id in the case")],
    data_dir: DataDir = None,
) -> None:
    """A footage item's chain of custody, one link per line (JSON), oldest first."""
    import json

    with open_ledger(data_dir) as ledger:
        after, links = 0, []
        while True:  # page by page, each page checked against the case's state row
            page = ledger.custody(_case_uuid(case_id), footage_id, after=after, limit=CUSTODY_PAGE)
            links += page
            if len(page) < CUSTODY_PAGE:
                break
            after = page[-1]["step"]
    for link in links:
        typer.echo(json.dumps(link, ensure_ascii=False, sort_keys=True))


CUSTODY_PAGE = 1000
TIMELINE_PAGE = 1000


@app.command()
@cli_errors
def replay(
    resume: Annotated[bool, typer.Option("--resume", help="continue from the tracked position")] = False,
    as_json: AsJson = False,
    data_dir: DataDir = None,
) -> None:
    """Rebuild every projection from the stored events (from zero unless --resume); prints how many
    entries were applied (--json: {"replayed": n, "resumed": whether it continued}). A progress bar
    shows on stderr at a terminal only."""
    from ledger.cli.progress import progress_bar, wanted
    from ledger.replay import rebuild
    from ledger.store import Ledger

    settings = settings_for(data_dir)
    with Ledger(settings, check_read_models=False) as ledger, progress_bar("replay", wanted(as_json), in_bytes=False) as bar:

        def report(done: int, total: int) -> None:
            if bar is not None:
                bar("entries", done, total)

        resume = resume and ledger.stale_read_models() is None  # other-format read models: from zero
        applied = rebuild(ledger.db, ledger.appender, from_zero=not resume, progress=report)
    emit({"replayed": applied, "resumed": resume}, as_json, f"replayed {applied} entries")


