"""The full-ledger audit: a clean ledger has no findings; each alteration made by SQL outside the
application is reported with its exact code and location (on SQLite and on PostgreSQL)."""

from __future__ import annotations

import base64
import hashlib
import json
import os
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ledger.audit.run import AuditReport, run_audit
from ledger.audit.source import read_database, read_server
from ledger.bootstrap import registry_body
from ledger.envelope.canonical import canonical
from ledger.envelope.dsse import REGISTRY_CASE_ID
from ledger.envelope.keys import load_private_key, raw_public_key
from ledger.envelope.signing import build_envelope
from ledger.log import merkle, note
from ledger.log.leaf import leaf_bytes
from ledger.settings import key_path
from ledger.store import Ledger
from tests.support.audit import Raw, audit, audit_both, by_case_ran, comparable, options, verifier_key
from tests.support.cases import Actors, case_opened, new_case_id, run_cambridge_scenario

# --- helpers shared with test_rollback / test_time_travel --------------------------------------------










def where(report: AuditReport) -> list[tuple[str, int | None, str | None, int | None]]:
    return report.codes()


@dataclass
class Scenario:
    ledger: Ledger
    actors: Actors
    case_id: str  # the Cambridge case, 11 events, closed
    other: str  # a second case, 2 events, opened first
    leaf: dict[tuple[str, int], int]  # (case, seq) -> leaf index

    def envelope(self, case_id: str, seq: int) -> bytes:
        (raw,) = self.ledger.case_envelopes(case_id, after=seq - 1, limit=1)
        return raw


def build(ledger: Ledger) -> Scenario:
    actors = Actors.register(ledger)
    other = new_case_id()
    leaf = {}
    for receipt in (
        actors.ok("investigator", other, "CaseOpened", case_opened("CPD-2026-0002")),
        actors.ok(
            "investigator",
            other,
            "InvestigationHoldPlaced",
            {"hold_id": "hold-9", "scope": "case", "authority": "cpd", "reason": "Internal review"},
        ),
    ):
        leaf[(receipt.case_id, receipt.seq)] = receipt.leaf_index
    case_id = new_case_id()
    for receipt in run_cambridge_scenario(actors, case_id, None):
        leaf[(receipt.case_id, receipt.seq)] = receipt.leaf_index
    ledger.checkpoint()
    return Scenario(ledger, actors, case_id, other, leaf)


@pytest.fixture
def scenario(ledger: Ledger) -> Scenario:
    return build(ledger)


def statement_of(raw: bytes) -> dict[str, Any]:
    return dict(json.loads(base64.b64decode(json.loads(raw)["payload"])))


def resign_body(raw: bytes, **changes: Any) -> bytes:
    """The envelope with its statement body changed and the old signature kept (a forged edit)."""
    env = json.loads(raw)
    statement = json.loads(base64.b64decode(env["payload"]))
    statement["body"].update(changes)
    env["payload"] = base64.b64encode(canonical(statement)).decode("ascii")
    return canonical(env)


# --- clean ------------------------------------------------------------------------------------------


def test_a_clean_ledger_has_no_findings(scenario: Scenario) -> None:
    report = audit(scenario.ledger)
    assert report.findings == []
    assert report.exit_code == 0
    assert report.log_size == report.events == 2 + 5 + 2 + 11
    assert report.cases == 2
    assert report.latest_checkpoint == report.log_size


# --- the events table -------------------------------------------------------------------------------


def test_an_updated_envelope_is_a_bad_signature_at_its_leaf(scenario: Scenario) -> None:
    s, raw = scenario, Raw(scenario.ledger)
    edited = resign_body(s.envelope(s.case_id, 11), disposition="unfounded")
    raw.run(
        f"UPDATE {raw.events} SET state = ? WHERE originator_id = ? AND originator_version = 11",
        (edited, raw.key(s.case_id)),
    )
    report = audit(s.ledger)
    leaf = s.leaf[(s.case_id, 11)]
    assert where(report) == [
        ("BAD_SIGNATURE", leaf, s.case_id, 11),
        ("LEAF_MISMATCH", leaf, s.case_id, 11),
    ]
    assert report.exit_code == 1


