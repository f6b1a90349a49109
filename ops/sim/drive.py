"""Load generation for the simulation: wrk with ``wrk_sim.lua``, or a Python client where wrk is missing.

Both take the same request files (one per client thread, one request per line, each sent once) and
give the same :class:`Run`. wrk is the measuring instrument (C, not the bottleneck: the empty handler's
rate in the same run shows its ceiling); the Python client exists so that the simulation's code runs
where wrk is not installed (the fast test), and its figures say that they are the client's.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx

from ops.bench.common import percentile

SCRIPT = Path(__file__).with_name("wrk_sim.lua")


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    token: str
    body: str


@dataclass(frozen=True)
class Run:
    name: str
    ok: int
    other: int
    first_other_status: int
    first_other_body: str
    exhausted_threads: int
    seconds: float
    p50_ms: float
    p99_ms: float
    socket_errors: int
    tool: str

    @property
    def rate(self) -> float:
        return self.ok / self.seconds if self.seconds else 0.0

    @property
    def errors(self) -> int:
        return self.other + self.socket_errors

    def line(self) -> str:
        problems = []
        if self.other:
            problems.append(f"{self.other} unexpected answers (first: {self.first_other_status}"
                            f" {self.first_other_body[:160]})")
        if self.socket_errors:
            problems.append(f"{self.socket_errors} socket errors")
        if self.exhausted_threads:
            problems.append(f"{self.exhausted_threads} threads ran out of requests: give it more")
        tail = f"  [{'; '.join(problems)}]" if problems else "  [0 errors]"
        return (f"{self.name}: {self.rate:,.1f}/s  p50 {self.p50_ms:.1f} ms  p99 {self.p99_ms:.1f} ms"
                f"  ({self.ok} ok, {self.tool}){tail}")


def have_wrk() -> bool:
    return shutil.which("wrk") is not None


def write_files(per_thread: Sequence[Sequence[Request]], prefix: Path) -> None:
    """``prefix.1`` … ``prefix.<threads>``: one "<method>\\t<path>\\t<token>\\t<body>" line per request."""
    for n, requests in enumerate(per_thread, 1):
        lines = []
        for r in requests:
            assert "\n" not in r.body and "\t" not in r.body
            lines.append(f"{r.method}\t{r.path}\t{r.token}\t{r.body}\n")
        Path(f"{prefix}.{n}").write_text("".join(lines), "utf-8")


def run_wrk(base: str, prefix: Path, *, threads: int, connections: int, seconds: float, expected: int,
            rate: float, name: str, cycle: bool) -> Run:
    command = ["wrk", f"-t{threads}", f"-c{max(connections, threads)}", f"-d{max(1, round(seconds))}s",
               "--timeout", "10s", "-s", str(SCRIPT), base, "--", str(prefix), str(expected), f"{rate / threads:.6f}",
               *(["cycle"] if cycle else [])]
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    report = json.loads(out.strip().splitlines()[-1])
    return Run(
        name=name, ok=report["ok"], other=report["other"], first_other_status=report["first_other_status"],
        first_other_body=report["first_other_body"],
        exhausted_threads=report["exhausted_threads"], seconds=report["duration_us"] / 1e6,
        p50_ms=report["p50_us"] / 1000, p99_ms=report["p99_us"] / 1000,
        socket_errors=sum(report[k] for k in ("connect_errors", "read_errors", "write_errors", "timeouts")),
        tool="wrk",
    )


def run_python(base: str, per_thread: Sequence[Sequence[Request]], *, seconds: float, expected: int,
               rate: float, name: str, cycle: bool) -> Run:
    """The same requests from Python threads, one connection each, for ``seconds`` (paced if ``rate``;
    with ``cycle`` a thread starts its list again when it reaches the end)."""
    lock = threading.Lock()
    latencies: list[float] = []
    counts = {"ok": 0, "other": 0, "first": 0, "exhausted": 0, "socket": 0}
    first_body: list[str] = []
    interval = len(per_thread) / rate if rate > 0 else 0.0
    started = time.perf_counter()
    stop_at = started + seconds

    def worker(requests: Sequence[Request]) -> None:
        due = time.perf_counter()
        with httpx.Client(base_url=base, timeout=10) as client:
            i = -1
            while True:
                i += 1
                if i == len(requests):
                    if not cycle:
                        with lock:
                            counts["exhausted"] += 1
                        return
                    i = 0
                r = requests[i]
                if time.perf_counter() >= stop_at:
                    return
                if interval:
                    time.sleep(max(0.0, due - time.perf_counter()))
                    due += interval
                headers = {"Authorization": f"Bearer {r.token}"} if r.token else {}
                if r.body:
                    headers["Content-Type"] = "application/json"
                t0 = time.perf_counter()
                try:
                    answer = client.request(r.method, r.path, headers=headers, content=r.body or None)
                except httpx.HTTPError:
                    with lock:
                        counts["socket"] += 1
                    continue
                with lock:
                    latencies.append((time.perf_counter() - t0) * 1000)
                    if answer.status_code == expected:
                        counts["ok"] += 1
                    else:
                        counts["other"] += 1
                        if not first_body:
                            counts["first"] = answer.status_code
                            first_body.append(" ".join(answer.text[:300].split()))

    workers = [threading.Thread(target=worker, args=(requests,)) for requests in per_thread]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return Run(name=name, ok=counts["ok"], other=counts["other"], first_other_status=counts["first"],
               first_other_body=first_body[0] if first_body else "",
               exhausted_threads=counts["exhausted"], seconds=time.perf_counter() - started,
               p50_ms=percentile(latencies, 50), p99_ms=percentile(latencies, 99),
               socket_errors=counts["socket"], tool="python client: wrk not installed, the client's figures")


class Driver:
    """Runs request lists against a base URL with wrk if installed, else with the Python client."""

    def __init__(self, tmp: Path, *, use_wrk: bool) -> None:
        self.tmp = tmp
        self.use_wrk = use_wrk
        self._n = 0

    def start(self, base: str, per_thread: Sequence[Sequence[Request]], *, connections: int, seconds: float,
              expected: int, rate: float, name: str, cycle: bool = False) -> Pending:
        """Start a run in the background (so that two run at once); ``.result()`` waits for it."""
        self._n += 1
        prefix = self.tmp / f"run{self._n}"
        if self.use_wrk:
            write_files(per_thread, prefix)
        box: list[Run] = []
        failure: list[BaseException] = []

        def go() -> None:
            try:
                if self.use_wrk:
                    box.append(run_wrk(base, prefix, threads=len(per_thread), connections=connections,
                                       seconds=seconds, expected=expected, rate=rate, name=name, cycle=cycle))
                else:
                    box.append(run_python(base, per_thread, seconds=seconds, expected=expected, rate=rate,
                                          name=name, cycle=cycle))
            except BaseException as exc:  # handed to result()
                failure.append(exc)

        thread = threading.Thread(target=go)
        thread.start()
        return Pending(thread, box, failure)

    def run(self, *args: object, **kwargs: object) -> Run:
        return self.start(*args, **kwargs).result()  # type: ignore[arg-type]


@dataclass
class Pending:
    thread: threading.Thread
    box: list[Run]
    failure: list[BaseException]

    def result(self) -> Run:
        self.thread.join()
        if self.failure:
            raise self.failure[0]
        return self.box[0]
