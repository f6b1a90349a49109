"""Everything one service process holds: the ledger, the writer threads, the token store, the metrics."""

from __future__ import annotations

import threading
import time
from datetime import datetime, timedelta
from typing import Any

from api.access import AccessRecorder, AccessWriter
from api.auth import Authenticator, TokenAuthenticator
from api.group_commit import GroupCommitter
from api.logs import get_logger
from api.metrics import Metrics
from api.settings import ApiSettings
from domain.errors import LedgerError
from ledger.bootstrap import log_verifier_key
from ledger.evidence.footage import FootageStore, store_for
from ledger.log.checkpointer import Checkpointer
from ledger.log.rollback import RollbackDetected
from ledger.log.tile_writer import TileWriter
from ledger.settings import ConfigurationError, Settings
from ledger.storage.integrity import StateTampered
from ledger.storage.sql import StorageError
from ledger.store import Ledger
from ledger.tokens import TokenStore

DURABILITY_RECHECK_SECONDS = 5.0


class Runtime:
    """Owns the ledger (unless given one) and the threads; ``start``/``stop`` are idempotent."""

    def __init__(
        self,
        settings: Settings,
        api_settings: ApiSettings,
        *,
        ledger: Ledger | None = None,
        authenticator: Authenticator | None = None,
        access_recorder: AccessRecorder | None = None,
    ) -> None:
        self.settings = settings
        self.api_settings = api_settings
        self.metrics = Metrics()
        self.log = get_logger()
        self._owns_ledger = ledger is None
        self._ledger = ledger
        self._authenticator = authenticator
        self._lock = threading.Lock()
        self._state = "new"
        self.tokens: TokenStore | None = None
        self.committer: GroupCommitter | None = None
        self.checkpointer: Checkpointer | None = None
        self.tiles: TileWriter | None = None  # publishes the tiled log (docs/tiles.md)
        self.verifier_key = ""
        self.footage: FootageStore | None = None
        self._durability: tuple[float, list[str]] | None = None
        self._write_block: StorageError | None = None
        self.access: AccessRecorder | None = access_recorder  # records every read (api/access.py)
        self._access_writer: AccessWriter | None = None

    @property
    def ledger(self) -> Ledger:
        if self._ledger is None:
            raise ConfigurationError("the ledger is not open (service not started)")
        return self._ledger

    @property
    def authenticator(self) -> Authenticator:
        if self._authenticator is None:
            raise ConfigurationError("no authenticator (service not started)")
        return self._authenticator

    def clock(self) -> datetime:
        return self.ledger.clock()

    @property
    def ready(self) -> bool:
        return self._state == "running" and self.committer is not None and self.committer.running

    def start(self) -> None:
        with self._lock:
            if self._state != "new":
                return
            ledger = self._open_checked()
            self._start_services(ledger)
            self._state = "running"
        self.log.info("service started", origin=ledger.origin, backend=ledger.target.kind)
        if ledger.keystore_in_data_dir:
            self.log.warning(
                "DEMO MODE: the keys of sealed personal data are in the data dir; a copy of the data dir and "
                "the database unseals every record (docs/privacy.md)",
                keystore_in_data_dir=True,
            )
        if ledger.admin_key_on_server:
            self.log.warning(
                "DEMO MODE: the trust-root admin private key is in the data dir; whoever holds this server "
                "can register keys (docs/keys.md)",
                admin_key_on_server=True,
            )

    def _open_checked(self) -> Ledger:
        """The ledger, after checking its schema and (unless disabled) its durability settings."""
        if self._ledger is None:
            self._ledger = Ledger(self.settings, check=False)
        ledger = self._ledger
        ledger.db.check_schema()
        if self.api_settings.require_durability:
            problems = ledger.db.durability_problems()
            if problems:
                raise ConfigurationError("unsafe durability settings: " + "; ".join(problems))
        stale = ledger.stale_read_models()
        if stale is not None:  # written by another release: rebuild them from the signed events first
            self.log.warning("rebuilding the read models", code="READ_MODELS_OUTDATED")
            applied = ledger.rebuild_read_models(progress=self._rebuild_progress)
            self.log.info("read models rebuilt", size=applied)
        ledger.keystore()  # a missing or misplaced keystore stops the start, with its reason
        ledger.check_witness_policy()  # production: too few independent witnesses to ever publish
        from ledger.evidence.disclosure import finish_shreds

        finished = finish_shreds(ledger)  # a shred interrupted between its event and its key's destruction
        if finished:
            self.log.warning("finished interrupted shreds", size=finished)
        return ledger

    def _guard_tiles(self, ledger: Ledger) -> None:
        """Record the tiles directory's checkpoint in the rollback guard when it is this log's."""
        assert self.tiles is not None
        outcome = self.tiles.guard_published(ledger)
        size = self.tiles.published_size
        if outcome == "untrusted":
            self.log.warning(
                "the tiles directory's checkpoint does not verify under the log key: not trusted", code="TILE_CONFLICT"
            )
        elif outcome == "conflict":
            self.log.error(
                "the tiles directory publishes another root for a size the rollback guard recorded",
                code="TILE_CONFLICT", size=size,
            )
        elif outcome == "recorded":
            self.log.warning("the tiles directory's checkpoint is recorded in the rollback guard", size=size)

    def _rebuild_progress(self, done: int, total: int) -> None:
        self.log.info("rebuilding the read models", size=done, accepted=total)

    def _start_services(self, ledger: Ledger) -> None:
        self.tiles = TileWriter(self.settings.tiles_path)
        self._guard_tiles(ledger)  # before the status: the published tiles count as a recorded checkpoint
        status = ledger.rollback_status()  # the rollback guard: compare the database with the recorded checkpoint
        self._write_block = status.error() if status.blocked else None
        if status.blocked:
            self.log.error("rollback detected: writes refused", code="ROLLBACK_DETECTED", size=status.log_size)
        self.footage = store_for(ledger.data_dir, max_bytes=self.api_settings.max_evidence_bytes)
        self.tokens = TokenStore(
            ledger.db, ledger.mac, authorities=tuple(self.settings.authorities), registry=ledger.registry_state,
            max_lifetime=timedelta(days=self.api_settings.token_max_days),
            cache_seconds=self.api_settings.token_cache_seconds,
        )
        if self._authenticator is None:
            self._authenticator = TokenAuthenticator(self.tokens)
        self.verifier_key = log_verifier_key(ledger.config, ledger.log_key)
        self.metrics.gauges["evidence_ledger_log_size"] = ledger.log_size
        self.metrics.gauges["evidence_ledger_checkpoint_size"] = self._checkpoint_size
        self.metrics.gauges["evidence_ledger_witnessed_size"] = self._witnessed_size
        tile_writer = self.tiles
        self.metrics.gauges["evidence_ledger_tiles_size"] = lambda: tile_writer.published_size
        self.metrics.gauges["evidence_ledger_tile_conflicts"] = lambda: tile_writer.conflicts
        if ledger.replica is not None:
            replica = ledger.replica
            self.metrics.gauges["evidence_ledger_replica_log_size"] = replica.log_size
            self.metrics.gauges["evidence_ledger_replica_lag"] = self._replica_lag
            self.metrics.gauges["evidence_ledger_read_floor"] = lambda: replica.floor
        self.committer = GroupCommitter(ledger, max_batch=self.api_settings.max_batch, metrics=self.metrics)
        self.checkpointer = Checkpointer(
            ledger, interval=self.settings.checkpoint_interval, witness_timeout=self.api_settings.witness_timeout,
            tsa_interval=self.settings.tsa_interval, tsa_timeout=self.settings.tsa_timeout,
            on_tick=self.refresh_write_block, tiles=self.tiles,
        )
        if self.access is None:
            self._access_writer = AccessWriter(ledger.access_log)
            self.access = self._access_writer
            self._access_writer.start()
        self.committer.start()
        self.checkpointer.start()

    def stop(self) -> None:
        with self._lock:
            if self._state != "running":
                return
            self._state = "stopped"
        assert self.committer is not None and self.checkpointer is not None
        self.committer.stop()
        if self._access_writer is not None:
            self._access_writer.stop()
        self.checkpointer.stop()
        self.log.info("service stopped")
        if self._owns_ledger and self._ledger is not None:
            self._ledger.close()

    def durability_problems(self) -> list[str]:
        """The database's durability problems, re-checked at most every few seconds (for /readyz)."""
        now = time.monotonic()
        if self._durability is None or now - self._durability[0] > DURABILITY_RECHECK_SECONDS:
            self._durability = (now, self.ledger.db.durability_problems())
        return self._durability[1]

    def append_one(self, raw: bytes) -> Any:
        """Append one envelope through the group committer (the service's one writer); raise its refusal."""
        if self.committer is None:
            raise ConfigurationError("the service is not started")
        return self.ledger.with_receipt(self.committer.submit(raw, actor=None).result())

    @property
    def write_block(self) -> StorageError | None:
        """The rollback guard's refusal as last seen (at start, then at every checkpointer tick), or None.

        O(1), so async handlers can refuse early without blocking the event loop; the ledger itself
        checks again on every write (``Ledger.require_writable``), which is the authoritative guard.
        A fresh exception each time: one instance raised by many requests would pile up tracebacks."""
        seen = self._write_block
        if seen is None:
            return None
        fresh = type(seen)(seen.message)
        fresh.refs = dict(seen.refs)
        return fresh

    def refresh_write_block(self) -> None:
        """Re-read the guard (the ledger caches it for a few seconds); called by the checkpointer thread."""
        try:
            self.ledger.require_writable()
        except (RollbackDetected, StateTampered) as exc:
            self._write_block = exc
        except LedgerError:  # database unreachable: keep the last known state
            return
        else:
            self._write_block = None

    def replica_status(self) -> dict[str, Any] | None:
        """The read replica as /readyz shows it (None without one): reachable, the log size it has
        replayed, its lag behind the primary in entries, the read floor and the fallback setting."""
        replica = self.ledger.replica
        if replica is None:
            return None
        size = replica.log_size()
        return {
            "reachable": size is not None,
            "log_size": size,
            "lag": None if size is None else max(0, self.ledger.log_size() - size),
            "floor": replica.floor,
            "fallback": replica.fallback,
        }

    def _replica_lag(self) -> Any:
        replica = self.ledger.replica
        size = None if replica is None else replica.log_size()
        return None if size is None else max(0, self.ledger.log_size() - size)

    def _checkpoint_size(self) -> Any:
        return self.checkpointer.latest_size if self.checkpointer is not None else None

    def _witnessed_size(self) -> Any:
        return self.checkpointer.witnessed_size if self.checkpointer is not None else None
