"""The full-ledger audit: re-verify every stored envelope, leaf, node, checkpoint and read model.

``run_audit(data, options)`` takes what ``ledger.audit_source`` read (from the database or a
server) and trusts nothing in it but the log key and the trust root it is given:

1. ``verify.log_match`` pairs each leaf with the stored event whose bytes it commits to (no join);
2. the shared engine (``verify.engine``) checks every envelope in leaf order: strict canonical
   form, signature against the key registry as of its position (verified in parallel on all
   cores), per-case chains, leaf bytes and the case rules;
3. ``verify.log_checks`` folds the leaves into the tree, compares every stored node, and checks
   every checkpoint (stored, kept by the auditor, from the rollback guard) against the roots;
4. ``audit_projection`` rebuilds the read models from the verified states and compares them;
5. ``ledger.audit.access`` recomputes the access log's tree from its entries and checks its
   checkpoints (check 13).

Findings carry stable codes (docs/audit.md) and exact locations. Exit code: 0 clean, 1 findings.
"""

from __future__ import annotations

import base64
import gc
import json
import os
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from domain.context import DomainConfig
from ledger.audit.access import AccessAudit, audit_access
from ledger.audit.by_case import ByCase, check_by_case, located, projection_findings
from ledger.audit.case_numbers import case_number_findings
from ledger.audit.projection import compare_read_models, rebuild_read_models
from ledger.audit.source import AuditInput
from ledger.audit.timestamps import MAX_SKEW, TimestampPolicy, timestamp_findings
from ledger.envelope.canonical import format_time
from ledger.envelope.dsse import REGISTRY_CASE_ID, UnverifiedEnvelope
from ledger.log import merkle, note
from ledger.storage.integrity import RowMac
from ledger.verify import (
    CheckpointInput,
    Entry,
    EntryChecker,
    Finding,
    KnownCheckpoint,
    Matched,
    check_checkpoints,
    check_pipelined,
    checkpoint_sizes,
    match_log,
    order_findings,
    parse_all,
    public_keys_in,
    scan_tree,
)

Progress = Callable[[str, int, int | None], None]
BY_CASE_PHASE = "cases (entries, order, projections)"  # the timing of the parallel path (by_case)


def _noop(_phase: str, _done: int, _total: int | None) -> None:
    return None


@dataclass
class AuditOptions:
    """What the auditor trusts and how hard to work."""

    log_key: note.VerifierKey
    independent: bool  # the log key came from outside the audited data
    origin: str | None = None
    trust_root: str | None = None
    kept: list[CheckpointInput] = field(default_factory=list)
    witnesses: list[note.VerifierKey] = field(default_factory=list)
    min_witnesses: int | None = None
    workers: int = field(default_factory=lambda: os.cpu_count() or 1)
    config: DomainConfig | None = None
    mac: RowMac | None = None  # the service's state key: row MACs are checked too
    history: list[dict[str, Any]] | None = None  # the rollback guard's record of every checkpoint
    now: datetime = field(default_factory=lambda: datetime.now(UTC))
    max_checkpoint_age: timedelta = timedelta(minutes=5)
    require_witnessed: bool = False  # production: entries must be covered by a witnessed checkpoint in time
    timestamps: TimestampPolicy = field(default_factory=TimestampPolicy)  # RFC 3161 tokens (check 8)


@dataclass
class AuditReport:
    source: str
    independent: bool
    findings: list[Finding] = field(default_factory=list)
    log_size: int = 0
    events: int = 0
    cases: int = 0
    checkpoints: list[KnownCheckpoint] = field(default_factory=list)
    witnessed_size: int | None = None
    uncheckpointed: dict[str, int] | None = None  # {"count", "first_index"} past the newest checkpoint
    notes: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    expected_log_head: tuple[int, bytes, str] | None = None
    access: dict[str, Any] | None = None  # {"size", "latest_checkpoint"} of the access log, when read
    stamped: dict[int, str] = field(default_factory=dict)  # checkpoint size -> verified genTime (RFC 3161)

    @property
    def exit_code(self) -> int:
        return 1 if self.findings else 0

    @property
    def latest_checkpoint(self) -> int | None:
        sizes = [c.size for c in self.checkpoints if not c.external]
        return max(sizes) if sizes else None

    def codes(self) -> list[tuple[str, int | None, str | None, int | None]]:
        return [(f.code, f.leaf_index, f.case_id, f.seq) for f in self.findings]

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": not self.findings,
            "source": self.source,
            "independent": self.independent,
            "log_size": self.log_size,
            "events": self.events,
            "cases": self.cases,
            "latest_checkpoint": self.latest_checkpoint,
            "witnessed_size": self.witnessed_size,
            "uncheckpointed": self.uncheckpointed,
            "access_log": self.access,
            "timestamps": {str(size): gen_time for size, gen_time in sorted(self.stamped.items())},
            "checkpoints": [
                {"size": c.size, "source": c.source, "cosigned_by": list(c.cosigned_by)}
                for c in self.checkpoints
                if c.external
            ],
            "findings": [f.to_json() for f in self.findings],
            "notes": self.notes,
            "timings": {k: round(v, 3) for k, v in self.timings.items()},
        }


