"""Reads from a PostgreSQL streaming replica, never older than a checkpoint the reader already holds.

A read that may go to the replica is *routed* first (:meth:`ReadReplica.route`): it must reflect a log
of at least ``max(at_least, floor)`` entries, where ``at_least`` is what the request needs (the size of
the checkpoint the client says it holds, the tree size a proof is asked for) and ``floor`` the size of the
newest checkpoint this process has signed, recorded or served. The replica serves it when its log is
that large; otherwise, or when it cannot be reached, the primary does (``read_fallback=primary``) or the
read is refused with 503 ``REPLICA_BEHIND`` (``read_fallback=unavailable``) — unless the primary is no
further ahead, when it serves (nothing newer exists anywhere).

The log of one running replica server only grows (a hot standby replays the primary's WAL in order), so
the largest size seen is remembered and a read whose need is below it costs no query at all; the replica
is asked again only when a read needs more. That holds per server process, not per address: a replica
restarted from an older copy (re-seeded, replaced) is behind what was remembered. Such a server is only
reached through new connections, so the first read on each new connection also takes the log size
there (one query per connection, not per read): when it is smaller than what is remembered the
remembered size comes down to it, and a read that needs more is finished on the primary (or refused).
Marking the replica down forgets the remembered size too. An unreachable replica is left alone for
``read_recheck_seconds``.

Writes never reach the replica: :class:`ReplicaDatabase` refuses every write transaction, and the
ledger's writers only ever use the primary's :class:`~ledger.storage.sql.Database`. Reads on the
replica go through the same checked read functions (row MACs, log head) as on the primary.
"""

from __future__ import annotations

import copy
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass
from typing import Any, Literal, NoReturn

import psycopg

from ledger.settings import ConfigurationError, Settings, parse_database_url
from ledger.storage.app import LedgerApplication, application_env
from ledger.storage.sql import Database, StorageError, Tx

Source = Literal["primary", "replica"]
Reason = Literal["current", "behind", "unreachable"]


class ReplicaBehind(StorageError):
    """The replica has not yet replayed what the read must reflect (``read_fallback=unavailable``): 503."""

    code = "REPLICA_BEHIND"


class ReplicaDatabase(Database):
    """The replica's tables: read transactions only (a hot standby refuses writes anyway; this refuses
    them before they are sent, so a write routed here by mistake is a clear error, not a driver one).

    The copy one routed read uses (:meth:`ReadReplica.reader`) also knows the primary: a read the
    replica fails to start (it went away since the read was routed) marks the replica down and is
    finished on the primary (``read_fallback=primary``, ``fell_back`` set) or refused with 503
    ``REPLICA_BEHIND``; one that fails midway is a 503 ``STORAGE_UNAVAILABLE`` and marks it down too."""

    primary: Database | None = None
    owner: ReadReplica | None = None
    needed = 0  # the entries the routed read must reflect
    fell_back = False

    def _refuse(self) -> NoReturn:
        raise ConfigurationError("a write was sent to the read replica; writes go to the primary only")

    def write(self) -> NoReturn:
        self._refuse()

    def access_write(self) -> NoReturn:
        self._refuse()

    def erasing(self) -> NoReturn:
        self._refuse()

    def migrate(self) -> Any:
        self._refuse()

    def _instead(self, exc: StorageError) -> Database:
        """The primary, for a read the replica could not start (or ReplicaBehind, or ``exc`` itself)."""
        if self.owner is None or self.primary is None:
            raise exc
        if isinstance(exc, ReplicaBehind):  # reachable, but a new connection found it behind the read
            if self.owner.fallback != "primary":
                raise exc
        else:
            self.owner.mark_down(exc)
            if self.owner.fallback != "primary":
                raise ReplicaBehind("the read replica cannot be reached: retry shortly") from exc
        self.fell_back = True
        return self.primary

    @contextmanager
    def read(self) -> Iterator[Tx]:
        fell_back = False
        try:
            with ExitStack() as stack:
                try:
                    tx = stack.enter_context(super().read())
                    if self.owner is not None:
                        self.owner.check_connection(tx, self.needed)
                except StorageError as exc:  # unreachable, or a new connection to an older copy
                    stack.close()
                    tx = stack.enter_context(self._instead(exc).read())
                    fell_back = True
                yield tx
        except StorageError as exc:
            # only the database failing marks it down (not a row that fails its check: STATE_TAMPERED)
            if not fell_back and self.owner is not None and exc.code == StorageError.code:
                self.owner.mark_down(exc)
            raise

    def select_events(self, originator_id: Any, *, gt: int | None = None, limit: int | None = None) -> list[Any]:
        try:
            return super().select_events(originator_id, gt=gt, limit=limit)
        except StorageError as exc:
            if exc.code != StorageError.code:
                raise
            return self._instead(exc).select_events(originator_id, gt=gt, limit=limit)


@dataclass(frozen=True)
class Route:
    """Where one read goes: ``source``, why (``reason``), what it needed and the log size the serving
    database was known to have (the response reflects at least that many entries; None: not known)."""

    source: Source
    reason: Reason
    needed: int
    size: int | None


