"""Case reads over HTTP with and without access recording, in the same run.

    python -m ops.bench.bench_access [--backend postgres|sqlite|both] [--connections 16] [--seconds 10]

Every read now writes an access-log entry before it answers (docs/access-log.md), batched by the
access log's group commit. This measures `GET /v1/cases/{id}` with `wrk` (falls back to the httpx
load generator, ``ops/bench/httpload.py``, when `wrk` is not installed) against:

1. `evidence-ledger serve` (every read recorded);
2. the same service with a recorder that records nothing (``ops/bench/read_app.py``, the baseline);
3. an empty FastAPI GET handler under the same uvicorn settings (``ops/bench/empty_app.py``): the
   load generator's own ceiling on this machine. The baseline is not bottlenecked by the load
   generator when this figure is well above it.

The load generator shares the machine's cores with the server. Prints req/s and latency for each,
the ratio recorded/baseline, and how many access entries the recorded run wrote.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx

from ledger.envelope.dsse import parse_envelope
from ledger.settings import Settings
from ledger.store import Ledger
from ops.bench.bench_http import server
from ops.bench.common import ORIGIN, case_opened_envelopes, database, median, percentile
from ops.ledgers import prepare_ledger
from ops.procs import free_port, issue_token


@dataclass
class Figures:
    name: str
    rate: float
    p50_ms: float
    p99_ms: float
    requests: int
    errors: str

    def line(self) -> str:
        return (
            f"{self.name}: {self.rate:,.0f} req/s  p50 {self.p50_ms:.1f} ms  p99 {self.p99_ms:.1f} ms"
            f"  ({self.requests} requests{', ' + self.errors if self.errors else ''})"
        )


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def _ms(text: str) -> float:
    value, unit = re.fullmatch(r"([0-9.]+)(us|ms|s)", text).groups()  # type: ignore[union-attr]
    return float(value) * _UNITS[unit]


def wrk(url: str, token: str | None, connections: int, seconds: int, name: str) -> Figures:
    command = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency"]
    if token:
        command += ["-H", f"Authorization: Bearer {token}"]
    out = subprocess.run([*command, url], capture_output=True, text=True, check=True, timeout=seconds + 60).stdout
    rate = float(re.search(r"Requests/sec:\s+([0-9.]+)", out).group(1))  # type: ignore[union-attr]
    p50 = _ms(re.search(r"\s50%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    p99 = _ms(re.search(r"\s99%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    requests = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)
    problems = ", ".join(
        text for text in (f"{bad.group(1)} non-2xx" if bad else "", errors.group(1) if errors else "") if text
    )
    return Figures(name, rate, p50, p99, requests, problems)


async def _httpx_load(url: str, token: str | None, connections: int, seconds: int) -> tuple[list[float], int]:
    headers = {"authorization": f"Bearer {token}"} if token else {}
    latencies: list[float] = []
    failures = 0
    deadline = time.monotonic() + seconds
    limits = httpx.Limits(max_connections=connections)
    async with httpx.AsyncClient(headers=headers, limits=limits, timeout=30) as client:

        async def worker() -> None:
            nonlocal failures
            while time.monotonic() < deadline:
                started = time.perf_counter()
                response = await client.get(url)
                latencies.append((time.perf_counter() - started) * 1000)
                failures += response.status_code != 200

        await asyncio.gather(*(worker() for _ in range(connections)))
    return latencies, failures


def httpx_load(url: str, token: str | None, connections: int, seconds: int, name: str) -> Figures:
    latencies, failures = asyncio.run(_httpx_load(url, token, connections, seconds))
    errors = f"{failures} non-200" if failures else ""
    return Figures(name, len(latencies) / seconds, median(latencies), percentile(latencies, 99), len(latencies), errors)


def measure(url: str, token: str | None, connections: int, seconds: int, name: str) -> Figures:
    load = wrk if shutil.which("wrk") else httpx_load
    load(url, token, connections, 2, name)  # warm-up
    return load(url, token, connections, seconds, name)


def run(backend: str, connections: int, seconds: int) -> Sequence[Figures]:
    with tempfile.TemporaryDirectory(prefix="el-access-") as tmp, database(backend) as url:
        data_dir = Path(tmp) / "data"
        _, key = prepare_ledger(data_dir, url, origin=ORIGIN, actor="bench")
        settings = Settings(data_dir=data_dir, database_url=url)
        (opened,) = case_opened_envelopes(key, 1)
        case_id = parse_envelope(opened).statement.case_id
        with Ledger(settings) as ledger:
            ledger.append([opened])
            before = ledger.access_log.size()
        env = {**os.environ, "EVIDENCE_LEDGER_DATA_DIR": str(data_dir)}
        if url:
            env["EVIDENCE_LEDGER_DATABASE_URL"] = url
        token = issue_token(data_dir, env, actor="bench")
        path = f"/v1/cases/{case_id}"
        port = free_port()
        serve = [sys.executable, "-m", "api", "serve", "--port", str(port), "--log-level", "warning"]
        with server(serve, env, port) as base:
            recorded = measure(base + path, token, connections, seconds, f"{backend} case read, every read recorded")
        with Ledger(settings) as ledger:
            written = ledger.access_log.size() - before
        port = free_port()
        factory = [sys.executable, "-m", "ops.bench.run_app", "--factory", "ops.bench.read_app:app", "--port", str(port)]
        with server(factory, env, port) as base:
            baseline = measure(base + path, token, connections, seconds, f"{backend} case read, not recorded (baseline)")
        port = free_port()
        empty = [sys.executable, "-m", "ops.bench.run_app", "ops.bench.empty_app:app", "--port", str(port)]
        with server(empty, env, port) as base:
            ceiling = measure(base + path, None, connections, seconds, f"{backend} empty FastAPI GET (load generator check)")
    for figures in (recorded, baseline, ceiling):
        print(figures.line())
    print(
        f"{backend} recorded/baseline = {recorded.rate / baseline.rate:.0%}; baseline/empty handler = "
        f"{baseline.rate / ceiling.rate:.0%} (the load generator is not the bottleneck when this is well "
        f"below 100%); access entries written by the recorded run: {written}"
    )
    return recorded, baseline, ceiling


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", default="postgres", choices=["sqlite", "postgres", "both"])
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--seconds", type=int, default=10)
    args = parser.parse_args()
    for backend in ["sqlite", "postgres"] if args.backend == "both" else [args.backend]:
        run(backend, args.connections, args.seconds)


if __name__ == "__main__":
    main()