@contextmanager
def paused_gc() -> Iterator[None]:
    """No cyclic garbage collection while the audit builds millions of long-lived objects (each
    full collection would walk all of them; the signature workers also fork with fewer dirty pages)."""
    was = gc.isenabled()
    gc.freeze()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()
        gc.unfreeze()


class _Timer:
    def __init__(self, report: AuditReport) -> None:
        self.report = report

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.report.timings[name] = time.perf_counter() - start


# --- the engine over all entries ------------------------------------------------------------------


def check_all(
    entries: Sequence[Entry],
    options: AuditOptions,
    progress: Progress = _noop,
    known_keys: Mapping[str, bytes] | None = None,
) -> tuple[EntryChecker, dict[int, UnverifiedEnvelope]]:
    """The engine's checks over every entry in leaf order, signatures verified on all cores while
    the main process parses and checks (``verify.pipeline``); keeps the parsed envelopes for the
    projection rebuild so that nothing is parsed twice."""
    return check_pipelined(
        entries,
        origin=options.origin,
        config=options.config,
        trust_root=options.trust_root,
        workers=options.workers,
        known_keys=known_keys,
        progress=progress,
    )


class _Clock:
    """Laps into a timings dict (when one is given)."""

    def __init__(self, timings: dict[str, float] | None) -> None:
        self.timings = timings
        self.last = time.perf_counter()

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        if self.timings is not None:
            self.timings[name] = now - self.last
        self.last = now


# --- the audit ----------------------------------------------------------------------------------


def _leaf_hashes(data: AuditInput) -> list[bytes]:
    """Leaf hashes in index order, up to the first position with no leaf (and no stored node)."""
    by_index = {row.leaf_index: row.leaf for row in data.log}
    hashes: list[bytes] = []
    while True:
        leaf = by_index.get(len(hashes))
        if leaf is not None:
            hashes.append(merkle.leaf_hash(leaf))
        elif data.nodes is not None and (0, len(hashes)) in data.nodes:
            hashes.append(data.nodes[(0, len(hashes))])  # a deleted row: its MISSING_ENTRY is reported
        else:
            return hashes


LEDGER_WIDE = ("UNCHECKPOINTED_ENTRIES", "WITNESS_POLICY")  # located at a leaf, but about the log, not that leaf's case


def _cases_with_findings(findings: Sequence[Finding], data: AuditInput) -> set[str]:
    case_of = {row.leaf_index: row.case_id for row in data.log}
    cases = {f.case_id for f in findings if f.case_id is not None}
    cases |= {
        c
        for f in findings
        if f.case_id is None
        and f.leaf_index is not None
        and f.code not in LEDGER_WIDE
        and (c := case_of.get(f.leaf_index))
    }
    return cases


@dataclass
class _Tree:
    """The tree folded from the leaves and the checkpoints checked against it (no entry needed)."""

    short: int | None  # the tree could be rebuilt only up to this leaf
    scan: Any
    checked: Any


def _tree(data: AuditInput, options: AuditOptions, log_size: int) -> _Tree:
    hashes = _leaf_hashes(data)
    inputs = data.checkpoints + options.kept
    scan = scan_tree(hashes, {*checkpoint_sizes(inputs), log_size}, data.nodes)
    checked = check_checkpoints(
        scan,
        inputs,
        log_key=options.log_key,
        origin=options.origin,
        witnesses=options.witnesses,
        min_witnesses=options.min_witnesses,
        log_size=log_size,
    )
    return _Tree(len(hashes) if len(hashes) < log_size else None, scan, checked)


