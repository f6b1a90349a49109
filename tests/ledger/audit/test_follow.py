"""The continuous monitor (`audit --follow`): clean logs stay quiet while they grow; a tampered entry,
a rollback, a fork and a checkpoint short of its witnesses are each reported once, by code; the
state survives a restart of the monitor and of the server."""

from __future__ import annotations

import base64
import json
import shutil
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi.testclient import TestClient

from api.app import create_app
from api.settings import ApiSettings
from ledger.audit.follow import (
    DatabaseSource,
    Monitor,
    MonitorOptions,
    MonitorState,
    ServerSource,
    load_state,
    save_state,
)
from ledger.envelope.canonical import canonical
from ledger.envelope.keys import raw_public_key
from ledger.log import note
from ledger.store import Ledger
from tests.support.audit import Raw, verifier_key
from tests.support.cases import Actors, case_opened, footage_captured, new_case_id

SQLITE_ONLY = pytest.mark.parametrize("backend", ["sqlite"])  # the tests copy the data dir's database file


def resign_body(raw: bytes, **changes: Any) -> bytes:
    """The envelope with its statement body changed and the old signature kept (a forged edit)."""
    env = json.loads(raw)
    statement = json.loads(base64.b64decode(env["payload"]))
    statement["body"].update(changes)
    env["payload"] = base64.b64encode(canonical(statement)).decode("ascii")
    return canonical(env)


def options(ledger: Ledger, **overrides: Any) -> MonitorOptions:
    return MonitorOptions(
        verifier_key(ledger), ledger.origin, ledger.config.admin_key_id, witness_grace=0, **overrides
    )


def fresh(ledger: Ledger) -> MonitorState:
    return MonitorState(ledger.origin, str(verifier_key(ledger)))


def monitor(source: Any, ledger: Ledger, state: MonitorState | None = None, **overrides: Any) -> Monitor:
    return Monitor(source, state or fresh(ledger), options(ledger, **overrides))


def codes(lines: list[dict[str, Any]]) -> list[tuple[str, Any]]:
    return [(line["code"], line.get("leaf_index", line.get("size"))) for line in lines]


def grow(actors: Actors, cases: int = 1, *, checkpoint: bool = True) -> list[str]:
    """New cases of two events each (and a checkpoint over them)."""
    made = []
    for _ in range(cases):
        case_id = new_case_id()
        actors.ok("investigator", case_id, "CaseOpened", case_opened())
        actors.ok("investigator", case_id, "FootageCaptured", footage_captured())
        made.append(case_id)
    if checkpoint:
        actors.ledger.checkpoint()
    return made


@contextmanager
def served(ledger: Ledger) -> Iterator[ServerSource]:
    """The ledger's API in-process, read by the monitor with an auditor's token."""
    app = create_app(ledger=ledger, api_settings=ApiSettings())
    with TestClient(app, raise_server_exceptions=False) as client:
        token = app.state.runtime.tokens.issue(
            actor="Auditor E. Park", role="auditor", authority=None, expires_in=timedelta(days=1), now=ledger.clock()
        ).token
        yield ServerSource("http://testserver", token, client=client)


def copy_data_dir(ledger: Ledger, to: Path) -> Path:
    """A consistent copy of a SQLite ledger's data dir (the database through SQLite's backup API)."""
    shutil.copytree(ledger.data_dir, to)
    db = ledger.target.sqlite_path
    assert db is not None
    copied = to / db.relative_to(ledger.data_dir)
    for suffix in ("", "-wal", "-shm"):
        copied.with_name(copied.name + suffix).unlink(missing_ok=True)
    with sqlite3.connect(str(db)) as src, sqlite3.connect(str(copied)) as dst:
        src.backup(dst)
    return to


# --- clean --------------------------------------------------------------------------------------


@pytest.mark.parametrize("via", ["database", "server"])
def test_a_growing_clean_log_gives_no_findings_poll_after_poll(ledger: Ledger, via: str) -> None:
    actors = Actors.register(ledger)
    with served(ledger) as server:
        source = server if via == "server" else DatabaseSource(ledger.db)
        watcher = monitor(source, ledger)
        for growth in (2, 1, 0, 3):
            grow(actors, growth, checkpoint=growth != 1)  # one round leaves entries past the checkpoint
            result = watcher.poll()
            assert result.findings == []
            assert result.size == ledger.log_size()
            latest = ledger.latest_checkpoint()
            assert latest is not None and result.checkpoint_size == latest.size
        assert watcher.state.checkpoint_root == ledger.latest_checkpoint().root  # type: ignore[union-attr]


