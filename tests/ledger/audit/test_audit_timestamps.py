"""The audit checks every stored RFC 3161 token and the time-stamp policy (docs/audit.md); both backends.

The ledgers here run on the real time (the local TSA stamps with it)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from ledger.audit.run import AuditOptions, AuditReport, run_audit
from ledger.audit.source import read_database
from ledger.audit.timestamps import TimestampPolicy
from ledger.envelope.canonical import format_time
from ledger.log import timestamp
from ledger.log.timestamping import configure_tsa, stamp_checkpoint, tokens_for
from ledger.log.tlog import StoredCheckpoint
from ledger.store import Ledger
from tests.support.audit import Raw, options
from tests.support.cases import Actors, case_opened, new_case_id
from tests.support.tsa import TestTSA

INTERVAL = timedelta(seconds=60)


@pytest.fixture
def tsa(tmp_path: Path) -> Iterator[TestTSA]:
    running = TestTSA(tmp_path / "tsa").start()
    yield running
    running.stop()


@dataclass
class Stamped:
    ledger: Ledger
    tsa: TestTSA
    actors: Actors
    checkpoints: list[StoredCheckpoint]
    since: datetime  # the TSA was configured then: the key registry's entries before it have no time-stamp

    def policy(self, ca: Path | None = None, **changes: object) -> TimestampPolicy:
        trust = timestamp.load_trust((ca or self.tsa.ca_pem).read_bytes(), "ca.pem")
        policy = TimestampPolicy((trust,), "--tsa-cert", INTERVAL, self.since)
        return replace(policy, **changes)  # type: ignore[arg-type]

    def audit(self, policy: TimestampPolicy | None = None, *, later: timedelta = timedelta(minutes=10),
              history: bool = True) -> AuditReport:
        opts: AuditOptions = options(self.ledger)
        opts = replace(opts, timestamps=policy or self.policy(), now=datetime.now(UTC) + later,
                       history=opts.history if history else None)
        return run_audit(read_database(self.ledger.db, mac=self.ledger.mac), opts)

    def grow_and_stamp(self) -> StoredCheckpoint:
        self.actors.ok("investigator", new_case_id(), "CaseOpened", case_opened())
        checkpoint = self.ledger.checkpoint()
        assert checkpoint is not None and stamp_checkpoint(self.ledger, checkpoint) == 1
        self.checkpoints.append(checkpoint)
        return checkpoint


def _stamped(ledger: Ledger, tsa: TestTSA, *, ago: timedelta = timedelta(0)) -> Stamped:
    ledger.clock.now = datetime.now(UTC) - ago  # type: ignore[attr-defined]
    since = ledger.clock.now  # type: ignore[attr-defined]
    configure_tsa(ledger.data_dir, tsa.url, tsa.ca_pem.read_bytes(), "test-tsa")
    s = Stamped(ledger, tsa, Actors.register(ledger), [], since)
    s.grow_and_stamp()
    s.grow_and_stamp()
    return s


def _codes(report: AuditReport) -> list[tuple[str, object]]:
    return [(f.code, f.evidence.get("size", f.leaf_index)) for f in report.findings]


def test_stamped_checkpoints_audit_clean_with_their_gen_times(ledger: Ledger, tsa: TestTSA) -> None:
    s = _stamped(ledger, tsa)
    report = s.audit()
    assert report.findings == [], report.findings
    assert sorted(report.stamped) == [c.size for c in s.checkpoints]
    assert report.to_json()["timestamps"] == {str(k): v for k, v in sorted(report.stamped.items())}


def test_a_planted_token_row_is_timestamp_invalid(ledger: Ledger, tsa: TestTSA) -> None:
    """A genuine token copied to another checkpoint's row: the TSA never saw that tree."""
    s = _stamped(ledger, tsa)
    first, second = s.checkpoints
    token = tokens_for(ledger, first.size)[0].token
    Raw(ledger).run("INSERT INTO log_timestamps (size, tsa, token, received_at) VALUES (?, ?, ?, ?)",
                    (second.size, "planted", token, "2026-02-05T17:00:01.000000Z"))
    assert _codes(s.audit()) == [("TIMESTAMP_INVALID", second.size)]
    # found from the token and the checkpoint alone, without any TSA certificate
    unchecked = s.audit(TimestampPolicy())
    assert _codes(unchecked) == [("TIMESTAMP_INVALID", second.size)]
    assert any("not their signatures" in n for n in unchecked.notes)


