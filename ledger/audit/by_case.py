"""The audit's per-entry checks, ordering checks and projection comparison, case by case on all cores.

Cases are independent: a case's chain, rules, timeline and read-model rows depend only on its own
entries, in leaf order, and on the key registry *as of each entry's position*. So:

1. the main process checks the registry stream's entries first, in leaf order, with the ordinary
   ``EntryChecker``, and keeps the registry after each of them (a leaf index and a state: the
   states are immutable, so this costs one reference per registry event);
2. every other entry goes to the group of the case its stored event row names (the routing hint),
   and the groups are dealt out to worker processes (forked: they inherit the entries, the log
   rows and the live read models; nothing is pickled but the case ids of each task and the
   findings that come back);
3. a worker checks each case's entries in leaf order with an ``EntryChecker`` whose registry is the
   one in force at each leaf index (``registry_at``), runs the ordering checks of those entries and
   rebuilds and compares the case's read-model rows. It returns findings and counts only.

The result is exactly that of the serial audit: the same checks run on the same entries in the
same per-case order, and the findings are merged back in leaf order (each leaf belongs to one
task, and a stable sort keeps a leaf's findings in the order they were made). Whenever that could
not hold, :func:`check_by_case` returns None and the caller runs the serial path instead:

* this process cannot fork, or runs other threads (a forked child has only the forking thread; a
  lock another thread held at the fork would never be released there);
* the first entry is not the registry's trust root being applied (the serial checker would then
  judge later entries by the trust-root rule, which depends on every entry before them);
* two entries claim the same leaf index;
* an envelope's statement names another case than its stored row (a worker would have checked the
  case without it): the workers report this and the whole check is run serially.

A worker that raises re-raises its exception here; one that dies raises ``BrokenProcessPool``.
Nothing is swallowed and nothing waits for ever.
"""

from __future__ import annotations

import bisect
import heapq
import multiprocessing
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

from domain.context import DomainConfig
from domain.errors import LedgerError
from ledger.audit.projection import compare_read_models, rebuild_read_models
from ledger.audit.source import ReadModels
from ledger.envelope.dsse import REGISTRY_CASE_ID, UnverifiedEnvelope, parse_envelope
from ledger.storage.integrity import RowMac
from ledger.storage.read_models import READ_MODEL_FORMAT
from ledger.verify import Entry, EntryChecker, Finding, LogRow, Matched, can_fork, order_findings

MIN_ENTRIES = 1000  # below this a pool costs more than it saves
TASKS_PER_WORKER = 4  # several tasks per worker even out cases of different sizes

Progress = Callable[[str, int, int | None], None]
T = TypeVar("T")


def located(checker: EntryChecker) -> list[Finding]:
    """The engine's findings, each with the case and seq of its statement when the engine found
    the problem before reading them (leaf checks come first)."""
    where = {c.leaf_index: c for c in checker.checked}
    out = []
    for f in checker.findings:
        c = where.get(f.leaf_index) if f.leaf_index is not None and f.case_id is None else None
        out.append(f if c is None or c.case_id is None else replace(f, case_id=c.case_id, seq=c.seq))
    return out


@dataclass
class _Job:
    """Everything a worker needs; inherited at fork, never pickled."""

    groups: dict[str, list[Entry]]  # case id (as the event row names it) -> its entries in leaf order
    tasks: list[list[str]]  # case ids of each task
    matched: Matched
    log_rows: dict[int, LogRow]
    registry_leaves: list[int]
    registry_states: list[Any]
    origin: str | None
    config: DomainConfig | None
    trust_root: str | None
    live: ReadModels | None
    live_lines: dict[str, list[int]]  # case id -> seqs of its live timeline rows
    live_links: dict[str, list[tuple[str, int]]]  # case id -> (footage id, step) of its custody rows
    live_releases: dict[str, list[str]]  # case id -> footage ids (or the statistics key) of its rows
    mac: RowMac | None

    def registry_at(self, leaf_index: int) -> Any:
        """The registry after every registry entry before ``leaf_index`` (None before the first)."""
        n = bisect.bisect_left(self.registry_leaves, leaf_index)
        return self.registry_states[n - 1] if n else None


_JOB: _Job | None = None  # set in the parent just before the pool forks


@dataclass
class GroupResult:
    """What checking some cases found (findings in leaf order within the group)."""

    engine: list[Finding] = field(default_factory=list)
    order: list[Finding] = field(default_factory=list)
    drift: list[Finding] = field(default_factory=list)  # PROJECTION_DRIFT per case, before the global skip
    entries: int = 0
    cases: int = 0  # case tracks (the registry not counted)
    rebuilt_cases: int = 0  # rebuilt case_state rows (the registry not counted)
    releases: int = 0  # rebuilt public_releases rows
    mismatch: bool = False  # a statement names another case than its row: redo serially


def _parse(raw: bytes) -> UnverifiedEnvelope | None:
    try:
        return parse_envelope(raw)
    except LedgerError:
        return None  # the checker reports it with its exact reason


