"""Public reads over HTTP from the primary and from a streaming replica, driven by wrk, in one run.

    python -m ops.bench.bench_replica_reads [--threads 2] [--connections 16] [--seconds 10] [--path /v1/log/entries/0]

Starts a throwaway PostgreSQL primary and its hot-standby replica on loopback
(``ops/pgcluster.py``: initdb, ``pg_basebackup -R``), initialises a ledger on the primary and
serves it three times with the same uvicorn settings: without a replica (every read on the primary),
with ``EVIDENCE_LEDGER_READ_DATABASE_URL`` (reads routed to the replica, which is current: the router
asks nothing per request), and with the replica's replay paused after a checkpoint the server then
signs (every read needs more than the replica has: the primary serves it, after the router's check).
Only 200s count. On one machine the replica shares the CPU with the primary, so the figure shows the
router's cost per read, not the offloading a replica on its own host gives (docs/scaling-reads.md).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from ledger.settings import Settings
from ledger.store import Ledger
from ops.bench.bench_http import server
from ops.bench.common import ORIGIN, case_opened_envelopes
from ops.ledgers import prepare_ledger
from ops.pgcluster import primary_and_replica, unavailable
from ops.procs import free_port

_RATE = re.compile(r"Requests/sec:\s+([0-9.]+)")
_NON_2XX = re.compile(r"Non-2xx or 3xx responses:\s+([0-9]+)")
_P99 = re.compile(r"99%\s+([0-9.]+)(us|ms|s)\b")


def wrk(base: str, path: str, threads: int, connections: int, seconds: int) -> tuple[float, float, int]:
    """(requests/s, p99 ms, non-2xx answers) of one wrk run on ``path``."""
    out = subprocess.run(
        ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency", "--timeout", "10s", base + path],
        capture_output=True, text=True, check=True,
    ).stdout
    rate, p99 = _RATE.search(out), _P99.search(out)
    non_2xx = _NON_2XX.search(out)
    if rate is None or p99 is None:
        raise RuntimeError(f"unexpected wrk output: {out[-500:]}")
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}[p99.group(2)]
    return float(rate.group(1)), float(p99.group(1)) * scale, int(non_2xx.group(1)) if non_2xx else 0


def _checkpoint_size(base: str) -> int:
    note = httpx.get(base + "/v1/log/checkpoint", timeout=10)
    return int(note.text.split("\n")[1]) if note.status_code == 200 else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--path", default="/v1/log/entries/0", help="a public read endpoint")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("bench_replica_reads needs wrk: apt-get install wrk")
    reason = unavailable()
    if reason is not None:
        sys.exit(f"bench_replica_reads needs a PostgreSQL primary and replica: {reason}")
    with tempfile.TemporaryDirectory(prefix="el-replica-") as tmp, primary_and_replica() as cluster:
        data_dir = Path(tmp) / "data"
        _, key = prepare_ledger(data_dir, cluster.primary_url, origin=ORIGIN, actor="bench")
        cluster.wait_caught_up()
        base_env = {**os.environ, "EVIDENCE_LEDGER_DATA_DIR": str(data_dir),
                    "EVIDENCE_LEDGER_DATABASE_URL": cluster.primary_url}
        runs = [
            ("primary only (no replica configured)", base_env, False),
            ("replica (current)", {**base_env, "EVIDENCE_LEDGER_READ_DATABASE_URL": cluster.replica_url}, False),
            ("replica paused: primary fallback", {**base_env, "EVIDENCE_LEDGER_READ_DATABASE_URL": cluster.replica_url},
             True),
        ]
        print(f"wrk -t{args.threads} -c{args.connections} -d{args.seconds}s GET {args.path}")
        for name, env, paused in runs:
            port = free_port()
            command = [sys.executable, "-m", "api", "serve", "--port", str(port), "--log-level", "warning"]
            with server(command, env, port) as base:
                if paused:
                    cluster.pause_replay()
                    # an entry the replica does not have, and the server's checkpointer signs a checkpoint
                    # over it: every read now needs more than the replica has
                    before = _checkpoint_size(base)
                    with Ledger(Settings(data_dir=data_dir, database_url=cluster.primary_url)) as writer:
                        writer.append(case_opened_envelopes(key, 1))
                    deadline = time.monotonic() + 30
                    while _checkpoint_size(base) <= before and time.monotonic() < deadline:
                        time.sleep(0.2)
                wrk(base, args.path, args.threads, args.connections, 2)  # warm-up
                rate, p99, bad = wrk(base, args.path, args.threads, args.connections, args.seconds)
                source = httpx.get(base + args.path, timeout=10).headers.get("Evidence-Ledger-Read-From", "primary")
            if paused:
                cluster.resume_replay()
            flag = f"  [{bad} non-2xx]" if bad else ""
            print(f"{name}: {rate:,.0f} req/s  p99 {p99:.1f} ms  (served by {source}){flag}")


if __name__ == "__main__":
    main()