def _log_checks(data: AuditInput, options: AuditOptions, report: AuditReport, tree: _Tree) -> None:
    if tree.short is not None:
        report.notes.append(f"the tree could be rebuilt only up to leaf {tree.short} (a leaf is missing)")
    scan, checked = tree.scan, tree.checked
    report.findings += scan.findings + checked.findings
    report.checkpoints = checked.known
    report.witnessed_size = checked.witnessed_size
    root = scan.roots.get(report.log_size)
    log_findings = any(2 <= f.step <= 7 for f in report.findings)
    if report.log_size and root is not None and data.log and not log_findings:
        last = max(data.log, key=lambda r: r.leaf_index)
        last_time = last.integrated_at or _leaf_time(last.leaf)
        if last_time is not None:
            report.expected_log_head = (report.log_size, root, last_time)
    report.findings += checkpoint_row_findings(data, options, checked.findings)
    _uncheckpointed(data, options, report)
    _unwitnessed(data, options, report)


def checkpoint_row_findings(
    data: AuditInput, options: AuditOptions, already: Sequence[Finding] = ()
) -> list[Finding]:
    """CHECKPOINT_TAMPERED: a checkpoint row missing, altered or re-timed, judged by the rollback
    guard's record of every checkpoint (kept outside the database) and by the rows themselves
    (signing times never go back, and never precede the last leaf they cover)."""
    findings: list[Finding] = []
    if data.nodes is None:  # a server shows only its latest checkpoint, not the rows
        return findings
    reported = {f.evidence.get("size") for f in already}

    def tampered(size: int, what: str) -> None:
        if size in reported:
            return
        findings.append(
            Finding("CHECKPOINT_TAMPERED", 8, f"checkpoint row of size {size} {what}", evidence={"size": size})
        )

    times = data.checkpoint_times
    leaf_time = {row.leaf_index: row.integrated_at for row in data.log}
    previous = ""
    for size in sorted(times):
        covered = leaf_time.get(size - 1)
        if times[size] < previous or (covered is not None and times[size] < covered):
            tampered(size, "has a signing time before an earlier checkpoint's or before its last leaf")
        previous = max(previous, times[size])
    roots = {c.size: c.root for c in data.checkpoints if c.size is not None}
    log_size = (max(r.leaf_index for r in data.log) + 1) if data.log else 0
    for line in options.history or ():
        size = int(line["size"])
        if size > log_size:
            continue  # the log itself is shorter: a ROLLBACK, reported as such
        if size not in roots:
            tampered(size, "is missing (the rollback guard recorded it)")
        elif base64.b64encode(roots[size] or b"").decode("ascii") != line.get("root"):
            tampered(size, "has another root than the rollback guard recorded")
        elif line.get("signed_at") is not None and times.get(size) != line["signed_at"]:
            tampered(size, "has another signing time than the rollback guard recorded")
    unique: dict[int, Finding] = {}
    for f in findings:
        unique.setdefault(f.evidence["size"], f)  # one finding per checkpoint row
    return list(unique.values())


def _uncheckpointed(data: AuditInput, options: AuditOptions, report: AuditReport) -> None:
    """Entries past the newest stored checkpoint: always reported, a finding once the oldest of
    them has waited longer than ``max_checkpoint_age``."""
    newest = report.latest_checkpoint or 0
    if report.log_size <= newest:
        return
    count = report.log_size - newest
    report.uncheckpointed = {"count": count, "first_index": newest}
    report.notes.append(f"{count} log entries past the newest checkpoint, from index {newest}")
    since = _overdue(data, newest, options)
    if since is not None:
        report.findings.append(
            Finding(
                "UNCHECKPOINTED_ENTRIES",
                8,
                f"{count} entries from index {newest} on are covered by no checkpoint, the first since "
                f"{since} (longer than {int(options.max_checkpoint_age.total_seconds())} s)",
                leaf_index=newest,
                evidence={"count": count, "first_index": newest, "integrated_at": since},
            )
        )


def _unwitnessed(data: AuditInput, options: AuditOptions, report: AuditReport) -> None:
    """Production policy (``require_witnessed``): entries past the newest checkpoint cosigned by the
    required witnesses are the finding WITNESS_POLICY once the oldest of them has waited longer than
    ``max_checkpoint_age``: the log was never published for them."""
    if not options.require_witnessed:
        return
    witnessed = report.witnessed_size or 0
    if report.log_size <= witnessed:
        return
    count = report.log_size - witnessed
    since = _overdue(data, witnessed, options)
    if since is not None:
        required = len(options.witnesses) if options.min_witnesses is None else options.min_witnesses
        report.findings.append(
            Finding(
                "WITNESS_POLICY",
                8,
                f"{count} entries from index {witnessed} on are covered by no checkpoint cosigned by {required}"
                f" witnesses, the first since {since} (longer than {int(options.max_checkpoint_age.total_seconds())}"
                " s): they were never published",
                leaf_index=witnessed,
                evidence={"count": count, "first_index": witnessed, "integrated_at": since, "required": required},
            )
        )