def test_an_edit_in_the_middle_also_breaks_the_next_link(scenario: Scenario) -> None:
    s, raw = scenario, Raw(scenario.ledger)
    edited = resign_body(s.envelope(s.case_id, 2), narrative="Nothing was seen.")
    raw.run(
        f"UPDATE {raw.events} SET state = ? WHERE originator_id = ? AND originator_version = 2",
        (edited, raw.key(s.case_id)),
    )
    first, second = s.leaf[(s.case_id, 2)], s.leaf[(s.case_id, 3)]
    assert where(audit(s.ledger)) == [
        ("BAD_SIGNATURE", first, s.case_id, 2),
        ("LEAF_MISMATCH", first, s.case_id, 2),
        ("CHAIN_BREAK", second, s.case_id, 3),
    ]


def test_an_unparseable_stored_envelope_is_a_finding_not_a_crash(scenario: Scenario) -> None:
    s, raw = scenario, Raw(scenario.ledger)
    raw.run(
        f"UPDATE {raw.events} SET state = ? WHERE originator_id = ? AND originator_version = 11",
        (b"\x00 not an envelope", raw.key(s.case_id)),
    )
    report = audit(s.ledger)
    leaf = s.leaf[(s.case_id, 11)]
    assert [(f.code, f.leaf_index) for f in report.findings] == [
        ("MALFORMED_ENTRY", leaf),
        ("LEAF_MISMATCH", leaf),
    ]


def test_a_deleted_event_row_is_a_missing_entry(scenario: Scenario) -> None:
    s, raw = scenario, Raw(scenario.ledger)
    raw.run(
        f"DELETE FROM {raw.events} WHERE originator_id = ? AND originator_version = 3", (raw.key(s.case_id),)
    )
    assert where(audit(s.ledger)) == [
        ("MISSING_ENTRY", s.leaf[(s.case_id, 3)], s.case_id, 3),
        ("SEQ_GAP", s.leaf[(s.case_id, 4)], s.case_id, 4),  # its successor lost its predecessor
    ]


def test_an_inserted_unlogged_event_is_reported(scenario: Scenario) -> None:
    s, raw = scenario, Raw(scenario.ledger)
    forged = s.actors.envelope(
        "investigator", s.other, "InvestigationHoldLifted", {"hold_id": "hold-9", "reason": "quietly lifted"}
    )
    raw.run(
        f"INSERT INTO {raw.events} (originator_id, originator_version, topic, state) VALUES (?, 3, ?, ?)",
        (raw.key(s.other), "InvestigationHoldLifted/v1", forged),
    )
    assert where(audit(s.ledger)) == [("UNLOGGED_EVENT", None, s.other, 3)]


def test_swapped_rows_are_an_order_violation(scenario: Scenario) -> None:
    s, raw = scenario, Raw(scenario.ledger)
    two, three = s.envelope(s.case_id, 2), s.envelope(s.case_id, 3)
    update = f"UPDATE {raw.events} SET state = ? WHERE originator_id = ? AND originator_version = ?"
    raw.run(update, (three, raw.key(s.case_id), 2))
    raw.run(update, (two, raw.key(s.case_id), 3))
    assert where(audit(s.ledger)) == [
        ("ORDER_VIOLATION", s.leaf[(s.case_id, 2)], s.case_id, 2),
        ("ORDER_VIOLATION", s.leaf[(s.case_id, 3)], s.case_id, 3),
    ]


