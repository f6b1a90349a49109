"""Work done by forked processes while this one goes on, with no thread in this process.

``concurrent.futures.ProcessPoolExecutor`` hands work and results over through two threads of the
calling process. While the caller runs Python (the verifier replays a case while its workers
check signatures), each of those threads waits up to the interpreter's switch interval (5 ms) for
the GIL at every hand-over, and a worker waits with it: measured, a forked worker started its
first task 12-25 ms after the pool was made. Here each forked process is given its tasks at the
fork (they are functions of what it inherits), runs them at once, and writes all their results
to a pipe that the caller reads only when it needs them.

A task that raises in a worker raises the same exception in the caller; a worker that dies is
``BrokenProcessPool``. The processes are ended when the ``with`` block ends, whatever happened.
"""

from __future__ import annotations

import multiprocessing
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager, suppress
from multiprocessing.connection import Connection
from typing import Any

FORK = "fork"


class _Failed:
    def __init__(self, error: BaseException) -> None:
        self.error = error


def can_fork() -> bool:
    """Fork only where processes can, and only from a single-threaded process: a forked child has
    only the forking thread, and a lock another thread held at the fork is never released there."""
    return FORK in multiprocessing.get_all_start_methods() and threading.active_count() == 1


def _run(conn: Connection, tasks: Sequence[Callable[[], Any]]) -> None:
    """In a worker: run the tasks in order, then send their results (a failure in its place)."""
    results: list[Any] = []
    for task in tasks:
        try:
            results.append(task())
        except Exception as exc:
            results.append(_Failed(exc))
    try:
        conn.send(results)
    except OSError:
        pass  # the caller is gone: nobody needs the results
    except Exception as exc:  # a result or an exception that does not pickle
        failed = _Failed(RuntimeError(f"a worker's result could not be sent back: {exc!r}"))
        with suppress(OSError):
            conn.send([failed] * len(results))
    conn.close()


class Forked:
    """The results of tasks running in forked processes, each read when first asked for."""

    def __init__(self, conns: list[tuple[Connection, list[int]]]) -> None:
        self._conns = conns
        self._results: dict[int, Any] = {}

    def result(self, task: int) -> Any:
        """Task ``task``'s value (waiting for its worker), or the exception it raised there."""
        if task not in self._results:
            conn, numbers = next((c, n) for c, n in self._conns if task in n)
            try:
                values = conn.recv()
            except (EOFError, OSError):
                raise BrokenProcessPool("a worker process ended before sending its results") from None
            self._results.update(zip(numbers, values, strict=True))
        value = self._results[task]
        if isinstance(value, _Failed):
            raise value.error
        return value


@contextmanager
def forked(tasks: Sequence[Callable[[], Any]], processes: int) -> Iterator[Forked]:
    """Fork up to ``processes`` workers now and deal them the ``tasks`` (module-level functions of
    no argument, run on what the workers inherit); task ``i``'s result is ``result(i)``."""
    context: Any = multiprocessing.get_context(FORK)
    count = max(1, min(processes, len(tasks)))
    started: list[tuple[Connection, list[int], Any]] = []
    try:
        for n in range(count):
            numbers = list(range(n, len(tasks), count))
            conn, child = context.Pipe(duplex=False)
            process = context.Process(target=_run, args=(child, [tasks[i] for i in numbers]), daemon=True)
            try:
                process.start()
            except BaseException:
                conn.close()  # not yet in ``started``: its ends are closed here
                raise
            finally:
                child.close()  # so that the worker's death is an end of file here
            started.append((conn, numbers, process))
        yield Forked([(conn, numbers) for conn, numbers, _ in started])
    finally:
        for conn, _, process in started:
            conn.close()
            process.join(timeout=1)
            if process.is_alive():  # the caller stopped early (an exception): the work is not needed
                process.kill()
                process.join()
