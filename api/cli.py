"""`evidence-ledger serve` and `evidence-ledger tokens …`, registered on :data:`ledger.cli.app`.

Importing this module registers the commands (``ledger.cli.main`` imports it when the web layer is
installed); ``python -m api`` runs the same command line with them.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer

from ledger.cli.app import DataDir, app, cli_errors, print_json, settings_for
from ledger.cli.witness import WitnessDir, witness_app

tokens_app = typer.Typer(no_args_is_help=True, help="Bearer tokens for the HTTP API (stored hashed).")
app.add_typer(tokens_app, name="tokens")


@app.command()
@cli_errors
def serve(
    host: Annotated[str, typer.Option(help="interface to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port")] = 8000,
    data_dir: DataDir = None,
    log_level: Annotated[str, typer.Option(help="uvicorn log level")] = "info",
) -> None:
    """Run the HTTP API (interactive OpenAPI docs at /docs)."""
    import uvicorn

    from api.app import create_app
    from api.logs import configure_logging
    from ledger.settings import LedgerConfig

    settings = settings_for(data_dir)
    LedgerConfig.load(settings.data_dir)  # a clear error before uvicorn starts
    configure_logging()
    get_log().info("listening", host=host, port=port)
    uvicorn.run(
        create_app(settings),
        host=host,
        port=port,
        log_level=log_level,
        access_log=False,  # one structured line per request comes from the app instead
        server_header=False,
        lifespan="on",
    )


def get_log() -> Any:
    from api.logs import get_logger

    return get_logger()


@witness_app.command("serve")
@cli_errors
def witness_serve(
    data_dir: WitnessDir,
    host: Annotated[str, typer.Option(help="address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port (0 picks a free one)", min=0, max=65535)] = 7380,
) -> None:
    """Serve POST /add-checkpoint and GET /healthz until interrupted (SIGINT or SIGTERM)."""
    import contextlib
    import logging
    import signal
    import sys

    from api.witness_app import serve as serve_witness
    from ledger.witness.cosigner import Witness

    witness = Witness(data_dir)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    def stop(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)  # uvicorn shuts down gracefully, then re-raises the signal here

    def ready(bound_host: str, bound_port: int) -> None:
        typer.echo(f"witness {witness.name} listening on http://{bound_host}:{bound_port}")
        sys.stdout.flush()

    with contextlib.suppress(KeyboardInterrupt):
        serve_witness(witness, host, port, on_ready=ready)
    typer.echo("witness stopped", err=True)


@contextmanager
def _token_store(data_dir: Path | None) -> Iterator[Any]:
    from datetime import timedelta

    from api.settings import ApiSettings
    from ledger.store import Ledger
    from ledger.tokens import TokenStore

    settings = settings_for(data_dir)
    with Ledger(settings) as ledger:
        yield TokenStore(
            ledger.db, ledger.mac, authorities=tuple(settings.authorities), registry=ledger.registry_state,
            max_lifetime=timedelta(days=ApiSettings().token_max_days),
        )


@tokens_app.command("issue")
@cli_errors
def tokens_issue(
    actor: Annotated[str, typer.Option(help="who the token is for; must equal the actor of their signing key")],
    role: Annotated[str, typer.Option(help="investigator | supervisor | auditor | prosecutor | admin")],
    authority: Annotated[str | None, typer.Option(help="prosecutors: the authority they act for")] = None,
    expires_in: Annotated[str, typer.Option("--expires-in", help="lifetime, e.g. 30d, 12h, 90m")] = "30d",
    data_dir: DataDir = None,
) -> None:
    """Issue a token; it is printed once, alone on the last line, and only its SHA-256 is stored."""
    from ledger.store import utc_now
    from ledger.tokens import parse_duration

    lifetime = parse_duration(expires_in)
    with _token_store(data_dir) as store:
        issued = store.issue(actor=actor, role=role, authority=authority, expires_in=lifetime, now=utc_now())
    record = issued.record
    typer.echo(f"token id {record.token_id} for {record.actor} ({record.role}), expires {record.expires_at}")
    typer.echo("store it now; it cannot be shown again:")
    typer.echo(issued.token)


@tokens_app.command("revoke")
@cli_errors
def tokens_revoke(
    token_id: Annotated[str, typer.Argument(help="the token id shown by `tokens issue` / `tokens list`")],
    data_dir: DataDir = None,
) -> None:
    """Revoke a token (effective immediately)."""
    from ledger.store import utc_now

    with _token_store(data_dir) as store:
        record = store.revoke(token_id, now=utc_now())
    typer.echo(f"revoked token {record.token_id} ({record.actor}) at {record.revoked_at}")


@tokens_app.command("list")
@cli_errors
def tokens_list(data_dir: DataDir = None) -> None:
    """List tokens (ids, actors, roles, expiry, status; never the tokens or their hashes)."""
    from ledger.store import utc_now

    with _token_store(data_dir) as store:
        records = store.list()
    now = utc_now()
    print_json([r.to_json(now) for r in records])