def test_swapped_leaf_positions_are_an_order_violation(scenario: Scenario) -> None:
    s, raw = scenario, Raw(scenario.ledger)
    a, b = s.leaf[(s.other, 1)], s.leaf[(s.other, 2)]
    raw.run("UPDATE log_entries SET leaf_index = 1000000000 WHERE leaf_index = ?", (a,))
    raw.run("UPDATE log_entries SET leaf_index = ? WHERE leaf_index = ?", (a, b))
    raw.run("UPDATE log_entries SET leaf_index = ? WHERE leaf_index = 1000000000", (b,))
    report = audit(s.ledger)
    found = where(report)
    assert ("ORDER_VIOLATION", a, s.other, 2) in found  # the leaf at position a says index b
    assert ("ORDER_VIOLATION", b, s.other, 1) in found
    assert ("SEQ_GAP", a, s.other, 2) in found
    assert ("RULE_VIOLATION", a, s.other, 2) in found  # a hold on a case not opened yet
    assert {f.code for f in report.findings} == {
        "ORDER_VIOLATION",
        "LEAF_MISMATCH",
        "SEQ_GAP",
        "RULE_VIOLATION",
        "NODE_MISMATCH",
        "ROOT_MISMATCH",
    }


# --- the log ----------------------------------------------------------------------------------------


def truncate(raw: Raw, size: int) -> None:
    """Delete the log's tail from ``size`` on: entries, their events, their tree nodes."""
    for case_id, seq in raw.run("SELECT case_id, seq FROM log_entries WHERE leaf_index >= ?", (size,)):
        raw.run(
            f"DELETE FROM {raw.events} WHERE originator_id = ? AND originator_version = ?",
            (raw.key(case_id), seq),
        )
    raw.run("DELETE FROM log_entries WHERE leaf_index >= ?", (size,))
    for level, idx in raw.run("SELECT level, idx FROM log_nodes"):
        if (idx + 1) << level > size:
            raw.run("DELETE FROM log_nodes WHERE level = ? AND idx = ?", (level, idx))


def test_a_truncated_tail_is_reported_with_the_missing_count(scenario: Scenario) -> None:
    s, raw = scenario, Raw(scenario.ledger)
    size = s.ledger.log_size()
    truncate(raw, size - 3)
    report = audit(s.ledger)
    truncated = [f for f in report.findings if f.code == "TRUNCATED"]
    assert len(truncated) == 1 and truncated[0].evidence["missing"] == 3
    assert truncated[0].evidence["size"] == size
    # the read models still show the deleted events: the case and the tracked position drift
    assert sorted((f.code, f.case_id or "") for f in report.findings) == [
        ("PROJECTION_DRIFT", ""),
        ("PROJECTION_DRIFT", s.case_id),
        ("TRUNCATED", ""),
    ]


def test_a_deleted_log_entry_is_a_gap(scenario: Scenario) -> None:
    s, raw = scenario, Raw(scenario.ledger)
    leaf = s.leaf[(s.other, 2)]
    raw.run("DELETE FROM log_entries WHERE leaf_index = ?", (leaf,))
    found = where(audit(s.ledger))
    assert found == [("MISSING_ENTRY", leaf, None, None), ("UNLOGGED_EVENT", None, s.other, 2)]


def test_an_edited_tree_node_is_reported(scenario: Scenario) -> None:
    s, raw = scenario, Raw(scenario.ledger)
    raw.run("UPDATE log_nodes SET hash = ? WHERE level = 2 AND idx = 1", (b"\x01" * 32,))
    report = audit(s.ledger)
    assert [(f.code, f.evidence.get("level"), f.evidence.get("index")) for f in report.findings] == [
        ("NODE_MISMATCH", 2, 1)
    ]