def _overdue(data: AuditInput, first_index: int, options: AuditOptions) -> str | None:
    """The integration time of the first entry from ``first_index`` on when those entries are overdue
    (None while they are not): the first has waited longer than ``max_checkpoint_age``, or one of them
    claims a time after now + ``MAX_SKEW``. Only entries dated within the window up to now (+ the skew)
    are too recent: a forward-dated tail, as an insider rewriting it would write, is no excuse."""
    times = {
        row.leaf_index: row.integrated_at or _leaf_time(row.leaf) for row in data.log if row.leaf_index >= first_index
    }
    since = times.get(first_index)
    if since is None:
        return None
    ahead = format_time(options.now + MAX_SKEW)
    if since < format_time(options.now - options.max_checkpoint_age) or any(
        t is not None and t > ahead for t in times.values()
    ):
        return since
    return None


def _leaf_time(leaf: bytes) -> str | None:
    """The integration time a leaf commits to (None if it is not a well-formed leaf)."""
    try:
        value = json.loads(leaf).get("integrated_at")
    except (ValueError, AttributeError):
        return None
    return value if isinstance(value, str) else None


def _timestamp_checks(data: AuditInput, options: AuditOptions, report: AuditReport) -> None:
    """Every stored RFC 3161 token, and the time-stamp policy (``ledger.audit.timestamps``)."""
    policy = options.timestamps
    if data.timestamps is None:
        if policy.trusts:
            report.notes.append("RFC 3161 time-stamps not checked (this source does not show them)")
        return
    found, stamped = timestamp_findings(
        data.timestamps, data.checkpoints, data.checkpoint_times, data.log, policy, options.now
    )
    report.findings += found
    report.stamped = {size: format_time(t) for size, t in stamped.items()}
    if not policy.trusts:
        if data.timestamps:
            report.notes.append(
                f"{len(data.timestamps)} RFC 3161 time-stamp(s) checked against their checkpoints but not their"
                " signatures: give --tsa-cert with each TSA's CA certificate"
            )
    elif policy.source != "--tsa-cert":
        report.notes.append(
            f"the TSA certificates were taken from the audited data dir ({policy.source}), not given with"
            " --tsa-cert: the time-stamp check is not independent"
        )


def _token_checks(data: AuditInput, report: AuditReport) -> None:
    if data.tampered_tokens is None:
        if data.read_models is not None:
            report.notes.append("API tokens not checked (the service's state key was not available)")
        return
    for record in data.tampered_tokens:
        report.findings.append(
            Finding(
                "TOKEN_TAMPERED",
                12,
                f"API token {record.token_id} (or its revocation) is not as the service wrote it",
                evidence={"token_id": record.token_id},
            )
        )


def _access_audit(data: AuditInput, options: AuditOptions) -> AccessAudit | None:
    if data.access is None:
        return None
    return audit_access(
        data.access, log_key=options.log_key, origin=options.origin, now=options.now,
        max_age=options.max_checkpoint_age,
    )


def _access_checks(report: AuditReport, checked: AccessAudit | None) -> None:
    if checked is None:
        report.notes.append("access log not checked (not readable from this source)")
        return
    report.access = checked.to_json()
    report.findings += checked.findings
    report.notes += checked.notes


def _projection_checks(
    data: AuditInput,
    options: AuditOptions,
    checker: EntryChecker,
    parsed: dict[int, UnverifiedEnvelope],
    report: AuditReport,
) -> None:
    if data.read_models is None:
        report.notes.append("read models not compared (not readable from this source)")
        return
    skip = _cases_with_findings(report.findings, data)
    expected = rebuild_read_models(checker, parsed, skip, report.log_size, report.expected_log_head)
    report.findings += compare_read_models(expected, data.read_models, skip, options.mac)
    if options.mac is None:
        report.notes.append("read-model MACs not checked (the service's state key was not available)")
    if skip:
        report.notes.append(f"projections of {len(skip)} case(s) not compared: their events have findings")


