"""Crash safety: the short CI version of ops/crash/harness.py, and proof that its checker can fail.

The harness SIGKILLs a real `evidence-ledger serve` process under concurrent signed appends, restarts
it and, with the server stopped, checks the ledger against everything the clients were told
(docs/crash-safety.md). Here: 3 kills on SQLite and 3 on PostgreSQL. The checker tests feed it a
small real ledger plus fabricated client records, one fault at a time.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ledger.bootstrap import register_key
from ledger.envelope.dsse import sha256_hex
from ledger.envelope.keys import raw_public_key
from ledger.envelope.signing import build_envelope
from ledger.log import note
from ledger.settings import key_path
from ledger.store import Ledger
from ops.crash.check import CheckReport, check_ledger
from ops.crash.harness import HarnessConfig, HarnessResult, main, run, summary
from ops.crash.record import Ack, Indeterminate, RunRecord

# -- the harness end to end -------------------------------------------------------------------------


def assert_survived(result: HarnessResult, kills: int) -> None:
    report = result.report
    assert result.ok, summary(result)
    assert len(result.kills) == kills
    assert report.acknowledged > 0 and report.case_events == report.acknowledged
    assert (report.lost, report.mismatched, report.duplicates, report.phantom, report.half_present) == (
        0,
    ) * 5
    assert report.engine_findings == 0
    assert report.root_ok and report.final_checkpoint_ok
    assert report.checkpoints_consistent == report.checkpoints_seen > 0
    assert not result.record.anomalies
    assert all(k.ready_after < 30 for k in result.kills)


@pytest.mark.slow
def test_sqlite_keeps_every_acknowledged_event_across_sigkills(tmp_path: Path) -> None:
    config = HarnessConfig(
        backend="sqlite", kills=3, clients=6, seed=20260205, data_dir=tmp_path / "data", quiet=0.5
    )
    assert_survived(run(config), kills=3)


@pytest.mark.slow
@pytest.mark.postgres
def test_postgres_keeps_every_acknowledged_event_across_sigkills(tmp_path: Path, pg_database: str) -> None:
    config = HarnessConfig(
        backend="postgres",
        kills=3,
        clients=6,
        seed=20260205,
        data_dir=tmp_path / "data",
        database_url=pg_database,
        quiet=0.5,
    )
    assert_survived(run(config), kills=3)


def test_the_command_line_refuses_a_database_url_for_sqlite(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="postgres"):
        main(
            [
                "--backend",
                "sqlite",
                "--kills",
                "0",
                "--database-url",
                "postgresql://127.0.0.1/x",
                "--data-dir",
                str(tmp_path / "data"),
            ]
        )


# -- the checker can fail ----------------------------------------------------------------------------


class Small:
    """A real ledger with one investigator's case of three events, and the client's acks for them."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        self.key = Ed25519PrivateKey.generate()
        register_key(
            ledger,
            key_path(ledger.data_dir, "admin"),
            raw_public_key(self.key),
            actor="tester",
            role="investigator",
            authority=None,
        )
        self.case_id = str(uuid.uuid4())
        self.acks: list[Ack] = []
        self.append("CaseOpened", {"case_number": "CPD-T-1", "category": "violence", "summary": "test"})
        self.append("FootageCaptured", footage())
        self.append(
            "CustodyTransferred",
            {
                "footage_id": "ftg-1",
                "from_custodian": "A",
                "to_custodian": "B",
                "purpose": "lab",
            },
        )

    def append(self, event_type: str, body: dict[str, Any]) -> None:
        receipt = self.ledger.sign_and_append(self.key, self.case_id, event_type, body)
        raw = self.ledger.case_envelopes(self.case_id)[receipt.seq - 1]
        self.acks.append(
            Ack(
                receipt.event_id,
                self.case_id,
                receipt.seq,
                raw,
                sha256_hex(raw),
                receipt.leaf_index,
                receipt.leaf_hash,
                201,
            )
        )

    def record(self, acks: list[Ack] | None = None, **extra: Any) -> RunRecord:
        return RunRecord(acks=list(self.acks if acks is None else acks), **extra)

    def check(self, record: RunRecord) -> CheckReport:
        return check_ledger(self.ledger, record)


def footage() -> dict[str, Any]:
    return {
        "footage_id": "ftg-1",
        "source": "body_worn_camera",
        "device_id": "BWC-1",
        "recorded_from": "2026-02-05T16:58:00Z",
        "recorded_to": "2026-02-05T17:06:00Z",
        "sha256": "ab" * 32,
        "size_bytes": 10,
        "media_type": "video/mp4",
        "depicts": ["property_damage_by_federal_officials"],
        "custodian": "A",
        "stored": False,
    }


@pytest.fixture
def small(make_ledger: Callable[..., Ledger]) -> Small:
    return Small(make_ledger())


def test_the_checker_passes_a_clean_ledger(small: Small) -> None:
    report = small.check(small.record())
    assert report.ok, report.problems
    assert (report.acknowledged, report.case_events, report.cases) == (3, 3, 1)
    assert report.root_ok and report.final_checkpoint_ok


