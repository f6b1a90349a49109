"""`evidence-ledger audit`: re-verify a whole ledger from its database (or a server) and report.

Exit codes: 0 no findings, 1 findings, 2 unusable input (bad key, unreadable or unverifiable kept
checkpoint, database or server unreachable). ``--json`` prints the report for machines; otherwise
a rich report is printed, with a progress bar on stderr.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer

from domain.errors import LedgerError
from ledger.cli.app import DataDir, app
from ledger.cli.args import verifier_key
from ledger.cli.errors import check_errors
from ledger.cli.verify import TrustFile

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
def _pinned_policy(options: Any, origin: str, args: dict[str, Any]) -> None:
    """Without --witness, the pin file's witnesses for ``origin`` and their minimum (a production pin's
    minimum is a floor, and it requires every entry to be witnessed in time: WITNESS_POLICY)."""
    from ledger.cli.verify import load_pin_file

    pins = load_pin_file(args["trust"])
    pin = None if pins is None else pins.get(origin)
    if pin is None:
        return
    if options.witnesses:  # --witness replaces the pinned keys, never a production pin's floor
        options.min_witnesses = _own_witnesses_floor(pin, len(options.witnesses), options.min_witnesses)
    else:
        options.witnesses = list(pin.witnesses)
        options.min_witnesses = pin.required_witnesses(options.min_witnesses)
    options.require_witnessed = pin.profile == "production"


def _own_witnesses_floor(pin: Any, given: int, asked: int | None) -> int | None:
    """``pin.required_with_own``: a production pin's minimum under --witness, one error line if the
    given keys are too few to meet it."""
    from domain.errors import MalformedInputError

    try:
        required: int | None = pin.required_with_own(given, asked)
    except MalformedInputError as exc:
        raise _unusable(exc.message) from None
    return required


def _run_local(args: dict[str, Any], progress: Progress) -> Any:
    from ledger.audit.run import paused_gc, run_audit
    from ledger.audit.source import read_database
    from ledger.log.rollback import CheckpointGuard
    from ledger.store import Ledger

    settings, (config, own) = _local_anchors(args["data_dir"], args["vkey"])
    key = own if own is not None else _parse_key(args["vkey"], "log key")
    args["trust_root"] = args["trust_root"] or config.admin_key_id
    options = _options(key, own is None, config.origin, args)
    _pinned_policy(options, config.origin, args)
    if config.production:  # the ledger's own policy: witnessed in time by its witnesses in other domains
        options.require_witnessed = True
    options.kept = _kept(args["from_checkpoint"] or [], options) + _guard_checkpoint(settings.data_dir)
    options.history = CheckpointGuard(settings.data_dir, key, config.origin).history()
    options.timestamps = _data_dir_tsas(settings, options.timestamps, args)
    if not options.witnesses:  # the data dir's configured witnesses: their stored lines must verify
        from ledger.log.witnessing import counting_witnesses

        options.witnesses = [endpoint.vkey for endpoint in counting_witnesses(settings.data_dir, config)]
        default = config.min_witnesses if config.production else 0
        options.min_witnesses = default if options.min_witnesses is None else options.min_witnesses
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
    from ledger.cli.remembered import check_log
    from ledger.client import RemoteLedger

    if not args["token"]:
        raise _unusable("--server needs --token (or EVIDENCE_LEDGER_TOKEN)")
    independent = args["vkey"] is not None
    with RemoteLedger(args["server"]) as remote:  # first: is this the log this client saw before?
        check_log(remote, None if args["vkey"] is None else _parse_key(args["vkey"], "log key"))
    key = _parse_key(args["vkey"] or server_verifier_key(args["server"]), "log key")
    options = _options(key, independent, key.name, args)
    _pinned_policy(options, key.name, args)
    options.kept = _kept(args["from_checkpoint"] or [], options)
    data = read_server(args["server"], args["token"], progress=progress)
    return run_audit(data, options, progress)


def _run_tiles(args: dict[str, Any], progress: Progress) -> Any:
    """``audit --tiles``: the tiled log alone (no database, no server API), then the client memory."""
    from domain.errors import MalformedInputError, VerificationError
    from ledger.cli.remembered import client_memory
    from ledger.verify import Finding, audit_tiles, tiles_proofs, tiles_source

    try:
        fetch, where = tiles_source(args["tiles"])
    except MalformedInputError as exc:
        raise _unusable(exc.message) from None
    raw = fetch("checkpoint")
    origin = raw.decode("utf-8", "replace").split("\n", 1)[0]
    witnesses = [_parse_key(w, "witness key") for w in args["witness"] or []]
    minimum = args["min_witnesses"]
    key = None if args["vkey"] is None else _parse_key(args["vkey"], "log key")
    from ledger.cli.verify import load_pin_file

    pins = load_pin_file(args["trust"])
    pin = None if pins is None else pins.get(origin)
    if key is None:
        if pin is None:
            raise _unusable(f"--tiles needs the log's key: --vkey, or a pin for {origin!r} (evidence-ledger trust pin)")
        key = pin.vkey
    if pin is not None and str(pin.vkey) == str(key):
        if witnesses:  # --witness replaces the pinned keys, never a production pin's floor
            minimum = _own_witnesses_floor(pin, len(witnesses), minimum)
        else:
            witnesses, minimum = list(pin.witnesses), pin.required_witnesses(minimum)
    if key.type != 0x01 or any(w.type != 0x04 for w in witnesses):
        raise _unusable("the log key is an Ed25519 (type 0x01) key and a witness key a cosignature/v1 (0x04) key")
    if minimum is not None and not 0 <= minimum <= len(witnesses):
        raise _unusable(f"--min-witnesses must be between 0 and the {len(witnesses)} witness keys")
    report = audit_tiles(fetch, key, source=f"tiles {where}", witnesses=tuple(witnesses), min_witnesses=minimum,
                         progress=progress)
    if report.findings or report.size is None:
        report.notes.append("the client memory was not compared: the tiles did not verify")
        return report
    try:
        observed = client_memory().observe(raw, key, tiles_proofs(fetch, report.size), pinned=True,
                                           source=f"the tiles at {where}")
        report.notes.append(f"client memory: {observed.status} (remembered size {observed.remembered_size})")
    except VerificationError as exc:
        report.findings.append(Finding(exc.code, 8, exc.message, evidence={"size": report.size}))
    return report


def _render_tiles(report: Any) -> None:
    from ledger.cli.render import Terminal

    console = Terminal()
    independent = "independent (--vkey)" if report.independent else "[yellow]NOT independent[/yellow]"
    console.print(f"[bold]Audit of {report.source}[/bold] — trust: {independent}")
    root = "-" if report.root is None else report.root.hex()
    console.print(f"{report.size} log entries; checkpoint root {root}; {report.tiles_read} tiles and bundles read")
    if report.cosigned_by:
        console.print("cosigned by: " + ", ".join(report.cosigned_by))
    for line in report.notes:
        console.print(f"[yellow]note:[/yellow] {line}")
    if not report.findings:
        console.print("[bold green]OK[/bold green]: no findings")
        return
    for f in report.findings:
        console.print(f"[red]{f.code}[/red] (check {f.step}): {f.message}")


# --- following a log (ledger.audit.follow) -------------------------------------------------------


def _emit(line: dict[str, Any], *, err: bool) -> None:
    typer.echo(json.dumps(line, sort_keys=True), err=err)
    (sys.stderr if err else sys.stdout).flush()


def _status(line: dict[str, Any]) -> None:
    _emit(line, err=True)


def _retrying(what: Callable[[], Any], args: dict[str, Any], stop: Any) -> Any:
    """``what()``, retried with backoff while the source is unreachable (once with ``--once``)."""
    from ledger.audit.follow import backoff, now_text
    from ledger.cli.errors import UNAVAILABLE_CODES

    failures = 0
    while True:
        try:
            return what()
        except LedgerError as exc:
            if exc.code not in UNAVAILABLE_CODES or args["once"]:
                raise
            failures += 1
            _status({"time": now_text(), "status": "unreachable", "code": exc.code, "attempt": failures})
            if stop.wait(backoff(failures, args["interval"])):
                raise typer.Exit(0) from None


def _remote_trust(args: dict[str, Any], stop: Any) -> tuple[Any, str | None, list[Any], int | None]:
    """(log key, trust root, witnesses, min witnesses): --vkey, else the pin file's entry for the
    server's origin, else the key the server states (not independent)."""
    from ledger.audit.source import server_verifier_key
    from ledger.verify import PinFileError, load_pins

    stated = None if args["vkey"] else _retrying(lambda: server_verifier_key(args["server"]), args, stop)
    key = _parse_key(str(args["vkey"] or stated), "log key")
    if key.type != 0x01:
        raise _unusable(f"the log key ({'--vkey' if args['vkey'] else 'stated by the server'}) is of type "
                        f"{key.type:#04x}, not a log key (type 0x01)")
    witnesses = [_parse_key(w, "witness key") for w in args["witness"] or []]
    trust_root, minimum = args["trust_root"], args["min_witnesses"]
    if args["vkey"] is None:
        try:
            pins = load_pins(args.get("trust"))
        except (PinFileError, OSError) as exc:
            raise _unusable(f"pin file: {exc}") from None
        pin = None if pins is None else pins.get(key.name)
        if pin is not None:
            if str(pin.vkey) != str(key):
                raise _unusable(f"the server states another log key than the one pinned for {key.name}")
            trust_root = trust_root or pin.trust_root
            if not witnesses:
                witnesses, minimum = list(pin.witnesses), pin.required_witnesses(minimum)
            else:  # --witness replaces the pinned keys, never a production pin's floor
                minimum = _own_witnesses_floor(pin, len(witnesses), minimum)
    return key, trust_root, witnesses, minimum


