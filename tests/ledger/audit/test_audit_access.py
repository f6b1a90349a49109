"""The audit of the access log (SQLite and PostgreSQL): a clean access log has no finding; an edited,
deleted or inserted entry and an edited checkpoint are ACCESS_LOG_TAMPERED naming indexes only;
entries no access checkpoint covers for too long are UNCHECKPOINTED_ACCESS_ENTRIES."""

from __future__ import annotations

from datetime import timedelta

import pytest

from ledger.audit.run import AuditReport
from ledger.log.access_entry import AccessRecord, entry_bytes, parse_entry
from ledger.store import Ledger
from tests.support.audit import Raw, audit
from tests.support.cases import new_case_id

CASE = new_case_id()


def record(n: int) -> AccessRecord:
    return AccessRecord(action="case.read", actor=f"Det. {n}", role="investigator", case_id=CASE)


@pytest.fixture
def logged(ledger: Ledger) -> Ledger:
    """Six access entries, a checkpoint at 4 and one at 6."""
    ledger.access_log.append([record(n) for n in range(4)])
    ledger.access_log.checkpoint()
    ledger.access_log.append([record(4), record(5)])
    ledger.access_log.checkpoint()
    return ledger


def access_findings(report: AuditReport) -> list[tuple[str, str | None, int | None]]:
    return [
        (f.code, f.evidence.get("check"), f.evidence.get("access_index"))
        for f in report.findings
        if f.step == 13
    ]


def test_a_clean_access_log_has_no_finding(logged: Ledger) -> None:
    report = audit(logged)
    assert access_findings(report) == [] and report.access == {"size": 6, "latest_checkpoint": 6}
    assert report.to_json()["access_log"] == {"size": 6, "latest_checkpoint": 6}


def test_an_edited_entry_is_found_by_its_index(logged: Ledger) -> None:
    raw = Raw(logged)
    (stored,) = raw.run("SELECT entry FROM access_entries WHERE entry_index = 2")
    entry = parse_entry(bytes(stored[0]))
    forged = entry_bytes(AccessRecord(action="case.read", actor="Someone Else", role="investigator", case_id=CASE),
                         2, entry.recorded_at)
    raw.run("UPDATE access_entries SET entry = ?, actor = ? WHERE entry_index = 2", (forged, "Someone Else"))
    found = access_findings(audit(logged))
    assert ("ACCESS_LOG_TAMPERED", "NODE_MISMATCH", 2) in found
    assert ("ACCESS_LOG_TAMPERED", "ROOT_MISMATCH", None) in found  # both checkpoints cover it
    assert all(code == "ACCESS_LOG_TAMPERED" for code, _, _ in found)


def test_an_edited_column_is_found(logged: Ledger) -> None:
    Raw(logged).run("UPDATE access_entries SET case_id = ? WHERE entry_index = 1", (new_case_id(),))
    assert access_findings(audit(logged)) == [("ACCESS_LOG_TAMPERED", "columns", 1)]


def test_a_deleted_entry_is_found_by_its_index(logged: Ledger) -> None:
    Raw(logged).run("DELETE FROM access_entries WHERE entry_index = 3")
    assert access_findings(audit(logged)) == [("ACCESS_LOG_TAMPERED", "missing", 3)]


def test_deleting_the_newest_entries_is_found(logged: Ledger) -> None:
    Raw(logged).run("DELETE FROM access_entries WHERE entry_index >= 4")
    checks = {check for _, check, _ in access_findings(audit(logged))}
    assert checks == {"TRUNCATED", "NODE_MISMATCH"}


def test_an_inserted_entry_is_found_by_its_index(logged: Ledger) -> None:
    (last,) = Raw(logged).run("SELECT recorded_at FROM access_entries WHERE entry_index = 5")
    raw = entry_bytes(record(9), 6, str(last[0]))
    Raw(logged).run(
        "INSERT INTO access_entries (entry_index, case_id, actor, action, outcome, entry, recorded_at)"
        " VALUES (6, ?, 'Det. 9', 'case.read', 'allowed', ?, ?)",
        (CASE, raw, str(last[0])),
    )
    assert access_findings(audit(logged)) == [("ACCESS_LOG_TAMPERED", "NODE_MISMATCH", 6)]


def test_an_edited_checkpoint_is_found(logged: Ledger) -> None:
    raw = Raw(logged)
    raw.run("UPDATE access_checkpoints SET note = replace(note, '\n4\n', '\n5\n') WHERE size = 4")
    assert access_findings(audit(logged)) == [("ACCESS_LOG_TAMPERED", "BAD_CHECKPOINT", None)]
    (finding,) = [f for f in audit(logged).findings if f.step == 13]
    assert finding.evidence["size"] == 4 and "Det." not in finding.message


def test_a_case_log_checkpoint_copied_into_the_access_log_is_found(logged: Ledger) -> None:
    checkpoint = logged.checkpoint()
    assert checkpoint is not None
    Raw(logged).run(
        "INSERT INTO access_checkpoints (size, root, note, signed_at) VALUES (?, ?, ?, ?)",
        (checkpoint.size + 100, checkpoint.root, checkpoint.note.decode(), checkpoint.signed_at),
    )
    assert ("ACCESS_LOG_TAMPERED", "BAD_CHECKPOINT", None) in access_findings(audit(logged))


def test_entries_past_the_newest_access_checkpoint(logged: Ledger) -> None:
    logged.access_log.append([record(6), record(7)])
    report = audit(logged)
    assert access_findings(report) == [] and "2 access-log entries past the newest access checkpoint, from index 6" in report.notes
    clock = logged.clock
    logged.clock = lambda: clock() + timedelta(hours=1)  # type: ignore[method-assign]
    late = audit(logged)
    (finding,) = [f for f in late.findings if f.step == 13]
    assert (finding.code, finding.evidence["first_index"], finding.evidence["count"]) == (
        "UNCHECKPOINTED_ACCESS_ENTRIES", 6, 2)
