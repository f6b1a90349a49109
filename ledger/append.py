"""The append path: verify, decide and record a batch of envelopes in one transaction.

Phase 1 (no lock): strict parsing and, where the signer is already known, signature checks.
Phase 2 (one serialised write transaction): idempotency, the per-case ``seq``/``prev`` chain, the
signer's registration and role as of this position, the case rules (``domain``), then the stored
events (eventsourcing), the log leaves and tree nodes, and the read models — all or nothing.
Each envelope gets its own outcome: one bad envelope never fails the others in its batch.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from domain import projections
from domain.context import DomainConfig, EventContext
from domain.errors import AuthorizationError, ConflictError, LedgerError, MalformedInputError, RuleViolation
from domain.events import FootageCaptured
from domain.registry import KeyInfo
from ledger import merkle, tlog
from ledger.canonical import format_time
from ledger.decide import Signer, decide, trust_root_signer
from ledger.envelope import REGISTRY_CASE_ID, UnverifiedEnvelope, parse_envelope, verify_envelope
from ledger.keys import public_key_from_raw
from ledger.leaf import leaf_bytes
from ledger.read_models import TRACKING_NAME, CaseHead, load_state, write_read_models
from ledger.storage.app import EnvelopeMapper, RecordedEnvelope
from ledger.storage.sql import Database, Tx

# Registry head and the last log entry in one round trip (both backends accept this form).
_POSITION_SQL = (
    "SELECT (SELECT version FROM case_state WHERE case_id = ?),"
    " (SELECT head_sha256 FROM case_state WHERE case_id = ?),"
    " last.leaf_index, last.integrated_at, last.leaf"
    " FROM (SELECT 1 AS one) AS anchor LEFT JOIN"
    " (SELECT leaf_index, integrated_at, leaf FROM log_entries ORDER BY leaf_index DESC LIMIT 1) AS last"
    " ON 1 = 1"
)
CACHE_SIZE = 10_000
_KEY_REFUSALS = {
    "unknown": ("UNKNOWN_KEY", "not registered"),
    "not_yet_valid": ("KEY_NOT_YET_VALID", "not valid yet"),
    "revoked": ("REVOKED_KEY", "revoked"),
    "compromised": ("REVOKED_KEY", "marked compromised"),
}


@dataclass(frozen=True)
class Receipt:
    """What an accepted (or already accepted) envelope gets back."""

    event_id: str
    case_id: str
    seq: int
    leaf_index: int
    leaf_hash: str
    envelope_sha256: str
    integrated_at: str
    duplicate: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "event_id": self.event_id,
            "case_id": self.case_id,
            "seq": self.seq,
            "leaf_index": self.leaf_index,
            "leaf_hash": self.leaf_hash,
            "envelope_sha256": self.envelope_sha256,
            "integrated_at": self.integrated_at,
        }


Outcome = Receipt | LedgerError


@dataclass
class _Batch:
    """Everything the transaction will write."""

    stored: list[RecordedEnvelope] = field(default_factory=list)
    entries: list[tuple[Any, ...]] = field(default_factory=list)
    nodes: list[tuple[int, int, bytes]] = field(default_factory=list)
    timeline: list[tuple[Any, ...]] = field(default_factory=list)
    touched: dict[str, int] = field(default_factory=dict)  # case_id -> last leaf index


class Appender:
    """Appends envelopes to one ledger. Safe to share between threads (writes are serialised)."""

    def __init__(
        self,
        db: Database,
        *,
        origin: str,
        config: DomainConfig,
        blob_exists: Callable[[str], bool] | None = None,
    ) -> None:
        self.db = db
        self.origin = origin
        self.config = config
        self.blob_exists = blob_exists
        self.mapper = EnvelopeMapper()
        self._registry: Any = None
        self._registry_version = -1
        self._registry_head = ""
        self._cache: dict[str, CaseHead] = {}  # case id -> head, in insertion (age) order
        self._tree: tuple[merkle.CompactRange, bytes] | None = None  # frontier + hash of its last leaf

    # -- phase 1 ------------------------------------------------------------------------------

    def _parse(self, raw: bytes) -> UnverifiedEnvelope:
        envelope = parse_envelope(raw)
        if envelope.statement.ledger != self.origin:
            raise MalformedInputError(
                f"statement is for ledger '{envelope.statement.ledger}', this ledger is '{self.origin}'",
                code="BINDING_MISMATCH",
            )
        return envelope

    def _verify_if_known(self, envelope: UnverifiedEnvelope) -> bool:
        info = self._registry.lookup(envelope.keyid) if self._registry is not None else None
        if info is None:
            return False
        verify_envelope(envelope, public_key_from_raw(info.public_key))
        return True

    # -- phase 2 ------------------------------------------------------------------------------

    def append(self, raws: Sequence[bytes], *, now: datetime) -> list[Outcome]:
        outcomes: list[Outcome | None] = [None] * len(raws)
        parsed: list[tuple[int, UnverifiedEnvelope, bool]] = []
        for i, raw in enumerate(raws):
            try:
                envelope = self._parse(raw)
                parsed.append((i, envelope, self._verify_if_known(envelope)))
            except LedgerError as exc:
                outcomes[i] = exc
        if parsed:
            with self.db.write() as tx:
                for i, outcome in self._append_locked(tx, parsed, now).items():
                    outcomes[i] = outcome
        return [o for o in outcomes if o is not None]

    def _position(self, tx: Tx) -> tuple[CaseHead | None, merkle.CompactRange, str | None]:
        """Registry head, tree frontier and last leaf time, in one query when the caches are current.

        The caches (registry state, tree frontier) are reused only if the stored registry version
        and head, log size and last leaf equal what this process last committed; another writer
        (process) moving any of them forces a reload."""
        row = tx.one(_POSITION_SQL, (REGISTRY_CASE_ID, REGISTRY_CASE_ID))
        assert row is not None
        reg_version, reg_head, last_index, last_time, last_leaf = row
        registry_head = None
        if reg_version is not None:
            if (int(reg_version), str(reg_head)) != (self._registry_version, self._registry_head):
                state = tx.one("SELECT state FROM case_state WHERE case_id = ?", (REGISTRY_CASE_ID,))
                assert state is not None
                self._registry = load_state(REGISTRY_CASE_ID, str(state[0]))
                self._registry_version, self._registry_head = int(reg_version), str(reg_head)
            registry_head = CaseHead(self._registry_version, self._registry_head, self._registry)
        size = 0 if last_index is None else int(last_index) + 1
        marker = None if last_leaf is None else merkle.leaf_hash(bytes(last_leaf))
        cached = self._tree
        if cached is not None and cached[0].size == size and cached[1] == marker:
            tree = merkle.CompactRange(size, cached[0].frontier)  # a copy: the batch may still fail
        else:
            tree = tlog.load_range(tx, size)
        return registry_head, tree, None if last_time is None else str(last_time)

    def _append_locked(
        self, tx: Tx, parsed: list[tuple[int, UnverifiedEnvelope, bool]], now: datetime
    ) -> dict[int, Outcome]:
        registry_head, tree, last_time = self._position(tx)
        integrated_at = format_time(now)
        if last_time is not None and integrated_at < last_time:
            integrated_at = last_time  # leaf time never goes backwards
        existing = self._existing(tx, [env.statement.event_id for _, env, _ in parsed])
        heads = self._heads(tx, {env.statement.case_id for _, env, _ in parsed} - {REGISTRY_CASE_ID})
        if registry_head is not None:
            heads[REGISTRY_CASE_ID] = registry_head
        batch = _Batch()
        results: dict[int, Outcome] = {}
        accepted: dict[str, Receipt] = {}
        for i, envelope, verified in parsed:
            try:
                results[i] = self._one(
                    tx, envelope, verified, existing, accepted, heads, tree, batch, integrated_at
                )
            except LedgerError as exc:
                results[i] = exc
        if batch.stored:
            self._write(tx, batch, heads)
            # Safe even if the commit then fails: a cached head is used only when it equals the stored one,
            # and the tree is cached with the last leaf it ends in.
            self._remember({cid: heads[cid] for cid in batch.touched})
            self._tree = (tree, merkle.leaf_hash(batch.entries[-1][6]))
        return results

    def _existing(self, tx: Tx, event_ids: list[str]) -> dict[str, Receipt]:
        marks = ",".join("?" * len(event_ids))
        rows = tx.query(
            "SELECT event_id, case_id, seq, leaf_index, leaf, envelope_sha256, integrated_at"
            f" FROM log_entries WHERE event_id IN ({marks})",
            event_ids,
        )
        return {
            r[0]: Receipt(
                event_id=r[0],
                case_id=r[1],
                seq=int(r[2]),
                leaf_index=int(r[3]),
                leaf_hash=merkle.leaf_hash(bytes(r[4])).hex(),
                envelope_sha256=r[5],
                integrated_at=r[6],
                duplicate=True,
            )
            for r in rows
        }

    def _heads(self, tx: Tx, case_ids: set[str]) -> dict[str, CaseHead]:
        if not case_ids:
            return {}
        ordered = sorted(case_ids)
        marks = ",".join("?" * len(ordered))
        rows = tx.query(
            f"SELECT case_id, version, head_sha256 FROM case_state WHERE case_id IN ({marks})", ordered
        )
        heads: dict[str, CaseHead] = {}
        missing = []
        for case_id, version, head_sha256 in rows:
            cached = self._cache.get(case_id)
            if cached is not None and cached.version == int(version) and cached.head_sha256 == head_sha256:
                heads[case_id] = cached  # the stored head proves the cached state is current
            else:
                missing.append(case_id)
        if missing:
            marks = ",".join("?" * len(missing))
            for case_id, version, head_sha256, state in tx.query(
                f"SELECT case_id, version, head_sha256, state FROM case_state WHERE case_id IN ({marks})",
                missing,
            ):
                heads[case_id] = CaseHead(int(version), str(head_sha256), load_state(case_id, str(state)))
        return heads

    def _remember(self, heads: dict[str, CaseHead]) -> None:
        """Keep decided states for the next batch (bounded; evicts the oldest)."""
        for case_id, head in heads.items():
            if case_id != REGISTRY_CASE_ID:
                self._cache.pop(case_id, None)
                self._cache[case_id] = head
        while len(self._cache) > CACHE_SIZE:
            self._cache.pop(next(iter(self._cache)))

    def _one(
        self,
        tx: Tx,
        envelope: UnverifiedEnvelope,
        verified: bool,
        existing: dict[str, Receipt],
        accepted: dict[str, Receipt],
        heads: dict[str, CaseHead],
        tree: merkle.CompactRange,
        batch: _Batch,
        integrated_at: str,
    ) -> Receipt:
        st = envelope.statement
        earlier = existing.get(st.event_id) or accepted.get(st.event_id)
        if earlier is not None:
            if earlier.envelope_sha256 != envelope.sha256:
                raise ConflictError(
                    "event_id was already used for a different envelope",
                    code="EVENT_ID_REUSED",
                    event_id=st.event_id,
                )
            return Receipt(**{**earlier.__dict__, "duplicate": True})
        head = heads.get(st.case_id)
        expected_seq = 1 if head is None else head.version + 1
        if st.seq != expected_seq:
            raise ConflictError(
                f"case is at version {expected_seq - 1}; expected seq {expected_seq}, got {st.seq}",
                code="SEQ_CONFLICT",
                case_id=st.case_id,
                expected_seq=expected_seq,
            )
        if head is not None and st.prev != head.head_sha256:
            raise ConflictError(
                "prev does not match the hash of the case's last envelope",
                code="PREV_MISMATCH",
                case_id=st.case_id,
                seq=st.seq,
            )
        leaf_index = tree.size
        new_state, ctx, event = self._decide(
            envelope, verified, head, heads, at=integrated_at, leaf_index=leaf_index
        )
        leaf = leaf_bytes(envelope.sha256, leaf_index, integrated_at)
        leaf_hash = merkle.leaf_hash(leaf)
        batch.nodes.extend(tree.append(leaf_hash))
        batch.stored.append(
            RecordedEnvelope(st.case_id, st.seq, f"{st.type}/v{st.type_version}", envelope.raw)
        )
        batch.entries.append(
            (leaf_index, st.event_id, st.case_id, st.seq, st.type, envelope.sha256, leaf, integrated_at)
        )
        if st.case_id != REGISTRY_CASE_ID:
            entry = projections.timeline_entry(event, ctx)
            batch.timeline.append((st.case_id, st.seq, leaf_index, json.dumps(entry, sort_keys=True)))
        heads[st.case_id] = CaseHead(st.seq, envelope.sha256, new_state)
        batch.touched[st.case_id] = leaf_index
        receipt = Receipt(
            event_id=st.event_id,
            case_id=st.case_id,
            seq=st.seq,
            leaf_index=leaf_index,
            leaf_hash=leaf_hash.hex(),
            envelope_sha256=envelope.sha256,
            integrated_at=integrated_at,
        )
        accepted[st.event_id] = receipt
        return receipt

    def _signer(
        self, envelope: UnverifiedEnvelope, verified: bool, heads: dict[str, CaseHead], at: str
    ) -> Signer | KeyInfo:
        """The signer's registry entry as of this position and time (the server's integration time,
        never the signer's claimed time); the signature is checked here if not yet."""
        reg_head = heads.get(REGISTRY_CASE_ID)
        reg_state = None if reg_head is None else reg_head.state
        st = envelope.statement
        if reg_state is None:
            # The very first registry event is the self-signed trust root: its key is in its body.
            root = trust_root_signer(st)
            if root is None:
                raise AuthorizationError("the ledger has no key registry yet", code="UNKNOWN_KEY")
            public = base64.b64decode(str(st.body.get("public_key", "")), validate=True)
            verify_envelope(envelope, public_key_from_raw(public))
            return root
        info = reg_state.lookup(st.signer)
        status = "unknown" if info is None else reg_state.key_status_at(st.signer, at)
        if status != "active":
            code, what = _KEY_REFUSALS[status]
            raise AuthorizationError(f"signer key is {what}", code=code, key_id=st.signer)
        if not verified:  # a key id names exactly one public key, so an earlier check stands
            verify_envelope(envelope, public_key_from_raw(info.public_key))
        return info

    def _decide(
        self,
        envelope: UnverifiedEnvelope,
        verified: bool,
        head: CaseHead | None,
        heads: dict[str, CaseHead],
        *,
        at: str,
        leaf_index: int,
    ) -> tuple[Any, EventContext, Any]:
        signer = self._signer(envelope, verified, heads, at)
        new_state, event, ctx = decide(
            None if head is None else head.state,
            envelope.statement,
            signer,
            self.config,
            leaf_index=leaf_index,
        )
        if (
            isinstance(event, FootageCaptured)
            and event.stored
            and self.blob_exists is not None
            and not self.blob_exists(event.sha256)
        ):
            raise RuleViolation(
                "footage marked stored is not in the footage store",
                code="FOOTAGE_NOT_STORED",
                footage_id=event.footage_id,
            )
        return new_state, ctx, event

    # -- writing ------------------------------------------------------------------------------

    def _write(self, tx: Tx, batch: _Batch, heads: dict[str, CaseHead]) -> None:
        with tx.pipeline():  # PostgreSQL: send every write, then wait once
            self._write_rows(tx, batch, heads)

    def _write_rows(self, tx: Tx, batch: _Batch, heads: dict[str, CaseHead]) -> None:
        stored = [self.mapper.to_stored_event(r) for r in batch.stored]
        if self.db.postgres:
            from eventsourcing.postgres import PostgresAggregateRecorder

            PostgresAggregateRecorder._insert_stored_events(self.db.recorder, tx.raw, stored)
        else:
            self.db.recorder._insert_events(tx.raw, stored)
        tx.executemany(
            "INSERT INTO log_entries (leaf_index, event_id, case_id, seq, event_type, envelope_sha256, leaf,"
            " integrated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            batch.entries,
        )
        tlog.store_nodes(tx, batch.nodes)
        tx.executemany(
            "INSERT INTO case_timeline (case_id, seq, leaf_index, entry) VALUES (?, ?, ?, ?)", batch.timeline
        )
        write_read_models(tx, {cid: heads[cid] for cid in batch.touched}, batch.touched)
        tx.execute(
            "INSERT INTO projection_tracking (name, position) VALUES (?, ?)"
            " ON CONFLICT (name) DO UPDATE SET position = excluded.position",
            (TRACKING_NAME, max(batch.touched.values())),
        )