def _projection_checks_by_case(
    data: AuditInput, options: AuditOptions, by_case: ByCase, report: AuditReport
) -> None:
    """As ``_projection_checks``, from the per-case comparisons the workers made."""
    if data.read_models is None:
        report.notes.append("read models not compared (not readable from this source)")
        return
    skip = _cases_with_findings(report.findings, data)
    report.findings += projection_findings(
        by_case, data.read_models, skip, options.mac, report.log_size, report.expected_log_head
    )
    if options.mac is None:
        report.notes.append("read-model MACs not checked (the service's state key was not available)")
    if skip:
        report.notes.append(f"projections of {len(skip)} case(s) not compared: their events have findings")


def _entry_checks(
    data: AuditInput, matched: Matched, options: AuditOptions, report: AuditReport, progress: Progress
) -> tuple[EntryChecker, dict[int, UnverifiedEnvelope]]:
    """The serial path (with signatures verified by worker processes when ``workers`` > 1)."""
    clock = _Clock(report.timings)
    registry = [e for e in matched.entries if matched.rows[e.leaf_index].case_id == REGISTRY_CASE_ID]
    known_keys = public_keys_in(parse_all(registry).values())  # so that workers verify every signature
    checker, parsed = check_all(matched.entries, options, progress, known_keys)
    clock.lap("entries")
    event_ids = {i: env.statement.event_id for i, env in parsed.items()}
    report.findings += matched.findings + located(checker)
    report.findings += order_findings(matched, checker.checked, data.log, event_ids)
    report.cases = sum(1 for case_id in checker.cases if case_id != REGISTRY_CASE_ID)
    clock.lap("order")
    return checker, parsed


def run_audit(data: AuditInput, options: AuditOptions, progress: Progress = _noop) -> AuditReport:
    """Every check over ``data``; findings sorted by location."""
    with paused_gc():
        return _run_audit(data, options, progress)


def _run_audit(data: AuditInput, options: AuditOptions, progress: Progress) -> AuditReport:
    report = AuditReport(data.source, options.independent)
    report.log_size = (max(r.leaf_index for r in data.log) + 1) if data.log else 0
    report.events = len(data.events)
    timer = _Timer(report)
    clock = _Clock(report.timings)
    matched = match_log(data.log, data.events)
    clock.lap("match")

    def meanwhile() -> tuple[_Tree, AccessAudit | None]:
        with timer.phase("tree and checkpoints"):
            tree = _tree(data, options, report.log_size)
        with timer.phase("access log"):
            return tree, _access_audit(data, options)

    by_case, (tree, access) = check_by_case(
        matched.entries,
        matched,
        data.log,
        data.read_models,
        origin=options.origin,
        config=options.config,
        trust_root=options.trust_root,
        mac=options.mac,
        workers=options.workers,
        progress=progress,
        meanwhile=meanwhile,
    )
    if by_case is None:
        checker, parsed = _entry_checks(data, matched, options, report, progress)
        _log_checks(data, options, report, tree)
        with timer.phase("projections"):
            _projection_checks(data, options, checker, parsed, report)
    else:
        clock.lap(BY_CASE_PHASE)
        report.findings += matched.findings + by_case.engine + by_case.order
        report.cases = by_case.cases
        _log_checks(data, options, report, tree)
        _projection_checks_by_case(data, options, by_case, report)
    report.findings += case_number_findings(matched.entries, matched.rows)
    _timestamp_checks(data, options, report)
    _token_checks(data, report)
    _access_checks(report, access)
    report.findings.sort(key=_order)
    _add_notes(data, options, report)
    return report


def _order(f: Finding) -> tuple[int, int, str, int, str]:
    index = f.leaf_index if f.leaf_index is not None else 1 << 62
    return (index, f.step, f.case_id or "", f.seq or 0, f.code)


def _add_notes(data: AuditInput, options: AuditOptions, report: AuditReport) -> None:
    if not options.independent:
        report.notes.insert(
            0,
            "the log key was taken from the audited data dir or server, not given with --vkey: "
            "this is not an independent check",
        )
    if options.trust_root is None:
        report.notes.append("the trust root (first admin key) was not pinned")
    if not data.all_events:
        report.notes.append("only logged envelopes were visible: unlogged events and tree nodes not checked")
    if not any(c.external for c in report.checkpoints):
        report.notes.append(
            "no checkpoint kept outside the database: a restored older copy of the database "
            "would not be noticed (keep checkpoints between audits, see docs/audit.md)"
        )
