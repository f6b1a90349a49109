"""`evidence-ledger audit`: re-verify a whole ledger from its database (or a server) and report.

Exit codes: 0 no findings, 1 findings, 2 unusable input (bad key, unreadable or unverifiable kept
checkpoint, database or server unreachable). ``--json`` prints the report for machines; otherwise
a rich report is printed, with a progress bar on stderr.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer

from domain.errors import LedgerError
from ledger.cli.app import DataDir, app
from ledger.cli.args import verifier_key
from ledger.cli.errors import check_errors

VKeyOption = Annotated[
    str | None,
    typer.Option("--vkey", help="log verifier key you trust (text or file); default: the data dir's own key"),
]
FromCheckpoint = Annotated[
    list[Path] | None,
    typer.Option(
        "--from-checkpoint", help="a signed checkpoint kept from an earlier audit or a witness; repeat"
    ),
]
WitnessOption = Annotated[
    list[str] | None, typer.Option("--witness", help="witness verifier key (text or file); repeat")
]
Progress = Callable[[str, int, int | None], None]


def _unusable(message: str) -> LedgerError:
    from ledger.audit.source import AuditInputError

    return AuditInputError(message)


def _parse_key(value: str, what: str) -> Any:
    return verifier_key(value, what)


# --- trust anchors ------------------------------------------------------------------------------


def _kept(files: list[Path], options: Any) -> list[Any]:
    """Kept checkpoints must be signed by the trusted log key (and meet the witness policy)."""
    from domain.errors import MalformedInputError, VerificationError
    from ledger.verify import CheckpointInput, verify_known

    kept = []
    for path in files:
        try:
            item = CheckpointInput(path.read_bytes(), f"kept {path}", external=True)
        except OSError as exc:
            raise _unusable(f"cannot read checkpoint {path}: {exc.strerror}") from None
        try:
            known = verify_known(item, options.log_key, origin=options.origin, witnesses=options.witnesses)
        except (VerificationError, MalformedInputError) as exc:
            raise _unusable(f"kept checkpoint {path} does not verify: {exc.code}: {exc.message}") from None
        required = len(options.witnesses) if options.min_witnesses is None else options.min_witnesses
        if len(known.cosigned_by) < required:
            raise _unusable(f"kept checkpoint {path} has {len(known.cosigned_by)} of {required} cosignatures")
        kept.append(item)
    return kept


def _guard_checkpoint(data_dir: Path) -> list[Any]:
    from ledger.log.rollback import latest_path
    from ledger.verify import CheckpointInput

    path = latest_path(data_dir)
    if not path.is_file():
        return []
    return [CheckpointInput(path.read_bytes(), "rollback guard file", external=True)]


def _local_anchors(data_dir: Path | None, vkey: str | None) -> tuple[Any, Any]:
    """(settings, data-dir log key or None) for a database audit."""
    from ledger.bootstrap import log_verifier_key
    from ledger.cli.app import settings_for
    from ledger.envelope.keys import load_private_key
    from ledger.log import note
    from ledger.settings import LedgerConfig, key_path

    settings = settings_for(data_dir)
    config = LedgerConfig.load(settings.data_dir)
    own = None
    if vkey is None:
        own = note.parse_verifier_key(
            log_verifier_key(config, load_private_key(key_path(settings.data_dir, "log")))
        )
    return settings, (config, own)


# --- progress -----------------------------------------------------------------------------------


@contextmanager
def _progress(enabled: bool) -> Iterator[Progress]:
    if not enabled:
        yield lambda _phase, _done, _total: None
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        ProgressColumn,
        TextColumn,
        TimeElapsedColumn,
    )
    from rich.text import Text

    class Rate(ProgressColumn):
        def render(self, task: Any) -> Text:
            speed = task.finished_speed or task.speed
            return Text(f"{speed:,.0f}/s" if speed else "", style="progress.data.speed")

    columns = (
        TextColumn("{task.description:<12}"),
        BarColumn(),
        MofNCompleteColumn(),
        Rate(),
        TimeElapsedColumn(),
    )
    tasks: dict[str, Any] = {}
    with Progress(*columns, console=Console(stderr=True), transient=True) as bar:

        def update(phase: str, done: int, total: int | None) -> None:
            if phase not in tasks:
                tasks[phase] = bar.add_task(phase, total=total)
            bar.update(tasks[phase], completed=done, total=total)

        yield update


# --- output -------------------------------------------------------------------------------------


def _location(finding: Any) -> str:
    if "access_index" in finding.evidence:
        return f"access entry {finding.evidence['access_index']}"
    if finding.leaf_index is None and finding.case_id is None and "size" in finding.evidence:
        return f"checkpoint size {finding.evidence['size']} ({finding.evidence.get('source', 'database')})"
    return str(finding.location())


def render(report: Any) -> None:
    from rich.table import Table

    from ledger.cli.render import Terminal

    console = Terminal()
    independent = "independent (--vkey)" if report.independent else "[yellow]NOT independent[/yellow]"
    console.print(f"[bold]Audit of {report.source}[/bold] — trust: {independent}")
    console.print(
        f"{report.log_size} log entries, {report.events} stored events, {report.cases} cases; "
        f"latest stored checkpoint: {report.latest_checkpoint}"
    )
    if report.access is not None:
        console.print(
            f"access log: {report.access['size']} entries; latest access checkpoint: "
            f"{report.access['latest_checkpoint']}"
        )
    outside = [f"{c.size} ({c.source})" for c in report.checkpoints if c.external]
    if outside:
        console.print("checkpoints kept outside the database: " + ", ".join(outside))
    if report.witnessed_size is not None:
        console.print(f"largest checkpoint meeting the witness policy: {report.witnessed_size}")
    timings = ", ".join(f"{k} {v:.2f}s" for k, v in report.timings.items())
    console.print(f"time: {timings}")
    for line in report.notes:
        console.print(f"[yellow]note:[/yellow] {line}")
    if not report.findings:
        console.print("[bold green]OK[/bold green]: no findings")
        return
    table = Table("code", "check", "location", "finding", title=f"{len(report.findings)} finding(s)")
    for f in report.findings:
        table.add_row(f"[red]{f.code}[/red]", str(f.step), _location(f), f.message)
    console.print(table)


# --- the command --------------------------------------------------------------------------------


def _options(log_key: Any, independent: bool, origin: str | None, args: dict[str, Any]) -> Any:
    from ledger.audit.run import AuditOptions

    witnesses = [_parse_key(w, "witness key") for w in args["witness"] or []]
    if witnesses and any(w.type != 0x04 for w in witnesses):
        raise _unusable("a witness key is a cosignature/v1 (type 0x04) key")
    from datetime import timedelta

    from ledger.tokens import parse_duration

    age = args["max_checkpoint_age"]
    try:
        max_age = parse_duration(age) if age else timedelta(minutes=5)
    except LedgerError as exc:
        raise _unusable(f"--max-checkpoint-age: {exc.message}") from None
    return AuditOptions(
        log_key=log_key,
        independent=independent,
        origin=origin,
        trust_root=args["trust_root"],
        witnesses=witnesses,
        min_witnesses=args["min_witnesses"],
        workers=args["workers"] or os.cpu_count() or 1,
        max_checkpoint_age=max_age,
        timestamps=_timestamp_policy(args),
    )


def _timestamp_policy(args: dict[str, Any]) -> Any:
    """The RFC 3161 policy of --tsa-cert, --tsa-interval and --tsa-since (docs/audit.md)."""
    from datetime import timedelta

    from domain.errors import MalformedInputError
    from ledger.audit.timestamps import TimestampPolicy
    from ledger.envelope.canonical import parse_time
    from ledger.log import timestamp
    from ledger.tokens import parse_duration

    trusts = []
    for file in args["tsa_cert"] or []:
        try:
            trusts.append(timestamp.load_trust(file.read_bytes()[: timestamp.MAX_PEM + 1], file.name))
        except OSError as exc:
            raise _unusable(f"--tsa-cert {file}: cannot read it: {exc.strerror}") from None
        except MalformedInputError as exc:
            raise _unusable(f"--tsa-cert {exc.message}") from None
    try:
        interval = parse_duration(args["tsa_interval"]) if args["tsa_interval"] else timedelta(seconds=60)
        since = parse_time(args["tsa_since"], field="--tsa-since") if args["tsa_since"] else None
    except LedgerError as exc:
        raise _unusable(f"{exc.message}") from None
    return TimestampPolicy(tuple(trusts), "--tsa-cert", interval, since)


def _data_dir_tsas(settings: Any, policy: Any, args: dict[str, Any]) -> Any:
    """Without --tsa-cert, the data dir's own TSAs (tsa.json), and its tsa_interval unless given."""
    from dataclasses import replace
    from datetime import timedelta

    from ledger.log.timestamping import load_tsas

    if not args["tsa_interval"]:
        policy = replace(policy, interval=timedelta(seconds=settings.tsa_interval))
    if policy.trusts:
        return policy
    trusts = tuple(endpoint.trust for endpoint in load_tsas(settings.data_dir))
    return replace(policy, trusts=trusts, source="tsa.json") if trusts else policy


