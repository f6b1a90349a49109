"""Group commit: the one thread that appends what the HTTP service accepts.

:class:`GroupCommitter` — request handlers ``submit`` an envelope and await the returned
``concurrent.futures.Future``. One writer thread takes every envelope waiting (up to
``max_batch``) and appends them with a single ``ledger.append(batch)``: one transaction, one
fsync, one outcome per envelope. A future resolves only after that transaction committed, so an
acknowledgement is always durable. The ledger checks, with the registry it verified itself, that
each envelope's signing key is registered to the calling actor (403 SIGNER_NOT_CALLER otherwise).
It is the only writer of events while the service runs (the checkpointer,
``ledger.log.checkpointer``, the only signer); reads are recorded by the access log's own writer
(``api/access.py``), never through this thread.
"""

from __future__ import annotations

import queue
import threading
import time
from concurrent.futures import Future, InvalidStateError
from dataclasses import dataclass, field

from api.errors import UnavailableError
from api.logs import get_logger
from api.metrics import Metrics
from domain.errors import LedgerError
from ledger.append import Receipt
from ledger.storage.sql import StorageError
from ledger.store import Ledger


@dataclass
class Pending:
    raw: bytes
    actor: str | None  # the caller's actor, who must own the signing key; None skips the check
    future: Future[Receipt] = field(default_factory=Future)


class GroupCommitter:
    def __init__(self, ledger: Ledger, *, max_batch: int = 256, metrics: Metrics | None = None) -> None:
        self.ledger = ledger
        self.max_batch = max_batch
        self.metrics = metrics or Metrics()
        self.log = get_logger()
        self._queue: queue.SimpleQueue[Pending | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._accepting = True
        self._thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        """Start the writer thread; envelopes submitted before this wait for it (one first batch)."""
        with self._lock:
            if self._thread is not None or not self._accepting:
                return
            self._thread = threading.Thread(target=self._run, name="group-commit", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Refuse new work, finish everything already queued, then end the thread."""
        with self._lock:
            if not self._accepting:
                return
            self._accepting = False
            self._queue.put(None)
            thread = self._thread
        if thread is None:  # never started: nothing will write what is queued
            self._fail_queued(UnavailableError("the service stopped before starting"))
            return
        thread.join(timeout)

    def _fail_queued(self, exc: Exception) -> None:
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return
            if item is not None:
                _resolve(item, exc)

    def submit(self, raw: bytes, *, actor: str | None) -> Future[Receipt]:
        pending = Pending(raw, actor)
        with self._lock:
            if not self._accepting:
                raise UnavailableError("the service is not accepting appends (starting or stopping)")
            self._queue.put(pending)
        return pending.future

    # -- the writer thread -------------------------------------------------------------------

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

    def _commit(self, batch: list[Pending]) -> None:
        if not batch:
            return
        started = time.perf_counter()
        ready = batch
        try:
            outcomes = self._append(ready)
        except Exception as exc:  # resolve every waiter, whatever happened; never kill the thread
            for pending in ready:
                _resolve(pending, exc)
            if isinstance(exc, LedgerError):
                self.log.warning("group commit refused", batch_size=len(ready), code=exc.code)
            else:
                self.log.error("group commit failed", batch_size=len(ready), error_type=type(exc).__name__)
            return
        for pending, outcome in zip(ready, outcomes, strict=True):
            _resolve(pending, outcome)
        self.metrics.observe_batch(len(ready))
        self.log.debug(
            "group commit", batch_size=len(ready), commit_ms=round((time.perf_counter() - started) * 1000, 3)
        )

    def _append(self, ready: list[Pending]) -> list[Receipt | LedgerError]:
        try:
            return self.ledger.append([p.raw for p in ready], callers=[p.actor for p in ready])
        except StorageError:
            raise
        except LedgerError:
            if len(ready) == 1:
                raise
        # A batch-level failure (e.g. another process won a race): retry one by one, so one
        # envelope never fails the others. Appends are idempotent, so this is always safe.
        outcomes: list[Receipt | LedgerError] = []
        for pending in ready:
            try:
                outcomes.extend(self.ledger.append([pending.raw], callers=[pending.actor]))
            except LedgerError as exc:
                outcomes.append(exc)
        return outcomes


def _resolve(pending: Pending, outcome: Receipt | BaseException) -> None:
    try:
        if isinstance(outcome, BaseException):
            pending.future.set_exception(outcome)
        else:
            pending.future.set_result(outcome)
    except InvalidStateError:  # already resolved or cancelled by its waiter
        pass
