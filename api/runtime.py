"""Everything one service process holds: the ledger, the writer threads, the token store, the metrics."""

from __future__ import annotations

import threading
import time
from datetime import datetime, timedelta
from typing import Any

from api.auth import Authenticator, TokenAuthenticator
from api.group_commit import Checkpointer, GroupCommitter
from api.logs import get_logger
from api.metrics import Metrics
from api.settings import ApiSettings
from api.tokens import TokenStore
from ledger.bootstrap import log_verifier_key
from ledger.settings import ConfigurationError, Settings
from ledger.store import Ledger

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
        self.verifier_key = ""
        self._durability: tuple[float, list[str]] | None = None

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

    def _open_checked(self) -> Ledger:
        """The ledger, after checking its schema and (unless disabled) its durability settings."""
        if self._ledger is None:
            self._ledger = Ledger(self.settings)
        ledger = self._ledger
        ledger.db.check_schema()
        if self.api_settings.require_durability:
            problems = ledger.db.durability_problems()
            if problems:
                raise ConfigurationError("unsafe durability settings: " + "; ".join(problems))
        return ledger

    def _start_services(self, ledger: Ledger) -> None:
        self.tokens = TokenStore(
            ledger.db, authorities=tuple(self.settings.authorities),
            max_lifetime=timedelta(days=self.api_settings.token_max_days),
            cache_seconds=self.api_settings.token_cache_seconds,
        )
        self.tokens.ensure_schema()
        if self._authenticator is None:
            self._authenticator = TokenAuthenticator(self.tokens)
        self.verifier_key = log_verifier_key(ledger.config, ledger.log_key)
        self.metrics.gauges["evidence_ledger_log_size"] = ledger.log_size
        self.metrics.gauges["evidence_ledger_checkpoint_size"] = self._checkpoint_size
        self.committer = GroupCommitter(ledger, max_batch=self.api_settings.max_batch, metrics=self.metrics)
        self.checkpointer = Checkpointer(ledger, interval=self.settings.checkpoint_interval)
        self.committer.start()
        self.checkpointer.start()

    def stop(self) -> None:
        with self._lock:
            if self._state != "running":
                return
            self._state = "stopped"
        assert self.committer is not None and self.checkpointer is not None
        self.committer.stop()
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

    def _checkpoint_size(self) -> Any:
        return self.checkpointer.latest_size if self.checkpointer is not None else None
