"""The free-text guard on the append path: new events with personal data in free text are refused
and nothing is written; events stored before (signed, never changing) keep replaying, auditing,
verifying and returning their receipt."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from domain.errors import LedgerError
from ledger import append as append_module
from ledger.envelope.dsse import parse_envelope
from ledger.store import Ledger
from tests.support.audit import audit
from tests.support.bundles import Exported, export_scenario, verify
from tests.support.cases import Actors, case_opened, incident_documented, new_case_id, report_received

PHONE_NARRATIVE = "Caller Ana (cell 617-555-0142) saw agents break a car window."


def _counts(ledger: Ledger) -> tuple[int, int]:
    with ledger.db.read() as tx:
        row = tx.one("SELECT COUNT(*) FROM log_entries", ())
    assert row is not None
    return ledger.log_size(), int(row[0])


@pytest.fixture
def actors(ledger: Ledger) -> Actors:
    return Actors.register(ledger)


@pytest.mark.parametrize(
    ("event_type", "body", "field", "kind"),
    [
        ("CaseOpened", {**case_opened(), "summary": "Reporter: ana.r@example.org"}, "summary", "email"),
        ("ReportReceived", {**report_received(None), "narrative": PHONE_NARRATIVE}, "narrative", "phone"),
        ("ReportReceived", {**report_received(None), "location": "Apt 3, A-123456789"}, "location", "a_number"),
        (
            "IncidentDocumented",
            {**incident_documented(), "federal_officials": [
                {**incident_documented()["federal_officials"][0], "agency": "ICE; driver DOB 04/11/1988"}
            ]},
            "federal_officials[0].agency",
            "date_of_birth",
        ),
    ],
)
def test_a_new_event_with_personal_data_in_free_text_is_refused_and_nothing_is_written(
    ledger: Ledger, actors: Actors, event_type: str, body: dict[str, Any], field: str, kind: str
) -> None:
    case_id = new_case_id()
    if event_type != "CaseOpened":
        actors.ok("investigator", case_id, "CaseOpened", case_opened())
    before, head = _counts(ledger), ledger.case_head(case_id)
    refused = actors.refused("investigator", case_id, event_type, body)
    assert refused.code == "PERSONAL_DATA_IN_FREE_TEXT" and refused.refs == {"field": field, "kind": kind}
    shown = refused.message + json.dumps(refused.refs)
    assert "555-0142" not in shown and "example.org" not in shown and "123456789" not in shown
    assert "seal" in refused.message
    assert _counts(ledger) == before and ledger.case_head(case_id) == head


def test_one_refused_envelope_does_not_fail_its_batch(ledger: Ledger, actors: Actors) -> None:
    case_id, other = new_case_id(), new_case_id()
    actors.ok("investigator", case_id, "CaseOpened", case_opened())
    bad = actors.envelope("investigator", case_id, "ReportReceived", {**report_received(None),
                                                                     "narrative": PHONE_NARRATIVE})
    good = actors.envelope("investigator", other, "CaseOpened", case_opened("CPD-2026-0002"))
    first, second = ledger.append([bad, good])
    assert isinstance(first, LedgerError) and first.code == "PERSONAL_DATA_IN_FREE_TEXT"
    assert not isinstance(second, LedgerError) and ledger.case_head(case_id)[0] == 1


def test_ids_are_not_free_text(ledger: Ledger, actors: Actors) -> None:
    """Only free-text fields are judged: an id made of ten digits is an id."""
    case_id = new_case_id()
    actors.ok("investigator", case_id, "CaseOpened", case_opened("2026004512"))


def _stored_before_the_guard(monkeypatch: pytest.MonkeyPatch) -> Any:
    """Append as a release without the guard did: the event is signed and stored as is."""
    def before_export(actors: Actors, case_id: str) -> None:
        with monkeypatch.context() as m:
            m.setattr(append_module, "refuse_personal_data", lambda event: None)
            actors.ok("supervisor", case_id, "CaseReopened", {"reason": "New witness, call 617-555-0142"})
    return before_export


def test_events_stored_before_the_guard_keep_replaying_auditing_and_verifying(
    ledger: Ledger, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    exported: Exported = export_scenario(ledger, tmp_path / "case.zip",
                                         before_export=_stored_before_the_guard(monkeypatch))
    case_id = exported.case_id
    envelopes = ledger.case_envelopes(case_id)
    stored = envelopes[-1]
    statement = parse_envelope(stored).statement
    assert statement.type == "CaseReopened" and "617-555-0142" in str(statement.body["reason"])
    # the offline verifier, the auditor and the read-model rebuild never judge stored text
    rc, report = verify(exported.path, "--vkey", exported.log_vkey, "--trust-root", exported.trust_root)
    assert rc == 0 and report["findings"] == [], report["findings"]
    assert audit(ledger).findings == []
    view = ledger.case_view(case_id)
    ledger.rebuild_read_models()
    assert ledger.case_view(case_id) == view
    # re-submitting the stored envelope gets its receipt back: it is not a new event
    (again,) = ledger.append([stored])
    assert not isinstance(again, LedgerError) and again.duplicate
    # but a new event with the same text is refused
    refused = exported.actors.refused("supervisor", case_id, "CaseClosed", {"disposition": "call 617-555-0142"})
    assert refused.code == "PERSONAL_DATA_IN_FREE_TEXT"
