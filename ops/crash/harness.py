"""Crash harness: SIGKILL `evidence-ledger serve` at random moments under concurrent signed appends.

    python -m ops.crash.harness --backend sqlite|postgres --kills N [--clients C] [--seed S]
                                [--data-dir DIR --database-url URL] [--quiet SECONDS]

Sets up a fresh ledger (SQLite in a temporary data dir, or a throwaway PostgreSQL database; or the
empty data dir / database given), registers one investigator key, issues a token for the same actor,
starts ``python -m ledger serve`` on 127.0.0.1 and runs ``--clients`` async clients, each appending
to its own cases (see ops/crash/workload.py). The supervisor SIGKILLs the server 0.3-1.5 s (uniform)
after it answered ``/readyz``, restarts it at once and repeats ``--kills`` times, then leaves it up for
a quiet period so every client can reconcile, stops the clients and shuts the server down (SIGTERM).
With the server stopped it opens the ledger directly and checks the invariants of
ops/crash/check.py, prints a summary and exits 1 if any of them fails (or a client saw a
contradiction), 0 otherwise. All traffic stays on loopback; every loop is bounded.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ledger.settings import Settings
from ledger.store import Ledger
from ops.bench.common import database
from ops.crash.check import CheckReport, check_ledger
from ops.crash.record import RunRecord
from ops.crash.workload import RECONCILE_SECONDS, REQUEST_TIMEOUT, Budget, Client, poll_checkpoints
from ops.ledgers import prepare_ledger
from ops.procs import free_port, issue_token

ORIGIN = "crash.cambridgema.gov/evidence-ledger"
ACTOR = "crash-harness"
READY_TIMEOUT = 60.0
READY_POLL = 0.05
STOP_TIMEOUT = 20.0


@dataclass
class HarnessConfig:
    backend: str = "sqlite"
    kills: int = 25
    clients: int = 8
    seed: int | None = None
    data_dir: Path | None = None  # an empty or missing directory; a temporary one when None
    database_url: str | None = None  # an empty PostgreSQL database; a throwaway one when None
    min_up: float = 0.3
    max_up: float = 1.5
    quiet: float = 2.0
    max_requests: int = 200_000
    max_seconds: float = 1200.0
    checkpoint_interval: float = 0.25


@dataclass
class KillRecord:
    number: int
    up_for: float  # seconds between /readyz answering and the SIGKILL
    at: float  # time.monotonic() of the SIGKILL
    ready_after: float  # SIGKILL -> the restarted server answers /readyz 200
    first_ack_after: float | None = None  # SIGKILL -> the first append acknowledged by the new process


@dataclass
class HarnessResult:
    config: HarnessConfig
    seed: int
    record: RunRecord
    report: CheckReport
    kills: list[KillRecord] = field(default_factory=list)
    seconds: float = 0.0
    clean_shutdown: bool = False
    server_errors: tuple[int, list[str]] = (0, [])  # error/traceback lines in the server's stderr
    failures: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures


class ServerDied(RuntimeError):
    pass


class ServerProcess:
    """``python -m ledger serve`` on a fixed loopback port, restartable; stderr goes to a file."""

    def __init__(self, port: int, env: dict[str, str], log_path: Path) -> None:
        self.port = port
        self.base_url = f"http://127.0.0.1:{port}"
        self.env = env
        self.log_path = log_path
        self.command = [
            sys.executable,
            "-m",
            "api",
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-level",
            "warning",
        ]
        self.process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self.starts = 0

    def start(self) -> None:
        if self._log is None:
            self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in close()
        self.process = subprocess.Popen(
            self.command, env=self.env, stdout=subprocess.DEVNULL, stderr=self._log, start_new_session=True
        )
        self.starts += 1

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL and reap (no shutdown code runs in the server)."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
        if self.process is not None:
            self.process.wait(timeout=30)

    def stop(self) -> bool:
        """SIGTERM (graceful shutdown); True if it exited cleanly in time, else it is killed.

        uvicorn re-raises the captured signal once its shutdown is complete, so a clean exit is 0
        or "terminated by SIGTERM"."""
        clean = (0, -signal.SIGTERM)
        if self.process is None or self.process.poll() is not None:
            return self.process is not None and self.process.returncode in clean
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=STOP_TIMEOUT) in clean
        except subprocess.TimeoutExpired:
            self.kill()
            return False

    def close(self) -> None:
        try:
            self.kill()
        finally:
            if self._log is not None:
                self._log.close()
                self._log = None

    def error_lines(self, limit: int = 20) -> tuple[int, list[str]]:
        """How many lines of the server's stderr report an error or a traceback, and the first few."""
        try:
            lines = self.log_path.read_text("utf-8", errors="replace").splitlines()
        except OSError:
            return 0, []
        bad = [ln for ln in lines if '"level": "error"' in ln or ln.startswith(("Traceback", "ERROR"))]
        return len(bad), [ln[:300] for ln in bad[:limit]]

    def log_tail(self, chars: int = 3000) -> str:
        try:
            return self.log_path.read_text("utf-8", errors="replace")[-chars:]
        except OSError:
            return ""

    async def wait_ready(self, http: httpx.AsyncClient) -> None:
        deadline = time.monotonic() + READY_TIMEOUT
        for _ in range(int(READY_TIMEOUT / READY_POLL) + 1):
            if not self.alive():
                raise ServerDied(f"the server exited (start {self.starts}):\n{self.log_tail()}")
            try:
                response = await http.get(self.base_url + "/readyz", timeout=2.0)
                if response.status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                break
            await asyncio.sleep(READY_POLL)
        raise ServerDied(f"the server did not become ready within {READY_TIMEOUT:.0f} s:\n{self.log_tail()}")