def test_an_edited_token_row_is_timestamp_invalid(ledger: Ledger, tsa: TestTSA) -> None:
    s = _stamped(ledger, tsa)
    first = s.checkpoints[0]
    token = bytearray(tokens_for(ledger, first.size)[0].token)
    token[-30] ^= 0x01
    Raw(ledger).run("UPDATE log_timestamps SET token = ? WHERE size = ?", (bytes(token), first.size))
    report = s.audit()
    assert ("TIMESTAMP_INVALID", first.size) in _codes(report)


def test_a_row_for_a_size_never_signed_is_timestamp_invalid(ledger: Ledger, tsa: TestTSA) -> None:
    s = _stamped(ledger, tsa)
    token = tokens_for(ledger, s.checkpoints[0].size)[0].token
    Raw(ledger).run("INSERT INTO log_timestamps (size, tsa, token, received_at) VALUES (?, ?, ?, ?)",
                    (999, "test-tsa", token, "2026-02-05T17:00:01.000000Z"))
    report = s.audit()
    assert _codes(report) == [("TIMESTAMP_INVALID", 999)]
    assert "no checkpoint of this size" in report.findings[0].message


def test_a_token_of_an_untrusted_tsa_is_timestamp_invalid(ledger: Ledger, tsa: TestTSA, tmp_path: Path) -> None:
    s = _stamped(ledger, tsa)
    other = TestTSA(tmp_path / "other", "Other TSA")
    codes = _codes(s.audit(s.policy(other.ca_pem)))
    assert ("TIMESTAMP_INVALID", s.checkpoints[0].size) in codes and ("TIMESTAMP_INVALID", s.checkpoints[1].size) in codes


def test_backdated_entries_lack_a_timely_time_stamp(ledger: Ledger, tsa: TestTSA) -> None:
    """A history written with integration times an hour in the past (a rewrite, backdated): the TSA's
    tokens over it say now, not then. Entries before --tsa-since are not held to the policy."""
    s = _stamped(ledger, tsa, ago=timedelta(hours=1))
    report = s.audit()
    missing = [f for f in report.findings if f.code == "TIMESTAMP_MISSING"]
    first = s.checkpoints[-1].size - missing[0].evidence["count"]
    assert len(missing) == 1 and missing[0].leaf_index == first, report.findings
    assert ledger.log_size() - first >= 4  # the actors' keys and both cases
    since = format_time(datetime.now(UTC) - timedelta(minutes=1))
    assert s.audit(s.policy(since=datetime.fromisoformat(since))).findings == []
    assert s.audit(TimestampPolicy()).findings == []  # without a TSA certificate: no policy


def test_entries_without_any_time_stamp_are_timestamp_missing(ledger: Ledger, tsa: TestTSA) -> None:
    s = _stamped(ledger, tsa)
    tsa.down = True
    s.actors.ok("investigator", new_case_id(), "CaseOpened", case_opened())
    checkpoint = ledger.checkpoint()
    assert checkpoint is not None and stamp_checkpoint(ledger, checkpoint) == 0
    report = s.audit()
    assert [(f.code, f.leaf_index) for f in report.findings] == [("TIMESTAMP_MISSING", s.checkpoints[-1].size)]
    assert report.findings[0].evidence["count"] == checkpoint.size - s.checkpoints[-1].size
    assert s.audit(later=timedelta(seconds=0)).findings == []  # too recent to be required yet


