"""Signed appends over HTTP, driven by wrk, against an empty FastAPI handler in the same run (P1).

    python -m ops.bench.bench_http [--backend postgres|sqlite] [--threads 2] [--connections 16] [--seconds 20]

Starts `evidence-ledger serve` on loopback (PostgreSQL by default, a throwaway database) and drives
it with `wrk` (C, Debian package `wrk`) and `ops/bench/wrk_append.lua`: every wrk thread POSTs its
own pre-signed `CaseOpened` envelopes, each for its own case, each once; a 201 comes after the
envelope's transaction committed, and only 201s count. The baseline is `ops/bench/empty_app.py` (a
POST handler that reads the body and answers 201) under the same uvicorn settings
(`ops/bench/run_app.py`), driven by the
same script with the same envelopes, so the figure is the server's and not the load generator's:
the load generator's own ceiling is the empty handler's rate, printed beside the ledger's.
Goal (issue 12, P1): >= 1,500 appends/s, p99 <= 100 ms, >= 50 % of the empty handler.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from ledger.envelope.dsse import parse_envelope
from ops.bench.common import ORIGIN, case_opened_envelopes, database
from ops.ledgers import prepare_ledger
from ops.procs import free_port, issue_token

SCRIPT = Path(__file__).with_name("wrk_append.lua")
WARM_UP_SECONDS = 3
#: envelopes signed per thread per second of the run: well above any rate this machine reaches
PER_THREAD_RATE = 4_000


@dataclass(frozen=True)
class Run:
    """What wrk_append.lua's done() reports for one wrk run."""

    name: str
    created: int
    other: int
    exhausted_threads: int
    seconds: float
    p50_ms: float
    p99_ms: float
    socket_errors: int

    @property
    def rate(self) -> float:
        return self.created / self.seconds

    def line(self) -> str:
        problems = []
        if self.other:
            problems.append(f"{self.other} answers other than 201")
        if self.socket_errors:
            problems.append(f"{self.socket_errors} socket errors")
        if self.exhausted_threads:
            problems.append(f"{self.exhausted_threads} threads ran out of envelopes: run longer files")
        tail = f"  [{'; '.join(problems)}]" if problems else ""
        return (
            f"{self.name}: {self.rate:,.0f} req/s  p50 {self.p50_ms:.1f} ms  p99 {self.p99_ms:.1f} ms"
            f"  ({self.created} created){tail}"
        )


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


def write_requests(envelopes: Sequence[bytes], prefix: Path, threads: int) -> None:
    """``prefix.1`` … ``prefix.<threads>``: each thread's share, one "<path>\\t<envelope>" per line."""
    for n in range(threads):
        lines = []
        for envelope in envelopes[n::threads]:
            assert b"\n" not in envelope and b"\t" not in envelope
            case_id = parse_envelope(envelope).statement.case_id
            lines.append(f"/v1/cases/{case_id}/events\t{envelope.decode()}\n")
        Path(f"{prefix}.{n + 1}").write_text("".join(lines), "utf-8")


def wrk(base: str, prefix: Path, token: str, threads: int, connections: int, seconds: int, name: str) -> Run:
    command = [
        "wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--timeout", "10s",
        "-s", str(SCRIPT), base, "--", str(prefix), token,
    ]
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    report = json.loads(out.strip().splitlines()[-1])
    return Run(
        name=name,
        created=report["created"],
        other=report["other"],
        exhausted_threads=report["exhausted_threads"],
        seconds=report["duration_us"] / 1e6,
        p50_ms=report["p50_us"] / 1000,
        p99_ms=report["p99_us"] / 1000,
        socket_errors=sum(report[k] for k in ("connect_errors", "read_errors", "write_errors", "timeouts")),
    )


def measure(
    command: list[str], env: dict[str, str], port: int, envelopes: Sequence[bytes], tmp: Path,
    token: str, threads: int, connections: int, seconds: int, name: str,
) -> Run:
    """Warm the server up with envelopes of its own, then measure with the rest."""
    warm, measured = tmp / f"{name}-warm", tmp / f"{name}-run"
    split = threads * PER_THREAD_RATE * WARM_UP_SECONDS
    write_requests(envelopes[:split], warm, threads)
    write_requests(envelopes[split:], measured, threads)
    with server(command, env, port) as base:
        wrk(base, warm, token, threads, connections, WARM_UP_SECONDS, name)
        return wrk(base, measured, token, threads, connections, seconds, name)


def run(backend: str, threads: int, connections: int, seconds: int) -> list[Run]:
    if shutil.which("wrk") is None:
        sys.exit("bench_http needs wrk, a load generator that is not the bottleneck: apt-get install wrk")
    with tempfile.TemporaryDirectory(prefix="el-http-") as tmp_name, database(backend) as url:
        tmp = Path(tmp_name)
        data_dir = tmp / "data"
        _, key = prepare_ledger(data_dir, url, origin=ORIGIN, actor="bench")
        env = {**os.environ, "EVIDENCE_LEDGER_DATA_DIR": str(data_dir)}
        if url:
            env["EVIDENCE_LEDGER_DATABASE_URL"] = url
        token = issue_token(data_dir, env, actor="bench")
        envelopes = case_opened_envelopes(key, threads * PER_THREAD_RATE * (WARM_UP_SECONDS + seconds))
        port = free_port()
        serve = [sys.executable, "-m", "api", "serve", "--port", str(port), "--log-level", "warning"]
        ledger = measure(serve, env, port, envelopes, tmp, token, threads, connections, seconds,
                         f"{backend} ledger, signed appends")
        port = free_port()
        empty = [sys.executable, "-m", "ops.bench.run_app", "ops.bench.empty_app:app", "--port", str(port)]
        baseline = measure(empty, env, port, envelopes, tmp, token, threads, connections, seconds,
                           f"{backend} empty FastAPI POST (same server settings)")
    return [ledger, baseline]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", default="postgres", choices=["sqlite", "postgres"])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--seconds", type=int, default=20)
    args = parser.parse_args()
    ledger, baseline = run(args.backend, args.threads, args.connections, args.seconds)
    print(f"wrk -t{args.threads} -c{args.connections} -d{args.seconds}s, each request its own pre-signed envelope")
    print(ledger.line())
    print(baseline.line())
    print(
        f"{args.backend} ratio ledger/empty = {ledger.rate / baseline.rate:.0%} "
        "(goals: >= 1,500/s, p99 <= 100 ms, >= 50% of the empty handler)"
    )


if __name__ == "__main__":
    main()
