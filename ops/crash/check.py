"""Offline invariants after a crash run: open the ledger directly (server stopped) and compare it with
everything the clients were told.

* **lost**: an acknowledged envelope (2xx) whose bytes are nowhere in the ledger;
* **mismatched**: an acknowledged envelope stored, but not with the acknowledged bytes at its
  (case, seq) and at its acknowledged leaf index with the acknowledged leaf hash (in the log join
  and in the eventsourcing event store);
* **duplicates**: the same envelope, event id or (case, seq) stored twice, or two different
  envelopes acknowledged for one (case, seq);
* **phantom**: a stored case event nobody was told about (an indeterminate request that the client
  saw present is acknowledged by its resubmission; an abandoned one must be absent);
* **half-present**: a log entry without its event, an event without its log entry, a log row whose
  columns disagree with its envelope, or a read model (case head, timeline) that disagrees with the
  log;
* the offline verification engine (``check_entries``) finds nothing over all entries, leaf indexes
  are exactly 0..N-1, the Merkle root recomputed from every leaf equals ``tlog.root_at(N)``;
* every checkpoint the clients saw verifies with the log key and is a prefix of the final log
  (RFC 6962 consistency proof, and its root equals the root recomputed from the first leaves);
  every checkpoint stored in the database or recorded in the rollback guard's
  ``checkpoints/history.jsonl`` has the recomputed root too (and no line of that file is torn);
* the rollback guard is not blocking and ``Ledger.checkpoint()`` covers the whole log.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
from collections import Counter
from dataclasses import dataclass, field

from domain.errors import LedgerError
from domain.events import declared
from ledger.envelope.dsse import REGISTRY_CASE_ID, parse_envelope
from ledger.log import merkle, note, tlog
from ledger.log.rollback import GUARD_DIR, HISTORY
from ledger.store import Ledger, StoredEntry
from ledger.verify import Entry, check_entries
from ops.crash.record import Ack, RunRecord

MAX_PROBLEMS = 40


@dataclass
class CheckReport:
    log_size: int = 0
    case_events: int = 0
    cases: int = 0
    acknowledged: int = 0  # distinct acknowledged envelopes
    lost: int = 0
    mismatched: int = 0
    duplicates: int = 0
    phantom: int = 0
    half_present: int = 0
    engine_findings: int = 0
    # answers lost (refused connections excluded), by the ledger's final content: a present one was
    # stored by the original request or its resubmission, an absent one was abandoned
    indeterminate_present: int = 0
    indeterminate_absent: int = 0
    checkpoints_seen: int = 0
    checkpoints_consistent: int = 0
    stored_checkpoints: int = 0
    guard_records: int = 0  # lines of checkpoints/history.jsonl (checkpoints recorded outside the database)
    root_ok: bool = False
    final_checkpoint_ok: bool = False
    problems: list[str] = field(default_factory=list)
    problem_count: int = 0

    @property
    def ok(self) -> bool:
        return self.problem_count == 0

    def problem(self, message: str) -> None:
        self.problem_count += 1
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(message)


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def check_ledger(ledger: Ledger, record: RunRecord, *, sign_final_checkpoint: bool = True) -> CheckReport:
    report = CheckReport()
    entries = list(ledger.iter_entries())
    size = ledger.log_size()
    report.log_size = size
    _check_indexes(report, entries, size)
    _check_rows(ledger, report, entries, size)
    _check_engine(ledger, report, entries)
    by_sha = _index(report, entries)
    _check_acks(ledger, report, record.acks, entries, by_sha)
    _check_phantoms(report, record, entries)
    leaf_hashes = [merkle.leaf_hash(e.leaf) for e in entries]
    final_root = _check_root(ledger, report, leaf_hashes, size)
    _check_checkpoints(ledger, report, record.checkpoints, leaf_hashes, size, final_root)
    if sign_final_checkpoint:
        _check_final_checkpoint(ledger, report, size, final_root)
    return report


# -- structure ---------------------------------------------------------------------------------


def _check_indexes(report: CheckReport, entries: list[StoredEntry], size: int) -> None:
    indexes = [e.leaf_index for e in entries]
    if indexes != list(range(size)):
        first = next((i for i, (a, b) in enumerate(zip(indexes, range(size), strict=False)) if a != b), None)
        report.problem(
            f"leaf indexes are not exactly 0..{size - 1}: {len(indexes)} entries, first difference at "
            f"position {first if first is not None else min(len(indexes), size)}"
        )


def _check_rows(ledger: Ledger, report: CheckReport, entries: list[StoredEntry], size: int) -> None:
    """Nothing half-present: log rows, event rows and read models agree one to one."""
    db = ledger.db
    with db.read() as tx:
        columns = {
            int(i): (str(ev), str(sha))
            for i, ev, sha in tx.query("SELECT leaf_index, event_id, envelope_sha256 FROM log_entries")
        }
        orphans = tx.query(
            f"SELECT s.originator_id, s.originator_version FROM {db.events_table} s LEFT JOIN log_entries e"
            f" ON s.originator_id = {db.case_key_sql('e.case_id')} AND s.originator_version = e.seq"
            " WHERE e.leaf_index IS NULL"
        )
        row = tx.one(f"SELECT COUNT(*) FROM {db.events_table}")
        event_rows = int(row[0]) if row else 0
        heads = {
            str(c): (int(v), str(h))
            for c, v, h in tx.query("SELECT case_id, version, head_sha256 FROM case_state")
        }
        timeline = {
            str(c): (int(n), int(m))
            for c, n, m in tx.query("SELECT case_id, COUNT(*), MAX(seq) FROM case_timeline GROUP BY case_id")
        }
        custody = Counter({
            str(c): int(n) for c, n in tx.query("SELECT case_id, COUNT(*) FROM case_custody GROUP BY case_id")
        })
    for orphan in orphans:
        report.half_present += 1
        report.problem(f"stored event {orphan[0]} v{orphan[1]} has no log entry")
    if event_rows != size:
        report.half_present += 1
        report.problem(f"{event_rows} stored events for {size} log entries")
    last: dict[str, StoredEntry] = {}
    counts: Counter[str] = Counter()
    links: Counter[str] = Counter()  # custody links the entries add (captures, transfers)
    for e in entries:
        if not e.envelope:
            report.half_present += 1
            report.problem(f"log entry {e.leaf_index} (case {e.case_id} seq {e.seq}) has no stored event")
            continue
        try:
            st = parse_envelope(e.envelope).statement
        except LedgerError as exc:
            report.half_present += 1
            report.problem(f"log entry {e.leaf_index}: stored envelope does not parse ({exc.code})")
            continue
        event_id, sha = columns.get(e.leaf_index, ("", ""))
        if (st.case_id, st.seq, st.type, st.event_id, _sha(e.envelope)) != (
            e.case_id,
            e.seq,
            e.event_type,
            event_id,
            sha,
        ):
            report.half_present += 1
            report.problem(f"log entry {e.leaf_index}: its columns disagree with its envelope")
        counts[e.case_id] += 1
        rules = declared(st.type)
        links[e.case_id] += rules is not None and rules.custody is not None
        if e.case_id not in last or e.seq > last[e.case_id].seq:
            last[e.case_id] = e
    for case_id, entry in last.items():
        if heads.get(case_id) != (entry.seq, _sha(entry.envelope)):
            report.half_present += 1
            report.problem(f"case {case_id}: read model head {heads.get(case_id)} is not its last log entry")
        if case_id != REGISTRY_CASE_ID and timeline.get(case_id) != (counts[case_id], entry.seq):
            report.half_present += 1
            report.problem(
                f"case {case_id}: timeline {timeline.get(case_id)} disagrees with {counts[case_id]} entries"
            )
    for case_id in set(links) | set(custody):
        if links[case_id] != custody[case_id]:
            report.half_present += 1
            report.problem(f"case {case_id}: {custody[case_id]} custody links for {links[case_id]} custody events")
    for case_id in set(heads) - set(last):
        report.half_present += 1
        report.problem(f"case {case_id}: read model row without any log entry")
    for case_id in set(timeline) - set(last):
        report.half_present += 1
        report.problem(f"case {case_id}: timeline rows without any log entry")
    report.cases = len([c for c in last if c != REGISTRY_CASE_ID])
    report.case_events = sum(n for c, n in counts.items() if c != REGISTRY_CASE_ID)


def _check_engine(ledger: Ledger, report: CheckReport, entries: list[StoredEntry]) -> None:
    checker = check_entries(
        [Entry(e.leaf_index, e.envelope, e.leaf) for e in entries],
        origin=ledger.origin,
        config=ledger.domain_config,
        trust_root=ledger.config.admin_key_id,
    )
    report.engine_findings = len(checker.findings)
    for finding in checker.findings[:10]:
        report.problem(f"verification engine: {finding.code} at leaf {finding.leaf_index}: {finding.message}")
    if len(checker.findings) > 10:
        report.problem(f"verification engine: {len(checker.findings) - 10} more findings")


def _index(report: CheckReport, entries: list[StoredEntry]) -> dict[str, StoredEntry]:
    by_sha: dict[str, StoredEntry] = {}
    positions: Counter[tuple[str, int]] = Counter()
    event_ids: Counter[str] = Counter()
    for e in entries:
        if not e.envelope:
            continue
        digest = _sha(e.envelope)
        if digest in by_sha:
            report.duplicates += 1
            report.problem(
                f"envelope {digest} is stored at leaves {by_sha[digest].leaf_index} and {e.leaf_index}"
            )
        by_sha.setdefault(digest, e)
        positions[(e.case_id, e.seq)] += 1
        with contextlib.suppress(LedgerError):  # an unparseable envelope is reported by _check_rows
            event_ids[parse_envelope(e.envelope).statement.event_id] += 1
    for (case_id, seq), n in positions.items():
        if n > 1:
            report.duplicates += n - 1
            report.problem(f"case {case_id} seq {seq} is stored {n} times")
    for event_id, n in event_ids.items():
        if n > 1:
            report.duplicates += n - 1
            report.problem(f"event id {event_id} is stored {n} times")
    return by_sha


# -- what the clients were told ------------------------------------------------------------------


def _check_acks(
    ledger: Ledger,
    report: CheckReport,
    acks: list[Ack],
    entries: list[StoredEntry],
    by_sha: dict[str, StoredEntry],
) -> None:
    first: dict[str, Ack] = {}
    at_position: dict[tuple[str, int], str] = {}
    for ack in acks:
        digest = _sha(ack.envelope)
        earlier = first.get(digest)
        if earlier is not None:
            if (earlier.leaf_index, earlier.leaf_hash) != (ack.leaf_index, ack.leaf_hash):
                report.mismatched += 1
                report.problem(
                    f"envelope {digest} was acknowledged at leaves {earlier.leaf_index} and {ack.leaf_index}"
                )
            continue
        first[digest] = ack
        other = at_position.setdefault((ack.case_id, ack.seq), digest)
        if other != digest:
            report.duplicates += 1
            report.problem(f"two different envelopes were acknowledged for case {ack.case_id} seq {ack.seq}")
    report.acknowledged = len(first)
    by_index = {e.leaf_index: e for e in entries}
    stored_by_case: dict[str, list[bytes]] = {}
    for digest, ack in first.items():
        entry = by_sha.get(digest)
        if entry is None:
            report.lost += 1
            report.problem(
                f"LOST: acknowledged event {ack.event_id} (case {ack.case_id} seq {ack.seq}, leaf {ack.leaf_index}, "
                f"HTTP {ack.status}) is not in the ledger"
            )
            continue
        at_leaf = by_index.get(ack.leaf_index)
        if ack.case_id not in stored_by_case:
            stored_by_case[ack.case_id] = ledger.case_envelopes(ack.case_id)
        stored = stored_by_case[ack.case_id]
        in_store = stored[ack.seq - 1] if 0 < ack.seq <= len(stored) else None
        same = (
            at_leaf is entry
            and entry.envelope == ack.envelope
            and (entry.case_id, entry.seq) == (ack.case_id, ack.seq)
            and merkle.leaf_hash(entry.leaf).hex() == ack.leaf_hash
            and in_store == ack.envelope
        )
        if not same:
            report.mismatched += 1
            report.problem(
                f"MISMATCH: acknowledged event {ack.event_id} (case {ack.case_id} seq {ack.seq}) is stored at leaf "
                f"{entry.leaf_index} / seq {entry.seq}, acknowledged at leaf {ack.leaf_index} with leaf hash "
                f"{ack.leaf_hash}"
            )


def _check_phantoms(report: CheckReport, record: RunRecord, entries: list[StoredEntry]) -> None:
    acked = {_sha(a.envelope) for a in record.acks}
    stored = {_sha(e.envelope) for e in entries if e.envelope}
    abandoned = {i.envelope_sha256 for i in record.indeterminate if i.action == "abandoned"}
    # A request whose client never learned its fate (already a client anomaly) may be stored or not.
    unknown = {i.envelope_sha256 for i in record.indeterminate if i.resolution == "unresolved"} - abandoned
    for e in entries:
        if e.case_id == REGISTRY_CASE_ID or not e.envelope:
            continue
        digest = _sha(e.envelope)
        if digest not in acked and digest not in unknown:
            report.phantom += 1
            why = "an abandoned (absent) request" if digest in abandoned else "never acknowledged"
            report.problem(f"PHANTOM: leaf {e.leaf_index} (case {e.case_id} seq {e.seq}) is {why}")
    for ind in record.indeterminate:
        if not ind.sent:
            continue
        if ind.envelope_sha256 in stored:
            report.indeterminate_present += 1
        else:
            report.indeterminate_absent += 1
        if ind.resolution == "present" and ind.envelope_sha256 not in stored:
            report.problem(
                f"indeterminate event {ind.event_id} was seen present by its client but is not stored"
            )


# -- the log -----------------------------------------------------------------------------------


def _check_root(ledger: Ledger, report: CheckReport, leaf_hashes: list[bytes], size: int) -> bytes:
    recomputed = merkle.root_from_leaf_hashes(leaf_hashes)
    try:
        with ledger.db.read() as tx:
            stored = tlog.root_at(tx, size)
    except LedgerError as exc:
        report.problem(f"tlog.root_at({size}) failed: {exc.message}")
        return recomputed
    report.root_ok = stored == recomputed and len(leaf_hashes) == size
    if not report.root_ok:
        report.problem(f"the stored tree's root at {size} differs from the root recomputed from every leaf")
    return recomputed


def _prefix_roots(leaf_hashes: list[bytes], sizes: set[int]) -> dict[int, bytes]:
    tree = merkle.CompactRange.empty()
    roots: dict[int, bytes] = {}
    for leaf in leaf_hashes:
        tree.append(leaf)
        if tree.size in sizes:
            roots[tree.size] = tree.root()
    return roots


def _check_checkpoints(
    ledger: Ledger,
    report: CheckReport,
    seen: list[bytes],
    leaf_hashes: list[bytes],
    size: int,
    final_root: bytes,
) -> None:
    vkey = ledger.rollback_guard().log_key
    with ledger.db.read() as tx:
        stored = [(int(s), bytes(r)) for s, r in tx.query("SELECT size, root FROM log_checkpoints")]
    recorded = _guard_history(ledger, report)
    parsed: list[note.Checkpoint] = []
    for raw in seen:
        try:
            parsed.append(note.verify_checkpoint(raw, vkey, origin=ledger.origin).checkpoint)
        except (LedgerError, ValueError) as exc:
            report.problem(f"a checkpoint the clients saw does not verify with the log key: {exc}")
    report.checkpoints_seen = len(seen)
    report.stored_checkpoints = len(stored)
    sizes = {c.size for c in parsed} | {s for s, _ in stored} | {s for s, _ in recorded}
    roots = _prefix_roots(leaf_hashes, sizes)
    for cp in parsed:
        if cp.size > size:
            report.problem(f"clients saw checkpoint {cp.size} but the final log has only {size} entries")
            continue
        try:
            proof = [] if cp.size == size else ledger.consistency_proof(cp.size, size)
            merkle.verify_consistency(cp.size, size, proof, cp.root, final_root)
        except LedgerError as exc:
            report.problem(
                f"checkpoint {cp.size} the clients saw is not a prefix of the final log: {exc.message}"
            )
            continue
        if roots.get(cp.size) != cp.root:
            report.problem(f"checkpoint {cp.size}: root differs from the root recomputed from the leaves")
            continue
        report.checkpoints_consistent += 1
    for s, root in stored:
        if s > size or roots.get(s) != root:
            report.problem(f"stored checkpoint {s} does not match the log's leaves")
    for s, root in recorded:
        if s > size or roots.get(s) != root:
            report.problem(f"checkpoint {s} in the rollback guard's history does not match the log's leaves")


def _guard_history(ledger: Ledger, report: CheckReport) -> list[tuple[int, bytes]]:
    """(size, root) of every checkpoint the service recorded outside the database as published."""
    path = ledger.data_dir / GUARD_DIR / HISTORY
    try:
        lines = path.read_text("utf-8").splitlines()
    except FileNotFoundError:
        return []
    recorded = []
    for n, line in enumerate(lines, 1):
        try:
            item = json.loads(line)
            recorded.append((int(item["size"]), base64.b64decode(item["root"], validate=True)))
        except (ValueError, KeyError, TypeError):
            report.problem(f"{path} line {n} is torn or unreadable")
    report.guard_records = len(recorded)
    return recorded


def _check_final_checkpoint(ledger: Ledger, report: CheckReport, size: int, final_root: bytes) -> None:
    status = ledger.rollback_status()
    if status.blocked:
        report.problem(f"rollback guard blocks writes: {status.state}: {status.message}")
        return
    try:
        checkpoint = ledger.checkpoint()
    except LedgerError as exc:
        report.problem(f"Ledger.checkpoint() failed: {exc.code}: {exc.message}")
        return
    if checkpoint is None or checkpoint.size != size or checkpoint.root != final_root:
        got = None if checkpoint is None else checkpoint.size
        report.problem(f"Ledger.checkpoint() covers {got}, not the whole log ({size})")
        return
    try:
        note.verify_checkpoint(
            checkpoint.with_cosignatures(), ledger.rollback_guard().log_key, origin=ledger.origin
        )
    except LedgerError as exc:
        report.problem(f"the final checkpoint does not verify: {exc.message}")
        return
    report.final_checkpoint_ok = True
