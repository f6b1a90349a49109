"""Run a benchmark's baseline app under exactly the uvicorn settings `evidence-ledger serve` uses.

    python -m ops.bench.run_app ops.bench.empty_app:app --port N [--factory]

The same options as ``api.cli.serve``: no access log, no server header, lifespan on, and the
connection guards of ``api.connections.uvicorn_options`` (header/body timeouts, connection caps,
keep-alive, the HTTP protocol class). A baseline served otherwise would measure other settings.
"""

from __future__ import annotations

import argparse

import uvicorn

from api.connections import uvicorn_options
from api.settings import ApiSettings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("app", help="module:attribute")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--factory", action="store_true", help="the attribute is a function returning the app")
    args = parser.parse_args()
    uvicorn.run(
        args.app,
        factory=args.factory,
        host="127.0.0.1",
        port=args.port,
        log_level="warning",
        access_log=False,
        server_header=False,
        lifespan="on",
        **uvicorn_options(ApiSettings()),
    )


if __name__ == "__main__":
    main()