def _local_witness_policy(args: dict[str, Any], data_dir: Path, config: Any) -> tuple[list[Any], int | None]:
    """The monitor's witness policy against the database: --witness, else the pin file's witnesses for
    the origin (a production pin's minimum is a floor), else a production data dir's own witnesses in
    other trust domains (``min_witnesses`` of them) — as against a server and in the one-shot audit."""
    from ledger.verify import PinFileError, load_pins

    witnesses = [_parse_key(w, "witness key") for w in args["witness"] or []]
    minimum = args["min_witnesses"]
    try:
        pins = load_pins(args.get("trust"))
    except (PinFileError, OSError) as exc:
        raise _unusable(f"pin file: {exc}") from None
    pin = None if pins is None else pins.get(config.origin)
    if witnesses:  # --witness replaces the pinned keys, never a production pin's floor
        return witnesses, minimum if pin is None else _own_witnesses_floor(pin, len(witnesses), minimum)
    if pin is not None and pin.witnesses:
        return list(pin.witnesses), pin.required_witnesses(minimum)
    if config.production:
        from ledger.log.witnessing import counting_witnesses

        own = [endpoint.vkey for endpoint in counting_witnesses(data_dir, config)]
        return own, config.min_witnesses if minimum is None else minimum
    return [], minimum


