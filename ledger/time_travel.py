"""Time travel: a case exactly as the ledger knew it at a past leaf index or time.

The stored events of the key registry and of the case up to that leaf are read (leaf and envelope
side by side), re-verified and folded by the shared engine: the same domain code as the append
path, each signer judged by the registry as of its own position. The result has the shape of
``Ledger.case_view`` plus ``as_of`` = {leaf_index, integrated_at, requested}.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from domain import projections
from domain.context import DomainConfig
from domain.errors import MalformedInputError, NotFoundError, VerificationError
from ledger.envelope.canonical import format_time, parse_time
from ledger.envelope.dsse import REGISTRY_CASE_ID
from ledger.log import tlog
from ledger.storage.sql import Database, Tx
from ledger.verify import Entry, check_entries


def moment(text: str) -> str:
    """An RFC 3339 time (UTC 'Z' or with an offset) in the stored ``integrated_at`` form.

    A time with an offset whose UTC equivalent falls outside the years 0001-9999 (such as
    0001-01-01T00:00:00+01:00) cannot be represented and is refused like any malformed time.
    """
    try:
        return format_time(parse_time(text, field="as_of"))
    except MalformedInputError:
        pass
    try:
        parsed: datetime | None = datetime.fromisoformat(text)
    except ValueError:
        parsed = None
    if parsed is None or parsed.tzinfo is None:
        raise MalformedInputError(
            "as_of must be an RFC 3339 time with a zone, e.g. 2026-02-05T17:05:00Z", code="BAD_ARGUMENT"
        )
    try:
        utc = parsed.astimezone(UTC)
    except OverflowError:
        raise MalformedInputError(
            "as_of must fall within the years 0001 to 9999 in UTC", code="BAD_ARGUMENT"
        ) from None
    return format_time(utc)


def _integrated_at(tx: Tx, index: int) -> str:
    row = tx.one("SELECT integrated_at FROM log_entries WHERE leaf_index = ?", (index,))
    if row is None:
        raise VerificationError(f"log entry {index} is missing", code="INTEGRITY_FAILURE", leaf_index=index)
    return str(row[0])


def _last_leaf_at(tx: Tx, when: str, size: int) -> int:
    """The last leaf integrated at or before ``when`` (binary search: integrated_at never goes back)."""
    lo, hi = 0, size
    while lo < hi:
        mid = (lo + hi) // 2
        if _integrated_at(tx, mid) <= when:
            lo = mid + 1
        else:
            hi = mid
    return lo - 1


def point_in_log(db: Database, as_of: str | None, at_index: int | None) -> tuple[int, str | None]:
    """(last leaf index, its integrated_at) at the point asked for; (-1, None) before the first leaf."""
    if (as_of is None) == (at_index is None):
        raise MalformedInputError("give exactly one of as_of and at_index", code="BAD_ARGUMENT")
    with db.read() as tx:
        size = tlog.log_size(tx)[0]
        if at_index is not None:
            if type(at_index) is not int or not 0 <= at_index < size:
                raise MalformedInputError(f"at_index must be in [0, {size})", code="BAD_ARGUMENT")
            index = at_index
        else:
            index = _last_leaf_at(tx, moment(str(as_of)), size)
        return index, None if index < 0 else _integrated_at(tx, index)


def _entries(db: Database, case_id: str, index: int) -> list[Entry]:
    with db.read() as tx:
        rows = tx.query(
            "SELECT e.leaf_index, e.leaf, s.state FROM log_entries e"
            f" LEFT JOIN {db.events_table} s ON s.originator_id = {db.case_key_sql('e.case_id')}"
            " AND s.originator_version = e.seq WHERE e.case_id IN (?, ?) AND e.leaf_index <= ?"
            " ORDER BY e.leaf_index",
            (REGISTRY_CASE_ID, case_id, index),
        )
    return [Entry(int(i), b"" if env is None else bytes(env), bytes(leaf)) for i, leaf, env in rows]


def case_at(
    db: Database,
    case_id: str,
    *,
    origin: str,
    config: DomainConfig,
    trust_root: str | None,
    as_of: str | None = None,
    at_index: int | None = None,
) -> dict[str, Any]:
    """See ``Ledger.case_at``."""
    index, integrated_at = point_in_log(db, as_of, at_index)
    if index < 0 or case_id == REGISTRY_CASE_ID:
        raise NotFoundError("the case did not exist at that point", code="CASE_NOT_FOUND")
    checker = check_entries(_entries(db, case_id, index), origin=origin, config=config, trust_root=trust_root)
    if checker.findings:
        first = checker.findings[0]
        raise VerificationError(
            f"stored history does not verify: {first}", code="INTEGRITY_FAILURE", leaf_index=first.leaf_index
        )
    track = checker.cases.get(case_id)
    if track is None or track.state is None:
        raise NotFoundError("the case did not exist at that point", code="CASE_NOT_FOUND")
    point = {"leaf_index": index, "integrated_at": integrated_at, "requested": as_of}
    view = projections.case_view(track.state)
    return {"case_id": case_id, "version": track.version, "head_sha256": track.head, **view, "as_of": point}
