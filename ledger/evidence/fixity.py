"""Fixity of the footage store: re-hash every stored file and report what does not match.

Problems: ``HASH_MISMATCH`` (the bytes no longer hash to their name), ``MISSING`` (a
``FootageCaptured`` with ``stored: true`` names a file the store lacks), ``UNEXPECTED_ENTRY``
(anything in the store that is not a well-placed regular file: a symlink, a stray file) and
``UNREADABLE``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from domain.errors import LedgerError
from ledger.evidence.footage import FootageStore, hash_open_file

if TYPE_CHECKING:
    from ledger.store import Ledger


@dataclass(frozen=True)
class FixityProblem:
    code: str  # HASH_MISMATCH | MISSING | UNEXPECTED_ENTRY | UNREADABLE
    what: str  # sha256 or a path relative to the store
    detail: str
    refs: dict[str, str] = field(default_factory=dict)


@dataclass
class FixityReport:
    checked: int = 0
    bytes: int = 0
    problems: list[FixityProblem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def expected_files(ledger: Ledger) -> dict[str, list[dict[str, str]]]:
    """sha256 → the (case, footage) of every FootageCaptured event with ``stored: true``."""
    from ledger.envelope.dsse import parse_envelope

    expected: dict[str, list[dict[str, str]]] = {}
    for entry in ledger.iter_entries():
        if entry.event_type != "FootageCaptured":
            continue
        body = parse_envelope(entry.envelope).statement.body
        if body.get("stored") is True and isinstance(body.get("sha256"), str):
            ref = {"case_id": entry.case_id, "footage_id": str(body.get("footage_id")), "seq": str(entry.seq)}
            expected.setdefault(body["sha256"], []).append(ref)
    return expected


def check_fixity(
    store: FootageStore,
    expected: Mapping[str, Sequence[Mapping[str, str]]],
    *,
    progress: Callable[[int, int], None] | None = None,
) -> FixityReport:
    """Re-hash every stored file; report mismatches, expected files that are missing, and strays.

    ``progress(done_bytes, total_bytes)`` is called as hashing goes."""
    report = FixityReport()
    entries = list(store.scan())
    total = sum(_size(path) for sha, path in entries if sha is not None)
    seen: set[str] = set()
    for sha, path in entries:
        rel = os.path.relpath(path, store.root)
        if sha is None:
            report.problems.append(FixityProblem("UNEXPECTED_ENTRY", rel, "not a stored evidence file"))
            continue
        seen.add(sha)
        _check_one(store, sha, report, total, progress)
    for sha, refs in sorted(expected.items()):
        if sha not in seen:
            for ref in refs:
                report.problems.append(
                    FixityProblem("MISSING", sha, "named by a FootageCaptured with stored: true", dict(ref))
                )
    return report


def _size(path: Path) -> int:
    try:
        return os.lstat(path).st_size
    except OSError:
        return 0


def _check_one(
    store: FootageStore,
    sha: str,
    report: FixityReport,
    total: int,
    progress: Callable[[int, int], None] | None,
) -> None:
    def advance(n: int) -> None:
        report.bytes += n
        if progress is not None:
            progress(report.bytes, total)

    try:
        with store.open(sha) as handle:
            actual, _ = hash_open_file(handle, advance)
    except (OSError, LedgerError) as exc:
        report.problems.append(FixityProblem("UNREADABLE", sha, type(exc).__name__))
        return
    report.checked += 1
    if actual != sha:
        report.problems.append(FixityProblem("HASH_MISMATCH", sha, f"the bytes now hash to {actual}"))