def test_an_edited_checkpoint_is_reported(scenario: Scenario) -> None:
    s, raw = scenario, Raw(scenario.ledger)
    size = s.ledger.log_size()
    (row,) = raw.run("SELECT note FROM log_checkpoints WHERE size = ?", (size,))
    lines = str(row[0]).split("\n")
    lines[2] = base64.b64encode(b"\x07" * 32).decode()
    raw.run("UPDATE log_checkpoints SET note = ? WHERE size = ?", ("\n".join(lines), size))
    raw.run("UPDATE log_checkpoints SET root = ? WHERE size = 2", (b"\x07" * 32,))
    report = audit(s.ledger)
    assert [(f.code, f.evidence.get("size")) for f in report.findings] == [
        ("BAD_CHECKPOINT", 2),
        ("BAD_CHECKPOINT", size),
    ]


def test_an_equivocating_log_key_is_reported_with_both_checkpoints(scenario: Scenario) -> None:
    s = scenario
    size = s.ledger.log_size()
    fork = note.Checkpoint(s.ledger.origin, size, b"\x42" * 32).body()
    forked = note.sign_note(
        fork, s.ledger.config.log_key_name, load_private_key(key_path(s.ledger.data_dir, "log"))
    )
    report = audit(s.ledger, kept=[forked])
    (finding,) = report.findings
    assert finding.code == "EQUIVOCATION" and finding.evidence["size"] == size
    notes = {c["note"].encode() for c in finding.evidence["checkpoints"]}
    assert notes == {forked, s.ledger.checkpoint_at(size).note}


def test_a_rewritten_log_is_caught_by_a_kept_checkpoint(scenario: Scenario) -> None:
    s, raw = scenario, Raw(scenario.ledger)
    kept = s.ledger.checkpoint_at(s.ledger.log_size()).note
    leaf = s.leaf[(s.case_id, 11)]
    (row,) = raw.run("SELECT leaf FROM log_entries WHERE leaf_index = ?", (leaf,))
    rewritten = bytes(row[0]).replace(b'"integrated_at":"2026', b'"integrated_at":"2025')
    raw.run("UPDATE log_entries SET leaf = ? WHERE leaf_index = ?", (rewritten, leaf))
    codes = {(f.code, f.evidence.get("source")) for f in audit(s.ledger, kept=[kept]).findings}
    assert ("ROOT_MISMATCH", "kept 0") in codes and ("ROOT_MISMATCH", "database") in codes


# --- the key registry ---------------------------------------------------------------------------------


def forge_logged(ledger: Ledger, raw: Raw, envelope: bytes, case_id: str, seq: int, event_type: str) -> int:
    """Append an envelope behind the application's back: event row, leaf, tree nodes, tracking."""
    size = ledger.log_size()
    stamp = raw.run("SELECT integrated_at FROM log_entries WHERE leaf_index = ?", (size - 1,))[0][0]
    digest = hashlib.sha256(envelope).hexdigest()
    leaf = leaf_bytes(digest, size, stamp)
    nodes = {(lv, ix): raw.blob(h) for lv, ix, h in raw.run("SELECT level, idx, hash FROM log_nodes")}
    tree = merkle.CompactRange(size, {c: nodes[c] for c in merkle.frontier_coords(size)})
    raw.run(
        f"INSERT INTO {raw.events} (originator_id, originator_version, topic, state) VALUES (?, ?, ?, ?)",
        (raw.key(case_id), seq, f"{event_type}/v1", envelope),
    )
    raw.run(
        "INSERT INTO log_entries (leaf_index, event_id, case_id, seq, event_type, envelope_sha256, leaf,"
        " integrated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (size, statement_of(envelope)["event_id"], case_id, seq, event_type, digest, leaf, stamp),
    )
    for level, index, value in tree.append(merkle.leaf_hash(leaf)):
        raw.run("INSERT INTO log_nodes (level, idx, hash) VALUES (?, ?, ?)", (level, index, value))
    raw.run("UPDATE projection_tracking SET position = ?", (size,))
    return size