def _live_subset(job: _Job, case_ids: Iterable[str]) -> ReadModels:
    """The live rows of these cases only (no ledger-wide rows)."""
    live, sub = job.live, ReadModels()
    assert live is not None
    macs = live.macs
    for case_id in case_ids:
        row = live.case_state.get(case_id)
        if row is not None:
            sub.case_state[case_id] = row
            sub.case_numbers[case_id] = live.case_numbers.get(case_id)
            if (key := ("case_state", case_id)) in macs:
                sub.macs[key] = macs[key]
        for seq in job.live_lines.get(case_id, ()):
            sub.timeline[(case_id, seq)] = live.timeline[(case_id, seq)]
            if (key2 := ("case_timeline", (case_id, seq))) in macs:
                sub.macs[key2] = macs[key2]
        for footage_id, step in job.live_links.get(case_id, ()):
            sub.custody[(case_id, footage_id, step)] = live.custody[(case_id, footage_id, step)]
            if (key4 := ("case_custody", (case_id, footage_id, step))) in macs:
                sub.macs[key4] = macs[key4]
        for footage in job.live_releases.get(case_id, ()):
            sub.releases[(case_id, footage)] = live.releases[(case_id, footage)]
            if (key3 := ("public_releases", (case_id, footage))) in macs:
                sub.macs[key3] = macs[key3]
    return sub


def finish_group(
    job: _Job,
    case_ids: Sequence[str],
    checker: EntryChecker,
    parsed: dict[int, UnverifiedEnvelope],
    result: GroupResult,
) -> GroupResult:
    """The ordering checks of the group's entries and the comparison of its cases' read models."""
    rows = [job.log_rows[c.leaf_index] for c in checker.checked if c.leaf_index in job.log_rows]
    event_ids = {i: env.statement.event_id for i, env in parsed.items()}
    result.engine = located(checker)
    result.order = order_findings(job.matched, checker.checked, rows, event_ids)
    result.cases = sum(1 for case_id in checker.cases if case_id != REGISTRY_CASE_ID)
    if job.live is None:
        return result
    skip = {f.case_id for f in (*result.engine, *result.order) if f.case_id is not None}
    expected = rebuild_read_models(checker, parsed, skip, 0, None)
    result.rebuilt_cases = sum(1 for case_id in expected.case_state if case_id != REGISTRY_CASE_ID)
    result.releases = len(expected.releases)
    result.drift = compare_read_models(expected, _live_subset(job, case_ids), skip, job.mac)
    return result


def _check_task(task: int) -> GroupResult:
    """In a worker: every case of one task, each in leaf order, against the registry of its positions."""
    job = _JOB
    assert job is not None, "the audit's worker state is set before the pool forks"
    result = GroupResult()
    checker = EntryChecker(
        origin=job.origin,
        config=job.config,
        trust_root=job.trust_root,
        registry_at=job.registry_at,
        keep_events=job.live is not None,
    )
    parsed: dict[int, UnverifiedEnvelope] = {}
    case_ids = job.tasks[task]
    for case_id in case_ids:
        for entry in job.groups.get(case_id, ()):
            envelope = _parse(entry.envelope)
            if envelope is not None:
                if envelope.statement.case_id != case_id:
                    return GroupResult(mismatch=True)
                parsed[entry.leaf_index] = envelope
            checker.check(entry, envelope)
            result.entries += 1
    return finish_group(job, case_ids, checker, parsed, result)


def _group(entries: Sequence[Entry], matched: Matched) -> dict[str, list[Entry]]:
    groups: dict[str, list[Entry]] = {}
    for entry in entries:
        groups.setdefault(matched.rows[entry.leaf_index].case_id, []).append(entry)
    return groups


def _deal(groups: dict[str, list[Entry]], others: Iterable[str], count: int) -> list[list[str]]:
    """Case ids into at most ``count`` tasks of about the same number of entries: each case, the
    largest first, to the task with the fewest so far; cases with live rows only go round."""
    tasks: list[list[str]] = [[] for _ in range(count)]
    heap = [(0, n) for n in range(count)]
    for case_id in sorted((c for c in groups if c != REGISTRY_CASE_ID), key=lambda c: -len(groups[c])):
        size, n = heap[0]
        tasks[n].append(case_id)
        heapq.heapreplace(heap, (size + len(groups[case_id]), n))
    for n, case_id in enumerate(sorted(others)):
        tasks[n % count].append(case_id)
    return [t for t in tasks if t]


@dataclass
class _LiveIndex:
    """Which live rows belong to which case (so that a worker takes its cases' rows only)."""

    lines: dict[str, list[int]] = field(default_factory=dict)
    links: dict[str, list[tuple[str, int]]] = field(default_factory=dict)
    releases: dict[str, list[str]] = field(default_factory=dict)
    cases: set[str] = field(default_factory=set)