def test_a_leaf_after_the_tsa_s_time_is_timestamp_invalid(ledger: Ledger, tsa: TestTSA) -> None:
    """The ledger's clock forward-dated its leaves: the TSA saw the tree before they claim to exist."""
    s = _stamped(ledger, tsa, ago=-timedelta(days=1))
    codes = _codes(s.audit(later=timedelta(days=2)))
    assert ("TIMESTAMP_INVALID", s.checkpoints[0].size) in codes


def test_a_checkpoint_row_re_timed_after_its_time_stamp_is_tampered(ledger: Ledger, tsa: TestTSA) -> None:
    s = _stamped(ledger, tsa)
    last = s.checkpoints[-1]
    late = format_time(datetime.now(UTC) + timedelta(hours=2))  # later than every other row: only the token says
    Raw(ledger).run("UPDATE log_checkpoints SET signed_at = ? WHERE size = ?", (late, last.size))
    report = s.audit(history=False)  # the rollback guard's record would say so too: judged by the token alone
    assert [(f.code, f.evidence["size"]) for f in report.findings] == [("CHECKPOINT_TAMPERED", last.size)]
    assert "after its RFC 3161 time-stamp" in report.findings[0].message


def test_the_cli_takes_tsa_certificates_and_defaults_to_the_data_dir_s(
    ledger: Ledger, tsa: TestTSA, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from ledger.cli.app import app, commands

    commands()
    s = _stamped(ledger, tsa)
    monkeypatch.setenv("EVIDENCE_LEDGER_DATA_DIR", str(ledger.data_dir))
    if ledger.settings.database_url:
        monkeypatch.setenv("EVIDENCE_LEDGER_DATABASE_URL", ledger.settings.database_url)
    runner = CliRunner()
    since = ["--tsa-since", format_time(s.since)]
    result = runner.invoke(app, ["audit", "--json", "--tsa-cert", str(tsa.ca_pem)])
    assert result.exit_code == 1 and "TIMESTAMP_MISSING" in result.stdout  # the registry's first entries
    result = runner.invoke(app, ["audit", "--json", "--tsa-cert", str(tsa.ca_pem), *since])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert sorted(int(k) for k in data["timestamps"]) == [c.size for c in s.checkpoints]
    result = runner.invoke(app, ["audit", "--json", *since])  # tsa.json's certificates: said to be not independent
    assert result.exit_code == 0 and any("not independent" in n and "tsa.json" in n for n in json.loads(result.stdout)["notes"])
    other = TestTSA(tmp_path / "other", "Other TSA")
    result = runner.invoke(app, ["audit", "--json", "--tsa-cert", str(other.ca_pem), *since])
    assert result.exit_code == 1 and "TIMESTAMP_INVALID" in result.stdout
    assert runner.invoke(app, ["audit", "--tsa-cert", str(tsa.cert_pem)]).exit_code == 2  # no CA in it
    assert runner.invoke(app, ["audit", "--tsa-since", "yesterday"]).exit_code == 2


def test_forward_dated_entries_without_a_time_stamp_are_timestamp_missing(ledger: Ledger, tsa: TestTSA) -> None:
    """Entries claiming an integration time after the audit's now cannot be 'too recent to need a
    time-stamp': a history rewritten with times in the future, its tokens withheld, is still caught."""
    s = _stamped(ledger, tsa)
    tsa.down = True
    ledger.clock.now = datetime.now(UTC) + timedelta(days=1)  # type: ignore[attr-defined]
    s.actors.ok("investigator", new_case_id(), "CaseOpened", case_opened())
    checkpoint = ledger.checkpoint()
    assert checkpoint is not None and stamp_checkpoint(ledger, checkpoint) == 0
    report = s.audit()
    assert ("TIMESTAMP_MISSING", s.checkpoints[-1].size) in [(f.code, f.leaf_index) for f in report.findings]