def test_a_self_signed_key_slipped_into_the_registry_is_an_unknown_key(scenario: Scenario) -> None:
    s, raw = scenario, Raw(scenario.ledger)
    rogue = Ed25519PrivateKey.generate()
    version, head = s.ledger.case_head(REGISTRY_CASE_ID)
    body = registry_body(
        raw_public_key(rogue), actor="rogue", role="admin", authority=None, valid_from=s.ledger.clock()
    )
    forged = build_envelope(
        origin=s.ledger.origin,
        case_id=REGISTRY_CASE_ID,
        event_type="KeyRegistered",
        body=body,
        key=rogue,
        seq=version + 1,
        prev=head,
        occurred_at=s.ledger.clock(),
    )
    leaf = forge_logged(s.ledger, raw, forged, REGISTRY_CASE_ID, version + 1, "KeyRegistered")
    report = audit(s.ledger)
    assert where(report) == [("UNKNOWN_KEY", leaf, REGISTRY_CASE_ID, version + 1), ("PROJECTION_DRIFT", None, None, None)]
    assert report.findings[1].evidence["differences"] == ["projection_tracking mac"]  # moved without the state key


# --- read models --------------------------------------------------------------------------------------


def test_an_edited_read_model_is_projection_drift(scenario: Scenario) -> None:
    s, raw = scenario, Raw(scenario.ledger)
    raw.run("UPDATE case_state SET status = 'open' WHERE case_id = ?", (s.case_id,))
    raw.run("DELETE FROM public_releases WHERE case_id = ?", (s.case_id,))
    raw.run("UPDATE case_timeline SET entry = '{}' WHERE case_id = ? AND seq = 1", (s.other,))
    report = audit(s.ledger)
    assert sorted(where(report)) == sorted(
        [
            ("PROJECTION_DRIFT", None, s.case_id, None),
            ("PROJECTION_DRIFT", None, s.other, None),
        ]
    )
    drift = {f.case_id: f.evidence["differences"] for f in report.findings}
    assert drift[s.case_id] == ["case_state.status", "public_releases footage ftg-1", "public_releases statistics"]
    assert drift[s.other] == ["case_timeline seq 1 differs"]


# --- through the command line and a server ------------------------------------------------------------