def test_an_acknowledged_event_missing_from_the_ledger_is_lost(small: Small) -> None:
    case_id = str(uuid.uuid4())
    raw = build_envelope(
        origin=small.ledger.origin,
        case_id=case_id,
        event_type="CaseOpened",
        body={"case_number": "CPD-T-2", "category": "violence", "summary": "never stored"},
        key=small.key,
        seq=1,
        prev=None,
        occurred_at=datetime.now(UTC),
    )
    fabricated = Ack(
        str(uuid.uuid4()), case_id, 1, raw, sha256_hex(raw), small.ledger.log_size(), "00" * 32, 201
    )
    report = small.check(small.record([*small.acks, fabricated]))
    assert report.lost == 1
    assert not report.ok
    assert any(p.startswith("LOST") and fabricated.event_id in p for p in report.problems)


def test_an_acknowledged_event_at_another_leaf_is_mismatched(small: Small) -> None:
    first, *rest = small.acks
    moved = Ack(**{**first.__dict__, "leaf_index": first.leaf_index + 1})
    report = small.check(small.record([moved, *rest]))
    assert (report.lost, report.mismatched) == (0, 1)
    assert not report.ok


def test_a_stored_event_nobody_acknowledged_is_a_phantom(small: Small) -> None:
    dropped = small.acks[-1]
    abandoned = Indeterminate(
        dropped.event_id,
        dropped.case_id,
        dropped.seq,
        dropped.envelope,
        dropped.envelope_sha256,
        "ReadError",
        sent=True,
        resolution="absent",
        action="abandoned",
    )
    report = small.check(small.record(small.acks[:-1], indeterminate=[abandoned]))
    assert report.phantom == 1
    assert any("abandoned" in p for p in report.problems)


def test_two_envelopes_acknowledged_for_one_position_are_duplicates(small: Small) -> None:
    last = small.acks[-1]
    other = build_envelope(
        origin=small.ledger.origin,
        case_id=last.case_id,
        event_type="CustodyTransferred",
        body={"footage_id": "ftg-1", "from_custodian": "A", "to_custodian": "C", "purpose": "x"},
        key=small.key,
        seq=last.seq,
        prev=None,
        occurred_at=datetime.now(UTC),
    )
    twin = Ack(
        str(uuid.uuid4()),
        last.case_id,
        last.seq,
        other,
        sha256_hex(other),
        last.leaf_index,
        last.leaf_hash,
        201,
    )
    report = small.check(small.record([*small.acks, twin]))
    assert report.duplicates == 1 and report.lost == 1


def test_a_log_entry_without_its_event_is_half_present(small: Small) -> None:
    db = small.ledger.db
    with db.write() as tx:
        tx.execute(
            f"DELETE FROM {db.events_table} WHERE originator_id = {db.case_key_sql('?')} AND originator_version = 3",
            (small.case_id,),
        )
    report = small.check(small.record())
    assert report.half_present >= 1 and report.lost == 1
    assert any("has no stored event" in p for p in report.problems)


def test_a_timeline_row_missing_is_half_present(small: Small) -> None:
    with small.ledger.db.write() as tx:
        tx.execute("DELETE FROM case_timeline WHERE case_id = ? AND seq = 3", (small.case_id,))
    report = small.check(small.record())
    assert report.half_present == 1 and report.lost == 0


def test_a_custody_link_missing_is_half_present(small: Small) -> None:
    with small.ledger.db.write() as tx:
        tx.execute("DELETE FROM case_custody WHERE case_id = ? AND step = 2", (small.case_id,))
    report = small.check(small.record())
    assert report.half_present == 1 and report.lost == 0
    assert any("1 custody links for 2 custody events" in p for p in report.problems)


def test_a_checkpoint_that_is_not_a_prefix_of_the_final_log_is_reported(small: Small) -> None:
    ledger = small.ledger
    forged = note.sign_note(
        note.Checkpoint(origin=ledger.origin, size=2, root=b"\x07" * 32).body(),
        ledger.config.log_key_name,
        ledger.log_key,
    )
    report = small.check(small.record(checkpoints=[forged]))
    assert report.checkpoints_seen == 1 and report.checkpoints_consistent == 0
    assert not report.ok


def test_a_checkpoint_larger_than_the_final_log_is_reported(small: Small) -> None:
    ledger = small.ledger
    ahead = note.sign_note(
        note.Checkpoint(origin=ledger.origin, size=ledger.log_size() + 5, root=b"\x07" * 32).body(),
        ledger.config.log_key_name,
        ledger.log_key,
    )
    report = small.check(small.record(checkpoints=[ahead]))
    assert any("only" in p for p in report.problems)


def test_a_torn_line_in_the_guard_history_is_reported(small: Small) -> None:
    small.ledger.checkpoint()
    history = small.ledger.data_dir / "checkpoints" / "history.jsonl"
    with history.open("a", encoding="utf-8") as out:
        out.write('{"note": "\\u2014 torn')
    report = small.check(small.record())
    assert report.guard_records >= 1
    assert any("torn" in p for p in report.problems)
