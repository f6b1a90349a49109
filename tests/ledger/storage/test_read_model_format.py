"""Read models carry the format they were written in; code that reads another format rebuilds them at
start (the service) or refuses with one clear message (every other command) — never a 400 on every
append."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from api.app import create_app
from api.settings import ApiSettings
from domain import case as case_rules
from ledger.cli.app import commands
from ledger.settings import ConfigurationError
from ledger.storage import read_models
from ledger.storage.read_models import READ_MODEL_FORMAT, log_head, write_position
from ledger.store import Ledger
from tests.support.cases import Actors, case_opened, footage_captured, new_case_id

OLDER = "0.00000000000000ff"


def _written_by_an_older_release(ledger: Ledger) -> None:
    with ledger.db.write() as tx:
        head, size = log_head(tx, ledger.mac)
        assert head is not None
        write_position(tx, ledger.mac, size - 1, dataclasses.replace(head, read_models=OLDER))


@pytest.fixture
def outdated(ledger: Ledger) -> tuple[Ledger, Actors, str]:
    actors = Actors.register(ledger)
    case_id = new_case_id()
    actors.ok("investigator", case_id, "CaseOpened", case_opened())
    _written_by_an_older_release(ledger)
    return ledger, actors, case_id


def test_another_format_is_refused_with_one_message_naming_replay(outdated: Any) -> None:
    ledger, _, case_id = outdated
    with pytest.raises(ConfigurationError) as refused:
        Ledger(ledger.settings)
    assert refused.value.code == "READ_MODELS_OUTDATED"
    assert OLDER in refused.value.message and READ_MODEL_FORMAT in refused.value.message
    assert "evidence-ledger replay" in refused.value.message
    env = {"EVIDENCE_LEDGER_DATA_DIR": str(ledger.data_dir)}
    if ledger.settings.database_url:
        env["EVIDENCE_LEDGER_DATABASE_URL"] = ledger.settings.database_url
    runner = CliRunner()
    shown = runner.invoke(commands(), ["case", "show", case_id], env=env)
    assert shown.exit_code == 2 and "READ_MODELS_OUTDATED" in shown.output and len(shown.output.splitlines()) == 1
    replayed = runner.invoke(commands(), ["replay", "--resume"], env=env)
    assert replayed.exit_code == 0, replayed.output
    with Ledger(ledger.settings) as reopened:
        assert reopened.stale_read_models() is None and reopened.case_view(case_id)["version"] == 1


def test_the_service_rebuilds_them_at_start_and_appends_work(outdated: Any) -> None:
    ledger, actors, case_id = outdated
    with TestClient(create_app(ledger.settings, api_settings=ApiSettings(require_durability=False))) as client:
        assert client.get("/readyz").status_code == 200
    with Ledger(ledger.settings) as reopened:
        assert reopened.stale_read_models() is None
        actors.ledger = reopened
        actors.ok("investigator", case_id, "FootageCaptured", footage_captured())


def test_adding_a_field_to_the_stored_state_changes_the_format(monkeypatch: pytest.MonkeyPatch) -> None:
    @dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
    class Grown(case_rules.CaseState):  # type: ignore[misc]
        new_field: str = ""

    before = read_models.read_model_format()
    monkeypatch.setattr(case_rules, "CaseState", Grown)
    assert read_models.read_model_format() != before
