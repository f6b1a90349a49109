"""`evidence-ledger witness …` (run a witness) and `evidence-ledger log add-witness` (use one).

Importing this module registers the commands on ``ledger.cli.app`` and ``ledger.cli.log.log_app``.
``witness serve`` runs the HTTP server, which is the web layer's: ``api.cli`` adds it to
``witness_app``. Heavy modules are imported inside the commands.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ledger.cli.app import DataDir, JsonOption, app, cli_errors, emit, settings_for
from ledger.cli.args import key_text
from ledger.cli.log import log_app

witness_app = typer.Typer(
    no_args_is_help=True, help="Run a witness that cosigns a log's checkpoints (c2sp.org/tlog-witness)."
)
app.add_typer(witness_app, name="witness")

WitnessDir = Annotated[
    Path,
    typer.Option("--data-dir", envvar="EVIDENCE_LEDGER_WITNESS_DIR", help="the witness's own data directory"),
]
Origin = Annotated[str | None, typer.Option(help="the log's checkpoint origin (default: the key name)")]


@witness_app.command("init")
@cli_errors
def witness_init(
    name: Annotated[str, typer.Option(help="witness name, e.g. middlesexda.gov/witness (no spaces or '+')")],
    data_dir: WitnessDir,
    log_vkey: Annotated[str, typer.Option("--log-vkey", help="the log's verifier key (text or file)")],
    origin: Origin = None,
    as_json: JsonOption = False,
) -> None:
    """Create a witness: its Ed25519 key (mode 0600), config and state; print its verifier key."""
    from ledger.witness.cosigner import Witness

    witness = Witness.create(data_dir, name, key_text(log_vkey), origin=origin)
    emit({"name": witness.name, "data_dir": str(data_dir), "verifier_key": str(witness.verifier_key)}, as_json, [
        f"initialised witness {witness.name} in {data_dir}",
        f"witness verifier key: {witness.verifier_key}",
    ])


@witness_app.command("add-log")
@cli_errors
def witness_add_log(
    vkey: Annotated[str, typer.Option("--vkey", help="the log's verifier key (text or file)")],
    data_dir: WitnessDir,
    origin: Origin = None,
    as_json: JsonOption = False,
) -> None:
    """Follow one more log (cosign its checkpoints from now on)."""
    from ledger.witness.cosigner import Witness

    added = Witness(data_dir).add_log(key_text(vkey), origin=origin)
    emit({"origin": str(added)}, as_json, f"following log {added}")


@witness_app.command("key")
@cli_errors
def witness_key(data_dir: WitnessDir, as_json: JsonOption = False) -> None:
    """Print the witness's verifier key (type 0x04, cosignature/v1)."""
    from ledger.witness.cosigner import Witness

    key = str(Witness(data_dir).verifier_key)
    emit({"verifier_key": key}, as_json, key)


@log_app.command("add-witness")
@cli_errors
def log_add_witness(
    url: Annotated[str, typer.Option(help="the witness's URL prefix (POST {url}/add-checkpoint)")],
    vkey: Annotated[str, typer.Option("--vkey", help="the witness's verifier key, type 0x04 (text or file)")],
    as_json: JsonOption = False,
    data_dir: DataDir = None,
) -> None:
    """Ask this witness to cosign every new checkpoint (written to witnesses.json in the data dir)."""
    from ledger.log.witnessing import configure_witness

    endpoint = configure_witness(settings_for(data_dir).data_dir, url, key_text(vkey))
    emit({"name": endpoint.name, "url": endpoint.url}, as_json, f"witness {endpoint.name} at {endpoint.url} configured")