def server_env(data_dir: Path, database_url: str | None, checkpoint_interval: float) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EVIDENCE_LEDGER_")}
    env["EVIDENCE_LEDGER_DATA_DIR"] = str(data_dir)
    env["EVIDENCE_LEDGER_CHECKPOINT_INTERVAL"] = str(checkpoint_interval)
    if database_url:
        env["EVIDENCE_LEDGER_DATABASE_URL"] = database_url
    return env


def prepare(data_dir: Path, database_url: str | None) -> tuple[Settings, Ed25519PrivateKey]:
    """A fresh ledger with one investigator key registered to ACTOR."""
    return prepare_ledger(data_dir, database_url, origin=ORIGIN, actor=ACTOR)


# -- the run -----------------------------------------------------------------------------------


async def _supervise(
    config: HarnessConfig, server: ServerProcess, rng: random.Random, deadline: float
) -> list[KillRecord]:
    kills: list[KillRecord] = []
    async with httpx.AsyncClient(timeout=2.0) as probe:
        for number in range(1, config.kills + 1):
            up_for = rng.uniform(config.min_up, config.max_up)
            await asyncio.sleep(up_for)
            if time.monotonic() > deadline:
                break
            killed_at = time.monotonic()
            server.kill()
            server.start()
            await server.wait_ready(probe)
            kills.append(KillRecord(number, up_for, killed_at, time.monotonic() - killed_at))
    return kills


