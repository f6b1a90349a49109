"""`evidence-ledger log …`: checkpoints and proofs produced from a data dir; the offline checks
(``verify-*``) are defined in ``ledger.cli.log_checks`` and registered here too."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from domain.errors import MalformedInputError
from ledger.cli import log_checks
from ledger.cli.app import DataDir, JsonOption, app, emit, open_ledger, settings_for
from ledger.cli.errors import cli_errors, fail

log_app = typer.Typer(no_args_is_help=True, help="Transparency log: checkpoints, proofs, offline checks.")
app.add_typer(log_app, name="log")

def _print_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2))


# -- producing ---------------------------------------------------------------------------------------


@log_app.command("key")
@cli_errors
def log_key(data_dir: DataDir = None) -> None:
    """Print the log's verifier key (name+keyid+base64 key). On a production ledger, also print (on
    stderr, so that `log key > log.vkey` keeps only the key) the `trust pin` command verifiers run."""
    from ledger.bootstrap import log_verifier_key
    from ledger.envelope.keys import load_private_key
    from ledger.settings import LedgerConfig, key_path

    settings_dir = settings_for(data_dir).data_dir  # --data-dir, else EVIDENCE_LEDGER_DATA_DIR, else ./data
    config = LedgerConfig.load(settings_dir)
    vkey = log_verifier_key(config, load_private_key(key_path(settings_dir, "log")))
    typer.echo(vkey)
    if config.production:
        typer.echo("verifiers pin this log (production: witness cosignatures required) with:", err=True)
        typer.echo(pin_command(settings_dir, config, vkey), err=True)


def pin_command(data_dir: Path, config: Any, vkey: str) -> str:
    """The exact `evidence-ledger trust pin` command for this ledger's verifiers: origin, log key,
    trust root, every configured witness that counts, the production profile and its minimum."""
    import shlex

    from ledger.log.witnessing import counting_witnesses
    from ledger.settings import PRODUCTION_MIN_WITNESSES

    words = ["evidence-ledger", "trust", "pin", "--origin", config.origin, "--vkey", vkey,
             "--trust-root", config.admin_key_id]
    for endpoint in counting_witnesses(data_dir, config):
        words += ["--witness", str(endpoint.vkey)]
    words += ["--profile", config.profile]
    if config.min_witnesses != PRODUCTION_MIN_WITNESSES:
        words += ["--min-witnesses", str(config.min_witnesses)]
    return " ".join(shlex.quote(word) for word in words)


@log_app.command("checkpoint")
@cli_errors
def log_checkpoint(
    size: Annotated[int | None, typer.Option(help="a past checkpoint of exactly this size")] = None,
    data_dir: DataDir = None,
) -> None:
    """Print a signed checkpoint covering every committed entry (signing one if needed), with the
    cosignatures of the configured witnesses. On a production ledger: the newest published checkpoint
    (cosigned by enough witnesses in other trust domains) after asking the witnesses."""
    from ledger.log.witnessing import checkpoint_with_witnesses

    with open_ledger(data_dir) as ledger:
        checkpoint = ledger.checkpoint_at(size) if size is not None else checkpoint_with_witnesses(ledger)
        if size is None and checkpoint is not None and ledger.production:
            checkpoint = ledger.published_checkpoint()
            if checkpoint is None:
                fail(
                    f"NOT_WITNESSED: no checkpoint has been cosigned by {ledger.config.min_witnesses} witnesses in"
                    " other trust domains yet (the witnesses: witnesses.json; docs/witness.md)", 1,
                )
    if checkpoint is None:
        fail("EMPTY_LOG: the log has no entries yet", 1)
        return
    sys.stdout.buffer.write(checkpoint.with_cosignatures())
    sys.stdout.buffer.flush()


@log_app.command("checkpoints")
@cli_errors
def log_checkpoints(as_json: JsonOption = False, data_dir: DataDir = None) -> None:
    """List the signed checkpoints: size, time, root hash, cosignatures (the sizes that `log checkpoint
    --size`, `prove-consistency` and `prove-inclusion --size` can use)."""
    with open_ledger(data_dir) as ledger:
        found, after = [], 0
        while True:
            page = ledger.checkpoints(after=after, limit=CHECKPOINT_PAGE)
            found += page
            if len(page) < CHECKPOINT_PAGE:
                break
            after = page[-1].size
    rows = [
        {"size": c.size, "signed_at": c.signed_at, "root_hash": c.root.hex(), "root_b64": c.root_b64,
         "cosignatures": len(c.cosignatures)}
        for c in found
    ]
    if not rows:
        emit({"items": rows}, as_json,
             ["no checkpoint signed yet (the log has no entries, or `evidence-ledger log checkpoint` signs one)"])
        return
    width = max(len(r["signed_at"]) for r in rows)
    emit({"items": rows}, as_json, [
        f"{'SIZE':>8}  {'SIGNED AT':<{width}}  {'ROOT HASH':<64}  COSIGNATURES",
        *(f"{r['size']:>8}  {r['signed_at']:<{width}}  {r['root_hash']}  {r['cosignatures']}" for r in rows),
    ])


CHECKPOINT_PAGE = 1000


@log_app.command("prove-inclusion")
@cli_errors
def prove_inclusion(
    index: int,
    size: Annotated[int | None, typer.Option(help="tree size (default: the latest published checkpoint)")] = None,
    data_dir: DataDir = None,
) -> None:
    """Print the RFC 6962 inclusion proof of leaf INDEX in the tree of SIZE."""
    from ledger.log.proof_json import inclusion_proof_json

    with open_ledger(data_dir) as ledger:
        if size is None:  # a read: the newest published checkpoint, never a new one
            checkpoint = ledger.published_checkpoint()
            size = 0 if checkpoint is None else checkpoint.size
        _check_range(0 <= index < size, f"index must be in [0, {size})")
        _print_json(inclusion_proof_json(index, ledger.inclusion_proof(index, size), tree_size=size))


@log_app.command("prove-consistency")
@cli_errors
def prove_consistency(size1: int, size2: int, data_dir: DataDir = None) -> None:
    """Print the RFC 6962 consistency proof between tree sizes SIZE1 and SIZE2."""
    from ledger.log.proof_json import consistency_proof_json

    with open_ledger(data_dir) as ledger:
        _check_range(0 < size1 <= size2 <= ledger.log_size(), "need 0 < SIZE1 <= SIZE2 <= log size")
        _print_json(consistency_proof_json(ledger.consistency_proof(size1, size2), first=size1, second=size2))


def _check_range(ok: bool, message: str) -> None:
    if not ok:
        raise MalformedInputError(message, code="BAD_ARGUMENT")


@log_app.command("entry")
@cli_errors
def log_entry(
    index: int,
    out: Annotated[Path | None, typer.Option(help="write the leaf bytes here instead of stdout")] = None,
    data_dir: DataDir = None,
) -> None:
    """Write the exact leaf bytes of entry INDEX."""
    with open_ledger(data_dir) as ledger:
        leaf = ledger.leaf(index)
    if out is not None:
        out.write_bytes(leaf)
    else:
        sys.stdout.buffer.write(leaf)
        sys.stdout.buffer.flush()


@log_app.command("tiles")
@cli_errors
def log_tiles(
    out: Annotated[
        Path | None,
        typer.Option("--out", help="the directory to write (default: EVIDENCE_LEDGER_TILES_DIR, <data dir>/tiles)"),
    ] = None,
    as_json: JsonOption = False,
    data_dir: DataDir = None,
) -> None:
    """Write (or complete) the C2SP tlog-tiles of the case log from the database: the tiles and entry
    bundles of the newest checkpoint and of the published one, then the published checkpoint. Tiles
    already there are compared, never overwritten (TILE_CONFLICT). Serve the directory as it is, or
    upload it to an object store (docs/formats.md, Tiled log)."""
    import time

    from ledger.log.tile_writer import write_tiles

    started = time.perf_counter()
    with open_ledger(data_dir) as ledger:
        directory = out if out is not None else ledger.settings.tiles_path
        written, checkpoint = write_tiles(ledger, directory)
    seconds = time.perf_counter() - started
    size = None if checkpoint is None else checkpoint.size
    text = (f"{written} file(s) written to {directory}; checkpoint size {size}" if checkpoint is not None
            else f"{written} file(s) written to {directory}; no published checkpoint yet (none written)")
    emit({"directory": str(directory), "written": written, "checkpoint_size": size, "seconds": round(seconds, 3)},
         as_json, text)


@log_app.command("add-tsa")
@cli_errors
def log_add_tsa(
    url: Annotated[str, typer.Option(help="the TSA's RFC 3161 URL (POST application/timestamp-query)")],
    cert: Annotated[
        Path,
        typer.Option(
            "--cert",
            help="PEM file with the CA certificate that issued the TSA's certificate (may also hold the TSA's own,"
            " to accept that one TSA only)",
        ),
    ],
    name: Annotated[str | None, typer.Option(help="the TSA's name in tsa.json (default: the URL's host)")] = None,
    as_json: JsonOption = False,
    data_dir: DataDir = None,
) -> None:
    """Time-stamp checkpoints with this TSA (RFC 3161; written to tsa.json in the data dir): the running
    service asks it at most once per EVIDENCE_LEDGER_TSA_INTERVAL seconds, and for each bundle export."""
    from ledger.log.timestamping import configure_tsa

    try:
        pem = cert.read_bytes()
    except OSError as exc:
        raise MalformedInputError(f"cannot read --cert {cert}: {exc.strerror or exc}", code="BAD_TSA_CERT") from None
    endpoint = configure_tsa(settings_for(data_dir).data_dir, url, pem, name)
    emit({"name": endpoint.name, "url": endpoint.url}, as_json,
         f"TSA {endpoint.name} at {endpoint.url} configured")


log_app.command("verify-checkpoint")(log_checks.verify_checkpoint)
log_app.command("verify-inclusion")(log_checks.verify_inclusion)
log_app.command("verify-consistency")(log_checks.verify_consistency)
