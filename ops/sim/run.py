"""The state-wide load simulation (issue 15): the modelled load, measured against one primary.

    python -m ops.sim [--backend postgres|sqlite] [--departments 351] [--seconds 20] [--tiny]

1. The model (``ops/sim/model.py``): 351 municipalities, one department and one log each, rates
   scaled by population; the modelled peak-hour appends/s and public proof reads/s.
2. One `evidence-ledger serve` (PostgreSQL by default, a throwaway database) hosting every simulated
   department: each its own registered key, actor, token and case numbers, cases drawn in proportion
   to population (``ops/sim/cases.py``). Driven by wrk (``ops/sim/wrk_sim.lua``):
     * the modelled peak: appends paced at the modelled peak rate, with inclusion-proof reads paced
       at the modelled peak read rate, at the same time;
     * saturation: appends as fast as the server takes them, with the modelled proof reads beside them;
     * proof saturation: inclusion proofs alone, as fast as the server answers them;
   then the same request files against the empty handlers of ``ops/bench/empty_app.py`` under the same
   server settings: the load generator's ceiling, in the same run. Headroom = saturation / modelled peak.
3. Bytes per event: growth of the database over the HTTP run (PostgreSQL: ``pg_total_relation_size``
   of every table; SQLite: the database file after a WAL checkpoint), and the same for both backends
   from in-process appends of the same case histories; storage per year per department and statewide.
4. Proofs from tiles (``ops/sim/tiles.py``): a static server's rate for tile-sized files.
"""

from __future__ import annotations

import argparse
import math
import os
import random
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import psycopg

from ledger.settings import Settings
from ledger.store import Ledger
from ops.bench.bench_http import server
from ops.bench.common import database
from ops.procs import free_port
from ops.sim import model, tiles
from ops.sim.cases import EVENTS_PER_SIM_CASE, Case, make_cases, prepare
from ops.sim.drive import Driver, Request, Run, have_wrk

WARM_UP_SECONDS = 3


def append_requests(cases: Sequence[Case], threads: int, in_flight: int) -> list[list[Request]]:
    """Each thread's appends: its cases interleaved ``in_flight`` at a time, so that a case's next event
    is sent ``in_flight`` requests after the one before, long after that one was answered (a case's
    events must arrive in order; more connections per thread than ``in_flight`` would race them)."""
    out: list[list[Request]] = []
    for n in range(threads):
        mine = cases[n::threads]
        requests = []
        for g in range(0, len(mine), in_flight):
            group = mine[g : g + in_flight]
            for seq in range(EVENTS_PER_SIM_CASE):
                for case in group:
                    requests.append(Request("POST", f"/v1/cases/{case.case_id}/events", case.signer.token,
                                            case.envelopes[seq].decode()))
        out.append(requests)
    return out


def proof_requests(size: int, count: int, threads: int, seed: int) -> list[list[Request]]:
    rng = random.Random(seed)  # noqa: S311 - a reproducible workload
    return [
        [Request("GET", f"/v1/log/proof/inclusion?index={rng.randrange(size)}&size={size}", "", "")
         for _ in range(count)]
        for _ in range(threads)
    ]


def database_bytes(settings: Settings) -> int:
    """What the ledger's database takes on disk: every table with its indexes and TOAST (PostgreSQL),
    or the SQLite file with its WAL after a checkpoint."""
    if settings.database_url:
        with psycopg.connect(settings.database_url) as conn:
            row = conn.execute(
                "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c"
                " JOIN pg_namespace n ON n.oid = c.relnamespace"
                " WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema')"
            ).fetchone()
        return int(row[0]) if row else 0
    with Ledger(settings) as ledger:
        ledger.db.compact()
    path = settings.data_dir / "ledger.sqlite3"
    return sum(p.stat().st_size for p in path.parent.glob(path.name + "*"))


def log_size(settings: Settings) -> int:
    with Ledger(settings) as ledger:
        return ledger.log_size()


def storage_in_process(backend: str, depts: list[model.Department], cases: int) -> tuple[float, int]:
    """(bytes per event, events) of ``cases`` histories appended in-process to a fresh ledger."""
    with tempfile.TemporaryDirectory(prefix="el-sim-store-") as tmp, database(backend) as url:
        settings, signers = prepare(Path(tmp) / "data", url, depts)
        sample = make_cases(signers, cases, first=0, seed=11)
        before, events_before = database_bytes(settings), log_size(settings)
        with Ledger(settings) as ledger:
            for i in range(0, len(sample), 8):
                batch = sample[i : i + 8]
                ledger.append([e for c in batch for e in c.envelopes],
                              callers=[c.signer.actor for c in batch for _ in c.envelopes])
        events = log_size(settings) - events_before
        if events != cases * EVENTS_PER_SIM_CASE:
            raise RuntimeError(f"{events} of {cases * EVENTS_PER_SIM_CASE} events were appended")
        return (database_bytes(settings) - before) / events, events