def test_the_state_survives_a_restart_and_resumes_at_the_last_index(ledger: Ledger, tmp_path: Path) -> None:
    actors = Actors.register(ledger)
    path = tmp_path / "monitor.json"
    grow(actors, 2)
    first = monitor(DatabaseSource(ledger.db), ledger)
    assert first.poll().findings == []
    save_state(path, first.state)
    verified = first.state.size
    grow(actors, 1)
    restored = load_state(path, ledger.origin, str(verifier_key(ledger)))
    assert restored.size == verified and restored.chains == first.state.chains
    again = monitor(DatabaseSource(ledger.db), ledger, restored)
    result = again.poll()
    assert result.findings == [] and result.verified == 2 and result.size == ledger.log_size()
    # the registry was rebuilt from the state: a key registered before the restart still signs
    later = grow(actors, 1)
    assert again.poll().findings == [] and later


def test_a_state_file_of_another_log_or_edited_is_refused(ledger: Ledger, tmp_path: Path) -> None:
    from ledger.audit.follow import StateFileError

    actors = Actors.register(ledger)
    grow(actors, 1)
    path = tmp_path / "monitor.json"
    watcher = monitor(DatabaseSource(ledger.db), ledger)
    watcher.poll()
    save_state(path, watcher.state)
    with pytest.raises(StateFileError, match="another log"):
        load_state(path, "other.example/log", str(verifier_key(ledger)))
    data = json.loads(path.read_text())
    data["size"] += 1  # the tree no longer adds up
    path.write_text(json.dumps(data))
    with pytest.raises(StateFileError, match="not usable"):
        load_state(path, ledger.origin, str(verifier_key(ledger)))


# --- tampering ----------------------------------------------------------------------------------


def test_an_envelope_edited_before_the_monitor_saw_it_is_reported_within_one_poll(ledger: Ledger) -> None:
    actors = Actors.register(ledger)
    with served(ledger) as server:
        watcher = monitor(server, ledger)
        grow(actors, 1)
        assert watcher.poll().findings == []
        (case_id,) = grow(actors, 1)
        leaf = ledger.log_size() - 1
        raw = Raw(ledger)
        (stored,) = ledger.case_envelopes(case_id, after=1, limit=1)
        edited = resign_body(stored, footage_id="ftg-forged")  # a DBA's edit, the old signature kept
        raw.run(
            f"UPDATE {raw.events} SET state = ? WHERE originator_id = ? AND originator_version = 2",
            (edited, raw.key(case_id)),
        )
        result = watcher.poll()
        assert sorted(codes(result.findings)) == [("BAD_SIGNATURE", leaf), ("LEAF_MISMATCH", leaf)]
        assert all(line["case_id"] == case_id and line["seq"] == 2 for line in result.findings)
        assert watcher.poll().findings == []  # reported once; the log goes on
        grow(actors, 1)
        assert watcher.poll().findings == []


@pytest.mark.parametrize("via", ["database", "server"])
def test_a_leaf_row_edited_before_the_monitor_saw_it_is_a_root_mismatch_not_a_fork(ledger: Ledger, via: str) -> None:
    actors = Actors.register(ledger)
    with served(ledger) as server:
        watcher = monitor(server if via == "server" else DatabaseSource(ledger.db), ledger)
        grow(actors, 1)
        assert watcher.poll().findings == []
        grow(actors, 1)
        last = ledger.log_size() - 1
        (leaf,) = Raw(ledger).run("SELECT leaf FROM log_entries WHERE leaf_index = ?", (last,))[0]
        edited = bytes(leaf).replace(b'"integrated_at":"2', b'"integrated_at":"1')  # a re-timed entry
        assert edited != bytes(leaf)
        Raw(ledger).run("UPDATE log_entries SET leaf = ? WHERE leaf_index = ?", (edited, last))
        found = watcher.poll().findings
        # the signer's key was not registered yet at the forged time; the tree is the consistent log's
        assert codes(found) == [("UNKNOWN_KEY", last), ("ROOT_MISMATCH", ledger.log_size())]
        assert "consistency proof" in found[1]["message"]


def test_a_deleted_event_row_is_a_missing_entry(ledger: Ledger) -> None:
    actors = Actors.register(ledger)
    watcher = monitor(DatabaseSource(ledger.db), ledger)
    assert watcher.poll().findings == []
    (case_id,) = grow(actors, 1)
    raw = Raw(ledger)
    raw.run(f"DELETE FROM {raw.events} WHERE originator_id = ? AND originator_version = 1", (raw.key(case_id),))
    found = watcher.poll().findings
    assert codes(found) == [("MISSING_ENTRY", ledger.log_size() - 2), ("SEQ_GAP", ledger.log_size() - 1)]


