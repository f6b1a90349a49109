"""The append path: verify, decide and record a batch of envelopes in one transaction.

Phase 1 (no lock): strict parsing and, where the signer is already known, signature checks.
Phase 2 (one serialised write transaction): idempotency, the per-case ``seq``/``prev`` chain, the
signer's registration and role as of this position, the case rules (``domain``), then the stored
events (eventsourcing), the log leaves and tree nodes, and the read models — all or nothing.
Each envelope gets its own outcome: one bad envelope never fails the others in its batch.
"""

from __future__ import annotations

import base64
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
from ledger.integrity import RowMac, StateTampered, tampered
from ledger.keys import public_key_from_raw
from ledger.leaf import leaf_bytes
from ledger.read_models import (
    CaseHead,
    LogHead,
    case_heads,
    log_tops,
    timeline_row,
    write_position,
    write_read_models,
    write_timeline,
)
from ledger.storage.app import EnvelopeMapper, RecordedEnvelope
from ledger.storage.sql import Database, Tx

# The log head, the log's last index and the registry's last seq in one round trip (both backends
# accept this form). The log head is the service's MAC'd record of size, root and time; the last
# index and seq come from the append-only log and say whether it is current.
_POSITION_SQL = (
    "SELECT h.size, h.root, h.integrated_at, h.mac, last.leaf_index,"
    " (SELECT MAX(seq) FROM log_entries WHERE case_id = ?)"
    " FROM (SELECT 1 AS one) AS anchor LEFT JOIN log_head h ON h.id = 1 LEFT JOIN"
    " (SELECT leaf_index FROM log_entries ORDER BY leaf_index DESC LIMIT 1) AS last ON 1 = 1"
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


@dataclass
class _Position:
    """Where the log stands at the start of a locked batch (every part checked)."""

    registry: CaseHead | None
    tree: merkle.CompactRange
    last_time: str | None


class Appender:
    """Appends envelopes to one ledger. Safe to share between threads (writes are serialised).

    Nothing read back from the database decides anything unless it is checked: case and registry
    states come from this process's own memory when the log shows they are current, otherwise from
    MAC'd rows at the version of the stream's last log entry (``ledger.read_models``); the tree
    frontier must fold to the MAC'd log head, which must be at the log's size; an earlier receipt
    (idempotency) is re-derived from the stored, signed envelope."""

    def __init__(
        self,
        db: Database,
        *,
        origin: str,
        config: DomainConfig,
        mac: RowMac,
        blob_exists: Callable[[str], bool] | None = None,
    ) -> None:
        self.db = db
        self.origin = origin
        self.config = config
        self.mac = mac
        self.blob_exists = blob_exists
        self.mapper = EnvelopeMapper()
        self._registry: CaseHead | None = None  # decided by this process
        self._cache: dict[str, CaseHead] = {}  # case id -> head decided here, in insertion (age) order
        self._tree: tuple[merkle.CompactRange, bytes] | None = None  # frontier + its root

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
        registry = self._registry
        info = registry.state.lookup(envelope.keyid) if registry is not None else None
        if info is None:
            return False
        verify_envelope(envelope, public_key_from_raw(info.public_key))
        return True

    # -- phase 2 ------------------------------------------------------------------------------

    def append(
        self, raws: Sequence[bytes], *, now: datetime, callers: Sequence[str | None] | None = None
    ) -> list[Outcome]:
        """One outcome per envelope. ``callers``: per envelope, the actor the signing key must be
        registered to (the authenticated caller), or None for no such check."""
        outcomes: list[Outcome | None] = [None] * len(raws)
        parsed: list[_Parsed] = []
        for i, raw in enumerate(raws):
            try:
                envelope = self._parse(raw)
                caller = None if callers is None else callers[i]
                parsed.append(_Parsed(i, envelope, self._verify_if_known(envelope), caller))
            except LedgerError as exc:
                outcomes[i] = exc
        if parsed:
            with self.db.write() as tx:
                for i, outcome in self._append_locked(tx, parsed, now).items():
                    outcomes[i] = outcome
        return [o for o in outcomes if o is not None]

    def position(self, tx: Tx) -> _Position:
        """The registry head, the tree frontier and the last leaf time, each checked.

        One query when this process's caches are current (the usual case); a stream or log that
        another writer moved is loaded from its MAC'd rows, which must agree with the log."""
        row = tx.one(_POSITION_SQL, (REGISTRY_CASE_ID,))
        assert row is not None
        size = 0 if row[4] is None else int(row[4]) + 1
        if row[0] is None:
            if size:
                raise tampered("the log", check="log_head", stream="log")
            head = None
        else:
            head = LogHead(int(row[0]), bytes(row[1]), str(row[2]))
            fields = (head.size, head.root, head.integrated_at)
            if head.size != size or not self.mac.valid("log_head", fields, row[3]):
                raise tampered("the log", check="log_head", stream="log")
        registry = self._registry_at(tx, None if row[5] is None else int(row[5]))
        return _Position(registry, self._tree_at(tx, head), None if head is None else head.integrated_at)

    def _registry_at(self, tx: Tx, top: int | None) -> CaseHead | None:
        if top is None:
            return None
        cached = self._registry
        if cached is None or cached.version != top:
            cached = case_heads(tx, self.mac, {REGISTRY_CASE_ID: top})[REGISTRY_CASE_ID]
            self._registry = cached
        return cached

    def _tree_at(self, tx: Tx, head: LogHead | None) -> merkle.CompactRange:
        if head is None:
            return merkle.CompactRange.empty()
        cached = self._tree
        if cached is not None and cached[0].size == head.size and cached[1] == head.root:
            return merkle.CompactRange(head.size, cached[0].frontier)  # a copy: the batch may still fail
        try:
            tree = tlog.load_range(tx, head.size)
        except LedgerError:  # a frontier node is missing
            raise tampered("the log", check="frontier", stream="log") from None
        if tree.root() != head.root:
            raise tampered("the log", check="frontier", stream="log")
        return tree

    def _append_locked(self, tx: Tx, parsed: list[_Parsed], now: datetime) -> dict[int, Outcome]:
        position = self.position(tx)
        tree, last_time = position.tree, position.last_time
        integrated_at = format_time(now)
        if last_time is not None and integrated_at < last_time:
            integrated_at = last_time  # leaf time never goes backwards
        broken: dict[str, StateTampered] = {}
        heads = self._heads(tx, {p.envelope.statement.case_id for p in parsed} - {REGISTRY_CASE_ID}, broken)
        if position.registry is not None:
            heads[REGISTRY_CASE_ID] = position.registry
        existing = self._existing(tx, parsed, heads)
        batch = _Batch()
        results: dict[int, Outcome] = {}
        accepted: dict[str, Receipt] = {}
        for item in parsed:
            case_error = broken.get(item.envelope.statement.case_id)
            if case_error is not None:
                results[item.index] = case_error.again()
                continue
            try:
                results[item.index] = self._one(item, existing, accepted, heads, tree, batch, integrated_at)
            except LedgerError as exc:
                results[item.index] = exc
        if batch.stored:
            self._write(tx, batch, heads, LogHead(tree.size, tree.root(), integrated_at))
            # Safe even if the commit then fails: a cached head is used only when the log's last seq
            # for its stream equals its version, and the tree only when the log head has its root.
            self._remember({cid: heads[cid] for cid in batch.touched})
            self._tree = (tree, tree.root())
        return results

    def _existing(self, tx: Tx, parsed: list[_Parsed], heads: dict[str, CaseHead]) -> dict[str, Receipt]:
        """Earlier receipts for the batch's event ids, each re-derived from the stored signed envelope
        (a log row alone is not believed: it could have been inserted behind the service's back)."""
        event_ids = [p.envelope.statement.event_id for p in parsed]
        marks = ",".join("?" * len(event_ids))
        rows = tx.query(
            "SELECT e.event_id, e.case_id, e.seq, e.leaf_index, e.leaf, e.envelope_sha256, e.integrated_at,"
            f" s.state FROM log_entries e LEFT JOIN {self.db.events_table} s"
            f" ON s.originator_id = {self.db.case_key_sql('e.case_id')} AND s.originator_version = e.seq"
            f" WHERE e.event_id IN ({marks})",
            event_ids,
        )
        receipts = {}
        for event_id, case_id, seq, leaf_index, leaf, envelope_sha256, integrated_at, state in rows:
            self._check_earlier(heads, str(event_id), int(leaf_index), bytes(leaf), str(envelope_sha256),
                                str(integrated_at), None if state is None else bytes(state))
            receipts[str(event_id)] = Receipt(
                event_id=str(event_id),
                case_id=str(case_id),
                seq=int(seq),
                leaf_index=int(leaf_index),
                leaf_hash=merkle.leaf_hash(bytes(leaf)).hex(),
                envelope_sha256=str(envelope_sha256),
                integrated_at=str(integrated_at),
                duplicate=True,
            )
        return receipts

    def _check_earlier(
        self,
        heads: dict[str, CaseHead],
        event_id: str,
        leaf_index: int,
        leaf: bytes,
        envelope_sha256: str,
        integrated_at: str,
        stored: bytes | None,
    ) -> None:
        """A log row naming an event id must commit to a stored envelope with that id, signed by a
        registered key; otherwise the row was not written by the service."""
        try:
            if stored is None or leaf != leaf_bytes(envelope_sha256, leaf_index, integrated_at):
                raise MalformedInputError("no matching stored envelope")
            envelope = parse_envelope(stored)
            registry = heads.get(REGISTRY_CASE_ID)
            info = None if registry is None else registry.state.lookup(envelope.keyid)
            if envelope.sha256 != envelope_sha256 or envelope.statement.event_id != event_id or info is None:
                raise MalformedInputError("stored envelope does not match its log row")
            verify_envelope(envelope, public_key_from_raw(info.public_key))
        except LedgerError:
            raise tampered("the log", check=f"idempotency row at leaf {leaf_index}", stream="log") from None

    def _heads(self, tx: Tx, case_ids: set[str], broken: dict[str, StateTampered]) -> dict[str, CaseHead]:
        """The current head of each case that has log entries: this process's own decided state when
        its version is the case's last seq in the log, otherwise the checked stored row. A case whose
        row fails its check goes to ``broken``: only that case's envelopes are refused."""
        tops = log_tops(tx, case_ids)
        heads: dict[str, CaseHead] = {}
        missing: dict[str, int] = {}
        for case_id, top in tops.items():
            cached = self._cache.get(case_id)
            if cached is not None and cached.version == top:
                heads[case_id] = cached
            else:
                missing[case_id] = top
        heads.update(case_heads(tx, self.mac, missing, broken))
        return heads

    def _remember(self, heads: dict[str, CaseHead]) -> None:
        """Keep decided states for the next batch (bounded; evicts the oldest)."""
        for case_id, head in heads.items():
            if case_id == REGISTRY_CASE_ID:
                self._registry = head
            else:
                self._cache.pop(case_id, None)
                self._cache[case_id] = head
        while len(self._cache) > CACHE_SIZE:
            self._cache.pop(next(iter(self._cache)))

    def _one(
        self,
        item: _Parsed,
        existing: dict[str, Receipt],
        accepted: dict[str, Receipt],
        heads: dict[str, CaseHead],
        tree: merkle.CompactRange,
        batch: _Batch,
        integrated_at: str,
    ) -> Receipt:
        envelope = item.envelope
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
        new_state, ctx, event = self.decide(
            envelope, item.verified, head, heads, at=integrated_at, leaf_index=leaf_index, caller=item.caller
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
            batch.timeline.append(timeline_row(self.mac, st.case_id, st.seq, leaf_index, entry))
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
        self,
        envelope: UnverifiedEnvelope,
        verified: bool,
        heads: dict[str, CaseHead],
        at: str,
        caller: str | None,
    ) -> Signer | KeyInfo:
        """The signer's registry entry as of this position and time (the server's integration time,
        never the signer's claimed time); the signature is checked here if not yet, and the key must
        be registered to ``caller`` when one is given."""
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
        if caller is not None and info.actor != caller:
            raise AuthorizationError(
                "the envelope is signed with a key registered to another actor than the caller",
                code="SIGNER_NOT_CALLER",
                key_id=st.signer,
            )
        if not verified:  # a key id names exactly one public key, so an earlier check stands
            verify_envelope(envelope, public_key_from_raw(info.public_key))
        return info

    def decide(
        self,
        envelope: UnverifiedEnvelope,
        verified: bool,
        head: CaseHead | None,
        heads: dict[str, CaseHead],
        *,
        at: str,
        leaf_index: int,
        caller: str | None = None,
    ) -> tuple[Any, EventContext, Any]:
        """The next state of the envelope's stream (signer, signature and the domain's rules checked):
        (new state, context, event). Shared with the read-model rebuild (``ledger.projection``)."""
        signer = self._signer(envelope, verified, heads, at, caller)
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

    def _write(self, tx: Tx, batch: _Batch, heads: dict[str, CaseHead], log_head: LogHead) -> None:
        with tx.pipeline():  # PostgreSQL: send every write, then wait once
            self._write_rows(tx, batch, heads, log_head)

    def _write_rows(self, tx: Tx, batch: _Batch, heads: dict[str, CaseHead], log_head: LogHead) -> None:
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
        write_timeline(tx, batch.timeline)
        write_read_models(tx, self.mac, {cid: heads[cid] for cid in batch.touched}, batch.touched)
        write_position(tx, self.mac, max(batch.touched.values()), log_head)


@dataclass(frozen=True)
class _Parsed:
    index: int
    envelope: UnverifiedEnvelope
    verified: bool
    caller: str | None