def test_the_cli_exits_0_clean_1_with_findings_2_on_unusable_input(
    scenario: Scenario, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from ledger.cli.app import app, commands

    commands()
    s = scenario
    monkeypatch.setenv("EVIDENCE_LEDGER_DATA_DIR", str(s.ledger.data_dir))
    if s.ledger.settings.database_url:
        monkeypatch.setenv("EVIDENCE_LEDGER_DATABASE_URL", s.ledger.settings.database_url)
    vkey = str(verifier_key(s.ledger))
    kept = tmp_path / "kept.note"
    kept.write_bytes(s.ledger.checkpoint_at(s.ledger.log_size()).note)
    runner = CliRunner()
    result = runner.invoke(app, ["audit", "--vkey", vkey, "--from-checkpoint", str(kept), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["ok"] and data["independent"] and data["checkpoints"][0]["source"] == f"kept {kept}"
    Raw(s.ledger).run("UPDATE case_state SET version = 1 WHERE case_id = ?", (s.other,))
    result = runner.invoke(app, ["audit", "--vkey", vkey])
    assert result.exit_code == 1 and "PROJECTION_DRIFT" in result.stdout
    result = runner.invoke(app, ["audit", "--json"])  # the data dir's own key: said to be not independent
    assert result.exit_code == 1 and not json.loads(result.stdout)["independent"]
    kept.write_bytes(b"not a checkpoint\n")
    assert runner.invoke(app, ["audit", "--vkey", vkey, "--from-checkpoint", str(kept)]).exit_code == 2
    assert runner.invoke(app, ["audit", "--vkey", "nonsense+1+2"]).exit_code == 2


def fake_server(ledger: Ledger, token: str) -> httpx.Client:
    """The server's audit contract, served from a ledger (the API is built elsewhere)."""

    def handle(request: httpx.Request) -> httpx.Response:
        if request.headers.get("authorization") != f"Bearer {token}":
            return httpx.Response(401)
        path = request.url.path
        if path == "/v1/log/envelopes":
            after, limit = request.url.params.get("after"), int(request.url.params["limit"])
            entries = ledger.entries(0 if after is None else int(after) + 1, limit + 1)
            items = [
                {"leaf_index": e.leaf_index, "case_id": e.case_id, "seq": e.seq, "envelope": e.envelope.decode()}
                for e in entries[:limit]
            ]
            return httpx.Response(
                200, json={"items": items, "next": items[-1]["leaf_index"] if len(entries) > limit else None}
            )
        if path.startswith("/v1/log/entries/"):
            return httpx.Response(200, content=ledger.leaf(int(path.rsplit("/", 1)[1])))
        if path == "/v1/log/checkpoint":
            checkpoint = ledger.latest_checkpoint()
            return (
                httpx.Response(200, content=checkpoint.with_cosignatures())
                if checkpoint
                else httpx.Response(404)
            )
        return httpx.Response(404)

    return httpx.Client(transport=httpx.MockTransport(handle), base_url="http://ledger.test")


def test_a_server_is_audited_through_its_api(scenario: Scenario) -> None:
    s = scenario
    report = run_audit(
        read_server("http://ledger.test", "t0k", client=fake_server(s.ledger, "t0k")), options(s.ledger)
    )
    assert report.findings == [] and report.log_size == s.ledger.log_size()
    raw = Raw(s.ledger)
    raw.run(
        f"DELETE FROM {raw.events} WHERE originator_id = ? AND originator_version = 2", (raw.key(s.other),)
    )
    report = run_audit(
        read_server("http://ledger.test", "t0k", client=fake_server(s.ledger, "t0k")), options(s.ledger)
    )
    assert where(report) == [("MISSING_ENTRY", s.leaf[(s.other, 2)], s.other, 2)]


@pytest.mark.parametrize(
    "page",
    [
        [{"leaf_index": 0, "case_id": "c", "seq": 1, "envelope": None}],  # the old bare array
        {"items": [{"leaf_index": 0, "case_id": "c", "seq": 1, "envelope": None}], "next": 0},  # never moves
        {"items": [], "next": 5},  # a next after nothing
        {"items": [{"leaf_index": "0", "case_id": "c", "seq": 1, "envelope": None}], "next": None},
    ],
)
def test_a_replay_feed_that_is_not_a_forward_page_is_unusable_input(page: object) -> None:
    from ledger.audit.source import AuditInputError

    def handle(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/log/envelopes":
            return httpx.Response(200, json=page)
        return httpx.Response(404)

    client = httpx.Client(transport=httpx.MockTransport(handle), base_url="http://ledger.test")
    with pytest.raises(AuditInputError, match="/v1/log/envelopes"):
        read_server("http://ledger.test", "t0k", client=client)


def test_an_unauthorised_server_audit_is_unusable_input(scenario: Scenario) -> None:
    from ledger.audit.source import AuditInputError

    with pytest.raises(AuditInputError):
        read_server("http://ledger.test", "wrong", client=fake_server(scenario.ledger, "t0k"))


def test_the_parallel_pipeline_gives_the_same_findings(
    scenario: Scenario, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ledger.verify import pipeline

    s, raw = scenario, Raw(scenario.ledger)
    edited = resign_body(s.envelope(s.case_id, 2), narrative="Nothing was seen.")
    raw.run(
        f"UPDATE {raw.events} SET state = ? WHERE originator_id = ? AND originator_version = 2",
        (edited, raw.key(s.case_id)),
    )
    sequential = audit(s.ledger)
    monkeypatch.setattr(pipeline, "CHUNK", 3)
    opts = options(s.ledger)
    opts.workers = 2
    parallel = run_audit(read_database(s.ledger.db), opts)
    assert parallel.findings == sequential.findings and len(parallel.findings) == 3


def test_witness_cosignatures_are_checked(scenario: Scenario) -> None:
    s, raw = scenario, Raw(scenario.ledger)
    witness = Ed25519PrivateKey.generate()
    wkey = note.make_verifier_key("witness.example", raw_public_key(witness), note.SIG_TYPE_COSIGNATURE_V1)
    size = s.ledger.log_size()
    body, _ = note.open_note(s.ledger.checkpoint_at(size).note)
    line = note.cosign(body, "witness.example", witness, 1_770_000_000)
    raw.run(
        "INSERT INTO log_cosignatures (size, witness, line, received_at) VALUES (?, ?, ?, ?)",
        (size, "witness.example", line.decode(), "2026-02-05T17:00:00.000000Z"),
    )
    opts = options(s.ledger)
    opts.witnesses = [wkey]
    report = run_audit(read_database(s.ledger.db), opts)
    assert report.findings == [] and report.witnessed_size == size
    parsed = note.open_note(body + b"\n" + line)[1][0]
    flipped = parsed.signature[:-1] + bytes([parsed.signature[-1] ^ 0x01])  # always a different signature
    forged = note.SignatureLine(parsed.name, parsed.key_id, flipped).encode()
    raw.run("UPDATE log_cosignatures SET line = ? WHERE size = ?", (forged.decode(), size))
    report = run_audit(read_database(s.ledger.db), opts)
    assert [(f.code, f.evidence["size"]) for f in report.findings] == [("BAD_COSIGNATURE", size)]
    assert report.witnessed_size is None


# --- case by case on worker processes: the same report as one process ---------------------------------


def _fail_in_worker(task: int) -> None:
    raise RuntimeError(f"task {task} could not be checked")


def _die_in_worker(task: int) -> None:
    os._exit(3)


def test_tampered_cases_are_checked_case_by_case_with_the_same_report(scenario: Scenario) -> None:
    s, raw = scenario, Raw(scenario.ledger)
    edited = resign_body(s.envelope(s.case_id, 2), narrative="Nothing was seen.")
    raw.run(
        f"UPDATE {raw.events} SET state = ? WHERE originator_id = ? AND originator_version = 2",
        (edited, raw.key(s.case_id)),
    )
    raw.run("UPDATE case_state SET status = 'closed' WHERE case_id = ?", (s.other,))
    serial, parallel = audit_both(s.ledger)
    assert by_case_ran(parallel) and not by_case_ran(serial)
    assert comparable(parallel) == comparable(serial)
    assert {f.code for f in serial.findings} >= {"BAD_SIGNATURE", "PROJECTION_DRIFT"}


def test_an_envelope_under_another_cases_row_is_checked_in_one_process(scenario: Scenario) -> None:
    s, raw = scenario, Raw(scenario.ledger)
    raw.run(
        f"UPDATE {raw.events} SET originator_id = ?, originator_version = 99"
        " WHERE originator_id = ? AND originator_version = 2",
        (raw.key(s.case_id), raw.key(s.other)),
    )
    serial, parallel = audit_both(s.ledger)
    assert not by_case_ran(parallel)  # a worker would have checked the other case without it
    assert comparable(parallel) == comparable(serial)
    assert ("ORDER_VIOLATION", s.leaf[(s.other, 2)], s.other, 2) in where(serial)


def test_an_error_in_a_case_worker_is_raised_not_swallowed(
    scenario: Scenario, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ledger.audit import by_case

    monkeypatch.setattr(by_case, "_check_task", _fail_in_worker)
    with pytest.raises(RuntimeError, match="could not be checked"):
        audit_both(scenario.ledger)


def test_a_dead_case_worker_is_an_error_not_a_hang(scenario: Scenario, monkeypatch: pytest.MonkeyPatch) -> None:
    from ledger.audit import by_case

    monkeypatch.setattr(by_case, "_check_task", _die_in_worker)
    with pytest.raises(BrokenProcessPool):
        audit_both(scenario.ledger)
