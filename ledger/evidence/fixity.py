"""Fixity of the footage store: re-hash every stored file and report what does not match.

Problems: ``HASH_MISMATCH`` (the bytes no longer hash to their name), ``MISSING`` (an event that
claims its file is stored, such as a ``FootageCaptured`` with ``stored: true``, names a file the
store lacks: see ``Media.stored_field`` in :mod:`domain.events`), ``UNEXPECTED_ENTRY`` (anything in
the store that is not a well-placed regular file: a symlink, a stray file) and ``UNREADABLE``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from domain.errors import LedgerError
from domain.events import EVENT_TYPES, Media
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


def _stored_media() -> dict[str, Media]:
    """type name → the media declaration of every event type that can claim a stored file."""
    return {
        name: cls.RULES.media
        for name, cls in EVENT_TYPES.items()
        if cls.RULES.media is not None and cls.RULES.media.stored_field is not None
    }


def _claim() -> str:
    """How the events that claim a stored file are named in MISSING problems."""
    return " or ".join(f"{name} with {media.stored_field}: true" for name, media in _stored_media().items())


def expected_files(ledger: Ledger) -> dict[str, list[dict[str, str]]]:
    """sha256 → the (case, file id, seq) of every event that claims its file is stored (e.g. a
    FootageCaptured with ``stored: true``)."""
    from ledger.envelope.dsse import parse_envelope

    claims = _stored_media()
    expected: dict[str, list[dict[str, str]]] = {}
    for entry in ledger.iter_entries():
        media = claims.get(entry.event_type)
        if media is None or media.stored_field is None:
            continue
        body = parse_envelope(entry.envelope).statement.body
        sha = body.get(media.sha256_field)
        if body.get(media.stored_field) is True and isinstance(sha, str):
            ref = {
                "case_id": entry.case_id,
                media.id_field: str(body.get(media.id_field)),
                "seq": str(entry.seq),
            }
            expected.setdefault(sha, []).append(ref)
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
                report.problems.append(FixityProblem("MISSING", sha, f"named by a {_claim()}", dict(ref)))
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
