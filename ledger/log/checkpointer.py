"""The checkpointer: the one thread that signs checkpoints while the service runs, and a second
one that has them cosigned.

The signer signs a checkpoint every ``interval`` seconds when the log grew, or at once when someone
waits for one (``wait_for``: an append with ``?wait=true``, a bundle export); the checkpoint is
recorded outside the database (the rollback guard) as it is signed. The witnesser then asks the
witnesses of ``witnesses.json`` to cosign the newest signed checkpoint (``ledger.log.witnessing``,
bounded timeouts), records it again with their cosignatures and notes ``witnessed_size``: the newest
checkpoint cosigned as the profile asks (in a production ledger, the published one). A slow or silent witness therefore
never delays a signature, and neither thread ever holds the write lock while talking to a witness.

A third thread, the timestamper, asks the time-stamping authorities of ``tsa.json`` for RFC 3161
tokens (``ledger.log.timestamping``): at most one request per TSA per ``tsa_interval`` seconds for the
newest checkpoint not yet stamped (in production also for the newest published one, which bundles
carry, while it has no token), and on demand (``timestamp_for``: a bundle export) for one
checkpoint. A token is verified before it is stored; a failing TSA is logged and never delays a
signature or a cosignature, and no thread holds the write lock while talking to a TSA.

The signer also signs the access log's checkpoint (``ledger/log/access.py``, origin ``<origin>/access``)
at every tick where the access log grew; access checkpoints are not sent to witnesses.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from domain.errors import LedgerError
from ledger.log.timestamping import TSA_FILE, stamp_checkpoint
from ledger.log.tlog import StoredCheckpoint
from ledger.log.witnessing import collect_cosignatures

logger = logging.getLogger("evidence_ledger.checkpointer")


class Checkpointer:
    """Signs checkpoints in the background; ``wait_for`` lets a request ask for one now."""

    def __init__(
        self,
        ledger: Any,
        *,
        interval: float,
        witness_timeout: float = 2.0,
        tsa_interval: float = 60.0,
        tsa_timeout: float = 5.0,
        on_tick: Callable[[], None] | None = None,
        tiles: Any = None,
    ) -> None:
        self.ledger = ledger
        self.interval = interval
        self.witness_timeout = witness_timeout
        self.tsa_interval = tsa_interval
        self.tsa_timeout = tsa_timeout
        self.on_tick = on_tick
        self.tiles = tiles  # a ledger.log.tile_writer.TileWriter: the tiled log published after each checkpoint
        self.latest_size = 0  # signed
        self.access_size = 0  # access-log entries covered by the newest access checkpoint
        self.cosigned_size = 0  # signed, and the witnesses asked
        self.witnessed_size = 0  # the newest checkpoint cosigned as the profile asks (published, in production)
        self._cond = threading.Condition()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._to_cosign: StoredCheckpoint | None = None
        self._cosign_wake = threading.Event()
        self._stamp_wake = threading.Event()
        self._stamp_demand: set[int] = set()  # sizes an export waits for (under _cond)
        self._stamp_answered: set[int] = set()  # demanded sizes asked for since (under _cond)
        self._last_round: float | None = None  # monotonic time of the last periodic round
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        if self._threads:
            return
        latest = self.ledger.latest_checkpoint()
        self.latest_size = 0 if latest is None else latest.size
        access = self.ledger.access_log.latest_checkpoint()
        self.access_size = 0 if access is None else access.size
        self._update_witnessed()
        self._threads = [
            threading.Thread(target=self._run, name="checkpointer", daemon=True),
            threading.Thread(target=self._run_witnesses, name="witnesser", daemon=True),
            threading.Thread(target=self._run_timestamps, name="timestamper", daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Stop after one last checkpoint covering everything committed (and its cosignatures)."""
        if not self._threads or self._stop.is_set():
            return
        self._stop.set()
        self._wake.set()
        signer, witnesser, timestamper = self._threads
        signer.join(timeout)
        self._cosign_wake.set()
        witnesser.join(timeout)
        self._stamp_wake.set()
        timestamper.join(timeout)

    def _run(self) -> None:
        self.publish_tiles()  # catch up with checkpoints signed while the service was not running
        while not self._stop.is_set():
            self._wake.wait(self.interval)
            self._wake.clear()
            self.tick()

    def tick(self) -> None:
        """Sign a checkpoint if the log grew (and hand it to the witnesser); sign an access checkpoint
        if the access log grew."""
        if self.on_tick is not None:
            try:
                self.on_tick()
            except Exception as exc:  # never kill the thread
                logger.error("checkpointer hook failed: %s", type(exc).__name__)
        self._tick_log()
        self.tick_access()

    def tick_access(self) -> None:
        """Sign an access checkpoint if the access log grew since the last one."""
        try:
            if self.ledger.access_log.size() <= self.access_size:
                return
            checkpoint = self.ledger.access_log.checkpoint()
        except LedgerError as exc:
            logger.warning("access checkpoint failed: %s", exc.code)
            return
        except Exception as exc:
            logger.error("access checkpoint failed: %s", type(exc).__name__)
            return
        if checkpoint is not None:
            self.access_size = checkpoint.size

    def _tick_log(self) -> None:
        try:
            if self.ledger.log_size() <= self.latest_size:
                return
            checkpoint = self.ledger.checkpoint()
        except LedgerError as exc:
            logger.warning("checkpoint failed: %s", exc.code)
            return
        except Exception as exc:
            logger.error("checkpoint failed: %s", type(exc).__name__)
            return
        with self._cond:
            self.latest_size = 0 if checkpoint is None else checkpoint.size
            self._cond.notify_all()
        if checkpoint is not None:
            self.publish_tiles()
            self._to_cosign = checkpoint
            self._cosign_wake.set()

    def publish_tiles(self) -> None:
        """Write the new tiles, then the published checkpoint (``ledger.log.tile_writer``). Never raises."""
        if self.tiles is None:
            return
        try:
            self.tiles.publish(self.ledger)
        except LedgerError as exc:
            logger.error("publishing the tiles failed: %s", exc.code)
        except Exception as exc:  # never kill the thread
            logger.error("publishing the tiles failed: %s", type(exc).__name__)

    def _run_witnesses(self) -> None:
        while True:
            self._cosign_wake.wait()
            self._cosign_wake.clear()
            checkpoint, self._to_cosign = self._to_cosign, None
            if checkpoint is not None:
                self.cosign(checkpoint)
            if self._stop.is_set() and self._to_cosign is None:
                return

    def cosign(self, checkpoint: StoredCheckpoint) -> None:
        """Collect the witnesses' cosignatures of ``checkpoint`` and record it with them."""
        try:
            cosign_checkpoint(self.ledger, checkpoint, timeout=self.witness_timeout)
        except Exception as exc:  # a witness must never break checkpointing
            logger.warning("cosigning failed: %s", getattr(exc, "code", type(exc).__name__))
        self._update_witnessed()
        if self.ledger.production:  # a newly witnessed checkpoint is the one the tiles publish
            self.publish_tiles()
        with self._cond:
            self.cosigned_size = max(self.cosigned_size, checkpoint.size)
            self._cond.notify_all()

    def _run_timestamps(self) -> None:
        while not self._stop.is_set():
            self._stamp_wake.wait(self.tsa_interval)
            self._stamp_wake.clear()
            if self._stop.is_set():
                return
            self.stamp_round()

    def stamp_round(self) -> None:
        """Stamp the checkpoints exports wait for, then — at most once per ``tsa_interval`` — the
        newest one and, in the production profile, the newest published (witnessed) one when it is
        another: the one a bundle shows. A TSA already holding a token for a checkpoint is not asked
        again, so the published one costs one request per TSA until it has its token. Never raises."""
        with self._cond:
            demand, self._stamp_demand = sorted(self._stamp_demand), set()
        for size in demand:
            self._stamp(size)
            with self._cond:
                self._stamp_answered.add(size)
                while len(self._stamp_answered) > 64:
                    self._stamp_answered.discard(min(self._stamp_answered))
                self._cond.notify_all()
        now = time.monotonic()
        if self._last_round is not None and now - self._last_round < self.tsa_interval:
            return
        self._last_round = now
        size = self.latest_size
        if size > 0 and size not in demand:
            self._stamp(size)
        published = self.witnessed_size
        if self.ledger.production and 0 < published != size and published not in demand:
            self._stamp(published)

    def _stamp(self, size: int) -> None:
        try:
            checkpoint = self.ledger.checkpoint_at(size)
        except Exception as exc:  # a TSA round must never break checkpointing
            logger.warning("time-stamping skipped: %s", getattr(exc, "code", type(exc).__name__))
            return
        stamp_checkpoint(self.ledger, checkpoint, timeout=self.tsa_timeout)

    def timestamp_for(self, size: int, timeout: float) -> bool:
        """Ask the TSAs for tokens over the checkpoint of ``size`` now (not waiting for the interval)
        and wait up to ``timeout`` seconds for the round to end; False when it did not end in time
        (or the thread is not running). The tokens themselves are read from storage afterwards."""
        if not self._threads or self._stop.is_set():
            return False
        if not (self.ledger.data_dir / TSA_FILE).exists():
            return True  # no TSA configured: nothing to ask
        with self._cond:
            self._stamp_answered.discard(size)
            self._stamp_demand.add(size)
        self._stamp_wake.set()
        with self._cond:
            return self._cond.wait_for(lambda: size in self._stamp_answered, timeout)
    def _update_witnessed(self) -> None:
        """Re-read the newest checkpoint with the cosignatures the profile asks for (one at least)."""
        try:
            witnessed = self.ledger.witnessed_checkpoint(max(1, self.ledger.config.min_witnesses))
        except Exception as exc:  # never kill the thread; keep the last known size
            logger.warning("reading the witnessed checkpoint failed: %s", getattr(exc, "code", type(exc).__name__))
            return
        self.witnessed_size = 0 if witnessed is None else witnessed.size

    def wait_for(self, size: int, timeout: float) -> StoredCheckpoint | None:
        """A checkpoint of at least ``size`` entries, signed by the thread — with the witnesses'
        cosignatures if they answer within ``timeout`` —; None if none was signed by then."""
        if not self._threads or self._stop.is_set():
            return None
        deadline = time.monotonic() + timeout
        self._wake.set()
        with self._cond:
            if not self._cond.wait_for(lambda: self.latest_size >= size, timeout):
                return None
            self._cond.wait_for(lambda: self.cosigned_size >= size, max(0.0, deadline - time.monotonic()))
        return self.ledger.latest_checkpoint()


def cosign_checkpoint(ledger: Any, checkpoint: StoredCheckpoint, *, timeout: float) -> StoredCheckpoint:
    """The witnesses' cosignatures of a signed checkpoint, stored and recorded with it."""
    lines = collect_cosignatures(ledger, checkpoint, timeout=timeout)
    stored: StoredCheckpoint = ledger.checkpoint_at(checkpoint.size)  # verified stored lines only
    cosigned = replace(stored, cosignatures=tuple(dict.fromkeys([*stored.cosignatures, *lines])))
    ledger.record_checkpoint(cosigned)
    return cosigned
