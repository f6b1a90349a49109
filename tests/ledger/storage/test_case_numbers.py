"""A case number opens one case: a second CaseOpened with it is refused (DUPLICATE_CASE_NUMBER),
also when two writers race, and nothing a database administrator does to the lookup rows lets a
duplicate in unnoticed (the append refuses a bent row; the audit names the row and the duplicate)."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest

from domain.case_state import case_number_key
from domain.errors import LedgerError
from ledger.append import Receipt
from ledger.audit.run import run_audit
from ledger.audit.source import read_database
from ledger.storage.integrity import StateTampered
from ledger.store import Ledger
from tests.support.audit import Raw, options
from tests.support.cases import Actors, case_opened, footage_captured, new_case_id, run_cambridge_scenario

NUMBER = "CPD-2026-0420"
KEY = case_number_key(NUMBER)  # what the lookup column holds


def _audit_codes(ledger: Ledger) -> list[tuple[str, str | None, list[str]]]:
    report = run_audit(read_database(ledger.db, mac=ledger.mac), options(ledger))
    return [(f.code, f.case_id, f.evidence.get("differences", [])) for f in report.findings]


def test_a_second_case_with_a_used_number_is_refused_naming_the_first(ledger: Ledger) -> None:
    actors = Actors.register(ledger)
    first, second = new_case_id(), new_case_id()
    actors.ok("investigator", first, "CaseOpened", case_opened(NUMBER))
    size = ledger.log_size()
    refused = actors.refused("investigator", second, "CaseOpened", case_opened(NUMBER))
    assert refused.code == "DUPLICATE_CASE_NUMBER"
    assert refused.refs == {"case_id": first, "case_number": NUMBER} and first in refused.message
    assert ledger.log_size() == size and ledger.case_head(second) == (0, None)
    actors.ok("investigator", second, "CaseOpened", case_opened(NUMBER + "-B"))  # another number: fine
    assert [c["case_id"] for c in ledger.list_cases(number=NUMBER)] == [first]
    assert [c["case_id"] for c in ledger.list_cases(number=NUMBER + "-B")] == [second]
    assert ledger.list_cases(number="CPD-NONE") == []
    assert _audit_codes(ledger) == []


def test_one_batch_opening_two_cases_with_one_number_keeps_the_first(ledger: Ledger) -> None:
    actors = Actors.register(ledger)
    first, second = new_case_id(), new_case_id()
    raws = [actors.envelope("investigator", c, "CaseOpened", case_opened(NUMBER)) for c in (first, second)]
    accepted, refused = ledger.append(raws)
    assert isinstance(accepted, Receipt) and accepted.case_id == first
    assert isinstance(refused, LedgerError) and refused.code == "DUPLICATE_CASE_NUMBER"
    assert refused.refs["case_id"] == first


def test_two_writers_racing_with_one_number_land_one_case(make_ledger: Callable[..., Ledger]) -> None:
    """Two ledgers on one database (two service processes): the check runs under the write lock."""
    writers = [make_ledger(), make_ledger()]
    actors = Actors.register(writers[0])
    cases = [new_case_id() for _ in writers]
    raws = [actors.envelope("investigator", c, "CaseOpened", case_opened(NUMBER)) for c in cases]
    start = threading.Barrier(len(writers))
    outcomes: list[object] = [None, None]

    def write(n: int) -> None:
        start.wait()
        (outcomes[n],) = writers[n].append([raws[n]])

    threads = [threading.Thread(target=write, args=(n,)) for n in range(len(writers))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    codes = sorted("ok" if isinstance(o, Receipt) else getattr(o, "code", repr(o)) for o in outcomes)
    assert codes == ["DUPLICATE_CASE_NUMBER", "ok"]
    assert len(writers[0].list_cases(number=NUMBER)) == 1


def test_a_number_planted_on_another_case_row_is_refused_as_tampered(ledger: Ledger) -> None:
    """A DBA who writes a number into another case's lookup column does not block that number
    quietly: the row's MAC'd view does not carry it, so the opening is refused STATE_TAMPERED."""
    actors = Actors.register(ledger)
    other = new_case_id()
    actors.ok("investigator", other, "CaseOpened", case_opened())
    Raw(ledger).run("UPDATE case_state SET case_number = ? WHERE case_id = ?", (KEY, other))
    refused = actors.refused("investigator", new_case_id(), "CaseOpened", case_opened(NUMBER))
    assert isinstance(refused, StateTampered) and refused.refs == {"case_id": other}
    with pytest.raises(StateTampered):
        ledger.list_cases(number=NUMBER)
    assert _audit_codes(ledger) == [("PROJECTION_DRIFT", other, ["case_state.case_number"])]


def test_a_lookup_row_bent_to_let_a_duplicate_in_is_named_by_the_audit(ledger: Ledger) -> None:
    """Edit the first case's lookup column, open a second case with its number, put the column back:
    no row differs any more, but the audit reads the numbers from the signed events and names the
    duplicate; while the column was edited, the audit named it too."""
    actors = Actors.register(ledger)
    first, second = new_case_id(), new_case_id()
    actors.ok("investigator", first, "CaseOpened", case_opened(NUMBER))
    raw = Raw(ledger)
    raw.run("UPDATE case_state SET case_number = ? WHERE case_id = ?", ("CPD-ELSEWHERE", first))
    assert _audit_codes(ledger) == [("PROJECTION_DRIFT", first, ["case_state.case_number"])]
    receipt = actors.ok("investigator", second, "CaseOpened", case_opened(NUMBER))
    raw.run("UPDATE case_state SET case_number = ? WHERE case_id = ?", (KEY, first))
    report = run_audit(read_database(ledger.db, mac=ledger.mac), options(ledger))
    (finding,) = report.findings
    assert (finding.code, finding.case_id, finding.leaf_index) == ("DUPLICATE_CASE_NUMBER", second, receipt.leaf_index)
    assert finding.evidence["first_case_id"] == first and report.exit_code == 1


def test_a_deleted_lookup_row_fails_every_list_and_the_audit(ledger: Ledger) -> None:
    actors = Actors.register(ledger)
    first = new_case_id()
    actors.ok("investigator", first, "CaseOpened", case_opened(NUMBER))
    Raw(ledger).run("DELETE FROM case_state WHERE case_id = ?", (first,))
    with pytest.raises(StateTampered):
        ledger.list_cases(number=NUMBER)
    assert _audit_codes(ledger) == [("PROJECTION_DRIFT", first, ["case_state row missing"])]


def test_cases_are_listed_by_their_own_status_whatever_their_footage(ledger: Ledger) -> None:
    """The status column is the case's, not that of its last public row (a case with released footage
    was once written as 'statistics' and vanished from every status filter)."""
    actors = Actors.register(ledger)
    closed, still_open = new_case_id(), new_case_id()
    run_cambridge_scenario(actors, closed, None)
    actors.ok("investigator", still_open, "CaseOpened", case_opened())
    actors.ok("investigator", still_open, "FootageCaptured", footage_captured())
    assert [c["case_id"] for c in ledger.list_cases(status="closed")] == [closed]
    assert [c["case_id"] for c in ledger.list_cases(status="open")] == [still_open]
    assert {c["status"] for c in ledger.list_cases()} == {"open", "closed"}
    assert _audit_codes(ledger) == []


def test_letter_case_does_not_make_another_number(ledger: Ledger) -> None:
    """``cpd-2026-0420`` is the number ``CPD-2026-0420``: refused, found by either spelling, and named by the
    audit if it got in (a bent lookup row, put back afterwards)."""
    actors = Actors.register(ledger)
    first, second = new_case_id(), new_case_id()
    actors.ok("investigator", first, "CaseOpened", case_opened(NUMBER))
    refused = actors.refused("investigator", second, "CaseOpened", case_opened(NUMBER.lower()))
    assert refused.code == "DUPLICATE_CASE_NUMBER" and refused.refs == {"case_id": first, "case_number": NUMBER.lower()}
    assert [c["case_id"] for c in ledger.list_cases(number=NUMBER.lower())] == [first]
    assert [c["case_number"] for c in ledger.list_cases(number=NUMBER)] == [NUMBER]  # kept as signed
    raw = Raw(ledger)
    raw.run("UPDATE case_state SET case_number = ? WHERE case_id = ?", ("cpd-elsewhere", first))
    actors.ok("investigator", second, "CaseOpened", case_opened(NUMBER.lower()))
    raw.run("UPDATE case_state SET case_number = ? WHERE case_id = ?", (KEY, first))
    assert [code for code, _, _ in _audit_codes(ledger)] == ["DUPLICATE_CASE_NUMBER"]
