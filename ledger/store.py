"""The ledger as one object: open it, append to it, read it, sign checkpoints, rebuild projections."""

from __future__ import annotations

import copy
import json
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from domain import projections
from domain.case_state import case_number_key
from domain.context import DomainConfig
from domain.errors import LedgerError, NotFoundError, case_not_found
from ledger.append import Appender, Outcome, Receipt
from ledger.envelope.dsse import REGISTRY_CASE_ID
from ledger.envelope.keys import load_private_key, load_public_key, raw_public_key
from ledger.envelope.signing import build_envelope
from ledger.evidence.footage import FootageStore
from ledger.evidence.keystore import FileKeyStore, KeyStore
from ledger.evidence.sealed import SealedStore, claim
from ledger.log import note, tlog
from ledger.log.access import AccessLog
from ledger.log.rollback import CheckpointGuard, RollbackStatus
from ledger.settings import (
    ConfigurationError,
    LedgerConfig,
    Settings,
    database_target,
    key_path,
    keystore_location,
    state_key_path,
)
from ledger.storage.app import LedgerApplication, application_env
from ledger.storage.integrity import RowMac, StateTampered, tampered
from ledger.storage.read_models import (
    READ_MODEL_FORMAT,
    RELEASED,
    STATISTICS,
    case_row,
    case_rows,
    custody_links,
    load_state,
    log_head,
    log_tops,
    public_entries,
    timeline_lines,
)
from ledger.storage.replica import ReadReplica, ReplicaBehind, ReplicaDatabase, Route
from ledger.storage.sql import Database

Clock = Callable[[], datetime]
GUARD_RECHECK_SECONDS = 5.0
WITNESSED_PAGE = 64  # candidate sizes read at a time when looking for the newest witnessed checkpoint


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class StoredEntry:
    leaf_index: int
    case_id: str
    seq: int
    event_type: str
    envelope: bytes
    leaf: bytes


