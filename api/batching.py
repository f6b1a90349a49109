"""One writer thread that takes everything waiting, in batches: the shape both of the service's
writers share (the group commit of appends, ``api/group_commit.py``, and the access log's writer,
``api/access.py``).

Callers put a pending item (anything with a ``future``) on the queue and wait on its future. The
thread takes every item waiting, up to ``max_batch``, and hands the batch to ``_commit``, which
resolves each future once its transaction committed (or failed). ``stop`` refuses new items,
lets the thread finish what is queued, and ends it; items queued on a writer that never started
are refused, so no waiter hangs.
"""

from __future__ import annotations

import queue
import threading
from concurrent.futures import Future, InvalidStateError
from typing import Any, Generic, Protocol, TypeVar


class HasFuture(Protocol):
    @property
    def future(self) -> Future[Any]: ...


P = TypeVar("P", bound=HasFuture)


def resolve(future: Future[Any], outcome: object) -> None:
    """Set the outcome (a result, or an exception to raise in the waiter) unless already resolved
    or cancelled by its waiter."""
    try:
        if isinstance(outcome, BaseException):
            future.set_exception(outcome)
        else:
            future.set_result(outcome)
    except InvalidStateError:
        pass


class BatchWriter(Generic[P]):
    """The queue, the thread and its life cycle; subclasses write a batch in ``_commit``."""

    thread_name = "writer"

    def __init__(self, *, max_batch: int) -> None:
        self.max_batch = max_batch
        self._queue: queue.SimpleQueue[P | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._accepting = True
        self._thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        """Start the writer thread; items submitted before this wait for it (one first batch)."""
        with self._lock:
            if self._thread is not None or not self._accepting:
                return
            self._thread = threading.Thread(target=self._run, name=self.thread_name, daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Refuse new items, finish everything already queued, then end the thread."""
        with self._lock:
            if not self._accepting:
                return
            self._accepting = False
            self._queue.put(None)
            thread = self._thread
        if thread is None:  # never started: nothing will write what is queued
            self._fail_queued(self._not_accepting())
            return
        thread.join(timeout)

    def _put(self, pending: P) -> None:
        """Queue ``pending``; raise ``_not_accepting()`` once the writer is stopping."""
        with self._lock:
            if not self._accepting:
                raise self._not_accepting()
            self._queue.put(pending)

    def _not_accepting(self) -> Exception:
        """The error a caller gets when the writer no longer takes items."""
        raise NotImplementedError

    def _commit(self, batch: list[P]) -> None:
        """Write ``batch`` and resolve every future in it; must not raise."""
        raise NotImplementedError

    def _fail_queued(self, exc: Exception) -> None:
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return
            if item is not None:
                resolve(item.future, exc)

    def _run(self) -> None:
        stopping = False
        while not stopping:
            first = self._queue.get()
            if first is None:
                break
            batch = [first]
            while len(batch) < self.max_batch:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    stopping = True
                    break
                batch.append(item)
            # From here on a waiter can no longer cancel; one that already gave up is not written.
            self._commit([p for p in batch if p.future.set_running_or_notify_cancel()])
