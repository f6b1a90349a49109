"""The `evidence-ledger` console script.

The base package installs only what the offline verifier needs (``pip install evidence-ledger``);
the service, storage and the other commands need the ``server`` extra. Without it, `evidence-ledger`
still runs the offline commands (`verify`, `log verify-*`, `trust`, exactly as `evidence-ledger-verify`
does), and names the extra, in one line, for any other command.
"""

from __future__ import annotations

import sys
from importlib.util import find_spec

# Distributions of the "server" extra, by the module they install (pyproject.toml).
SERVER_EXTRA = ("eventsourcing", "psycopg", "pydantic_settings", "fastapi", "uvicorn", "httpx", "structlog")
OFFLINE_COMMANDS = ("verify", "log", "trust", "--help", "-h", "--version")
PROJECT = ("api", "ledger", "domain")


def _installed(module: str) -> bool:
    try:
        return find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def missing_server_extra() -> str | None:
    """The first module of the server extra that is not installed, if any."""
    return next((m for m in SERVER_EXTRA if not _installed(m)), None)


def _need_server(missing: str) -> None:
    sys.exit(
        f"evidence-ledger: this command needs the server extra ({missing!r} is not installed): "
        "pip install 'evidence-ledger[server]'; the offline commands are verify, log verify-*, trust"
    )


def main() -> None:
    missing = missing_server_extra()
    if missing is None:
        from api.cli import main as run

        run()
        return
    if len(sys.argv) > 1 and sys.argv[1] not in OFFLINE_COMMANDS:
        _need_server(missing)
    from ledger.cli.offline import main as offline

    try:
        offline()
    except ModuleNotFoundError as exc:  # an offline command that still reached the server stack
        if (exc.name or "").split(".")[0] in PROJECT:
            raise
        _need_server(exc.name or missing)