def _live_index(live: ReadModels | None) -> _LiveIndex:
    index = _LiveIndex()
    if live is None:
        return index
    for case_id, seq in live.timeline:
        index.lines.setdefault(case_id, []).append(seq)
    for case_id, footage_id, step in live.custody:
        index.links.setdefault(case_id, []).append((footage_id, step))
    for case_id, footage in live.releases:
        index.releases.setdefault(case_id, []).append(footage)
    index.cases = {*live.case_state, *index.lines, *index.links, *index.releases}
    return index


@dataclass
class ByCase:
    """The merged result: as ``run._entry_checks`` and ``_projection_checks`` would give."""

    engine: list[Finding]
    order: list[Finding]
    cases: int
    drift: list[Finding]  # per case, before the global skip
    rebuilt_cases: int
    releases: int


def _by_leaf(findings: Iterable[Finding]) -> list[Finding]:
    return sorted(findings, key=lambda f: -1 if f.leaf_index is None else f.leaf_index)


def check_by_case(
    entries: Sequence[Entry],
    matched: Matched,
    log: Sequence[LogRow],
    live: ReadModels | None,
    *,
    origin: str | None,
    config: DomainConfig | None,
    trust_root: str | None,
    mac: RowMac | None,
    workers: int,
    progress: Progress,
    meanwhile: Callable[[], T],
) -> tuple[ByCase | None, T]:
    """Check every case in parallel (see the module's docstring); ``meanwhile`` runs in this process
    while the workers check. None when the serial path must be taken instead."""
    global _JOB
    usable = (
        workers > 1
        and len(entries) >= max(1, MIN_ENTRIES)
        and can_fork()  # ``evidence-ledger audit`` closes the ledger (its pool's threads) first
        and len({e.leaf_index for e in entries}) == len(entries)
        and matched.rows[entries[0].leaf_index].case_id == REGISTRY_CASE_ID
    )
    if not usable:
        return None, meanwhile()
    groups = _group(entries, matched)
    checker = EntryChecker(origin=origin, config=config, trust_root=trust_root, keep_events=True)
    parsed: dict[int, UnverifiedEnvelope] = {}
    leaves: list[int] = []
    states: list[Any] = []
    for entry in groups.get(REGISTRY_CASE_ID, ()):
        envelope = _parse(entry.envelope)
        if envelope is not None:
            if envelope.statement.case_id != REGISTRY_CASE_ID:
                return None, meanwhile()
            parsed[entry.leaf_index] = envelope
        checker.check(entry, envelope)
        if checker.registry is None:
            return None, meanwhile()  # the trust root did not apply: the serial rules take over
        leaves.append(entry.leaf_index)
        states.append(checker.registry)
    index = _live_index(live)
    others = index.cases - set(groups) - {REGISTRY_CASE_ID}
    tasks = _deal(groups, others, workers * TASKS_PER_WORKER)
    job = _Job(
        groups, tasks, matched, {r.leaf_index: r for r in log}, leaves, states, origin, config, trust_root,
        live, index.lines, index.links, index.releases, mac,
    )
    registry = finish_group(job, [REGISTRY_CASE_ID], checker, parsed, GroupResult(entries=len(leaves)))
    _JOB = job
    try:
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork")) as pool:
            futures = [pool.submit(_check_task, n) for n in range(len(tasks))]
            done = meanwhile()
            results = [registry]
            checked = registry.entries
            for future in futures:
                results.append(future.result())
                checked += results[-1].entries
                progress("checking", checked, len(entries))
    finally:
        _JOB = None
    if any(r.mismatch for r in results):
        return None, done
    return (
        ByCase(
            engine=_by_leaf(f for r in results for f in r.engine),
            order=_by_leaf(f for r in results for f in r.order),
            cases=sum(r.cases for r in results),
            drift=[f for r in results for f in r.drift],
            rebuilt_cases=sum(r.rebuilt_cases for r in results),
            releases=sum(r.releases for r in results),
        ),
        done,
    )


def projection_findings(
    by_case: ByCase,
    live: ReadModels,
    skip: set[str],
    mac: RowMac | None,
    log_size: int,
    log_head: tuple[int, bytes, str] | None,
) -> list[Finding]:
    """What ``compare_read_models`` gives over the whole ledger: the per-case drift of the cases not
    skipped, with the ledger-wide rows (tracking position, log head and their MACs) compared here."""
    expected = ReadModels()
    expected.tracking = log_size - 1 if log_size else None
    expected.log_head = (
        None
        if log_head is None or skip
        else (*log_head, by_case.rebuilt_cases, by_case.releases, READ_MODEL_FORMAT)
    )
    wide = ReadModels(tracking=live.tracking, log_head=live.log_head)
    for key in (("projection_tracking", "read_models"), ("log_head", 1)):
        if key in live.macs:
            wide.macs[key] = live.macs[key]
    found = compare_read_models(expected, wide, skip, mac)
    found += [f for f in by_case.drift if f.case_id not in skip]
    return sorted(found, key=lambda f: f.case_id or "")