def _state_path(args: dict[str, Any], origin: str) -> Path:
    from ledger.verify.state_dir import origin_dir, state_dir

    if args["state"] is not None:
        return Path(args["state"])
    root = state_dir()
    if root is None:
        raise _unusable("no client state directory (no home directory): give --state FILE")
    return origin_dir(root, origin) / "monitor.json"


def _follow(args: dict[str, Any]) -> int:
    import signal
    import threading

    stop = threading.Event()
    previous: dict[int, Any] = {}
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGINT):
            previous[sig] = signal.signal(sig, lambda _sig, _frame: stop.set())
    try:
        return _follow_until(args, stop)
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


def _follow_until(args: dict[str, Any], stop: Any) -> int:
    from ledger.audit.follow import (
        DatabaseSource,
        FollowOptions,
        Monitor,
        MonitorOptions,
        ServerSource,
        follow,
        load_state,
    )

    if args["interval"] <= 0:
        raise _unusable("--interval must be a positive number of seconds")
    ledger = None
    if args["server"]:
        if not args["token"]:
            raise _unusable("--server needs --token (or EVIDENCE_LEDGER_TOKEN): an auditor's token")
        key, trust_root, witnesses, minimum = _remote_trust(args, stop)
        origin = key.name
        source: Any = ServerSource(args["server"], args["token"])
    else:
        from ledger.store import Ledger

        settings, (config, own) = _local_anchors(args["data_dir"], args["vkey"])
        key = own if own is not None else _parse_key(args["vkey"], "log key")
        origin, trust_root = config.origin, args["trust_root"] or config.admin_key_id
        witnesses, minimum = _local_witness_policy(args, settings.data_dir, config)
        ledger = _retrying(lambda: Ledger(settings, check=False), args, stop)
        source = DatabaseSource(ledger.db, f"database {settings.data_dir}")
    if any(w.type != 0x04 for w in witnesses):
        raise _unusable("a witness key is a cosignature/v1 (type 0x04) key")
    if minimum is not None and not 0 <= minimum <= len(witnesses):
        raise _unusable(f"--min-witnesses must be between 0 and the {len(witnesses)} --witness keys given")
    path = _state_path(args, origin)
    state = load_state(path, origin, str(key))
    options = MonitorOptions(key, origin, trust_root, witnesses, minimum, args["witness_grace"], path.parent / "conflicts")
    try:
        monitor = Monitor(source, state, options)
        code = follow(
            monitor,
            path,
            FollowOptions(args["interval"], args["once"], args["fail_fast"]),
            finding=lambda line: _emit(line, err=False),
            status=_status,
            stop=stop,
        )
        if code == 3:
            from ledger.cli.errors import fail

            fail(f"{source.name} did not answer; is it running? (--server / --data-dir)", 3, error="SERVER_UNREACHABLE")
        return code
    finally:
        source_close = getattr(source, "close", None)
        if source_close is not None:
            source_close()
        if ledger is not None:
            ledger.close()


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
    follow_: Annotated[
        bool,
        typer.Option(
            "--follow",
            help="keep verifying every new entry and checkpoint: one JSON line per finding on stdout, "
            "status lines on stderr (docs/audit.md, Monitoring continuously)",
        ),
    ] = False,
    once: Annotated[
        bool, typer.Option("--once", help="with --follow semantics: one poll, then exit 0 (clean) or 1 (findings)")
    ] = False,
    interval: Annotated[float, typer.Option("--interval", help="seconds between polls (--follow)")] = 10.0,
    fail_fast: Annotated[bool, typer.Option("--fail-fast", help="--follow: exit 1 at the first finding")] = False,
    state: Annotated[
        Path | None,
        typer.Option(
            "--state", help="--follow: the monitor's state file (default: <client state dir>/logs/<origin>/monitor.json)"
        ),
    ] = None,
    witness_grace: Annotated[
        float,
        typer.Option("--witness-grace", help="--follow: seconds a new checkpoint may wait for its cosignatures"),
    ] = 60.0,
    trust: TrustFile = None,
    tiles: Annotated[
        str | None,
        typer.Option(
            "--tiles",
            help="audit the log published as C2SP tlog-tiles at this URL prefix or directory (no database, no"
            " token): checkpoint, every tile and entry bundle, the root; --vkey or a pin names the key",
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
    """Re-verify every envelope, leaf, tree node, checkpoint and read model; report every finding.

    With --follow (or --once), monitor the log instead: verify each new entry and checkpoint as it
    appears, keeping state between polls and runs."""
    args = dict(locals())
    if follow_ or once:
        if server is not None:
            from ledger.cli.errors import check_server_url

            check_server_url(server)
        raise typer.Exit(_follow(args))
    if tiles is not None:
        if server is not None or follow_ or once:
            raise _unusable("--tiles audits the tiled log alone: not with --server, --follow or --once")
        with _progress(not as_json) as progress:
            tiled = _run_tiles(args, progress)
        if as_json:
            typer.echo(json.dumps(tiled.to_json(), indent=2, sort_keys=True))
        else:
            _render_tiles(tiled)
        raise typer.Exit(tiled.exit_code)
    with _progress(not as_json) as progress:
        report = _run_remote(args, progress) if server else _run_local(args, progress)
    if as_json:
        typer.echo(json.dumps(report.to_json(), indent=2, sort_keys=True))
    else:
        render(report)
    raise typer.Exit(report.exit_code)
