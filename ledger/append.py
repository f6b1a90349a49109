"""The append path: verify, decide and record a batch of envelopes in one transaction.

Phase 1 (no lock): strict parsing and, where the signer is already known, signature checks.
Phase 2 (one serialised write transaction): idempotency, the per-case ``seq``/``prev`` chain, the
signer's registration and role as of this position, the case rules (``domain``), then the stored
events (eventsourcing), the log leaves and tree nodes, and the read models — all or nothing.
Each envelope gets its own outcome: one bad envelope never fails the others in its batch.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from domain.case_state import case_number_key
from domain.context import DomainConfig, EventContext
from domain.errors import AuthorizationError, ConflictError, LedgerError, MalformedInputError, RuleViolation
from domain.events import CaseOpened, introduced_sealed_ref, stored_file, stored_file_size
from domain.personal_data import refuse_personal_data
from domain.registry import KeyInfo
from domain.vocabulary import DISCLOSURE_ATTEMPTS
from ledger.decide import Signer, decide, trust_root_signer
from ledger.envelope.canonical import format_time, parse_time
from ledger.envelope.dsse import REGISTRY_CASE_ID, UnverifiedEnvelope, parse_envelope, verify_envelope
from ledger.envelope.keys import public_key_from_raw
from ledger.log import merkle, tlog
from ledger.log.leaf import leaf_bytes
from ledger.storage.app import EnvelopeMapper, RecordedEnvelope
from ledger.storage.integrity import RowMac, StateTampered, tampered
from ledger.storage.read_models import (
    LOG_HEAD_FROM,
    LOG_HEAD_SELECT,
    LOG_HEAD_WIDTH,
    CaseHead,
    CaseLines,
    LogHead,
    case_heads,
    case_number_holders,
    checked_log_head,
    log_tops,
    write_position,
    write_read_models,
)
from ledger.storage.sql import Database, Tx

# The log head (with the log's last index) and the registry's last seq and envelope hash in one
# round trip (both backends accept this form). The log head is the service's MAC'd record of size,
# root and time; the last index, seq and hash come from the append-only log and say whether the
# head and this process's cached registry are current.
_POSITION_SQL = (
    f"SELECT {LOG_HEAD_SELECT},"
    " (SELECT seq FROM log_entries WHERE case_id = ? ORDER BY seq DESC LIMIT 1),"
    f" (SELECT envelope_sha256 FROM log_entries WHERE case_id = ? ORDER BY seq DESC LIMIT 1){LOG_HEAD_FROM}"
)
CACHE_SIZE = 10_000
#: a batch at least this large has its signatures checked on every core before the lock
PARALLEL_FROM = 8
_KEY_REFUSALS = {
    "unknown": ("UNKNOWN_KEY", "not registered"),
    "not_yet_valid": ("KEY_NOT_YET_VALID", "not valid yet"),
    "revoked": ("REVOKED_KEY", "revoked"),
    "compromised": ("REVOKED_KEY", "marked compromised"),
}
#: the next step after a key refusal; worded for the command line and the HTTP API alike
_KEY_HINTS = {
    "unknown": (
        ": an admin registers it (evidence-ledger keys register --public-key FILE.pub --actor ACTOR --role ROLE,"
        " or POST /v1/keys); the registered keys are listed by evidence-ledger keys list (or GET /v1/keys)"
    ),
    "revoked": ": sign with another registered key of the same actor (evidence-ledger keys list)",
    "compromised": ": sign with another registered key of the same actor (evidence-ledger keys list)",
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
    #: the signed receipt (a C2SP signed note, ``ledger.log.receipt``), added by ``Ledger.append``
    #: after the batch committed; "" until then
    receipt: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "event_id": self.event_id,
            "case_id": self.case_id,
            "seq": self.seq,
            "leaf_index": self.leaf_index,
            "leaf_hash": self.leaf_hash,
            "envelope_sha256": self.envelope_sha256,
            "integrated_at": self.integrated_at,
            "receipt": self.receipt,
        }


Outcome = Receipt | LedgerError


@dataclass
class _Batch:
    """Everything the transaction will write."""

    stored: list[RecordedEnvelope] = field(default_factory=list)
    entries: list[tuple[Any, ...]] = field(default_factory=list)
    nodes: list[tuple[int, int, bytes]] = field(default_factory=list)
    lines: CaseLines = field(default_factory=CaseLines)  # timeline lines and custody links, one row each
    touched: dict[str, int] = field(default_factory=dict)  # case_id -> last leaf index
    public_before: dict[str, int] = field(default_factory=dict)  # case_id -> its public rows before the batch
    new_cases: int = 0
    shredded: list[str] = field(default_factory=list)  # sealed refs of the accepted SealedRecordShredded
    numbers: dict[str, str] = field(default_factory=dict)  # case number key -> case id, of the accepted CaseOpened
    #: case number -> the case that has it (or the refusal of its tampered row), for the batch's CaseOpened
    holders: dict[str, str | StateTampered] = field(default_factory=dict)


@dataclass
class _Position:
    """Where the log stands at the start of a locked batch (every part checked)."""

    head: LogHead | None
    registry: CaseHead | None
    tree: merkle.CompactRange

    @property
    def last_time(self) -> str | None:
        return None if self.head is None else self.head.integrated_at


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
        trust_root: str | None = None,
        blob_size: Callable[[str], int | None] | None = None,
        max_statement_age: int | None = None,
        claim_sealed: Callable[[Tx, str, str], None] | None = None,
        on_shredded: Callable[[list[str]], None] | None = None,
    ) -> None:
        self.db = db
        self.origin = origin
        self.config = config
        self.mac = mac
        self.trust_root = trust_root  # the admin key id the registry must start with (ledger.json)
        #: the size in bytes of the regular file stored under a SHA-256 (None: no such file), read
        #: from the file itself, never from a metadata row (``FootageStore.stored_size``)
        self.blob_size = blob_size
        #: seconds a disclosure statement may be signed before it arrives (its window is timed by it)
        self.max_statement_age = max_statement_age
        #: (tx, sealed_ref, case_id): bind a sealed record to the case naming it, or refuse
        #: (``ledger.evidence.sealed.claim``)
        self.claim_sealed = claim_sealed
        #: called after a batch with accepted SealedRecordShredded events committed, with their sealed
        #: refs: the event first, then the key's destruction (``ledger.evidence.disclosure``)
        self.on_shredded = on_shredded
        self.mapper = EnvelopeMapper()
        self._registry: CaseHead | None = None  # decided by this process
        self._cache: dict[str, CaseHead] = {}  # case id -> head decided here, in insertion (age) order
        self._tree: tuple[merkle.CompactRange, bytes] | None = None  # frontier + its root
        #: key id -> public key of every key of a checked registry this process used: signatures are
        #: checked against it before the lock (a key id is the SHA-256 of its key, and
        #: ``verify_envelope`` checks that); the key's status is checked under the lock
        self._public_keys: dict[str, Ed25519PublicKey] = {}

    # -- phase 1 ------------------------------------------------------------------------------

    def _parse(self, raw: bytes) -> UnverifiedEnvelope:
        envelope = parse_envelope(raw)
        if envelope.statement.ledger != self.origin:
            raise MalformedInputError(
                f"statement is for ledger '{envelope.statement.ledger}', this ledger is '{self.origin}'",
                code="BINDING_MISMATCH",
            )
        return envelope

    def _learn_keys(self, registry: CaseHead | None) -> None:
        """Remember the public keys of a checked registry (for signature checks before the lock)."""
        if registry is None:
            return
        for info in registry.state.keys:
            if info.key_id not in self._public_keys:
                self._public_keys[info.key_id] = public_key_from_raw(info.public_key)

    def _prepare(self, raws: Sequence[bytes], callers: Sequence[str | None] | None) -> list[_Parsed | LedgerError]:
        """Parse a batch (in this thread: parsing holds the GIL) and check the signatures of known
        keys; a large batch's signatures are checked on every core (Ed25519 in ``cryptography``
        releases the GIL)."""
        results: list[_Parsed | LedgerError] = []
        known: list[tuple[int, UnverifiedEnvelope, Ed25519PublicKey]] = []
        for i, raw in enumerate(raws):
            caller = None if callers is None else callers[i]
            try:
                envelope = self._parse(raw)
            except LedgerError as exc:
                results.append(exc)
                continue
            public = self._public_keys.get(envelope.keyid)
            results.append(_Parsed(i, envelope, public is not None, caller))
            if public is not None:
                known.append((i, envelope, public))
        for i, error in self._check_signatures(known):
            results[i] = error
        return results

    def _check_signatures(
        self, known: list[tuple[int, UnverifiedEnvelope, Ed25519PublicKey]]
    ) -> list[tuple[int, LedgerError]]:
        """(index, refusal) of every signature that does not verify."""

        def check(part: list[tuple[int, UnverifiedEnvelope, Ed25519PublicKey]]) -> list[tuple[int, LedgerError]]:
            failed = []
            for i, envelope, public in part:
                try:
                    verify_envelope(envelope, public)
                except LedgerError as exc:
                    failed.append((i, exc))
            return failed

        workers = os.cpu_count() or 1
        if len(known) < PARALLEL_FROM or workers < 2:
            return check(known)
        # Threads of this batch only (joined when the block ends): none outlives the call, so a
        # process that appended can still fork (the audit's and the verifier's workers).
        parts = [known[k::workers] for k in range(workers)]
        with ThreadPoolExecutor(max_workers=workers - 1, thread_name_prefix="verify") as pool:
            others = [pool.submit(check, part) for part in parts[1:]]
            failed = check(parts[0])  # this thread takes a share too
            return failed + [failure for other in others for failure in other.result()]

    # -- phase 2 ------------------------------------------------------------------------------

    def append(
        self, raws: Sequence[bytes], *, now: datetime, callers: Sequence[str | None] | None = None
    ) -> list[Outcome]:
        """One outcome per envelope. ``callers``: per envelope, the actor the signing key must be
        registered to (the authenticated caller), or None for no such check."""
        outcomes: list[Outcome | None] = [None] * len(raws)
        parsed: list[_Parsed] = []
        for i, prepared in enumerate(self._prepare(raws, callers)):
            if isinstance(prepared, LedgerError):
                outcomes[i] = prepared
            else:
                parsed.append(prepared)
        if parsed:
            with self.db.write() as tx:
                results, committed = self._append_locked(tx, parsed, now)
            committed()  # only now: a state that did not commit is never remembered
            for i, outcome in results.items():
                outcomes[i] = outcome
        return [o for o in outcomes if o is not None]

    def position(self, tx: Tx) -> _Position:
        """The log head, the registry head and the tree frontier, each checked.

        One query when this process's caches are current (the usual case); a stream or log that
        another writer moved is loaded from its MAC'd rows, which must agree with the log."""
        row = tx.one(_POSITION_SQL, (REGISTRY_CASE_ID, REGISTRY_CASE_ID))
        assert row is not None
        head, _ = checked_log_head(self.mac, row[:LOG_HEAD_WIDTH])
        registry_top = row[LOG_HEAD_WIDTH:]
        top = None if registry_top[0] is None else (int(registry_top[0]), str(registry_top[1]))
        return _Position(head, self._registry_at(tx, top), self._tree_at(tx, head))

    def _registry_at(self, tx: Tx, top: tuple[int, str] | None) -> CaseHead | None:
        if top is None:
            return None
        cached = self._registry
        if cached is None or (cached.version, cached.head_sha256) != top:
            cached = case_heads(tx, self.mac, {REGISTRY_CASE_ID: top})[REGISTRY_CASE_ID]
            self._learn_keys(cached)
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

    def _append_locked(
        self, tx: Tx, parsed: list[_Parsed], now: datetime
    ) -> tuple[dict[int, Outcome], Callable[[], None]]:
        """The outcomes, and what to remember once the transaction committed."""
        position = self.position(tx)
        tree, last_time = position.tree, position.last_time
        integrated_at = format_time(now)
        if last_time is not None and integrated_at < last_time:
            integrated_at = last_time  # leaf time never goes backwards
        broken: dict[str, StateTampered] = {}
        heads = self._heads(tx, {p.envelope.statement.case_id for p in parsed} - {REGISTRY_CASE_ID}, broken)
        if position.registry is not None:
            heads[REGISTRY_CASE_ID] = position.registry
        existing = self._existing(tx, parsed, heads, position.head, broken)
        batch = _Batch()
        batch.holders = case_number_holders(tx, self.mac, _opened_numbers(parsed))
        results: dict[int, Outcome] = {}
        accepted: dict[str, Receipt] = {}
        for item in parsed:
            st = item.envelope.statement
            refusal = broken.get(st.case_id) or broken.get(st.event_id)
            if refusal is not None:
                results[item.index] = refusal.again()
                continue
            try:
                results[item.index] = self._one(tx, item, existing, accepted, heads, tree, batch, integrated_at)
            except LedgerError as exc:
                results[item.index] = exc
        if not batch.stored:
            return results, lambda: None
        self._write(tx, batch, heads, position.head, LogHead(tree.size, tree.root(), integrated_at))
        decided = {cid: heads[cid] for cid in batch.touched}
        frontier = (tree, tree.root())
        shredded = batch.shredded

        def committed() -> None:
            self._remember(decided)
            self._tree = frontier
            if shredded and self.on_shredded is not None:
                self.on_shredded(shredded)

        return results, committed

    def _existing(
        self,
        tx: Tx,
        parsed: list[_Parsed],
        heads: dict[str, CaseHead],
        head: LogHead | None,
        broken: dict[str, StateTampered],
    ) -> dict[str, Receipt]:
        """Earlier receipts for the batch's event ids, each re-derived from the stored signed envelope
        and proved in the tree under the checked log head (a log row alone is not believed: it could
        have been inserted behind the service's back). A row that fails refuses only the envelope
        with that event id (its error goes to ``broken`` under the event id)."""
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
            try:
                receipt = Receipt(
                    event_id=str(event_id),
                    case_id=str(case_id),
                    seq=int(seq),
                    leaf_index=int(leaf_index),
                    leaf_hash=merkle.leaf_hash(bytes(leaf)).hex(),
                    envelope_sha256=str(envelope_sha256),
                    integrated_at=str(integrated_at),
                    duplicate=True,
                )
                self._check_earlier(tx, heads, head, receipt, bytes(leaf), None if state is None else bytes(state))
            except (LedgerError, TypeError, ValueError):
                broken[str(event_id)] = tampered("the log", check="idempotency row", stream="log")
                continue
            receipts[receipt.event_id] = receipt
        return receipts

    def _check_earlier(
        self,
        tx: Tx,
        heads: dict[str, CaseHead],
        head: LogHead | None,
        receipt: Receipt,
        leaf: bytes,
        stored: bytes | None,
    ) -> None:
        """Raise unless a log row naming an event id is one the service wrote: in the tree under the
        checked log head, committing to a stored envelope with that id, case and seq, signed by a
        registered key."""
        if head is None or not 0 <= receipt.leaf_index < head.size or stored is None:
            raise MalformedInputError("no such entry in the checked log")
        if leaf != leaf_bytes(receipt.envelope_sha256, receipt.leaf_index, receipt.integrated_at):
            raise MalformedInputError("the leaf does not commit to the row")
        proof = tlog.inclusion_proof(tx, receipt.leaf_index, head.size)
        merkle.verify_inclusion(merkle.leaf_hash(leaf), receipt.leaf_index, head.size, proof, head.root)
        envelope = parse_envelope(stored)
        st = envelope.statement
        registry = heads.get(REGISTRY_CASE_ID)
        info = None if registry is None else registry.state.lookup(envelope.keyid)
        if (
            envelope.sha256 != receipt.envelope_sha256
            or (st.event_id, st.case_id, st.seq) != (receipt.event_id, receipt.case_id, receipt.seq)
            or info is None
        ):
            raise MalformedInputError("the stored envelope does not match its log row")
        verify_envelope(envelope, public_key_from_raw(info.public_key))

    def _heads(self, tx: Tx, case_ids: set[str], broken: dict[str, StateTampered]) -> dict[str, CaseHead]:
        """The current head of each case that has log entries: this process's own decided state when
        its version is the case's last seq in the log, otherwise the checked stored row. A case whose
        row fails its check goes to ``broken``: only that case's envelopes are refused."""
        tops = log_tops(tx, case_ids)
        heads: dict[str, CaseHead] = {}
        missing: dict[str, tuple[int, str]] = {}
        for case_id, top in tops.items():
            cached = self._cache.get(case_id)
            if cached is not None and (cached.version, cached.head_sha256) == top:
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
                self._learn_keys(head)
            else:
                self._cache.pop(case_id, None)
                self._cache[case_id] = head
        while len(self._cache) > CACHE_SIZE:
            self._cache.pop(next(iter(self._cache)))

    def _one(
        self,
        tx: Tx,
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
            return Receipt(**{**earlier.__dict__, "duplicate": True, "receipt": ""})
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
        # new events only: stored events are never re-judged (not in decide, which replay shares)
        refuse_personal_data(event)
        number = case_number_key(event.case_number) if isinstance(event, CaseOpened) else None
        if isinstance(event, CaseOpened):
            self._check_case_number(event.case_number, batch)
        self._check_new(tx, st, event, integrated_at)
        if number is not None:
            batch.numbers[number] = st.case_id
        if st.type == "SealedRecordShredded":
            batch.shredded.append(str(st.body["sealed_ref"]))
        if st.case_id != REGISTRY_CASE_ID and st.case_id not in batch.public_before:  # accepted: count it
            batch.public_before[st.case_id] = 0 if head is None else head.public
            batch.new_cases += head is None
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
            batch.lines.add(self.mac, event, ctx, new_state)
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
                raise AuthorizationError(
                    "the ledger has no key registry yet: its genesis comes first (evidence-ledger keys genesis"
                    " and keys submit; docs/keys.md)",
                    code="UNKNOWN_KEY",
                )
            if self.trust_root is not None and st.signer != self.trust_root:
                raise AuthorizationError(
                    "the registry must start with the trust-root admin key this ledger was initialised with",
                    code="NOT_THE_TRUST_ROOT",
                    key_id=st.signer,
                )
            public = base64.b64decode(str(st.body.get("public_key", "")), validate=True)
            verify_envelope(envelope, public_key_from_raw(public))
            return root
        info = reg_state.lookup(st.signer)
        status = "unknown" if info is None else reg_state.key_status_at(st.signer, at)
        if status != "active":
            code, what = _KEY_REFUSALS[status]
            raise AuthorizationError(f"signer key is {what}{_KEY_HINTS.get(status, '')}", code=code, key_id=st.signer)
        if caller is not None and info.actor != caller:
            raise AuthorizationError(
                f"the envelope is signed with a key registered to {info.actor!r}, but the caller (the token's"
                f" actor) is {caller!r}: sign with a key registered to {caller!r}, or use {info.actor!r}'s token",
                code="SIGNER_NOT_CALLER",
                key_id=st.signer,
                signer_actor=info.actor,
                caller=caller,
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
        claimed = stored_file(event)  # a file the event says is in the footage store
        if claimed is not None and self.blob_size is not None and self.blob_size(claimed[0]) is None:
            raise RuleViolation(
                "footage marked stored is not in the footage store", code="FOOTAGE_NOT_STORED", **claimed[1]
            )
        return new_state, ctx, event

    def _check_new(self, tx: Tx, st: Any, event: Any, integrated_at: str) -> None:
        """Checks of a NEW append only (never of the stored events that replay, the audit and the
        offline verifier re-decide): a sealed record the event brings into its case must exist and be
        no other case's (and is bound to this one, in this transaction); a disclosure statement must
        not be signed longer ago than the allowed clock skew, since its window is timed by it; a file
        claimed stored must have the declared size (read from the stored file itself)."""
        self._check_stored_size(event)
        if st.type in DISCLOSURE_ATTEMPTS and self.max_statement_age is not None:
            age = parse_time(integrated_at, field="integrated_at") - parse_time(st.occurred_at, field="occurred_at")
            if age.total_seconds() > self.max_statement_age:
                raise MalformedInputError(
                    f"a disclosure statement must be signed at most {self.max_statement_age} s before it is appended",
                    code="CLOCK_SKEW",
                )
        ref = introduced_sealed_ref(event)
        if ref is not None and self.claim_sealed is not None:
            self.claim_sealed(tx, ref, st.case_id)

    def _check_case_number(self, signed: str, batch: _Batch) -> None:
        """A new case's number must be no other case's (looked up under the write lock, one query per
        batch, so two concurrent CaseOpened with one number cannot both land). The rows read are
        checked (``case_number_holders``); the same batch's earlier cases count too. Numbers are compared
        by ``case_number_key`` (letter case does not make another number)."""
        number = case_number_key(signed)
        found = batch.holders.get(number)
        if isinstance(found, StateTampered):
            raise found.again()
        holder = batch.numbers.get(number) or found
        if holder is not None:
            raise ConflictError(
                f"case number {signed} is already used by case {holder} (case numbers are compared without"
                " regard to letter case); a case number opens one case only",
                code="DUPLICATE_CASE_NUMBER",
                case_id=holder,
                case_number=signed,
            )

    def _check_stored_size(self, event: Any) -> None:
        """SIZE_MISMATCH when the event claims a stored file (``decide`` checked it is there) and
        declares a size other than the stored file's. The size is the file's own (fstat), not a
        metadata row: the file's name is its SHA-256, so the store has nothing else to edit."""
        declared = stored_file_size(event)
        claimed = stored_file(event)
        if declared is None or claimed is None or self.blob_size is None:
            return
        size = self.blob_size(claimed[0])
        if size is None:
            raise RuleViolation(
                "footage marked stored is not in the footage store", code="FOOTAGE_NOT_STORED", **claimed[1]
            )
        if declared != size:
            raise RuleViolation(
                f"size_bytes is {declared} but the stored file with this SHA-256 has {size} bytes:"
                " declare the size `evidence put` or POST /v1/evidence reported",
                code="SIZE_MISMATCH", size_bytes=declared, stored_size=size, **claimed[1],
            )

    # -- writing ------------------------------------------------------------------------------

    def _write(
        self, tx: Tx, batch: _Batch, heads: dict[str, CaseHead], before: LogHead | None, after: LogHead
    ) -> None:
        with tx.pipeline():  # PostgreSQL: send every write, then wait once
            self._write_rows(tx, batch, heads, before, after)

    def _write_rows(
        self, tx: Tx, batch: _Batch, heads: dict[str, CaseHead], before: LogHead | None, after: LogHead
    ) -> None:
        self.db.insert_events(tx, [self.mapper.to_stored_event(r) for r in batch.stored])
        tx.executemany(
            "INSERT INTO log_entries (leaf_index, event_id, case_id, seq, event_type, envelope_sha256, leaf,"
            " integrated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            batch.entries,
        )
        tlog.store_nodes(tx, batch.nodes)
        batch.lines.write(tx)
        touched = {cid: heads[cid] for cid in batch.touched}
        write_read_models(tx, self.mac, touched, batch.touched)
        public = sum(touched[cid].public - old for cid, old in batch.public_before.items())
        cases, releases = (0, 0) if before is None else (before.cases, before.public_releases)
        head = LogHead(after.size, after.root, after.integrated_at, cases + batch.new_cases, releases + public)
        write_position(tx, self.mac, max(batch.touched.values()), head)


def _opened_numbers(parsed: Sequence[_Parsed]) -> set[str]:
    """The case numbers the batch's CaseOpened statements name (looked up before the batch)."""
    numbers: set[str] = set()
    for item in parsed:
        st = item.envelope.statement
        number = st.body.get("case_number") if st.type == "CaseOpened" and isinstance(st.body, dict) else None
        if isinstance(number, str):
            numbers.add(case_number_key(number))
    return numbers


@dataclass(frozen=True)
class _Parsed:
    index: int
    envelope: UnverifiedEnvelope
    verified: bool
    caller: str | None
