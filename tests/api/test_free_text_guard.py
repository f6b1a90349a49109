"""The free-text guard through the HTTP API and the command line: 422 / exit 1 with
PERSONAL_DATA_IN_FREE_TEXT naming the field and the kind, the value never echoed, nothing appended."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ledger.cli.app import commands
from ledger.envelope.keys import write_private_key
from ledger.store import Ledger
from tests.support.api import Api, problem, running_api
from tests.support.cases import (
    FOOTAGE_BYTES,
    FOOTAGE_SHA,
    case_opened,
    footage_captured,
    incident_documented,
    new_case_id,
    report_received,
)

PERSONAL = "ana.rivera77@example.org"


@pytest.fixture
def api(ledger: Ledger) -> Iterator[Api]:
    with running_api(ledger) as running:
        yield running


def _size_and_version(api: Api, case_id: str) -> tuple[int, int]:
    return api.ledger.log_size(), api.ledger.case_head(case_id)[0]


def test_the_api_refuses_personal_data_in_free_text_with_a_422(api: Api) -> None:
    case_id = new_case_id()
    api.ok("investigator", case_id, "CaseOpened", case_opened())
    before = _size_and_version(api, case_id)
    body = {**incident_documented(), "narrative": f"Witness gave {PERSONAL} and was born 1990-01-02."}
    response = api.post("investigator", case_id, "IncidentDocumented", body)
    found = problem(response, 422, "PERSONAL_DATA_IN_FREE_TEXT")
    assert found["type"] == "urn:evidence-ledger:problem:personal-data-in-free-text"
    assert found["refs"] == {"field": "narrative", "kind": "email"}
    assert "narrative" in found["detail"] and "seal" in found["detail"]
    assert PERSONAL not in response.text and "1990-01-02" not in response.text
    assert _size_and_version(api, case_id) == before
    events = api.client.get(f"/v1/cases/{case_id}/events", headers=api.auth("investigator"))
    assert events.status_code == 200 and len(events.json()["items"]) == 1


def test_a_downloads_purpose_is_never_recorded_so_personal_data_in_it_goes_nowhere(api: Api) -> None:
    """Access entries carry no free text: a purpose is accepted for compatibility and dropped."""
    case_id = new_case_id()
    api.ok("investigator", case_id, "CaseOpened", case_opened())
    uploaded = api.client.post("/v1/evidence", content=FOOTAGE_BYTES, headers=api.auth("investigator"))
    assert uploaded.status_code == 201, uploaded.text
    api.ok("investigator", case_id, "FootageCaptured", footage_captured(stored=True))
    before = _size_and_version(api, case_id)
    response = api.client.get(
        f"/v1/evidence/{FOOTAGE_SHA}", params={"case_id": case_id, "purpose": f"requested by {PERSONAL}"},
        headers=api.auth("supervisor"),
    )
    assert response.status_code == 200 and response.content == FOOTAGE_BYTES
    assert PERSONAL not in str(response.headers)
    assert _size_and_version(api, case_id) == before
    entries = api.client.get("/v1/access-log", params={"case_id": case_id}, headers=api.auth("auditor"))
    assert entries.status_code == 200, entries.text
    downloads = [item for item in entries.json()["items"] if item["entry"]["action"] == "evidence.download"]
    assert len(downloads) == 1 and PERSONAL not in entries.text


def test_the_cli_refuses_with_one_line_and_exit_1(api: Api, tmp_path: Path) -> None:
    key = tmp_path / "investigator.pem"
    write_private_key(api.actors.keys["investigator"], key)
    env = {"EVIDENCE_LEDGER_DATA_DIR": str(api.ledger.data_dir)}
    if api.ledger.settings.database_url:
        env["EVIDENCE_LEDGER_DATABASE_URL"] = api.ledger.settings.database_url
    case_id = new_case_id()
    api.ok("investigator", case_id, "CaseOpened", case_opened())
    before = _size_and_version(api, case_id)
    body = tmp_path / "report.json"
    body.write_text(json.dumps({**report_received(None), "narrative": "Caller, (617) 555-0142, saw agents."}))
    result = CliRunner().invoke(
        commands(), ["append", case_id, "ReportReceived", "--key", str(key), "--body", f"@{body}"], env=env
    )
    assert result.exit_code == 1, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: PERSONAL_DATA_IN_FREE_TEXT: narrative:")
    assert lines[0].endswith("(kind=phone)") and "field=narrative" not in lines[0] and "555-0142" not in result.output
    assert _size_and_version(api, case_id) == before
