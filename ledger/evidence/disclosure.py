"""Disclosing and shredding sealed records; retention (docs/privacy.md).

* :func:`disclose`: the one way to unseal a record. The requester's signed ``SealedRecordDisclosed``
  is appended first (the case rules check the two-person approval and the window); only once it is
  committed is the record decrypted, and returned to that caller alone.
* :func:`record_refusals`: every refused disclosure attempt (request, approval or disclosure refused
  by a case rule or the role table) is recorded in its case as a ``SealedDisclosureRefused`` signed
  by the service key. Called by ``Ledger.append`` for every batch, whoever appended it.
* :func:`destroy_shredded`: once a ``SealedRecordShredded`` is committed (whoever appended it, through
  any path), the record's key is destroyed and its row erased. A crash in between is finished by
  :func:`finish_shreds` (at the service's start, and by every shred and retention run): idempotent.
* :func:`run_retention`: shreds, as the service, the sealed records of cases closed longer than the
  retention period, unless a hold or an unacknowledged referral covers the case.

Nothing here logs, prints or returns personal data except :func:`disclose`'s result.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from domain.errors import AuthorizationError, ConflictError, LedgerError, MalformedInputError, RuleViolation
from domain.events import SealedDisclosureRefused, SealedRecordDisclosed, SealedRecordShredded
from domain.vocabulary import DISCLOSURE_ATTEMPTS
from ledger.envelope.dsse import parse_envelope

if TYPE_CHECKING:
    from ledger.append import Outcome, Receipt
    from ledger.store import Ledger

log = logging.getLogger("evidence_ledger.sealed")

SERVICE_ATTEMPTS = 5
Append = Callable[[bytes], "Receipt"]


class Shredded(LedgerError):
    """The sealed record was shredded: it can never be unsealed (HTTP 410)."""

    code = "SHREDDED"


# ---------------------------------------------------------------------------- the service's own events


def service_append(ledger: Ledger, case_id: str, event_type: str, body: dict[str, Any], append: Append | None = None) -> Receipt:
    """Append an event signed by the data dir's service key (``keys/service.pem``) for the case's next
    position, retrying when a concurrent writer took it."""
    from ledger.envelope.keys import load_private_key
    from ledger.settings import key_path

    key = load_private_key(key_path(ledger.data_dir, "service"))
    for attempt in range(SERVICE_ATTEMPTS):
        try:
            return (append or ledger.append_one)(ledger.next_envelope(key, case_id, event_type, body))
        except ConflictError as exc:
            if exc.code not in ("SEQ_CONFLICT", "PREV_MISMATCH") or attempt == SERVICE_ATTEMPTS - 1:
                raise
    raise AssertionError("unreachable")


def _recordable(outcome: Outcome) -> bool:
    """A refusal by a case rule or by the role table: the signer was known and the signature checked."""
    if isinstance(outcome, RuleViolation):
        return outcome.code not in ("CASE_NOT_OPENED", "WRONG_STREAM", "CASE_MISMATCH")
    return isinstance(outcome, AuthorizationError) and outcome.code == "ROLE_NOT_ALLOWED"


def destroy_shredded(ledger: Ledger, refs: list[str]) -> None:
    """Called by the append path once a batch with accepted ``SealedRecordShredded`` events committed
    (the event first, then the key): destroy each record's key and erase its row. A failure is
    logged and finished by the next start, shred or retention run (:func:`finish_shreds`)."""
    for ref in refs:
        try:
            destroy(ledger, ref)
        except (LedgerError, OSError) as exc:
            log.error("a shredded record's key could not be destroyed yet: %s", type(exc).__name__)


def record_refusals(ledger: Ledger, raws: Sequence[bytes], outcomes: Sequence[Outcome]) -> None:
    """For each refused disclosure attempt in a batch, append a service-signed
    ``SealedDisclosureRefused`` to its case: ids, the attempted type, the signer and the code only."""
    for raw, outcome in zip(raws, outcomes, strict=True):
        if not isinstance(outcome, LedgerError) or not _recordable(outcome):
            continue
        try:
            statement = parse_envelope(raw).statement
        except LedgerError:
            continue
        if statement.type not in DISCLOSURE_ATTEMPTS:
            continue
        registry = ledger.registry_state()
        info = None if registry is None else registry.lookup(statement.signer)
        if info is None:
            continue
        request_id, sealed_ref = statement.body.get("request_id"), statement.body.get("sealed_ref")
        body = {
            "request_id": request_id if isinstance(request_id, str) else None,
            "sealed_ref": sealed_ref if isinstance(sealed_ref, str) else None,
            "attempted": statement.type,
            "actor": info.actor,
            "code": outcome.code,
        }
        try:
            SealedDisclosureRefused.create(**body)  # ids only, checked like a submitted body
            service_append(ledger, statement.case_id, SealedDisclosureRefused.TYPE, body)
        except LedgerError as exc:  # the refusal itself stands; an alert says it was not recorded
            log.error("a refused disclosure attempt could not be recorded: %s", exc.code)


# ---------------------------------------------------------------------------- disclosure


@dataclass(frozen=True)
class Disclosure:
    receipt: Receipt
    data: Any
    commitment: str


def disclose(ledger: Ledger, raw: bytes, *, sealed_ref: str, append: Append | None = None) -> Disclosure:
    """Append the signed ``SealedRecordDisclosed`` envelope ``raw`` (through ``append``: the service's
    writer, which also checks that the signer is the caller; default the ledger), then unseal the
    record for the caller. A resubmitted envelope is refused (``DISCLOSURE_ALREADY_MADE``): each
    disclosure hands out the data once. ``SHREDDED`` when the record was shredded."""
    envelope = parse_envelope(raw)
    st = envelope.statement
    if st.type != SealedRecordDisclosed.TYPE or st.body.get("sealed_ref") != sealed_ref:
        raise MalformedInputError(
            f"expected a {SealedRecordDisclosed.TYPE} envelope for this sealed record", code="BINDING_MISMATCH"
        )
    try:
        receipt = (append or ledger.append_one)(raw)
    except RuleViolation as exc:
        if exc.code == "SHREDDED":
            raise Shredded("the sealed record was shredded", sealed_ref=sealed_ref) from None
        raise
    if receipt.duplicate:
        raise ConflictError(
            "this disclosure was already made; a record is handed out once per disclosure",
            code="DISCLOSURE_ALREADY_MADE",
            sealed_ref=sealed_ref,
        )
    data, commitment = ledger.sealed_store().unseal(sealed_ref)
    return Disclosure(receipt, data, commitment)


# ---------------------------------------------------------------------------- shredding


@dataclass(frozen=True)
class ShredResult:
    receipt: Receipt
    destroyed: bool  # the key and the row are gone


def destroy(ledger: Ledger, sealed_ref: str) -> bool:
    """Destroy the record's key (overwrite, unlink, fsync the directory), then erase its row.
    Idempotent; True when something was destroyed now."""
    key = ledger.keystore().destroy(sealed_ref)
    row = ledger.sealed_store().erase_row(sealed_ref)
    return key or row


def shred(
    ledger: Ledger, key: Any, case_id: str, sealed_ref: str, reason: str, *, finish: bool = True
) -> ShredResult:
    """Append ``SealedRecordShredded`` signed with ``key`` (a private key, or None for the service key);
    once it is committed ``Ledger.append`` destroys the record's key and erases its row
    (:func:`destroy_shredded`). Earlier interrupted shreds are finished first."""
    if finish:
        finish_shreds(ledger)
    body = {"sealed_ref": sealed_ref, "reason": reason}
    SealedRecordShredded.create(**body)
    if key is None:
        receipt = service_append(ledger, case_id, SealedRecordShredded.TYPE, body)
    else:
        receipt = ledger.sign_and_append(key, case_id, SealedRecordShredded.TYPE, body)
    gone = not ledger.keystore().has(sealed_ref) and not ledger.sealed_store().row_exists(sealed_ref)
    return ShredResult(receipt, gone)


def shredded_refs(ledger: Ledger) -> list[tuple[str, str]]:
    """(case id, sealed ref) of every committed ``SealedRecordShredded``, from the stored signed events."""
    db = ledger.db
    with db.read() as tx:
        rows = tx.query(
            f"SELECT e.case_id, s.state FROM log_entries e JOIN {db.events_table} s"
            f" ON s.originator_id = {db.case_key_sql('e.case_id')} AND s.originator_version = e.seq"
            " WHERE e.event_type = ? ORDER BY e.leaf_index",
            (SealedRecordShredded.TYPE,),
        )
    refs = []
    for case_id, raw in rows:
        ref = parse_envelope(bytes(raw)).statement.body.get("sealed_ref")
        if isinstance(ref, str):
            refs.append((str(case_id), ref))
    return refs


def finish_shreds(ledger: Ledger) -> int:
    """Destroy what a crash left behind after a committed shred (a key or a row); returns how many
    records were finished now.

    The log's rows only name candidates: destruction cannot be undone, so a record is destroyed
    only when the case's checked state (its MAC'd row, current with the log) says it was shredded.
    A planted or relabelled log row therefore destroys nothing; a case whose state fails its check
    is left alone (the alert is logged; `audit` then `replay`)."""
    from ledger.storage.integrity import StateTampered

    finished = 0
    for case_id, ref in shredded_refs(ledger):
        try:
            sealed = ledger.case_view(case_id).get("sealed", [])
        except (StateTampered, LedgerError):
            continue
        if any(r.get("sealed_ref") == ref and r.get("shredded") is True for r in sealed):
            finished += destroy(ledger, ref)
    return finished


# ---------------------------------------------------------------------------- retention


@dataclass
class RetentionReport:
    cutoff: str
    finished: int = 0
    shredded: list[tuple[str, str]] = field(default_factory=list)  # (case id, sealed ref)
    blocked: list[tuple[str, str, str]] = field(default_factory=list)  # (case id, sealed ref, code)

    def to_json(self) -> dict[str, Any]:
        return {
            "cutoff": self.cutoff,
            "finished_earlier_shreds": self.finished,
            "shredded": [{"case_id": c, "sealed_ref": r} for c, r in self.shredded],
            "blocked": [{"case_id": c, "sealed_ref": r, "code": code} for c, r, code in self.blocked],
        }


def run_retention(ledger: Ledger, *, after_days: int, now: datetime) -> RetentionReport:
    """Shred, as the service, every live sealed record of a case closed more than ``after_days`` days
    before ``now``; a case under an active hold or with an unacknowledged referral is left alone
    (reported as blocked). Finishes earlier interrupted shreds first. Idempotent."""
    from ledger.envelope.canonical import format_time
    from ledger.envelope.dsse import REGISTRY_CASE_ID
    from ledger.storage.read_models import case_rows

    cutoff = format_time(now - timedelta(days=after_days))
    report = RetentionReport(cutoff=cutoff, finished=finish_shreds(ledger))
    with ledger.db.read() as tx:
        rows = case_rows(tx, ledger.mac, "case_id <> ? AND status = ? ORDER BY case_id", [REGISTRY_CASE_ID, "closed"])
    for row in rows:
        case_id, view = str(row[0]), json.loads(row[7])
        closed_at = view.get("closed_at")
        if not isinstance(closed_at, str) or not _before(closed_at, cutoff):
            continue
        for record in view.get("sealed", []):
            if record.get("shredded"):
                continue
            ref = str(record["sealed_ref"])
            try:
                shred(ledger, None, case_id, ref, f"retention: case closed more than {after_days} days", finish=False)
            except RuleViolation as exc:
                report.blocked.append((case_id, ref, exc.code))
                continue
            report.shredded.append((case_id, ref))
    return report


def _before(a: str, b: str) -> bool:
    from domain.fields import timestamp_key

    return timestamp_key(a) < timestamp_key(b)