@SQLITE_ONLY
def test_an_older_copy_served_is_a_rollback_with_both_notes_kept(
    make_ledger: Callable[..., Ledger], tmp_path: Path
) -> None:
    ledger = make_ledger()
    actors = Actors.register(ledger)
    grow(actors, 1)
    older = make_ledger(data_dir=copy_data_dir(ledger, tmp_path / "older"))
    grow(actors, 2)
    conflicts = tmp_path / "conflicts"
    with served(ledger) as server:
        watcher = monitor(server, ledger, conflicts=conflicts)
        assert watcher.poll().findings == []
    verified = watcher.state.checkpoint_size
    with served(older) as server:
        watcher.source = server
        found = watcher.poll().findings
        assert codes(found) == [("ROLLBACK", older.log_size())]
        assert found[0]["evidence"]["missing"] == verified - older.log_size()
        assert watcher.poll().findings == []  # reported once
    kept = sorted(p.name for p in conflicts.iterdir())
    assert [name.split("-", 1)[1] for name in kept] == ["ROLLBACK-served.note", "ROLLBACK-verified.note"]
    assert (conflicts / kept[0]).read_bytes() == older.latest_checkpoint().with_cosignatures()  # type: ignore[union-attr]
    assert watcher.state.checkpoint_size == verified  # the verified tree is kept


@SQLITE_ONLY
@pytest.mark.parametrize("longer", [False, True])
def test_a_fork_with_other_later_events_is_an_equivocation(
    make_ledger: Callable[..., Ledger], tmp_path: Path, longer: bool
) -> None:
    ledger = make_ledger()
    actors = Actors.register(ledger)
    grow(actors, 1)
    fork = make_ledger(data_dir=copy_data_dir(ledger, tmp_path / "fork"))
    grow(actors, 2)
    watcher = monitor(DatabaseSource(ledger.db), ledger, conflicts=tmp_path / "conflicts")
    assert watcher.poll().findings == []
    forked = Actors(fork)
    forked.keys = actors.keys  # the same signing keys, registered in both copies
    grow(forked, 3 if longer else 2)  # other events at the same positions
    watcher.source = DatabaseSource(fork.db)
    found = watcher.poll().findings
    assert codes(found) == [("EQUIVOCATION", fork.log_size())]
    assert watcher.poll().findings == []
    assert len(list((tmp_path / "conflicts").iterdir())) == 2


def test_a_server_refusing_with_state_tampered_is_a_finding(ledger: Ledger) -> None:
    Actors.register(ledger)
    with served(ledger) as server:
        watcher = monitor(server, ledger)
        assert watcher.poll().findings == []
        Raw(ledger).run("UPDATE log_head SET mac = ? WHERE id = 1", ("0" * 64,))
        found = watcher.poll().findings
        assert [line["code"] for line in found] == ["STATE_TAMPERED"]
        assert watcher.poll().findings == []  # once, while it lasts


# --- witnesses ----------------------------------------------------------------------------------


def test_a_checkpoint_without_the_cosignatures_the_policy_asks_is_reported(ledger: Ledger) -> None:
    actors = Actors.register(ledger)
    witness = Ed25519PrivateKey.generate()
    wkey = note.make_verifier_key("witness.example", raw_public_key(witness), note.SIG_TYPE_COSIGNATURE_V1)
    grow(actors, 1)
    watcher = monitor(DatabaseSource(ledger.db), ledger, witnesses=[wkey])
    size = ledger.log_size()
    assert codes(watcher.poll().findings) == [("WITNESS_POLICY", size)]
    grow(actors, 1)
    size = ledger.log_size()
    body, _ = note.open_note(ledger.checkpoint_at(size).note)
    line = note.cosign(body, "witness.example", witness, 1_770_000_000)
    Raw(ledger).run(
        "INSERT INTO log_cosignatures (size, witness, line, received_at) VALUES (?, ?, ?, ?)",
        (size, "witness.example", line.decode(), "2026-02-05T17:00:00.000000Z"),
    )
    assert watcher.poll().findings == []