class ReadReplica:
    """The replica's connection pool and what is known of its progress. Thread-safe."""

    def __init__(self, settings: Settings, *, log_size: Callable[[Tx], int]) -> None:
        """``log_size``: the number of entries of the log a transaction sees (``ledger.log.tlog``)."""
        assert settings.read_database_url is not None
        self._size_of = log_size
        self.target = parse_database_url(settings.read_database_url)
        env = application_env(
            self.target,
            create_tables=False,
            pool_size=settings.postgres_pool_size,
            lock_timeout=settings.postgres_lock_timeout,
        )
        env["POSTGRES_CONNECT_TIMEOUT"] = str(settings.read_connect_timeout)
        # a pooled connection to a replica that went away is found at checkout, before the read starts,
        # so the read can still be finished on the primary (one round trip per read on loopback)
        env["POSTGRES_PRE_PING"] = "y"
        self._env = env
        self.connect_timeout = settings.read_connect_timeout
        self._app: LedgerApplication | None = None  # made on first use: the recorder connects when made
        self._db: ReplicaDatabase | None = None
        self.fallback = settings.read_fallback
        self.recheck_seconds = settings.read_recheck_seconds
        self._lock = threading.Lock()
        self._applied = 0  # the largest log size seen on the replica server (it never goes back)
        self._checked: weakref.WeakSet[Any] = weakref.WeakSet()  # connections whose log size was taken
        self._floor = 0  # the newest checkpoint size this process signed, recorded or served
        self._down_until = 0.0
        self.last_error: str | None = None

    def close(self) -> None:
        with self._lock:
            app, self._app, self._db = self._app, None, None
        if app is not None:
            app.close()

    @property
    def db(self) -> ReplicaDatabase:
        """The replica's tables; StorageError when it cannot be reached to open them."""
        database = self._db
        if database is not None:
            return database
        with self._lock:
            if self._db is None:
                try:
                    # one plain connection first: a replica that refuses is known at once, and no pool
                    # is left retrying in the background for a recorder that could not be made
                    self._probe()
                    app = LedgerApplication(env=self._env)
                except Exception as exc:  # the driver's and the library's errors alike: unreachable
                    raise StorageError(f"read replica unavailable: {type(exc).__name__}") from exc
                self._app, self._db = app, ReplicaDatabase(app.recorder)
            return self._db

    @property
    def floor(self) -> int:
        return self._floor

    @property
    def applied(self) -> int:
        """The largest log size seen on the replica so far."""
        return self._applied

    def raise_floor(self, size: int) -> None:
        """No read routed after this reflects fewer than ``size`` entries (a checkpoint of that size was
        signed, recorded or served)."""
        with self._lock:
            if size > self._floor:
                self._floor = size

    def _probe(self) -> None:
        """One plain connection: refused at once by a server that is down (the pool would wait for its
        timeout)."""
        psycopg.connect(
            host=self.target.host, port=self.target.port, dbname=self.target.dbname,
            user=self.target.user, password=self.target.password or None,
            connect_timeout=self.connect_timeout,
        ).close()

    def reader(self, primary: Database, needed: int = 0) -> ReplicaDatabase:
        """The replica's tables for one routed read that must reflect ``needed`` entries, finishing on
        ``primary`` if the replica fails or a new connection finds it behind that."""
        database = copy.copy(self.db)
        database.primary, database.owner, database.fell_back = primary, self, False
        database.needed = needed
        return database

    def _seen(self, tx: Tx, size: int) -> None:
        """``size`` was just taken on ``tx``'s connection: remember it, and the connection as checked.
        Smaller than remembered: this is another, older server than the one measured before."""
        connection = getattr(getattr(tx, "_cursor", None), "connection", None)
        with self._lock:
            if connection is not None:
                with suppress(TypeError):  # not weakly referable (not psycopg's): checked on each read
                    self._checked.add(connection)
            self._applied = size  # a smaller size than remembered: another, older server

    def check_connection(self, tx: Tx, needed: int) -> None:
        """On a connection not checked before, take the log size (it may be a new server, started from
        an older copy): ReplicaBehind when it has fewer than ``needed`` entries."""
        connection = getattr(getattr(tx, "_cursor", None), "connection", None)
        if connection is None or connection in self._checked:
            return
        size = self._size_of(tx)
        self._seen(tx, size)
        if size < needed:
            raise ReplicaBehind(
                f"the read replica has {size} log entries; this read must reflect {needed}: retry shortly",
                needed=needed, replica_size=size,
            )

    def mark_down(self, exc: StorageError) -> None:
        """Leave the replica alone for ``read_recheck_seconds`` (it failed a read or a size query), and
        forget its remembered log size: what answers next may be another server, restored from an older
        copy."""
        with self._lock:
            self._down_until = time.monotonic() + self.recheck_seconds
            self.last_error = exc.message
            self._applied = 0

    @property
    def reachable(self) -> bool:
        return time.monotonic() >= self._down_until

    def log_size(self) -> int | None:
        """The replica's log size now (one indexed query), or None when it cannot be reached (it is then
        left alone for ``read_recheck_seconds``)."""
        try:
            if self.last_error is not None:  # it was down: a refused connection is known at once
                try:
                    self._probe()
                except psycopg.Error as exc:
                    raise StorageError(f"read replica unavailable: {type(exc).__name__}") from exc
            with self.db.read() as tx:  # the shared instance: no owner, so no check of its own
                size = self._size_of(tx)
                self._seen(tx, size)
        except StorageError as exc:
            self.mark_down(exc)
            return None
        except Exception as exc:  # e.g. the ledger's tables not (yet) replicated: not a replica to read
            with self._lock:
                self._down_until = time.monotonic() + self.recheck_seconds
                self._applied = 0
                self.last_error = f"{type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}"
            return None
        with self._lock:
            self._down_until = 0.0
            self.last_error = None
        return size

    def route(self, at_least: int = 0) -> Route:
        """Where a read that must reflect at least ``at_least`` entries (and the floor) goes."""
        needed = max(at_least, self._floor)
        if not self.reachable:
            return Route("primary", "unreachable", needed, None)
        if self._applied >= needed:
            return Route("replica", "current", needed, self._applied)
        size = self.log_size()
        if size is None:
            return Route("primary", "unreachable", needed, None)
        if size >= needed:
            return Route("replica", "current", needed, size)
        return Route("primary", "behind", needed, size)