class Ledger:
    """One ledger (data dir + database). Thread-safe; one instance per process."""

    _guard: CheckpointGuard | None = None
    _receipt_signer: Any = None  # ledger.log.receipt.Signer, made on the first receipt
    _rollback: tuple[float, RollbackStatus] | None = None  # (monotonic time, status) of the last check

    def __init__(
        self,
        settings: Settings,
        *,
        create_tables: bool = False,
        clock: Clock = utc_now,
        check: bool = True,
        check_read_models: bool = True,
    ) -> None:
        self.settings = settings
        self.data_dir = settings.data_dir
        self.config = LedgerConfig.load(self.data_dir)
        self.clock = clock
        target = database_target(settings)
        self.target = target
        env = application_env(
            target,
            create_tables=create_tables,
            pool_size=settings.postgres_pool_size,
            lock_timeout=settings.postgres_lock_timeout,
        )
        self.app = LedgerApplication(env=env)
        self.db = Database(self.app.recorder)
        #: where the read methods below read; the primary, except in a view made by :meth:`reading`
        self._reads: Database = self.db
        self.replica = (
            ReadReplica(settings, log_size=lambda tx: tlog.log_size(tx)[0]) if settings.read_database_url else None
        )
        self.domain_config = DomainConfig(
            authorities=tuple(settings.authorities), disclosure_window_seconds=settings.disclosure_window_seconds
        )
        self._keystore: KeyStore | None = None
        #: (state column, parsed state) of the registry row last parsed here (:meth:`registry_state`)
        self._registry_parsed: tuple[str, Any] | None = None
        try:
            self.mac = self._state_key(create=create_tables)
            self.appender = Appender(
                self.db,
                origin=self.config.origin,
                config=self.domain_config,
                mac=self.mac,
                trust_root=self.config.admin_key_id,
                blob_size=FootageStore(self.data_dir / "footage").stored_size,
                max_statement_age=settings.max_clock_skew_seconds,
                claim_sealed=claim,
                on_shredded=self._destroy_shredded,
            )
            if create_tables:
                self.migrate()
            if check:
                self.check_ready(read_models=check_read_models)
        except BaseException:
            self.app.close()
            raise
        self._log_key: Ed25519PrivateKey | None = None
        self.access_log = AccessLog(
            self.db, origin=self.config.origin, key_name=self.config.log_key_name,
            key=lambda: self.log_key, clock=lambda: self.clock(),
        )

    def _state_key(self, *, create: bool) -> RowMac:
        path = state_key_path(self.data_dir)
        if create and not path.exists():  # `init`, or `db migrate` of a data dir from before it existed
            return RowMac.create(path)
        return RowMac.load(path)

    def migrate(self) -> None:
        """Create the tables or upgrade an older schema; an upgrade that adds row MACs rebuilds the
        read models from the signed events (``replay``) and seals the existing tokens."""
        from ledger.replay import rebuild
        from ledger.tokens import upgrade_tokens

        steps = self.db.migrate()
        if any(step.seal_tokens for step in steps):
            upgrade_tokens(self.db, self.mac)
        if any(step.rebuild_read_models for step in steps) or self.stale_read_models() is not None:
            rebuild(self.db, self.appender, from_zero=True)
        if any(step.move_sealed_keys for step in steps) or self._keys_to_move():
            from ledger.evidence.sealed import bind_existing_records, move_legacy_keys

            move_legacy_keys(self.db, self.keystore(), self.data_dir / "seal.key")
            bind_existing_records(self.db)

    def _keys_to_move(self) -> bool:
        """True while schema 3's move of record keys into the keystore has not finished."""
        with self.db.read() as tx:
            return bool(self.db.columns(tx, "sealed_keys_to_move"))

    def check_ready(self, *, read_models: bool = True) -> None:
        """Refuse to run on missing tables, on settings that could lose acknowledged events, or (unless
        ``read_models`` is False) on read models written in another format than this code's."""
        self.db.check_schema()
        problems = self.db.durability_problems()
        if problems:
            raise ConfigurationError(
                "unsafe durability settings: " + "; ".join(problems), code="UNSAFE_DURABILITY"
            )
        stale = self.stale_read_models() if read_models else None
        if stale is not None:
            raise ConfigurationError(
                f"the read models were written in format {stale}; this release reads {READ_MODEL_FORMAT}: "
                "run `evidence-ledger replay` to rebuild them from the signed events (the service does "
                "it at start)",
                code="READ_MODELS_OUTDATED",
            )

    def stale_read_models(self) -> str | None:
        """The format of the stored read models when it is not this code's (None when current or empty)."""
        with self.db.read() as tx:
            head, _ = log_head(tx, self.mac)
        return None if head is None or head.read_models == READ_MODEL_FORMAT else head.read_models

    def rebuild_read_models(self, progress: Callable[[int, int], None] | None = None) -> int:
        """Rebuild every read model from the signed events (what `replay` does); entries applied."""
        from ledger.replay import rebuild

        return rebuild(self.db, self.appender, from_zero=True, progress=progress)

    # -- lifecycle ----------------------------------------------------------------------------

    def close(self) -> None:
        self.app.close()
        if self.replica is not None:
            self.replica.close()

    # -- where reads go (docs/scaling-reads.md) -----------------------------------------------

    def reading(self, at_least: int = 0) -> tuple[Ledger, Route]:
        """A view of this ledger whose read methods (cases, timelines, custody, public releases and
        statistics, log entries, checkpoints, proofs) read a state of at least ``at_least`` entries and
        of at least the newest checkpoint this process has signed, recorded or served: from the read
        replica when it has that much, else from the primary (``read_fallback=primary``) or not at all
        (``read_fallback=unavailable``: ReplicaBehind, 503). Everything else — writes, tokens, the key
        registry, the rollback guard, access records — stays on the primary in the view too.

        Without a replica: this ledger itself, routed to the primary."""
        replica = self.replica
        if replica is None:
            return self, Route("primary", "current", at_least, None)
        route = replica.route(at_least)
        if route.source == "replica":
            view = copy.copy(self)
            view._reads = replica.reader(self.db, route.needed)
            return view, route
        primary_size = self.log_size()
        if replica.fallback == "unavailable" and (route.size is None or primary_size > route.size):
            why = (
                "the read replica cannot be reached" if route.size is None
                else f"the read replica has replayed {route.size} log entries; this read must reflect {route.needed}"
            )
            raise ReplicaBehind(f"{why}: retry shortly", needed=route.needed, replica_size=route.size)
        return self, replace(route, size=primary_size)

    @property
    def read_fell_back(self) -> bool:
        """True when this view's reads went to the replica, which failed, and were finished on the primary."""
        return isinstance(self._reads, ReplicaDatabase) and self._reads.fell_back

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def origin(self) -> str:
        return self.config.origin

    @property
    def log_key(self) -> Ed25519PrivateKey:
        if self._log_key is None:
            self._log_key = load_private_key(key_path(self.data_dir, "log"))
        return self._log_key

    def _destroy_shredded(self, refs: list[str]) -> None:
        from ledger.evidence.disclosure import destroy_shredded

        destroy_shredded(self, refs)

    def keystore(self) -> KeyStore:
        """The keystore of sealed records' keys (``keystore_dir``; ConfigurationError if absent)."""
        if self._keystore is None:
            self._keystore = FileKeyStore.open(keystore_location(self.settings).path)
        return self._keystore

    @property
    def keystore_in_data_dir(self) -> bool:
        """True in demo mode: the sealed records' keys are in the data dir (a copy of it unseals them)."""
        return keystore_location(self.settings).in_data_dir

    def sealed_store(self) -> SealedStore:
        return SealedStore(self.db, self.keystore())

    # -- writing ------------------------------------------------------------------------------

    def append(self, raws: Sequence[bytes], *, callers: Sequence[str | None] | None = None) -> list[Outcome]:
        """Append a batch; raises RollbackDetected (a StorageError) while the rollback guard blocks writes.

        ``callers``: per envelope, the authenticated actor its signing key must belong to (or None)."""
        self.require_writable()
        outcomes = self.appender.append(raws, now=self.clock(), callers=callers)
        if any(isinstance(o, LedgerError) for o in outcomes):
            from ledger.evidence.disclosure import record_refusals

            record_refusals(self, raws, outcomes)  # refused disclosure attempts go on record
        return outcomes

    def with_receipt(self, outcome: Receipt) -> Receipt:
        """``outcome`` with its signed receipt: the log's promise that a checkpoint covers the entry
        within ``receipt_max_delay`` seconds of its integration (``ledger.log.receipt``). Signed where
        the outcome is handed to its caller (``append_one``, the HTTP handler), never in the write
        transaction nor in the group committer's thread; deterministic, so a duplicate gets the same
        bytes."""
        signed = self.signed_receipt(
            outcome.leaf_index, bytes.fromhex(outcome.leaf_hash), outcome.integrated_at, outcome.envelope_sha256
        )
        return replace(outcome, receipt=signed.decode("utf-8"))

    def signed_receipt(self, leaf_index: int, leaf_hash: bytes, integrated_at: str, envelope_sha256: str) -> bytes:
        """The signed receipt of the entry at ``leaf_index`` (also what a bundle carries)."""
        from ledger.log import receipt

        if self._receipt_signer is None:
            self._receipt_signer = receipt.Signer(self.config.log_key_name, self.log_key)
        body = receipt.Receipt(
            self.origin, leaf_index, leaf_hash, integrated_at, self.settings.receipt_max_delay, envelope_sha256
        )
        return self._receipt_signer.sign(body)

    def next_envelope(self, key: Any, case_id: str, event_type: str, body: dict[str, Any]) -> bytes:
        """An envelope signed with ``key`` for the next position of a stream (as the log has it now)."""
        version, prev = self.case_head(case_id)
        return build_envelope(
            origin=self.origin,
            case_id=case_id,
            event_type=event_type,
            body=body,
            key=key,
            seq=version + 1,
            prev=prev,
            occurred_at=self.clock(),
        )

    def append_one(self, raw: bytes) -> Receipt:
        """Append one envelope; raise its refusal."""
        (outcome,) = self.append([raw])
        if isinstance(outcome, LedgerError):
            raise outcome
        return self.with_receipt(outcome)

    def sign_and_append(self, key: Any, case_id: str, event_type: str, body: dict[str, Any]) -> Receipt:
        """Sign an event for the next position of a stream and append it; raise if it is refused."""
        return self.append_one(self.next_envelope(key, case_id, event_type, body))

    def checkpoint(self) -> tlog.StoredCheckpoint | None:
        """A checkpoint covering every committed entry, signing a new one if needed; once committed it
        is recorded outside the database (rollback guard). Never signs while the guard blocks writes:
        a checkpoint over a rolled-back or rewritten log would contradict one already published."""
        self.require_writable()
        with self.db.write() as tx:
            checkpoint = self.sign_checkpoint_in(tx)
        if checkpoint is not None:
            self.record_checkpoint(checkpoint)
        return checkpoint

    def sign_checkpoint_in(self, tx: Any) -> tlog.StoredCheckpoint | None:
        """Inside a write transaction: sign a checkpoint over the checked log head if it is new."""
        head, _ = log_head(tx, self.mac)
        return tlog.sign_checkpoint(
            tx,
            origin=self.origin,
            key_name=self.config.log_key_name,
            key=self.log_key,
            now=self.clock(),
            size=0 if head is None else head.size,
            root=b"" if head is None else head.root,
        )

    # -- rollback guard -----------------------------------------------------------------------

    def rollback_guard(self) -> CheckpointGuard:
        if self._guard is None:
            pub = key_path(self.data_dir, "log").with_suffix(".pem.pub")
            public = raw_public_key(load_public_key(pub) if pub.is_file() else self.log_key)
            vkey = note.make_verifier_key(self.config.log_key_name, public)
            self._guard = CheckpointGuard(self.data_dir, vkey, self.origin)
        return self._guard

    def record_checkpoint(self, checkpoint: tlog.StoredCheckpoint) -> None:
        """Remember a checkpoint (with any witness cosignatures) outside the database."""
        guard = self.rollback_guard()
        guard.record(checkpoint.with_cosignatures(), signed_at=checkpoint.signed_at)
        if self.replica is not None:
            self.replica.raise_floor(checkpoint.size)
        if self._rollback is not None and self._rollback[1].state in ("ok", "no_record"):
            status = RollbackStatus("ok", max(self._rollback[1].log_size, checkpoint.size), checkpoint.size)
            self._rollback = (time.monotonic(), status)

    def rollback_status(self) -> RollbackStatus:
        """Compare the database with the newest checkpoint recorded outside it (and cache the result).

        When the database is consistent with the record but holds a newer checkpoint (a crash between
        committing a checkpoint and recording it), that checkpoint is recorded now."""
        status = self.rollback_guard().status(self.db)
        if not status.blocked:
            try:
                latest = self.latest_checkpoint()
            except StateTampered as exc:
                latest, status = None, RollbackStatus("tampered", status.log_size, status.recorded_size, 0, exc.message)
            if latest is not None and latest.size > (status.recorded_size or 0):
                self.rollback_guard().record(latest.with_cosignatures(), signed_at=latest.signed_at)
                status = self.rollback_guard().status(self.db)
        if self.replica is not None and status.recorded_size:
            self.replica.raise_floor(status.recorded_size)
        self._rollback = (time.monotonic(), status)
        return status

    def write_block_reason(self) -> str | None:
        """Why writes are refused (rollback detected), or None; rechecked every few seconds."""
        cached = self._rollback
        if cached is None or time.monotonic() - cached[0] > GUARD_RECHECK_SECONDS:
            status = self.rollback_status()
        else:
            status = cached[1]
        return status.message if status.blocked else None

    def require_writable(self) -> None:
        """Raise RollbackDetected (code ROLLBACK_DETECTED, a StorageError: 503) while writes are blocked."""
        if self.write_block_reason() is not None:
            assert self._rollback is not None
            raise self._rollback[1].error()

    # -- reading cases ------------------------------------------------------------------------

    def case_row(self, case_id: str) -> tuple[int, str, dict[str, Any]]:
        """(version, head sha256, view) from the read model, checked (``ledger.read_models``);
        never replays events. StateTampered if the row is not the service's current one."""
        fields = self._case_fields(case_id)
        return fields[1], fields[2], json.loads(fields[7])

    def _case_fields(self, case_id: str) -> tuple[Any, ...]:
        with self._reads.read() as tx:
            fields = None if case_id == REGISTRY_CASE_ID else case_row(tx, self.mac, case_id)
        if fields is None:
            raise case_not_found(case_id)
        return fields

    def case_view_json(self, case_id: str) -> bytes:
        """The case projection as JSON bytes, spliced from the checked row without decoding its view:
        the read cost stays flat however long the case's history is."""
        fields = self._case_fields(case_id)
        view = fields[7]
        # The stored view (``domain.projections.case_view``, sorted keys) already names the case and
        # its version, and both are covered by the row's MAC with the row's own columns; only the
        # head hash is added. Splicing a key the view has would send it twice (invalid I-JSON).
        return ('{"head_sha256":' + json.dumps(fields[2]) + "," + view[1:]).encode("utf-8")

    def case_view(self, case_id: str) -> dict[str, Any]:
        version, head, view = self.case_row(case_id)
        return {**view, "case_id": case_id, "version": version, "head_sha256": head}

    def case_at(self, case_id: str, *, as_of: str | None = None, at_index: int | None = None) -> dict[str, Any]:
        """The case exactly as the ledger knew it after leaf ``at_index`` (or at time ``as_of``), with
        ``as_of`` = {leaf_index, integrated_at, requested}: the stored events of the registry and of
        the case up to then are re-verified and folded by the shared engine (ledger.time_travel).
        Raises NotFoundError (CASE_NOT_FOUND) if the case did not exist then, MalformedInputError
        (BAD_ARGUMENT) for a bad point in time, VerificationError (INTEGRITY_FAILURE) if the stored
        history does not verify."""
        from ledger import time_travel

        return time_travel.case_at(
            self._reads,
            case_id,
            origin=self.origin,
            config=self.domain_config,
            trust_root=self.config.admin_key_id,
            as_of=as_of,
            at_index=at_index,
        )

    def case_head(self, case_id: str) -> tuple[int, str | None]:
        """(version, head hash) of a case or of the registry from its last log entry (the append-only
        log, not a read model); (0, None) when it has no events."""
        with self.db.read() as tx:
            row = tx.one(
                "SELECT seq, envelope_sha256 FROM log_entries WHERE case_id = ? ORDER BY seq DESC LIMIT 1",
                (case_id,),
            )
        return (0, None) if row is None else (int(row[0]), str(row[1]))

    def case_envelopes(self, case_id: str, *, after: int = 0, limit: int | None = None) -> list[bytes]:
        """The stored envelopes of a case in seq order, exactly as stored (via eventsourcing)."""
        stored = self._reads.select_events(uuid.UUID(case_id), gt=after or None, limit=limit)
        return [bytes(s.state) for s in stored]

    def timeline(self, case_id: str, *, after: int = 0, limit: int = 100) -> list[dict[str, Any]]:
        """Checked timeline lines of a case with seq > ``after`` (StateTampered if one was edited,
        removed or is not the service's)."""
        with self._reads.read() as tx:
            top = log_tops(tx, [case_id]).get(case_id, (0, ""))[0]
            return timeline_lines(tx, self.mac, case_id, after=after, limit=limit, top=top)

    def custody(self, case_id: str, footage_id: str, *, after: int = 0, limit: int = 100) -> list[dict[str, Any]]:
        """Checked links of a footage item's chain of custody with step > ``after`` (StateTampered if
        one was edited or removed; NotFoundError for a case or footage that does not exist)."""
        with self._reads.read() as tx:
            return custody_links(tx, self.mac, case_id, footage_id, after=after, limit=limit)

    def list_cases(
        self,
        *,
        status: str | None = None,
        category: str | None = None,
        number: str | None = None,
        after: str | None = None,
        limit: int = 50,
    ) -> list[dict[str, Any]]:
        """Cases in case id order after ``after``, each from its checked row (a list with a row missing
        is refused: the log head counts them); ``number`` keeps the case(s) opened with that case
        number, found by its lookup column and believed only when the row's MAC'd view carries it."""
        where = "case_id <> ?"
        params: list[Any] = [REGISTRY_CASE_ID]
        key = None if number is None else case_number_key(number)
        for column, value in (("status", status), ("category", category), ("case_number", key)):
            if value is not None:
                where += f" AND {column} = ?"
                params.append(value)
        if after is not None:
            where += " AND case_id > ?"
            params.append(after)
        where += " ORDER BY case_id LIMIT ?"
        params.append(limit)
        with self._reads.read() as tx:
            rows = case_rows(tx, self.mac, where, params)
        views = [{"case_id": r[0], "version": r[1], **json.loads(r[7])} for r in rows]
        def other(view: dict[str, Any]) -> bool:
            signed = view.get("case_number")
            return not isinstance(signed, str) or case_number_key(signed) != key

        if key is not None and any(other(view) for view in views):
            bad = next(view["case_id"] for view in views if other(view))
            raise tampered(f"case {bad}", check="case_number", case_id=bad)
        return views

    def registry_state(self) -> Any:
        """The key registry's state from its checked read-model row (None before the trust root).

        Every call reads the row and checks it (MAC, and its version against the registry's last
        log entry): an edited or restored row raises StateTampered as before. Only the parse is
        reused, while the checked state column is exactly the text parsed last; the parse is
        what grows with the number of keys (docs/scaling.md)."""
        with self.db.read() as tx:
            fields = case_row(tx, self.mac, REGISTRY_CASE_ID)
        return None if fields is None else self._parsed_registry(fields[6])

    def _parsed_registry(self, state_json: str) -> Any:
        """The parse of a checked registry state column, reused while the column is unchanged."""
        parsed = self._registry_parsed  # one tuple, read and replaced whole: safe across threads
        if parsed is not None and parsed[0] == state_json:
            return parsed[1]
        state = load_state(REGISTRY_CASE_ID, state_json)  # immutable (frozen, tuples): safe to share
        self._registry_parsed = (state_json, state)
        return state

    def public_releases(self) -> list[dict[str, Any]]:
        """Every release, with the release's own public fields only, in an order that depends on
        them only (``docs/design.md`` "What the public sees"); checked rows."""
        with self._reads.read() as tx:
            rows = public_entries(tx, self.mac, RELEASED)
        return sorted((entry for row in rows for entry in row), key=projections.public_release_order)

    def public_releases_page(self, *, after: str | None = None, limit: int) -> dict[str, Any]:
        """One page ``{items, next}`` of :meth:`public_releases` (every row is still checked):
        ``after`` is a ``next`` an earlier page returned (None: the first page); see
        :func:`domain.projections.public_release_page`."""
        return projections.public_release_page(self.public_releases(), after=after, limit=limit)

    def public_statistics(self, now: datetime | None = None) -> dict[str, Any]:
        """Monthly counts of footage by month of capture, for months whose cutoff ``now`` (default:
        the ledger's clock) has reached, each count as a range of ``public_statistics_bucket``
        (:func:`domain.projections.monthly_statistics`); from checked rows only. The months start at
        ``public_statistics_since``, by default the month of the ledger's genesis."""
        settings = self.settings
        with self._reads.read() as tx:
            rows = public_entries(tx, self.mac, STATISTICS)
            since = settings.public_statistics_since
            if since is None:
                registry = case_row(tx, self.mac, REGISTRY_CASE_ID)
                if registry is not None:
                    state = self._parsed_registry(registry[6])
                    root = state.lookup(state.root_key_id)
                    since = None if root is None else root.registered_at[:7]
        months = (
            []
            if since is None
            else projections.monthly_statistics(
                (entry for row in rows for entry in row),
                at=now or self.clock(),
                since=since,
                lag_months=settings.public_statistics_lag_months,
                bucket=settings.public_statistics_bucket,
            )
        )
        return {
            "bucket": settings.public_statistics_bucket,
            "lag_months": settings.public_statistics_lag_months,
            "months": months,
        }

    @property
    def admin_key_on_server(self) -> bool:
        """True in demo mode: the trust-root admin private key is in this data dir."""
        return key_path(self.data_dir, "admin").exists()

    # -- reading the log ----------------------------------------------------------------------

    def log_size(self) -> int:
        with self._reads.read() as tx:
            return tlog.log_size(tx)[0]

    def entries(self, start: int = 0, limit: int = 500) -> list[StoredEntry]:
        """Stored envelopes in log order (leaf index), joined from the log and the events table."""
        with self._reads.read() as tx:
            rows = tx.query(
                "SELECT e.leaf_index, e.case_id, e.seq, e.event_type, e.leaf, s.state FROM log_entries e"
                f" LEFT JOIN {self.db.events_table} s ON s.originator_id = {self.db.case_key_sql('e.case_id')}"
                " AND s.originator_version = e.seq WHERE e.leaf_index >= ? ORDER BY e.leaf_index LIMIT ?",
                (start, limit),
            )
        return [
            StoredEntry(int(i), c, int(q), k, b"" if env is None else bytes(env), bytes(leaf))
            for i, c, q, k, leaf, env in rows
        ]

    def iter_entries(self, batch: int = 1000) -> Iterator[StoredEntry]:
        start = 0
        while True:
            chunk = self.entries(start, batch)
            if not chunk:
                return
            yield from chunk
            start = chunk[-1].leaf_index + 1

    def leaf(self, index: int) -> bytes:
        with self._reads.read() as tx:
            return tlog.entry_leaf(tx, index)

    def latest_checkpoint(self) -> tlog.StoredCheckpoint | None:
        """The newest stored checkpoint, checked (signed by this log, for entries the log has), with
        only the cosignature lines that verify for a configured witness."""
        with self._reads.read() as tx:
            checkpoint = tlog.latest_checkpoint(tx, self._checkpoint_check(tx))
        if checkpoint is not None and self.replica is not None and self._reads is self.db:
            self.replica.raise_floor(checkpoint.size)  # served or about to be: no read may go behind it
        return None if checkpoint is None else self._witnessed(checkpoint)

    def checkpoint_at(self, size: int) -> tlog.StoredCheckpoint:
        with self._reads.read() as tx:
            return self._witnessed(tlog.checkpoint_at(tx, size, self._checkpoint_check(tx)))

    def checkpoints(self, after: int = 0, limit: int = 1000) -> list[tlog.StoredCheckpoint]:
        """The signed checkpoints of size > ``after`` (smallest first), each checked, with the
        cosignatures that verify under a configured witness."""
        with self._reads.read() as tx:
            found = tlog.checkpoints(tx, self._checkpoint_check(tx), after=after, limit=limit)
        return [self._witnessed(c) for c in found]

    def _checkpoint_check(self, tx: Any) -> tlog.CheckpointCheck:
        _, size = log_head(tx, self.mac)
        return tlog.CheckpointCheck(self.rollback_guard().log_key, self.origin, size)

    def _witnessed(self, checkpoint: tlog.StoredCheckpoint) -> tlog.StoredCheckpoint:
        """The checkpoint with the stored cosignature lines that verify under a configured witness key
        (``witnesses.json``); a line that does not is logged as an alert and left out."""
        if not checkpoint.cosignatures:
            return checkpoint
        from ledger.log.witnessing import verified_cosignatures

        lines = verified_cosignatures(self, checkpoint)
        return replace(checkpoint, cosignatures=tuple(lines))

    # -- publishing: the witness policy (docs/witness.md) ------------------------------------

    @property
    def production(self) -> bool:
        """A production ledger: a checkpoint is published only once witnesses cosigned it."""
        return self.config.production

    def published_checkpoint(self) -> tlog.StoredCheckpoint | None:
        """The checkpoint the ledger shows as its latest: the newest signed one (standard profile), or
        the newest one cosigned by at least ``min_witnesses`` witnesses in other trust domains
        (production profile); None before there is one."""
        if not self.production:
            return self.latest_checkpoint()
        return self.witnessed_checkpoint(self.config.min_witnesses)

    def is_published(self, checkpoint: tlog.StoredCheckpoint) -> bool:
        """True when ``checkpoint`` (as read back, with its verified lines) meets the witness policy."""
        if not self.production:
            return True
        from ledger.log.witnessing import counted_cosignatures

        return len(counted_cosignatures(self, checkpoint)) >= self.config.min_witnesses

    def witnessed_checkpoint(self, required: int) -> tlog.StoredCheckpoint | None:
        """The newest checkpoint with at least ``required`` (>= 1) valid cosignatures by witnesses that
        count (``counting_witnesses``). Stored rows only name candidates: each is read back checked and
        its lines verified, so a cosignature row written behind the service's back publishes nothing."""
        from ledger.log.witnessing import counted_cosignatures, counting_witnesses

        names = [e.name for e in counting_witnesses(self.data_dir, self.config)]
        required = max(1, required)
        if len(names) < required:
            return None
        marks = ", ".join("?" for _ in names)
        below = 2**63 - 1
        while True:
            with self.db.read() as tx:
                rows = tx.query(
                    f"SELECT size FROM log_cosignatures WHERE witness IN ({marks}) AND size < ?"
                    " GROUP BY size HAVING COUNT(*) >= ? ORDER BY size DESC LIMIT ?",
                    (*names, below, required, WITNESSED_PAGE),
                )
            for (size,) in rows:
                try:
                    checkpoint = self.checkpoint_at(int(size))
                except NotFoundError:  # a cosignature row without its checkpoint: not one the log signed
                    continue
                if len(counted_cosignatures(self, checkpoint)) >= required:
                    return checkpoint
            if len(rows) < WITNESSED_PAGE:
                return None
            below = int(rows[-1][0])

    def check_witness_policy(self) -> None:
        """Refuse to serve a production ledger with fewer witnesses in other trust domains than it
        needs: no checkpoint could ever be published (ConfigurationError naming `log add-witness`)."""
        from ledger.log.witnessing import require_publishing_witnesses

        require_publishing_witnesses(self.data_dir, self.config)

    def inclusion_proof(self, index: int, size: int) -> list[bytes]:
        with self._reads.read() as tx:
            return tlog.inclusion_proof(tx, index, size)

    def consistency_proof(self, size1: int, size2: int) -> list[bytes]:
        with self._reads.read() as tx:
            return tlog.consistency_proof(tx, size1, size2)