async def _drive(
    config: HarnessConfig,
    server: ServerProcess,
    token: str,
    key: Ed25519PrivateKey,
    seed: int,
    record: RunRecord,
) -> tuple[list[KillRecord], list[str]]:
    rng = random.Random(seed)  # noqa: S311 - kill timing, not cryptography
    deadline = time.monotonic() + config.max_seconds
    errors: list[str] = []
    async with httpx.AsyncClient(timeout=2.0) as probe:
        await server.wait_ready(probe)
    headers = {"authorization": f"Bearer {token}", "content-type": "application/json"}
    limits = httpx.Limits(max_connections=config.clients + 2, max_keepalive_connections=config.clients + 2)
    async with httpx.AsyncClient(
        base_url=server.base_url, headers=headers, limits=limits, timeout=REQUEST_TIMEOUT
    ) as http:
        stop = asyncio.Event()
        budget = Budget(config.max_requests)
        clients = [
            Client(
                n,
                http,
                origin=ORIGIN,
                key=key,
                rng=random.Random(seed * 1000 + n),  # noqa: S311
                record=record,
                budget=budget,
                stop=stop,
                deadline=deadline,
            )
            for n in range(config.clients)
        ]
        tasks = [asyncio.create_task(c.run(), name=f"client-{c.number}") for c in clients]
        tasks.append(asyncio.create_task(poll_checkpoints(http, record, stop, deadline), name="checkpoints"))
        kills: list[KillRecord] = []
        healthy = False
        try:
            kills = await _supervise(config, server, rng, deadline)
            await asyncio.sleep(config.quiet)
            healthy = True
        finally:
            stop.set()
            # With a live server every client finishes its reconciliation; with a dead one, stop now.
            grace = RECONCILE_SECONDS + REQUEST_TIMEOUT + 10 if healthy else 0.5
            done, pending = await asyncio.wait(tasks, timeout=grace)
            for task in pending:
                task.cancel()
                if healthy:
                    errors.append(f"{task.get_name()} did not finish in time")
            if pending:
                await asyncio.wait(pending, timeout=5)
            for task in done:
                if not task.cancelled() and task.exception() is not None:
                    errors.append(f"{task.get_name()} crashed: {task.exception()!r}")
    return kills, errors


def _first_acks(kills: list[KillRecord], record: RunRecord) -> None:
    times = sorted(a.at for a in record.acks)
    for kill in kills:
        # Answers the old process sent before dying may still be read after the kill; count from
        # the moment the new process was ready.
        after = next((t for t in times if t >= kill.at + kill.ready_after), None)
        kill.first_ack_after = None if after is None else after - kill.at


def run(config: HarnessConfig) -> HarnessResult:
    if config.backend not in ("sqlite", "postgres"):
        raise ValueError(f"unknown backend {config.backend!r}")
    if config.backend == "sqlite" and config.database_url:
        raise ValueError("--database-url is for --backend postgres")
    seed = config.seed if config.seed is not None else random.SystemRandom().randrange(2**31)
    started = time.monotonic()
    record = RunRecord()
    with ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="el-crash-")))
        data_dir = config.data_dir or tmp / "data"
        url = config.database_url
        if config.backend == "postgres" and url is None:
            url = stack.enter_context(database("postgres"))
        settings, key = prepare(data_dir, url)
        env = server_env(data_dir, url, config.checkpoint_interval)
        token = issue_token(data_dir, env, actor=ACTOR)
        server = ServerProcess(free_port(), env, tmp / "server.log")
        failures: list[str] = []
        kills: list[KillRecord] = []
        clean = died = False
        try:
            server.start()
            try:
                kills, errors = asyncio.run(_drive(config, server, token, key, seed, record))
                failures += errors
            except ServerDied as exc:
                died = True
                failures.append(str(exc))
            clean = server.stop()
        finally:
            server.close()
        server_errors = server.error_lines()
        if not clean and not died:
            failures.append("the server did not shut down cleanly on SIGTERM:\n" + server.log_tail())
        if len(kills) != config.kills and not died:
            failures.append(f"only {len(kills)} of {config.kills} kills happened before the deadline")
        with Ledger(settings) as ledger:
            report = check_ledger(ledger, record)
    _first_acks(kills, record)
    failures += [f"client: {a}" for a in record.anomalies]
    failures += report.problems
    if report.problem_count > len(report.problems):
        failures.append(f"... and {report.problem_count - len(report.problems)} more invariant failures")
    return HarnessResult(
        config, seed, record, report, kills, time.monotonic() - started, clean, server_errors, failures
    )


# -- the summary -------------------------------------------------------------------------------


