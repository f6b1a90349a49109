"""`evidence-ledger verify` remembers the checkpoint of a VERIFIED bundle and compares later bundles with
it; `verify NEW --previous OLD` proves a newer bundle extends an older one (ledger.verify.previous)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from domain.errors import LedgerError, MalformedInputError
from ledger.cli.app import commands
from ledger.verify.state_dir import origin_dir
from tests.support.bundles import case_indexes, flip_sig, tampered
from tests.support.cases import case_opened, incident_documented, new_case_id, report_received
from tests.support.forks import Fork, export, fork_ledgers, pins, proofs_from

pytestmark = pytest.mark.parametrize("backend", ["sqlite"])  # the fork copies a sqlite data dir
SERVER = ["--server", "http://ledger.test"]


def shared_case(make_ledger: Any, tmp_path: Path) -> tuple[Fork, str]:
    """A case opened before the fork: both histories hold its first two events."""
    a = make_ledger()
    from tests.support.cases import Actors

    actors = Actors.register(a)
    case_id = new_case_id()
    actors.ok("investigator", case_id, "CaseOpened", case_opened())
    actors.ok("investigator", case_id, "IncidentDocumented", incident_documented())
    a.close()
    return fork_ledgers(lambda **kw: make_ledger(**kw), tmp_path), case_id


def verify(*args: str | Path) -> tuple[int, dict[str, Any], str]:
    result = CliRunner().invoke(commands(), ["verify", *map(str, args), "--json"])
    assert result.stdout, result.output
    assert result.exit_code in (0, 1), result.output
    return result.exit_code, json.loads(result.stdout), result.stderr


def remembered(report: dict[str, Any]) -> dict[str, Any]:
    value: dict[str, Any] = report["checkpoint"]["remembered"]
    return value


def test_bundles_older_newer_and_forked(
    make_ledger: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, _client_state_dir: Path
) -> None:
    fork, case_id = shared_case(make_ledger, tmp_path)
    old = export(fork.a, case_id, tmp_path / "old.zip")
    fork.actors_a.ok("investigator", case_id, "ReportReceived", report_received(None))
    new = export(fork.a, case_id, tmp_path / "new.zip")
    latest = origin_dir(_client_state_dir, fork.a.origin) / "latest"

    code, report, _ = verify(new, *pins(fork.a))
    assert code == 0 and remembered(report)["status"] == "first"
    assert latest.read_bytes() == fork.a.latest_checkpoint().note  # type: ignore[union-attr]

    code, report, _ = verify(old, *pins(fork.a))  # an older bundle, verified after a newer one: no error
    assert code == 0 and remembered(report)["status"] == "older-unproven"
    assert any("not proven offline" in c for c in report["caveats"])
    with proofs_from(fork.a, monkeypatch):
        code, report, _ = verify(old, *pins(fork.a), *SERVER)
    assert code == 0 and remembered(report)["status"] == "older-proven"

    # the other history, one entry further: offline only "not proven", with the server a fork
    fork.actors_b.ok("investigator", case_id, "IncidentDocumented", {**incident_documented(), "incident_id": "x"})
    fork.actors_b.ok("investigator", new_case_id(), "CaseOpened", case_opened())
    forked = export(fork.b, case_id, tmp_path / "forked.zip")
    code, report, _ = verify(forked, *pins(fork.b))
    assert code == 0 and remembered(report)["status"] == "unproven"
    assert "consistency with remembered checkpoint" in remembered(report)["detail"]
    with proofs_from(fork.b, monkeypatch):
        code, report, _ = verify(forked, *pins(fork.b), *SERVER)
    assert code == 1 and {f["code"] for f in report["findings"]} == {"EQUIVOCATION"}
    conflict = Path(remembered(report)["conflict"])
    assert (conflict / "presented.txt").read_bytes() == fork.b.latest_checkpoint().note  # type: ignore[union-attr]
    assert latest.read_bytes() == fork.a.latest_checkpoint().note  # type: ignore[union-attr]


def test_same_size_other_root_bundle_is_equivocation(
    make_ledger: Any, tmp_path: Path, _client_state_dir: Path
) -> None:
    fork, case_id = shared_case(make_ledger, tmp_path)
    fork.actors_a.ok("investigator", case_id, "ReportReceived", report_received(None))
    fork.actors_b.ok("investigator", case_id, "ReportReceived", {**report_received(None), "report_id": "rpt-2"})
    assert verify(export(fork.a, case_id, tmp_path / "a.zip"), *pins(fork.a))[0] == 0
    code, report, _ = verify(export(fork.b, case_id, tmp_path / "b.zip"), *pins(fork.b))
    assert code == 1 and [f["code"] for f in report["findings"]] == ["EQUIVOCATION"]
    assert report["verdict"] == "failed"


def test_unpinned_bundle_is_never_remembered(make_ledger: Any, tmp_path: Path, _client_state_dir: Path) -> None:
    fork, case_id = shared_case(make_ledger, tmp_path)
    bundle = export(fork.a, case_id, tmp_path / "a.zip")
    result = CliRunner().invoke(commands(), ["verify", str(bundle), "--json", *pins(fork.a)[:2]])
    assert result.exit_code == 4
    assert json.loads(result.stdout)["checkpoint"]["remembered"]["status"] == "not compared"
    assert not (origin_dir(_client_state_dir, fork.a.origin) / "latest").exists()


def test_previous_genuine_pair_is_consistent(
    make_ledger: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fork, case_id = shared_case(make_ledger, tmp_path)
    old = export(fork.a, case_id, tmp_path / "old.zip")
    fork.actors_a.ok("investigator", case_id, "ReportReceived", report_received(None))
    fork.actors_a.ok("investigator", new_case_id(), "CaseOpened", case_opened())
    new = export(fork.a, case_id, tmp_path / "new.zip")
    code, report, _ = verify(new, "--previous", old, *pins(fork.a))
    previous = report["previous"]
    assert code == 0 and previous["result"] == "consistent" and previous["findings"] == []
    assert previous["leaf_level"].startswith("proven") and previous["tree_level"].startswith("not proven")
    with proofs_from(fork.a, monkeypatch):
        code, report, _ = verify(new, "--previous", old, *pins(fork.a), *SERVER)
    assert code == 0 and report["previous"]["tree_level"].startswith("proven")
    text = CliRunner().invoke(commands(), ["verify", str(new), "--previous", str(old), *pins(fork.a)])
    assert text.exit_code == 0 and "Compared with the previous bundle old.zip" in text.stdout


def test_previous_catches_a_rewritten_history(
    make_ledger: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fork, case_id = shared_case(make_ledger, tmp_path)
    fork.actors_a.ok("investigator", case_id, "ReportReceived", report_received(None))
    old = export(fork.a, case_id, tmp_path / "old.zip")  # what was produced first, from history a
    fork.actors_b.ok("investigator", case_id, "ReportReceived", {**report_received(None), "report_id": "rpt-9"})
    fork.actors_b.ok("investigator", new_case_id(), "CaseOpened", case_opened())
    new = export(fork.b, case_id, tmp_path / "new.zip")  # the same keys, the other history
    code, report, _ = verify(new, "--previous", old, *pins(fork.b))
    previous = report["previous"]
    assert code == 1 and previous["result"] == "failed"
    codes = {f["code"] for f in previous["findings"]}
    assert codes == {"EQUIVOCATION"}
    (changed,) = [f for f in previous["findings"] if "leaf_indexes" in f]
    assert changed["leaf_indexes"] == [fork.shared]  # the rewritten entry, named by its leaf index
    with proofs_from(fork.b, monkeypatch):
        code, report, _ = verify(new, "--previous", old, *pins(fork.b), *SERVER)
    assert code == 1 and report["previous"]["tree_level"] == "FAILED"
    newer_as_previous = verify(old, "--previous", new, *pins(fork.b))
    assert newer_as_previous[0] == 1
    assert "ROLLBACK" in {f["code"] for f in newer_as_previous[1]["previous"]["findings"]}


def test_previous_must_verify_itself_and_be_of_the_same_case(make_ledger: Any, tmp_path: Path) -> None:
    fork, case_id = shared_case(make_ledger, tmp_path)
    old = export(fork.a, case_id, tmp_path / "old.zip")
    fork.actors_a.ok("investigator", case_id, "ReportReceived", report_received(None))
    new = export(fork.a, case_id, tmp_path / "new.zip")
    broken = tampered(old, tmp_path / "broken.zip", lambda m: flip_sig(m, case_indexes(m, case_id)[0]))
    code, report, _ = verify(new, "--previous", broken, *pins(fork.a))
    assert code == 1 and report["previous"]["previous_verdict"] == "failed"
    assert "PREVIOUS_INVALID" in {f["code"] for f in report["previous"]["findings"]}
    other_case = new_case_id()
    fork.actors_a.ok("investigator", other_case, "CaseOpened", case_opened())
    other = export(fork.a, other_case, tmp_path / "other.zip")
    result = CliRunner().invoke(commands(), ["verify", str(new), "--previous", str(other), *pins(fork.a)])
    assert result.exit_code == 2 and "error: BAD_ARGUMENT: --previous other.zip is a bundle of the case" in result.stderr


@pytest.mark.parametrize("answer", ["500", "malformed"])
def test_previous_with_a_server_that_will_not_prove_is_equivocation(
    make_ledger: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, answer: str
) -> None:
    fork, case_id = shared_case(make_ledger, tmp_path)
    old = export(fork.a, case_id, tmp_path / "old.zip")
    fork.actors_a.ok("investigator", case_id, "ReportReceived", report_received(None))
    new = export(fork.a, case_id, tmp_path / "new.zip")

    def refused(self: object, first: int, second: int) -> list[bytes]:
        if answer == "500":
            raise LedgerError("the server answered HTTP 500", code="BAD_RESPONSE")
        raise MalformedInputError("consistency proof: not JSON")

    with proofs_from(fork.a, monkeypatch):
        monkeypatch.setattr("ledger.verify.log_server.LogServer.consistency_proof", refused)
        code, report, _ = verify(new, "--previous", old, *pins(fork.a), *SERVER)
    assert code == 1 and report["previous"]["tree_level"] == "FAILED"
    assert [f["code"] for f in report["previous"]["findings"]] == ["EQUIVOCATION"]


def test_previous_says_exactly_which_keys_checked_the_roots(
    make_ledger: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fork, case_id = shared_case(make_ledger, tmp_path)
    old = export(fork.a, case_id, tmp_path / "old.zip")
    fork.actors_a.ok("investigator", case_id, "ReportReceived", report_received(None))
    new = export(fork.a, case_id, tmp_path / "new.zip")
    with proofs_from(fork.a, monkeypatch):
        _, unpinned, _ = verify(new, "--previous", old, "--allow-unpinned", *SERVER)
        _, pinned, _ = verify(new, "--previous", old, *pins(fork.a), *SERVER)
    loose = unpinned["previous"]
    assert loose["tree_level"].startswith("proven") and "both roots signed" not in loose["tree_level"]
    assert "UNPINNED" in loose["tree_level"]
    assert all(k.startswith("UNPINNED") for k in loose["checkpoint_keys"].values())
    anchored = pinned["previous"]
    assert "signatures checked under the pinned log key" in anchored["tree_level"]
    assert anchored["checkpoint_keys"] == {
        "previous": "checked under the pinned log key (from --vkey)",
        "this": "checked under the pinned log key (from --vkey)",
    }
    text = CliRunner().invoke(commands(), ["verify", str(new), "--previous", str(old), "--allow-unpinned"])
    assert "checkpoint signatures: previous UNPINNED" in text.stdout