def headroom(measured: float, modelled: float) -> str:
    return f"{measured / modelled:,.0f}x" if modelled > 0 else "n/a"


def simulate(args: argparse.Namespace) -> dict[str, float]:
    """Run everything; print the report; return the headline figures (for the test)."""
    use_wrk = have_wrk() and not args.python_client
    depts = model.departments(args.departments)
    assumptions = model.Assumptions()
    modelled = model.load(depts, assumptions)
    for line in model.describe(depts, assumptions):
        print(line)
    figures: dict[str, float] = {"peak_appends_s": modelled.peak_appends_s,
                                 "peak_proofs_s": modelled.peak_proof_reads_s}
    threads, conns = args.threads, args.connections
    with tempfile.TemporaryDirectory(prefix="el-sim-") as tmp_name, database(args.backend) as url:
        tmp = Path(tmp_name)
        started = time.perf_counter()
        settings, signers = prepare(tmp / "data", url, depts)
        print(f"set-up: {len(signers)} departments, each its own key, actor, token and case numbers,"
              f" on one {args.backend} ledger ({time.perf_counter() - started:.0f} s)")
        per_case = EVENTS_PER_SIM_CASE
        sat_cases = make_cases(signers, math.ceil(args.max_rate * args.seconds / per_case), first=0, seed=1)
        warm_cases = make_cases(signers, math.ceil(args.max_rate * WARM_UP_SECONDS / per_case),
                                first=100_000, seed=2)
        paced = max(modelled.peak_appends_s * args.seconds * 2, 4 * per_case)
        peak_cases = make_cases(signers, math.ceil(paced / per_case), first=200_000, seed=3)
        env = {**os.environ, "EVIDENCE_LEDGER_DATA_DIR": str(settings.data_dir)}
        if url:
            env["EVIDENCE_LEDGER_DATABASE_URL"] = url
        if args.token_cache_seconds is not None:
            env["EVIDENCE_LEDGER_API_TOKEN_CACHE_SECONDS"] = str(args.token_cache_seconds)
        driver = Driver(tmp, use_wrk=use_wrk)
        in_flight = max(256, 4 * conns)
        port = free_port()
        serve = [sys.executable, "-m", "api", "serve", "--port", str(port), "--log-level", "warning"]
        with server(serve, env, port) as base:
            driver.run(base, append_requests(warm_cases, threads, in_flight), connections=conns,
                       seconds=min(WARM_UP_SECONDS, args.seconds), expected=201, rate=0, name="warm-up")
            size = log_size(settings)
            bytes_before = database_bytes(settings)
            proofs_paced = proof_requests(size, math.ceil(modelled.peak_proof_reads_s * args.seconds * 2) + 10, 1, 5)
            proofs_sat = proof_requests(size, 20_000, threads, 6)  # sent over and over: reads may repeat
            appends_sat = append_requests(sat_cases, threads, in_flight)
            # 1. the modelled peak hour: paced appends and paced proof reads at once
            reads = driver.start(base, proofs_paced, connections=2, seconds=args.seconds, expected=200, cycle=True,
                                 rate=modelled.peak_proof_reads_s, name="proof reads at the modelled peak")
            # Little's law with 100 ms per append, twice over: a connection idle for longer than the
            # server's keep-alive (5 s) would be closed under wrk between two paced requests
            paced_conns = max(1, min(conns, math.ceil(modelled.peak_appends_s * 0.2)))
            peak = driver.run(base, append_requests(peak_cases, 1, 4 * paced_conns), connections=paced_conns,
                              seconds=args.seconds, expected=201, rate=modelled.peak_appends_s,
                              name="appends at the modelled peak")
            peak_reads = reads.result()
            # 2. appends at saturation, with the modelled proof reads beside them
            reads = driver.start(base, proofs_paced, connections=2, seconds=args.seconds, expected=200, cycle=True,
                                 rate=modelled.peak_proof_reads_s, name="proof reads at the modelled peak, beside")
            sat = driver.run(base, appends_sat, connections=conns, seconds=args.seconds, expected=201, rate=0,
                             name="appends at saturation")
            sat_reads = reads.result()
            # 3. proof reads alone at saturation
            proof_sat = driver.run(base, proofs_sat, connections=conns, seconds=args.seconds, expected=200, cycle=True,
                                   rate=0, name="inclusion proofs at saturation")
            grown = log_size(settings) - size
            bytes_after = database_bytes(settings)
        port = free_port()
        empty = [sys.executable, "-m", "ops.bench.run_app", "ops.bench.empty_app:app", "--port", str(port)]
        with server(empty, env, port) as base:
            empty_post = driver.run(base, appends_sat, connections=conns, seconds=args.seconds, expected=201,
                                    cycle=True, rate=0, name="empty POST handler (same server settings)")
            empty_get = driver.run(base, proofs_sat, connections=conns, seconds=args.seconds, expected=200, cycle=True,
                                   rate=0, name="empty GET handler (same server settings)")
        tile = tiles.measure(driver, args.tiles_dir, files=args.tile_files, seconds=args.seconds, threads=threads,
                             connections=conns)
    tool = "wrk" if use_wrk else "a Python client (wrk is not installed: these are the client's figures)"
    print(f"load: {tool}, {args.seconds} s per run; saturation -t{threads} -c{conns}; appends of 12-event case"
          f" histories, each request one signed envelope (a case's events {in_flight} requests apart)")
    for run in (peak, peak_reads, sat, sat_reads, proof_sat, empty_post, empty_get):
        print(run.line())
    _check_baseline(sat, empty_post)
    _check_baseline(proof_sat, empty_get)
    print(f"headroom appends: saturation {sat.rate:,.0f}/s / modelled peak {modelled.peak_appends_s:.3f}/s ="
          f" {headroom(sat.rate, modelled.peak_appends_s)}")
    print(f"headroom proofs:  saturation {proof_sat.rate:,.0f}/s / modelled peak"
          f" {modelled.peak_proof_reads_s:.2f}/s = {headroom(proof_sat.rate, modelled.peak_proof_reads_s)}")
    figures.update(sat_appends_s=sat.rate, sat_proofs_s=proof_sat.rate,
                   errors=sum(r.errors for r in (peak, peak_reads, sat, sat_reads, proof_sat)))
    http_bpe = (bytes_after - bytes_before) / grown if grown else float("nan")
    print(f"storage, {args.backend} over the HTTP runs: {bytes_after - bytes_before:,} bytes for {grown:,} events"
          f" = {http_bpe:,.0f} bytes/event")
    figures[f"http_{args.backend}_bytes_per_event"] = http_bpe
    for backend in args.storage_backends:
        bpe, events = storage_in_process(backend, depts[: min(len(depts), 20)], args.storage_cases)
        figures[f"{backend}_bytes_per_event"] = bpe
        print(f"storage, {backend} in-process: {bpe:,.0f} bytes/event over {events:,} events"
              f" (12-event histories, batches of 96)")
        _storage_lines(backend, bpe, depts, assumptions)
    for line in tile.lines(modelled.peak_proof_reads_s):
        print(line)
    figures["tile_fetches_s"] = tile.best_rate
    return figures