def _run_local(args: dict[str, Any], progress: Progress) -> Any:
    from ledger.audit.run import paused_gc, run_audit
    from ledger.audit.source import read_database
    from ledger.log.rollback import CheckpointGuard
    from ledger.store import Ledger

    settings, (config, own) = _local_anchors(args["data_dir"], args["vkey"])
    key = own if own is not None else _parse_key(args["vkey"], "log key")
    args["trust_root"] = args["trust_root"] or config.admin_key_id
    options = _options(key, own is None, config.origin, args)
    options.kept = _kept(args["from_checkpoint"] or [], options) + _guard_checkpoint(settings.data_dir)
    options.history = CheckpointGuard(settings.data_dir, key, config.origin).history()
    options.timestamps = _data_dir_tsas(settings, options.timestamps, args)
    if not options.witnesses:  # the data dir's configured witnesses: their stored lines must verify
        from ledger.log.witnessing import load_witnesses

        options.witnesses = [endpoint.vkey for endpoint in load_witnesses(settings.data_dir)]
        options.min_witnesses = 0 if options.min_witnesses is None else options.min_witnesses
    with paused_gc():
        with Ledger(settings, check=False) as ledger:  # closed before the worker processes fork
            ledger.db.check_schema()
            options.config = ledger.domain_config
            options.mac = ledger.mac
            data = read_database(ledger.db, progress=progress, mac=ledger.mac)
        return run_audit(data, options, progress)


