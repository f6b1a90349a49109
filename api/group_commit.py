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

import time
from concurrent.futures import Future
from dataclasses import dataclass, field

from api.batching import BatchWriter, resolve
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


class GroupCommitter(BatchWriter[Pending]):
    thread_name = "group-commit"

    def __init__(self, ledger: Ledger, *, max_batch: int = 256, metrics: Metrics | None = None) -> None:
        super().__init__(max_batch=max_batch)
        self.ledger = ledger
        self.metrics = metrics or Metrics()
        self.log = get_logger()

    def _not_accepting(self) -> Exception:
        return UnavailableError("the service is not accepting appends (starting or stopping)")

    def submit(self, raw: bytes, *, actor: str | None) -> Future[Receipt]:
        pending = Pending(raw, actor)
        self._put(pending)
        return pending.future

    # -- the writer thread -------------------------------------------------------------------

    def _commit(self, batch: list[Pending]) -> None:
        if not batch:
            return
        started = time.perf_counter()
        ready = batch
        try:
            outcomes = self._append(ready)
        except Exception as exc:  # resolve every waiter, whatever happened; never kill the thread
            for pending in ready:
                resolve(pending.future, exc)
            if isinstance(exc, LedgerError):
                self.log.warning("group commit refused", batch_size=len(ready), code=exc.code)
            else:
                self.log.error("group commit failed", batch_size=len(ready), error_type=type(exc).__name__)
            return
        for pending, outcome in zip(ready, outcomes, strict=True):
            resolve(pending.future, outcome)
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
