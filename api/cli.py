"""The installed `evidence-ledger` command: every ledger command (``ledger.cli``) plus ``serve``.

The ledger's own commands never import the web layer; this module composes them with the HTTP
service. ``evidence-ledger-verify`` (``ledger.cli.offline``) is the verify-only command, which needs
no web framework and no database driver.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from ledger.cli.app import DataDir, app, commands, settings_for
from ledger.cli.errors import cli_errors
from ledger.cli.witness import WitnessDir, witness_app


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
    from api.connections import uvicorn_options
    from api.logs import configure_logging
    from api.settings import ApiSettings
    from ledger.settings import LedgerConfig

    settings = settings_for(data_dir)
    api_settings = ApiSettings()
    config = LedgerConfig.load(settings.data_dir)  # a clear error before uvicorn starts
    from ledger.log.witnessing import require_publishing_witnesses

    require_publishing_witnesses(settings.data_dir, config)  # production: too few independent witnesses
    configure_logging()
    get_log().info("listening", host=host, port=port)
    uvicorn.run(
        create_app(settings, api_settings=api_settings),
        host=host,
        port=port,
        log_level=log_level,
        access_log=False,  # one structured line per request comes from the app instead
        server_header=False,
        lifespan="on",
        **uvicorn_options(api_settings),  # header/body timeouts, connection caps, keep-alive
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


def main() -> None:
    """The `evidence-ledger` script."""
    from ledger.cli.errors import run

    run(commands())