def _run_remote(args: dict[str, Any], progress: Progress) -> Any:
    from ledger.audit.run import run_audit
    from ledger.audit.source import read_server, server_verifier_key

    if not args["token"]:
        raise _unusable("--server needs --token (or EVIDENCE_LEDGER_TOKEN)")
    independent = args["vkey"] is not None
    key = _parse_key(args["vkey"] or server_verifier_key(args["server"]), "log key")
    options = _options(key, independent, key.name, args)
    options.kept = _kept(args["from_checkpoint"] or [], options)
    data = read_server(args["server"], args["token"], progress=progress)
    return run_audit(data, options, progress)


@app.command()
@check_errors
def audit(
    vkey: VKeyOption = None,
    from_checkpoint: FromCheckpoint = None,
    witness: WitnessOption = None,
    min_witnesses: Annotated[
        int | None, typer.Option("--min-witnesses", help="cosignatures a kept checkpoint needs")
    ] = None,
    trust_root: Annotated[
        str | None, typer.Option("--trust-root", help="pinned trust-root admin key id")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="machine-readable report")] = False,
    server: Annotated[str | None, typer.Option(help="audit a running server at this URL instead")] = None,
    token: Annotated[
        str | None, typer.Option(envvar="EVIDENCE_LEDGER_TOKEN", help="bearer token for --server")
    ] = None,
    workers: Annotated[
        int | None, typer.Option(help="signature-verifying processes (default: all cores)")
    ] = None,
    max_checkpoint_age: Annotated[
        str | None,
        typer.Option(
            "--max-checkpoint-age",
            help="entries left without a checkpoint longer than this are a finding (e.g. 5m, 1h; default 5m)",
        ),
    ] = None,
    tsa_cert: Annotated[
        list[Path] | None,
        typer.Option(
            "--tsa-cert",
            help="a time-stamping authority's CA certificate (PEM); repeat. Every stored RFC 3161 token must"
            " verify under one, and entries need time-stamps (default: the data dir's tsa.json)",
        ),
    ] = None,
    tsa_interval: Annotated[
        str | None,
        typer.Option(
            "--tsa-interval",
            help="the ledger's time-stamp interval (e.g. 60s; default: its EVIDENCE_LEDGER_TSA_INTERVAL):"
            " entries need a time-stamp within twice this",
        ),
    ] = None,
    tsa_since: Annotated[
        str | None,
        typer.Option("--tsa-since", help="entries integrated before this RFC 3339 time need no time-stamp"),
    ] = None,
    data_dir: DataDir = None,
) -> None:
    """Re-verify every envelope, leaf, tree node, checkpoint and read model; report every finding."""
    args = dict(locals())
    with _progress(not as_json) as progress:
        report = _run_remote(args, progress) if server else _run_local(args, progress)
    if as_json:
        typer.echo(json.dumps(report.to_json(), indent=2, sort_keys=True))
    else:
        render(report)
    raise typer.Exit(report.exit_code)