def test_cosignatures_arriving_within_the_grace_are_no_finding(ledger: Ledger) -> None:
    actors = Actors.register(ledger)
    witness = Ed25519PrivateKey.generate()
    wkey = note.make_verifier_key("witness.example", raw_public_key(witness), note.SIG_TYPE_COSIGNATURE_V1)
    grow(actors, 1)
    now = [1000.0]
    watcher = Monitor(
        DatabaseSource(ledger.db), fresh(ledger), options(ledger, witnesses=[wkey]), clock=lambda: now[0]
    )
    watcher.options.witness_grace = 30
    assert watcher.poll().findings == []  # pending: the witness has not cosigned yet
    size = ledger.log_size()
    body, _ = note.open_note(ledger.checkpoint_at(size).note)
    Raw(ledger).run(
        "INSERT INTO log_cosignatures (size, witness, line, received_at) VALUES (?, ?, ?, ?)",
        (size, "witness.example", note.cosign(body, "witness.example", witness, 1_770_000_000).decode(),
         "2026-02-05T17:00:00.000000Z"),
    )
    now[0] += 31
    assert watcher.poll().findings == [] and watcher.state.pending_witness is None
    grow(actors, 1)
    watcher.poll()
    now[0] += 31
    assert codes(watcher.poll().findings) == [("WITNESS_POLICY", ledger.log_size())]


# --- the command line -----------------------------------------------------------------------------


