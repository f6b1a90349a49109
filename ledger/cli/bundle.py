"""`evidence-ledger export` and `evidence-ledger evidence put|fixity`.

``export CASE_ID --out FILE [--with-media]`` writes a case's evidence bundle (check it with
``evidence-ledger verify``); ``evidence put FILE`` stores a file in the footage store and prints its
SHA-256 and size (to put in a FootageCaptured with ``stored: true``); ``evidence fixity`` re-hashes
every stored file and exits 1 on any mismatch, missing or stray file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ledger.cli.app import (
    DataDir,
    JsonOption,
    app,
    cli_errors,
    emit,
    fail,
    open_ledger,
    print_json,
    settings_for,
)
from ledger.cli.progress import progress_bar, wanted

evidence_app = typer.Typer(no_args_is_help=True, help="The footage store: content-addressed evidence files.")
app.add_typer(evidence_app, name="evidence")


@app.command("export")
@cli_errors
def export(
    case_id: Annotated[str, typer.Argument(help="case UUID")],
    out: Annotated[Path, typer.Option("--out", help="bundle file to write (.zip)")],
    with_media: Annotated[
        bool, typer.Option("--with-media", help="include the footage and derivatives held in the store")
    ] = False,
    force: Annotated[bool, typer.Option("--force", help="replace an existing bundle file")] = False,
    as_json: JsonOption = False,
    data_dir: DataDir = None,
) -> None:
    """Export a case as a self-contained, offline-verifiable evidence bundle (signing a checkpoint that
    covers it first, with the configured witnesses' cosignatures and the configured TSAs' RFC 3161
    time-stamps; a TSA that does not answer in time is left out). Refuses to replace an existing
    file unless --force (exit 2)."""
    from ledger.evidence.bundle import export_bundle
    from ledger.log.timestamping import stamp_checkpoint
    from ledger.log.witnessing import checkpoint_with_witnesses

    if out.exists() and not force:
        fail(f"{out} exists; refusing to overwrite a bundle (give --force to replace it, or another --out)", 2,
             error="FILE_EXISTS")
    if out.is_dir():
        fail(f"{out} is a directory; --out names the bundle file to write", 2)
    case = _uuid(case_id)
    with open_ledger(data_dir) as ledger, progress_bar("export", wanted(as_json)) as report:
        checkpoint_with_witnesses(ledger)  # the writes, before the read
        checkpoint = ledger.published_checkpoint()  # the bundle's checkpoint
        if checkpoint is not None:
            stamp_checkpoint(ledger, checkpoint, timeout=ledger.settings.tsa_timeout)
        ledger.access_log.checkpoint()  # so that the case's access entries come with proofs
        info = export_bundle(ledger, case, out, with_media=with_media, progress=report,
                             checkpoint_size=None if checkpoint is None else checkpoint.size)
    data = {
        "bundle": str(info.path),
        "sha256": info.sha256,
        "size": info.size,
        "case_id": info.case_id,
        "case_events": info.case_events,
        "entries": info.entries,
        "checkpoint_size": info.checkpoint_size,
        "access_entries": info.access_entries,
        "media": info.media,
        "timestamps": info.timestamps,
    }
    emit(data, as_json, [
        f"wrote {info.path} ({info.size} bytes, sha256 {info.sha256})",
        f"case {info.case_id}: {info.case_events} events, {info.entries} log entries with proofs to the"
        f" checkpoint of size {info.checkpoint_size} ({info.timestamps} RFC 3161 time-stamp(s)),"
        f" {info.access_entries} access-log entries,"
        f" {info.media} media file(s)",
        f"check it offline: evidence-ledger verify {info.path} --vkey LOG_KEY --trust-root ROOT_KEY_ID",
    ])


def _uuid(value: str) -> str:
    import uuid

    from domain.errors import MalformedInputError

    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise MalformedInputError(
            "CASE_ID must be a case id (a UUID, as `evidence-ledger case list` shows)", code="BAD_ARGUMENT"
        ) from None


@evidence_app.command("put")
@cli_errors
def evidence_put(
    file: Annotated[Path, typer.Argument(help="the file to store")],
    max_bytes: Annotated[int | None, typer.Option(help="size cap in bytes (default 20 GiB)")] = None,
    as_json: JsonOption = False,
    data_dir: DataDir = None,
) -> None:
    """Store a file in the footage store; prints its sha256 and size (the FootageCaptured fields)."""
    from ledger.evidence.footage import store_for
    from ledger.settings import LedgerConfig

    settings = settings_for(data_dir)
    LedgerConfig.load(settings.data_dir)  # refuse an uninitialised data dir
    store = store_for(settings.data_dir)
    with progress_bar("evidence put", wanted(as_json)) as report:
        sha, size, created = store.put_file(file, max_bytes=max_bytes, progress=report)
    emit({"sha256": sha, "size": size, "created": created}, as_json, [
        f"sha256 {sha}",
        f"size {size} bytes",
        "stored" if created else "already stored (the same bytes were put before)",
    ])


@evidence_app.command("fixity")
@cli_errors
def evidence_fixity(as_json: JsonOption = False, data_dir: DataDir = None) -> None:
    """Re-hash every stored file; report mismatches, missing files (stored: true) and strays."""
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn

    from ledger.evidence.fixity import check_fixity, expected_files
    from ledger.evidence.footage import store_for

    with open_ledger(data_dir) as ledger:
        expected = expected_files(ledger)
        store = store_for(ledger.data_dir)
    columns = (TextColumn("fixity"), BarColumn(), DownloadColumn(), TimeRemainingColumn())
    with Progress(*columns, transient=True, disable=not wanted(as_json)) as progress:
        task = progress.add_task("hashing", total=None)

        def report(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        result = check_fixity(store, expected, progress=report)
    if as_json:
        print_json({
            "checked": result.checked,
            "bytes": result.bytes,
            "problems": [{"code": p.code, "what": p.what, "detail": p.detail, "refs": p.refs} for p in result.problems],
        })
    for problem in [] if as_json else result.problems:
        refs = " ".join(f"{k}={v}" for k, v in problem.refs.items())
        typer.echo(
            f"{problem.code}: {problem.what}: {problem.detail}" + (f" ({refs})" if refs else ""), err=True
        )
    if not as_json:
        typer.echo(f"checked {result.checked} files, {result.bytes} bytes; {len(result.problems)} problem(s)")
    if result.problems:
        raise typer.Exit(1)
