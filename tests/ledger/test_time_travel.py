"""Time travel: a case exactly as the ledger knew it at a leaf index or a time, replayed from the
stored events with the key registry as of then (on SQLite and on PostgreSQL)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from domain.errors import LedgerError, MalformedInputError
from ledger.envelope.canonical import format_time
from ledger.store import Ledger
from ledger.time_travel import moment
from tests.support.api import problem, running_api
from tests.support.audit import Raw
from tests.support.cases import (
    Actors,
    case_opened,
    derivative_created,
    footage_captured,
    footage_released,
    hold_placed,
    incident_documented,
    new_case_id,
    report_received,
)

Step = tuple[str, str, Callable[[], dict[str, Any]]]
STEPS: list[Step] = [
    ("investigator", "CaseOpened", case_opened),
    ("investigator", "ReportReceived", lambda: report_received(None)),
    ("investigator", "IncidentDocumented", incident_documented),
    ("investigator", "FootageCaptured", footage_captured),
    ("investigator", "InvestigationHoldPlaced", hold_placed),
    ("supervisor", "InvestigationHoldLifted", lambda: {"hold_id": "hold-1", "reason": "DA cleared"}),
    ("investigator", "FootageDerivativeCreated", derivative_created),
    ("supervisor", "FootageReleased", footage_released),
    ("supervisor", "CaseClosed", lambda: {"disposition": "referred"}),
]


def without_point(view: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in view.items() if k != "as_of"}


@pytest.fixture
def history(ledger: Ledger) -> tuple[Ledger, Actors, str, list[tuple[int, str, dict[str, Any]]]]:
    """The case's story; after each step (leaf index, integrated_at, live view), with another case's
    events in between so that leaf indexes of the case are not contiguous."""
    actors = Actors.register(ledger)
    case_id = new_case_id()
    seen = []
    for n, (who, event_type, body) in enumerate(STEPS):
        receipt = actors.ok(who, case_id, event_type, body())
        seen.append((receipt.leaf_index, receipt.integrated_at, ledger.case_view(case_id)))
        actors.ok("investigator", new_case_id(), "CaseOpened", case_opened(f"CPD-2026-{n:04d}"))
    return ledger, actors, case_id, seen


def test_every_past_state_equals_the_live_view_of_that_time(history: Any) -> None:
    ledger, _, case_id, seen = history
    for leaf_index, integrated_at, live in seen:
        assert without_point(ledger.case_at(case_id, at_index=leaf_index)) == live
        then = ledger.case_at(case_id, as_of=integrated_at)
        assert without_point(then) == live
        assert then["as_of"] == {
            "leaf_index": leaf_index,
            "integrated_at": integrated_at,
            "requested": integrated_at,
        }


def test_between_two_events_the_earlier_state_holds(history: Any) -> None:
    ledger, _, case_id, seen = history
    for leaf_index, _, live in seen:
        assert without_point(ledger.case_at(case_id, at_index=leaf_index + 1)) == live  # another case's leaf
    assert seen[4][2]["active_holds"] == ["hold-1"] and seen[5][2]["active_holds"] == []


def test_a_case_before_it_existed_is_not_found(history: Any) -> None:
    ledger, _, case_id, seen = history
    for point in ({"at_index": seen[0][0] - 1}, {"as_of": "2000-01-01T00:00:00Z"}):
        with pytest.raises(LedgerError) as missing:
            ledger.case_at(case_id, **point)
        assert missing.value.code == "CASE_NOT_FOUND"


def test_points_in_time_are_checked(history: Any) -> None:
    ledger, _, case_id, seen = history
    for point in (
        {},
        {"at_index": 1, "as_of": seen[0][1]},
        {"at_index": ledger.log_size()},
        {"as_of": "yesterday"},
    ):
        with pytest.raises(LedgerError) as bad:
            ledger.case_at(case_id, **point)
        assert bad.value.code == "BAD_ARGUMENT"
    offset = ledger.case_at(case_id, as_of=seen[2][1].replace("Z", "+00:00"))
    assert offset["as_of"]["leaf_index"] == seen[2][0]


def test_the_key_registry_is_taken_as_of_then(history: Any) -> None:
    ledger, actors, case_id, seen = history
    actors.revoke("investigator", reason="left")
    assert without_point(ledger.case_at(case_id, at_index=seen[3][0])) == seen[3][2]
    assert ledger.case_at(case_id, at_index=ledger.log_size() - 1)["status"] == "closed"


def test_a_tampered_history_is_not_served(history: Any) -> None:
    ledger, _, case_id, seen = history
    raw = Raw(ledger)
    raw.run(
        f"UPDATE {raw.events} SET state = ? WHERE originator_id = ? AND originator_version = 2",
        (b"{}", raw.key(case_id)),
    )
    assert ledger.case_at(case_id, at_index=seen[0][0])["version"] == 1  # before the edit: fine
    with pytest.raises(LedgerError) as tampered:
        ledger.case_at(case_id, at_index=seen[1][0])
    assert tampered.value.code == "INTEGRITY_FAILURE" and tampered.value.refs["leaf_index"] == seen[1][0]


def test_case_show_travels_in_time(history: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from ledger.cli.app import commands

    app = commands()
    ledger, _, case_id, seen = history
    monkeypatch.setenv("EVIDENCE_LEDGER_DATA_DIR", str(ledger.data_dir))
    if ledger.settings.database_url:
        monkeypatch.setenv("EVIDENCE_LEDGER_DATABASE_URL", ledger.settings.database_url)
    runner = CliRunner()
    result = runner.invoke(app, ["case", "show", case_id, "--at-index", str(seen[4][0]), "--json"])
    assert result.exit_code == 0, result.output
    assert without_point(json.loads(result.stdout)) == seen[4][2]
    result = runner.invoke(app, ["case", "show", case_id, "--as-of", seen[7][1]])
    assert result.exit_code == 0 and "closed" not in result.stdout
    result = runner.invoke(app, ["case", "show", case_id, "--as-of", "2000-01-01T00:00:00Z"])
    assert result.exit_code == 1 and "CASE_NOT_FOUND" in result.output
    result = runner.invoke(app, ["case", "show", case_id, "--at-index", "-1"])
    assert result.exit_code == 2


# Times that parse but whose UTC equivalent is outside the years 0001-9999.
UNREPRESENTABLE = [
    "0001-01-01T00:00:00+01:00",
    "0001-01-01T00:59:59.999999+01:00",
    "0001-01-01T00:30:00+00:45",
    "0001-01-01T00:00:00.000000000000000000000000000000000001+00:01",
    "0001-01-01T00:00:00,5+23:59",
    "9999-12-31T23:59:59-01:00",
    "9999-12-31T23:59:59.999999-00:01",
    "9999-12-31T23:00:00.99999999999999999999999999999999999999-23:59",
    "9999-12-31 12:00:00-12:00",
]


@pytest.mark.parametrize("as_of", UNREPRESENTABLE)
def test_moment_refuses_times_outside_the_representable_range(as_of: str) -> None:
    with pytest.raises(MalformedInputError) as bad:
        moment(as_of)
    assert bad.value.code == "BAD_ARGUMENT"


@pytest.mark.parametrize(
    ("as_of", "stored_form"),
    [
        ("0001-01-01T00:00:00Z", "0001-01-01T00:00:00.000000Z"),
        ("0001-01-01T01:00:00+01:00", "0001-01-01T00:00:00.000000Z"),
        ("0001-01-01T00:00:00-23:59", "0001-01-01T23:59:00.000000Z"),
        ("0999-06-01T00:00:00+00:00", "0999-06-01T00:00:00.000000Z"),
        ("9999-12-31T23:59:59.999999999Z", "9999-12-31T23:59:59.999999Z"),
        ("9999-12-31T22:59:59.9999999999999999999999+01:00", "9999-12-31T21:59:59.999999Z"),
        ("9999-12-31T00:00:00+23:59", "9999-12-30T00:01:00.000000Z"),
    ],
)
def test_moment_keeps_extreme_but_representable_times_in_the_stored_form(as_of: str, stored_form: str) -> None:
    assert moment(as_of) == stored_form


def test_format_time_always_writes_four_digit_years() -> None:
    from datetime import UTC, datetime

    assert format_time(datetime(1, 1, 1, tzinfo=UTC)) == "0001-01-01T00:00:00.000000Z"
    assert format_time(datetime(999, 12, 31, 23, 59, 59, 5, tzinfo=UTC)) == "0999-12-31T23:59:59.000005Z"


def test_a_time_before_every_entry_finds_no_case_whatever_its_year(history: Any) -> None:
    ledger, _, case_id, _ = history
    for as_of in ("0001-01-01T00:00:00Z", "0999-12-31T23:59:59+00:00"):
        with pytest.raises(LedgerError) as missing:  # a 3-digit year once sorted after every entry
            ledger.case_at(case_id, as_of=as_of)
        assert missing.value.code == "CASE_NOT_FOUND"
    assert ledger.case_at(case_id, as_of="9999-12-31T23:59:59Z")["status"] == "closed"


@pytest.fixture
def case_api(ledger: Ledger) -> Any:
    with running_api(ledger) as api:
        case_id = new_case_id()
        api.ok("investigator", case_id, "CaseOpened", case_opened())
        yield api, case_id


@pytest.mark.parametrize("as_of", UNREPRESENTABLE)
def test_http_as_of_outside_the_representable_range_is_a_400(case_api: Any, as_of: str) -> None:
    api, case_id = case_api
    response = api.client.get(f"/v1/cases/{case_id}", params={"as_of": as_of}, headers=api.auth("auditor"))
    problem(response, 400, "BAD_ARGUMENT")


def test_case_show_refuses_an_unrepresentable_as_of(history: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from ledger.cli.app import commands

    app = commands()
    ledger, _, case_id, _ = history
    monkeypatch.setenv("EVIDENCE_LEDGER_DATA_DIR", str(ledger.data_dir))
    if ledger.settings.database_url:
        monkeypatch.setenv("EVIDENCE_LEDGER_DATABASE_URL", ledger.settings.database_url)
    for as_of in UNREPRESENTABLE:
        result = CliRunner().invoke(app, ["case", "show", case_id, "--as-of", as_of])
        assert result.exit_code == 2 and "BAD_ARGUMENT" in result.output, (as_of, result.output)