def _cli_env(ledger: Ledger, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EVIDENCE_LEDGER_DATA_DIR", str(ledger.data_dir))
    if ledger.settings.database_url:
        monkeypatch.setenv("EVIDENCE_LEDGER_DATABASE_URL", ledger.settings.database_url)


def test_the_cli_polls_once_keeps_its_state_and_exits_1_on_a_finding(
    ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from ledger.cli.app import app, commands
    from ledger.verify.state_dir import origin_dir, state_dir

    commands()
    _cli_env(ledger, monkeypatch)
    grow(Actors.register(ledger), 1)
    runner = CliRunner()
    vkey = str(verifier_key(ledger))
    result = runner.invoke(app, ["audit", "--once", "--vkey", vkey])
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    statuses = [json.loads(line) for line in result.stderr.splitlines()]
    assert [s["status"] for s in statuses] == ["started", "caught_up"]
    assert statuses[1]["size"] == ledger.log_size() == statuses[1]["verified"]
    root = state_dir()
    assert root is not None
    path = origin_dir(root, ledger.origin) / "monitor.json"
    assert json.loads(path.read_text())["size"] == ledger.log_size()
    result = runner.invoke(app, ["audit", "--once", "--vkey", vkey])  # resumes: nothing new to verify
    assert result.exit_code == 0 and json.loads(result.stderr.splitlines()[0])["size"] == ledger.log_size()
    witness = Ed25519PrivateKey.generate()
    wkey = note.make_verifier_key("witness.example", raw_public_key(witness), note.SIG_TYPE_COSIGNATURE_V1)
    result = runner.invoke(
        app, ["audit", "--once", "--vkey", vkey, "--witness", str(wkey), "--witness-grace", "0"]
    )
    assert result.exit_code == 1
    (line,) = [json.loads(x) for x in result.stdout.splitlines()]
    assert (line["code"], line["size"]) == ("WITNESS_POLICY", ledger.log_size()) and "time" in line
    # following: --fail-fast ends the run at the first finding (exit 1), state saved
    result = runner.invoke(app, ["audit", "--follow", "--fail-fast", "--interval", "0.1", "--vkey", vkey, "--witness",
                                 str(wkey), "--witness-grace", "0", "--state", str(path.with_name("other.json"))])
    assert result.exit_code == 1
    assert [json.loads(x)["code"] for x in result.stdout.splitlines()] == ["WITNESS_POLICY"]
    assert json.loads(result.stderr.splitlines()[-1])["status"] == "stopped"
    assert json.loads(path.with_name("other.json").read_text())["size"] == ledger.log_size()


def test_the_cli_once_against_a_server_that_is_down_exits_3(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from ledger.cli.app import app, commands
    from ops.procs import free_port

    commands()
    url = f"http://127.0.0.1:{free_port()}"
    result = CliRunner().invoke(app, ["audit", "--once", "--server", url, "--token", "t0k"])
    assert result.exit_code == 3 and result.stderr.startswith("error: SERVER_UNREACHABLE: ")
    assert CliRunner().invoke(app, ["audit", "--once", "--server", url]).exit_code == 2  # no token


# --- a real server, restarted under a running monitor ------------------------------------------------


class Lines:
    """A growing file of JSON lines, read as it grows."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.seen: list[dict[str, Any]] = []

    def wait_for(self, match: Callable[[dict[str, Any]], bool], process: Any, timeout: float = 120) -> dict[str, Any]:
        import time

        deadline = time.monotonic() + timeout  # a bound on waiting, not an assertion on speed
        while time.monotonic() < deadline:
            text = self.path.read_text() if self.path.exists() else ""
            self.seen = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
            hit = next((line for line in self.seen if match(line)), None)
            if hit is not None:
                return hit
            assert process.poll() is None, f"the monitor exited: {text}"
            time.sleep(0.1)
        raise AssertionError(f"no matching line in {self.path}: {self.seen[-5:]}")


@pytest.mark.slow
def test_the_monitor_keeps_following_across_a_server_restart(ledger: Ledger, tmp_path: Path) -> None:
    import os
    import signal
    import subprocess

    from ledger.client import append_remote
    from ops.procs import CLI, Server, free_port, wait_ready

    actors = Actors.register(ledger)
    env = {**os.environ, "EVIDENCE_LEDGER_DATA_DIR": str(ledger.data_dir)}
    if ledger.settings.database_url:
        env["EVIDENCE_LEDGER_DATABASE_URL"] = ledger.settings.database_url
    port = free_port()

    def start() -> Server:
        with (tmp_path / "server.log").open("ab") as log:
            process = subprocess.Popen(
                [*CLI, "serve", "--host", "127.0.0.1", "--port", str(port)], env=env, stdout=log,
                stderr=subprocess.STDOUT,
            )
        server = Server(f"http://127.0.0.1:{port}", process, tmp_path / "server.log")
        wait_ready(server)
        return server

    def issue(actor: str, role: str) -> str:  # in this process: the servers and monitors below are real ones
        from typer.testing import CliRunner

        from ledger.cli.app import commands

        done = CliRunner().invoke(commands(), ["tokens", "issue", "--actor", actor, "--role", role, "--expires-in",
                                               "1h"], env=env)
        assert done.exit_code == 0, done.output
        return done.stdout.strip().splitlines()[-1]

    def stop(process: Any) -> int:
        process.send_signal(signal.SIGTERM)
        try:
            return int(process.wait(timeout=60))
        finally:
            if process.poll() is None:
                process.kill()

    def append(server: Server, token: str, cases: int) -> None:
        for _ in range(cases):
            case_id = new_case_id()
            append_remote(server.url, token, case_id, "CaseOpened", case_opened(), actors.keys["investigator"])

    investigator, auditor = issue("Det. A. Rivera", "investigator"), issue("Auditor E. Park", "auditor")
    server = start()
    state = tmp_path / "monitor.json"
    monitor_cmd = [*CLI, "audit", "--follow", "--server", server.url, "--token", auditor, "--interval", "0.2",
                   "--state", str(state), "--vkey", str(verifier_key(ledger))]
    out, err = tmp_path / "findings.jsonl", tmp_path / "status.jsonl"
    with out.open("wb") as stdout, err.open("wb") as stderr:
        watcher = subprocess.Popen(monitor_cmd, env=env, stdout=stdout, stderr=stderr)
    status = Lines(err)
    try:
        append(server, investigator, 3)
        size = ledger.log_size()
        status.wait_for(lambda s: s.get("checkpoint_size") == size and s["status"] == "caught_up", watcher)
        stop(server.process)
        status.wait_for(lambda s: s["status"] == "unreachable", watcher)
        server = start()
        append(server, investigator, 2)
        size = ledger.log_size()
        status.wait_for(lambda s: s["status"] == "reconnected", watcher)
        status.wait_for(lambda s: s.get("checkpoint_size") == size and s["status"] == "caught_up", watcher)
        assert watcher.poll() is None  # still running
        assert out.read_text() == ""  # and no finding
        assert stop(watcher) == 0
        last = json.loads(err.read_text().splitlines()[-1])
        assert (last["status"], last["size"]) == ("stopped", size)
        assert json.loads(state.read_text())["size"] == size
        # a new monitor resumes where the last one stopped (not from leaf 0)
        append(server, investigator, 1)
        once = ["--once" if arg == "--follow" else arg for arg in monitor_cmd]
        resumed = subprocess.run(once, env=env, capture_output=True,
                                 text=True, timeout=120, check=False)
        assert resumed.returncode == 0 and resumed.stdout == "", resumed.stderr
        lines = [json.loads(line) for line in resumed.stderr.splitlines()]
        assert lines[0]["size"] == size and lines[-1]["verified"] == ledger.log_size() - size
    finally:
        if watcher.poll() is None:
            stop(watcher)
        if server.process.poll() is None:
            stop(server.process)



# --- the systemd unit -----------------------------------------------------------------------------

UNIT = Path(__file__).resolve().parents[3] / "ops" / "systemd" / "evidence-ledger-monitor.service"


def test_the_systemd_unit_is_hardened_and_verifies(tmp_path: Path) -> None:
    import os
    import shutil as sh
    import subprocess

    from ops.procs import CLI

    text = UNIT.read_text()
    for line in ("NoNewPrivileges=yes", "ProtectSystem=strict", "StateDirectory=evidence-ledger-monitor",
                 "Restart=always", "User=evidence-ledger-monitor", "Environment=EVIDENCE_LEDGER_STATE_DIR="
                 "/var/lib/evidence-ledger-monitor"):
        assert line in text.splitlines(), line
    tool = sh.which("systemd-analyze")
    if tool is None:
        pytest.skip("SKIPPED LOUDLY: systemd-analyze is not installed here; ops/systemd/evidence-ledger-monitor.service "
                    "was not verified (install systemd to check it)")
    unit = tmp_path / UNIT.name
    unit.write_text(text.replace("/opt/evidence-ledger/bin/evidence-ledger", CLI[0]))  # an executable that exists here
    done = subprocess.run([tool, "verify", str(unit)], capture_output=True, text=True, timeout=120, check=False,
                          env={**os.environ, "SYSTEMD_LOG_LEVEL": "warning"})
    complaints = [line for line in (done.stdout + done.stderr).splitlines() if UNIT.name in line]
    assert done.returncode == 0 and complaints == [], done.stdout + done.stderr
    # the check can fail: a misspelt setting is reported
    unit.write_text(text.replace("ProtectSystem=strict", "ProtectSystem=strictly").replace(
        "/opt/evidence-ledger/bin/evidence-ledger", CLI[0]))
    done = subprocess.run([tool, "verify", str(unit)], capture_output=True, text=True, timeout=120, check=False)
    assert any(UNIT.name in line for line in (done.stdout + done.stderr).splitlines())


def test_a_source_that_repeats_its_pages_is_not_read_in_a_loop(ledger: Ledger) -> None:
    from ledger.audit.source import LogItem

    grow(Actors.register(ledger), 1)
    real = DatabaseSource(ledger.db)

    class Repeating:
        name = "repeating"
        calls = 0

        def checkpoint(self, size: int | None = None) -> bytes | None:
            return real.checkpoint(size)

        def entries(self, after: int | None, limit: int) -> list[LogItem]:
            self.calls += 1
            assert self.calls < 50, "the monitor keeps asking for the same page"
            return real.entries(None, limit)  # always from leaf 0, whatever was asked

        def consistency(self, first: int, second: int) -> list[bytes] | None:
            return real.consistency(first, second)

    source = Repeating()
    watcher = monitor(source, ledger)
    assert watcher.poll().findings == [] and watcher.state.size == ledger.log_size()
    assert source.calls == 2


def test_without_vkey_the_pin_file_gives_the_key_trust_root_and_witnesses(
    ledger: Ledger, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import threading

    from ledger.audit import source as audit_source
    from ledger.audit.source import AuditInputError
    from ledger.cli.audit import _remote_trust
    from ledger.verify import LogPin, PinFile, render_pin_file

    key = verifier_key(ledger)
    wkey = note.make_verifier_key(
        "witness.example", raw_public_key(Ed25519PrivateKey.generate()), note.SIG_TYPE_COSIGNATURE_V1
    )
    pins = tmp_path / "trust.toml"
    pin = LogPin(ledger.origin, key, ledger.config.admin_key_id, (wkey,), 1)
    pins.write_bytes(render_pin_file(PinFile(pins, (pin,))))
    monkeypatch.setenv("EVIDENCE_LEDGER_TRUST_FILE", str(pins))
    stated = [str(key)]
    monkeypatch.setattr(audit_source, "server_verifier_key", lambda url: stated[0])
    args = {"vkey": None, "server": "http://ledger.test", "witness": None, "trust_root": None,
            "min_witnesses": None, "once": True, "interval": 1.0}
    got, trust_root, witnesses, minimum = _remote_trust(args, threading.Event())
    assert (str(got), trust_root, [str(w) for w in witnesses], minimum) == (
        str(key), ledger.config.admin_key_id, [str(wkey)], 1
    )
    other = note.make_verifier_key(ledger.origin, raw_public_key(Ed25519PrivateKey.generate()), note.SIG_TYPE_ED25519)
    stated[0] = str(other)  # the server now states another key for the pinned origin
    with pytest.raises(AuditInputError, match="another log key than the one pinned"):
        _remote_trust(args, threading.Event())


def test_the_monitor_reads_the_pin_file_given_with_trust_and_keeps_a_production_floor(
    ledger: Ledger, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`audit --follow --trust FILE` uses that pin file (not the default one), and a production pin's
    minimum of two cosignatures cannot be lowered with --min-witnesses."""
    import threading

    from ledger.audit import source as audit_source
    from ledger.cli.audit import _remote_trust
    from ledger.verify import LogPin, PinFile, render_pin_file

    key = verifier_key(ledger)
    witnesses = tuple(
        note.make_verifier_key(f"w{i}.example", raw_public_key(Ed25519PrivateKey.generate()), note.SIG_TYPE_COSIGNATURE_V1)
        for i in range(2)
    )
    pins = tmp_path / "other-trust.toml"
    pin = LogPin(ledger.origin, key, ledger.config.admin_key_id, witnesses, None, profile="production")
    pins.write_bytes(render_pin_file(PinFile(pins, (pin,))))
    monkeypatch.delenv("EVIDENCE_LEDGER_TRUST_FILE", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "empty-config"))
    monkeypatch.setattr(audit_source, "server_verifier_key", lambda url: str(key))
    args = {"vkey": None, "server": "http://ledger.test", "witness": None, "trust_root": None,
            "min_witnesses": 1, "once": True, "interval": 1.0, "trust": pins}
    _, trust_root, got, minimum = _remote_trust(args, threading.Event())
    assert (trust_root, sorted(map(str, got)), minimum) == (
        ledger.config.admin_key_id, sorted(map(str, witnesses)), 2
    )
    args["trust"] = None  # the default pin file does not exist: nothing pinned
    assert _remote_trust(args, threading.Event())[1:] == (None, [], 1)


class _OtherAtSize:
    """The ledger's database, except that the checkpoint asked for by size is ``other`` (the latest is
    the real one): a log showing the monitor one tree and serving another one for the same size."""

    name = "split view"

    def __init__(self, ledger: Ledger, other: bytes) -> None:
        self.real, self.other = DatabaseSource(ledger.db), other

    def checkpoint(self, size: int | None = None) -> bytes | None:
        return self.real.checkpoint() if size is None else self.other

    def entries(self, after: int | None, limit: int) -> list[Any]:
        return self.real.entries(after, limit)

    def consistency(self, first: int, second: int) -> list[bytes] | None:
        return self.real.consistency(first, second)


def test_a_cosigned_checkpoint_of_another_root_does_not_settle_a_pending_one(ledger: Ledger, tmp_path: Path) -> None:
    """The monitor saw an uncosigned tree; the log then serves, for the same size, a tree with another
    root that the witnesses cosigned: a split view (EQUIVOCATION), never a witnessed checkpoint."""
    actors = Actors.register(ledger)
    witness = Ed25519PrivateKey.generate()
    wkey = note.make_verifier_key("witness.example", raw_public_key(witness), note.SIG_TYPE_COSIGNATURE_V1)
    grow(actors, 1)
    size = ledger.log_size()
    other_root = base64.b64encode(bytes(32)).decode()
    body = f"{ledger.origin}\n{size}\n{other_root}\n".encode()
    forged = note.sign_note(body, ledger.config.log_key_name, ledger.log_key)
    cosigned = forged + note.cosign(body, "witness.example", witness, 1_770_000_000)
    now = [1000.0]
    watcher = Monitor(_OtherAtSize(ledger, cosigned), fresh(ledger),
                      options(ledger, witnesses=[wkey], conflicts=tmp_path / "conflicts"), clock=lambda: now[0])
    watcher.options.witness_grace = 30
    assert watcher.poll().findings == [] and watcher.state.pending_witness is not None
    now[0] += 31
    assert codes(watcher.poll().findings) == [("EQUIVOCATION", size)]


def test_an_unreadable_checkpoint_for_a_pending_size_is_a_finding_not_a_crash(ledger: Ledger) -> None:
    actors = Actors.register(ledger)
    witness = Ed25519PrivateKey.generate()
    wkey = note.make_verifier_key("witness.example", raw_public_key(witness), note.SIG_TYPE_COSIGNATURE_V1)
    grow(actors, 1)
    now = [1000.0]
    watcher = Monitor(_OtherAtSize(ledger, b"not a note"), fresh(ledger), options(ledger, witnesses=[wkey]),
                      clock=lambda: now[0])
    watcher.options.witness_grace = 30
    assert watcher.poll().findings == []
    now[0] += 31
    assert [line["code"] for line in watcher.poll().findings] == ["BAD_CHECKPOINT"]


def test_the_monitor_of_a_database_applies_the_pin_file_s_witnesses_too(
    ledger: Ledger, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`audit --once --trust FILE` against the database (no --server): the pinned witnesses and a
    production pin's floor apply, as they do against a server and in the one-shot audit."""
    from typer.testing import CliRunner

    from ledger.cli.app import app, commands
    from ledger.verify import LogPin, PinFile, render_pin_file

    commands()
    _cli_env(ledger, monkeypatch)
    grow(Actors.register(ledger), 1)
    key = verifier_key(ledger)
    witnesses = tuple(
        note.make_verifier_key(f"w{i}.example", raw_public_key(Ed25519PrivateKey.generate()), note.SIG_TYPE_COSIGNATURE_V1)
        for i in range(2)
    )
    pins = tmp_path / "trust.toml"
    pins.write_bytes(render_pin_file(PinFile(pins, (LogPin(ledger.origin, key, None, witnesses, None,
                                                           profile="production"),))))
    result = CliRunner().invoke(app, ["audit", "--once", "--vkey", str(key), "--trust", str(pins),
                                      "--min-witnesses", "0", "--witness-grace", "0",
                                      "--state", str(tmp_path / "state.json")])
    assert result.exit_code == 1, result.output
    assert [json.loads(x)["code"] for x in result.stdout.splitlines()] == ["WITNESS_POLICY"]


def test_the_monitor_s_own_witness_keys_never_lower_a_production_pin_s_floor(
    ledger: Ledger, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`audit --once --witness K --min-witnesses 0` under a production pin, against the database and
    against a server: the pin's two cosignatures are still required, and one key is too few."""
    import threading

    from typer.testing import CliRunner

    from ledger.audit import source as audit_source
    from ledger.audit.source import AuditInputError
    from ledger.cli.app import app, commands
    from ledger.cli.audit import _remote_trust
    from ledger.verify import LogPin, PinFile, render_pin_file

    commands()
    _cli_env(ledger, monkeypatch)
    grow(Actors.register(ledger), 1)
    key = verifier_key(ledger)
    witnesses = tuple(
        note.make_verifier_key(f"w{i}.example", raw_public_key(Ed25519PrivateKey.generate()), note.SIG_TYPE_COSIGNATURE_V1)
        for i in range(2)
    )
    pins = tmp_path / "trust.toml"
    pins.write_bytes(render_pin_file(PinFile(pins, (LogPin(ledger.origin, key, None, witnesses, None,
                                                           profile="production"),))))
    both = ["--witness", str(witnesses[0]), "--witness", str(witnesses[1]), "--min-witnesses", "0"]
    base = ["audit", "--once", "--vkey", str(key), "--trust", str(pins), "--witness-grace", "0"]
    result = CliRunner().invoke(app, [*base, *both, "--state", str(tmp_path / "state.json")])
    assert result.exit_code == 1, result.output
    assert [json.loads(x)["code"] for x in result.stdout.splitlines()] == ["WITNESS_POLICY"]
    one = ["--witness", str(witnesses[0]), "--min-witnesses", "0", "--state", str(tmp_path / "one.json")]
    refused = CliRunner().invoke(app, [*base, *one])
    assert refused.exit_code == 2 and "give at least 2 --witness keys" in refused.output

    monkeypatch.setattr(audit_source, "server_verifier_key", lambda url: str(key))
    args = {"vkey": None, "server": "http://ledger.test", "witness": [str(w) for w in witnesses], "trust_root": None,
            "min_witnesses": 0, "once": True, "interval": 1.0, "trust": pins}
    assert _remote_trust(args, threading.Event())[2:] == (list(witnesses), 2)
    with pytest.raises(AuditInputError, match="give at least 2 --witness keys"):
        _remote_trust({**args, "witness": [str(witnesses[0])]}, threading.Event())


def test_the_monitor_refuses_a_log_key_that_is_no_log_key(ledger: Ledger, monkeypatch: pytest.MonkeyPatch) -> None:
    """A server stating a cosignature (type 0x04) key: exit 2 with one line, not a ValueError at the first poll."""
    import threading

    from ledger.audit import source as audit_source
    from ledger.audit.source import AuditInputError
    from ledger.cli.audit import _remote_trust

    stated = note.make_verifier_key(ledger.origin, raw_public_key(Ed25519PrivateKey.generate()),
                                    note.SIG_TYPE_COSIGNATURE_V1)
    monkeypatch.setattr(audit_source, "server_verifier_key", lambda url: str(stated))
    args = {"vkey": None, "server": "http://ledger.test", "witness": None, "trust_root": None,
            "min_witnesses": None, "once": True, "interval": 1.0, "trust": None}
    with pytest.raises(AuditInputError, match="not a log key"):
        _remote_trust(args, threading.Event())
