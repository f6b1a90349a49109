"""Signed appends over HTTP with concurrent clients, against an empty FastAPI handler.

    python -m ops.bench.bench_http [--backend postgres|sqlite] [--clients 16] [--events 5000]

Starts `evidence-ledger serve` on loopback (PostgreSQL by default, a throwaway database), then
POSTs pre-signed envelopes (each opening its own case, so no conflicts) from ``--clients``
concurrent connections; every 201 is acknowledged after its transaction committed. The baseline is
`ops/bench/empty_app.py` (a POST handler that only reads the body) under the same uvicorn settings,
measured in the same run. Goal (issue 4): ≥ 1,500 events/s, p99 ≤ 100 ms, ≥ 50 % of the baseline.
The load generator shares the machine's two cores with the server.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from ledger.envelope.dsse import parse_envelope
from ops.bench.common import ORIGIN, case_opened_envelopes, database, median, percentile
from ops.bench.httpload import LoadResult, run_load
from ops.ledgers import prepare_ledger
from ops.procs import free_port, issue_token


@contextmanager
def server(command: list[str], env: dict[str, str], port: int) -> Iterator[str]:
    """Run a server process until the block ends; yields its base URL once it answers."""
    # stderr goes to a file, not a pipe: a full pipe would stall a chatty server mid-benchmark.
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=log)
        try:
            yield _wait_until_up(process, log, f"http://127.0.0.1:{port}")
        finally:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()


def _wait_until_up(process: subprocess.Popen[bytes], log: Any, base: str) -> str:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            log.seek(0)
            raise RuntimeError(f"server exited: {log.read().decode()[-2000:]}")
        try:
            if httpx.get(base + "/docs", timeout=1).status_code < 500:
                return base
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError("server did not start in 60 s")


def describe(name: str, result: LoadResult) -> str:
    lat = result.latencies_ms
    return (
        f"{name}: {result.rate:,.0f} req/s ok={result.ok} statuses={dict(sorted(result.statuses.items()))} "
        f"errors={result.errors} p50={median(lat):.1f} ms p99={percentile(lat, 99):.1f} ms"
    )


def run(backend: str, clients: int, events: int) -> None:
    with tempfile.TemporaryDirectory(prefix="el-http-") as tmp, database(backend) as url:
        data_dir = Path(tmp) / "data"
        _, key = prepare_ledger(data_dir, url, origin=ORIGIN, actor="bench")
        env = {**os.environ, "EVIDENCE_LEDGER_DATA_DIR": str(data_dir)}
        if url:
            env["EVIDENCE_LEDGER_DATABASE_URL"] = url
        token = issue_token(data_dir, env, actor="bench")
        envelopes = case_opened_envelopes(key, events + 200)
        requests = [(f"/v1/cases/{parse_envelope(e).statement.case_id}/events", e) for e in envelopes]
        port = free_port()
        with server(
            [sys.executable, "-m", "api", "serve", "--port", str(port), "--log-level", "warning"],
            env,
            port,
        ) as base:
            run_load(base, requests[:200], clients, token)  # warm-up
            ledger_result = run_load(base, requests[200:], clients, token)
        port = free_port()
        with server(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "ops.bench.empty_app:app",
                "--port",
                str(port),
                "--log-level",
                "warning",
                "--no-access-log",
                "--no-server-header",
            ],
            env,
            port,
        ) as base:
            run_load(base, requests[:200], clients)
            baseline = run_load(base, requests[200:], clients)
    print(describe(f"{backend} ledger  ({clients} clients, {events} signed appends)", ledger_result))
    print(describe(f"{backend} empty FastAPI POST (same server settings)", baseline))
    print(
        f"{backend} ratio ledger/empty = {ledger_result.rate / baseline.rate:.0%} "
        "(goals: >= 1,500/s, p99 <= 100 ms, >= 50% of the empty handler)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", default="postgres", choices=["sqlite", "postgres"])
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--events", type=int, default=5000)
    args = parser.parse_args()
    run(args.backend, args.clients, args.events)


if __name__ == "__main__":
    main()