def _check_baseline(ledger: Run, baseline: Run) -> None:
    ratio = ledger.rate / baseline.rate if baseline.rate else float("nan")
    verdict = ("the server is the bottleneck, not the load generator" if ratio < 0.5
               else "near the load generator's ceiling: the figure is a lower bound")
    print(f"  {ledger.name} / empty handler = {ratio:.0%}: {verdict}")


def _storage_lines(backend: str, bpe: float, depts: list[model.Department], a: model.Assumptions) -> None:
    def gib(events: float) -> str:
        return f"{events * bpe / 2**30:,.2f} GiB"

    largest = depts[0]
    median = sorted(depts, key=lambda d: d.population)[len(depts) // 2]
    statewide = model.load(depts, a).events_per_year
    print(f"  per year, {backend}: {largest.name} {gib(model.department_events_per_year(largest, a))},"
          f" median department ({median.population:,} residents) {gib(model.department_events_per_year(median, a))},"
          f" all {len(depts)} departments {gib(statewide)}")


def main(argv: Sequence[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(prog="python -m ops.sim", description=__doc__.splitlines()[0])
    parser.add_argument("--backend", default="postgres", choices=["sqlite", "postgres"])
    parser.add_argument("--departments", type=int, default=model.MUNICIPALITIES)
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--max-rate", type=float, default=1500.0,
                        help="appends/s the saturation run's envelopes last for (signed beforehand)")
    parser.add_argument("--token-cache-seconds", type=float, default=None,
                        help="the server's token cache (default: the server's, 2 s); see docs/scaling.md")
    parser.add_argument("--storage-cases", type=int, default=500)
    parser.add_argument("--storage-backends", default="sqlite,postgres")
    parser.add_argument("--tiles-dir", type=Path, default=None,
                        help="serve this tiles directory (a data dir's tiles/) instead of generated 8 KiB files")
    parser.add_argument("--tile-files", type=int, default=4096)
    parser.add_argument("--python-client", action="store_true", help="drive the load from Python even if wrk is here")
    parser.add_argument("--tiny", action="store_true",
                        help="a few seconds, three departments: checks that the simulation works, measures nothing")
    args = parser.parse_args(argv)
    if args.tiny:
        args.departments, args.seconds, args.max_rate = 3, 1, 300.0
        args.storage_cases, args.tile_files, args.connections = 4, 16, 4
    args.storage_backends = [b for b in args.storage_backends.split(",") if b]
    if not set(args.storage_backends) <= {"sqlite", "postgres"}:
        parser.error("--storage-backends: sqlite and/or postgres")
    return simulate(args)