def _stats(values: list[float]) -> str:
    if not values:
        return "n/a"
    return f"median {statistics.median(values):.2f} s, max {max(values):.2f} s"


def summary(result: HarnessResult) -> str:
    r, rec, cfg = result.report, result.record, result.config
    sent = [i for i in rec.indeterminate if i.sent]
    unsent = [i for i in rec.indeterminate if not i.sent]
    present = sum(1 for i in sent if i.resolution == "present")
    absent = [i for i in sent if i.resolution == "absent"]
    resubmitted = sum(1 for i in absent if i.action == "resubmitted")
    unresolved = len(sent) - present - len(absent)
    replays = sum(1 for a in rec.acks if a.status == 200)
    lines = [
        f"crash harness: backend={cfg.backend} kills={len(result.kills)}/{cfg.kills} clients={cfg.clients} "
        f"seed={result.seed}",
        f"  requests            {rec.requests} (cap {cfg.max_requests} new appends)",
        f"  acknowledged        {r.acknowledged} distinct events ({replays} of them via a 200 resubmission)",
        f"  indeterminate       {len(sent)} answers lost: {present} present, {len(absent)} absent "
        f"({resubmitted} resubmitted, {len(absent) - resubmitted} abandoned), {unresolved} unresolved; "
        f"final ledger: {r.indeterminate_present} stored, {r.indeterminate_absent} not "
        f"(+{len(unsent)} refused connections, never sent)",
        f"  log                 {r.log_size} entries, {r.case_events} case events in {r.cases} cases",
        f"  lost                {r.lost}",
        f"  mismatched          {r.mismatched}",
        f"  duplicates          {r.duplicates}",
        f"  phantom             {r.phantom}",
        f"  half-present        {r.half_present}",
        f"  engine findings     {r.engine_findings} (check_entries over all {r.log_size} entries)",
        f"  merkle root         {'recomputed = tlog.root_at(N)' if r.root_ok else 'MISMATCH'}",
        f"  checkpoints         {r.checkpoints_consistent}/{r.checkpoints_seen} seen by clients consistent "
        f"with the final log; {r.stored_checkpoints} stored, {r.guard_records} in the guard's history; "
        f"final Ledger.checkpoint() "
        f"{'covers all' if r.final_checkpoint_ok else 'FAILED'}",
        f"  restart to ready    {_stats([k.ready_after for k in result.kills])} (SIGKILL -> /readyz 200)",
        f"  restart to 1st ack  {_stats([k.first_ack_after for k in result.kills if k.first_ack_after is not None])}",
        f"  clean shutdown      {'yes' if result.clean_shutdown else 'NO'}",
        f"  server error lines  {result.server_errors[0]} (stderr of all {len(result.kills) + 1} server processes)",
        f"  total time          {result.seconds:.1f} s",
        f"  result              {'PASS' if result.ok else 'FAIL'}",
    ]
    lines += [f"  ! {f}" for f in result.failures[:50]]
    lines += [f"  server: {line}" for line in result.server_errors[1]]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--kills", type=int, default=25)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--data-dir", type=Path, default=None, help="an empty directory to use (kept)")
    parser.add_argument("--database-url", default=None, help="an empty PostgreSQL database (not dropped)")
    parser.add_argument("--quiet", type=float, default=2.0, help="seconds of calm after the last kill")
    parser.add_argument("--max-requests", type=int, default=200_000, help="cap on new appends")
    parser.add_argument("--max-seconds", type=float, default=1200.0, help="cap on the kill phase")
    args = parser.parse_args(argv)
    if args.kills < 0 or args.clients < 1:
        parser.error("--kills must be >= 0 and --clients >= 1")
    config = HarnessConfig(
        backend=args.backend,
        kills=args.kills,
        clients=args.clients,
        seed=args.seed,
        data_dir=args.data_dir,
        database_url=args.database_url,
        quiet=args.quiet,
        max_requests=args.max_requests,
        max_seconds=args.max_seconds,
    )
    result = run(config)
    print(summary(result))
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
