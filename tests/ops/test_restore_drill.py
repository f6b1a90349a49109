"""The restore drill (ops/restore_drill.sh) on both backends, with backups made by ops/backup/backup.sh.

A ledger gets a few events and a recorded checkpoint; it is backed up (database, keys with the
rollback guard, keystore: three sets); the drill restores the backup to a fresh instance, starts the
service and audits it: clean. Then the ledger grows and records a newer checkpoint; a restore of the
older backup to a point before it is refused by the rollback guard, and the drill fails naming it.
PostgreSQL runs in its own throwaway cluster on loopback, with WAL archiving, so the drill's
point-in-time recovery from the base backup and the archive is exercised for real.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ledger.bootstrap import init_data_dir
from ledger.cli.app import commands
from ledger.settings import Settings
from ledger.store import Ledger, utc_now
from ops.pgcluster import Cluster, bin_dir
from tests.support import pg_cluster
from tests.support.cases import Actors, case_opened, new_case_id
from tests.support.cli import error_line
from tests.support.ledgers import ORIGIN

ROOT = Path(__file__).resolve().parents[2]
DRILL = ROOT / "ops" / "restore_drill.sh"
BACKUP = ROOT / "ops" / "backup" / "backup.sh"


def _env(data_dir: Path, database_url: str | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EVIDENCE_LEDGER_")}
    env |= {
        "EVIDENCE_LEDGER_DATA_DIR": str(data_dir),
        "EVIDENCE_LEDGER": f"{sys.executable} -m api",
        "PYTHON": sys.executable,
        "PYTHONPATH": str(ROOT),
    }
    if database_url:
        env["EVIDENCE_LEDGER_DATABASE_URL"] = database_url
    return env


def backup(what: str, out: Path, env: dict[str, str]) -> Path:
    """``backup.sh WHAT --out OUT``; the one file or directory it made."""
    out.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["bash", str(BACKUP), what, "--out", str(out)], env=env, capture_output=True,
                          text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    (made,) = list(out.iterdir())
    return made


def drill(env: dict[str, str], *args: str | Path) -> tuple[int, dict[str, Any], float]:
    started = time.monotonic()
    done = subprocess.run(["bash", str(DRILL), "--json", "--audit-workers", "1", *map(str, args)], env=env, capture_output=True,
                          text=True, timeout=300, check=False)
    elapsed = time.monotonic() - started
    assert done.stdout, f"no summary (exit {done.returncode}): {done.stderr}"
    summary = json.loads(done.stdout)
    print(f"drill ({summary['backend']}): exit {done.returncode} in {elapsed:.2f} s wall; steps {summary['timings']}")
    return done.returncode, summary, elapsed


def grow(ledger: Ledger, actors: Actors, cases: int, start: int) -> bytes:
    """``cases`` new cases and a checkpoint over them; returns the signed checkpoint (what a monitor keeps)."""
    for n in range(start, start + cases):
        actors.ok("investigator", new_case_id(), "CaseOpened", case_opened(f"CPD-2026-{n:04d}"))
    checkpoint = ledger.checkpoint()
    assert checkpoint is not None
    return ledger.checkpoint_at(ledger.log_size()).note


def new_ledger(tmp_path: Path, database_url: str | None) -> Ledger:
    data_dir = tmp_path / "data"
    settings = Settings(data_dir=data_dir, database_url=database_url, keystore_dir=tmp_path / "keystore")
    init_data_dir(data_dir, ORIGIN, settings, now=utc_now())
    return Ledger(settings)


@pytest.mark.slow
def test_sqlite_backup_restores_cleanly_and_an_older_one_is_refused(tmp_path: Path) -> None:
    ledger = new_ledger(tmp_path, None)
    try:
        actors = Actors.register(ledger)
        client_latest = tmp_path / "client-latest.txt"  # a client's logs/<origin>/latest
        client_latest.write_bytes(grow(ledger, actors, 2, 0))
        size = ledger.log_size()
        env = _env(ledger.data_dir) | {"EVIDENCE_LEDGER_KEYSTORE_DIR": str(tmp_path / "keystore")}
        database = backup("database", tmp_path / "backups" / "db", env)  # online: the ledger is open
        (ledger.data_dir / "tiles").mkdir()
        (ledger.data_dir / "tiles" / "checkpoint").write_bytes(b"public")
        (ledger.data_dir / "seal.key").write_bytes(b"legacy department key")
        (ledger.data_dir / "keystore2").mkdir()
        (ledger.data_dir / "keystore2" / "kek.key").write_bytes(b"a keystore under another name")
        (ledger.data_dir / "keys" / ".lock").touch()
        keys = backup("keys", tmp_path / "backups" / "keys", env)
        keystore = backup("keystore", tmp_path / "backups" / "keystore", env)
        with tarfile.open(keys) as tar:
            names = tar.getnames()
        assert "./keys/state.key" in names and "./checkpoints/latest" in names and "./ledger.json" in names
        assert not [n for n in names if "sqlite3" in n or ".lock" in n or "seal.key" in n
                    or n.startswith(("./keystore", "./footage", "./tiles"))]

        no_outside = subprocess.run(["bash", str(DRILL), "--backend", "sqlite", "--database", str(database),
                                     "--keys", str(keys), "--work", str(tmp_path / "drill-0")],
                                    env=env, capture_output=True, text=True, timeout=60, check=False)
        assert no_outside.returncode == 2, no_outside.stderr
        assert "DRILL FAILED: no checkpoint from outside the backup: " in no_outside.stderr
        assert not (tmp_path / "drill-0").exists()

        code, summary, _ = drill(env, "--backend", "sqlite", "--database", database, "--keys", keys,
                                 "--keystore", keystore, "--from-checkpoint", client_latest,
                                 "--work", tmp_path / "drill-1")
        assert code == 0 and summary["passed"], summary["failures"]
        assert summary["service"] == "ready" and summary["audit"]["findings"] == []
        assert summary["audit"]["log_size"] == size == summary["newest_checkpoint"]
        assert not (tmp_path / "drill-1" / "data").exists()  # the copy of the keys is not left behind

        newest = tmp_path / "monitor-newest.txt"
        newest.write_bytes(grow(ledger, actors, 2, 2))  # the monitor's memory of the newest checkpoint
        code, summary, _ = drill(env, "--backend", "sqlite", "--database", database, "--keys", keys,
                                 "--keystore", keystore, "--from-checkpoint", newest, "--work", tmp_path / "drill-2")
        missing = ledger.log_size() - size
    finally:
        ledger.close()
    assert code == 1 and not summary["passed"]
    assert summary["service"] == "refused"
    assert summary["failures"][0].startswith("the service refuses writes: ROLLBACK_DETECTED")
    assert f"{missing} entries are missing" in summary["failures"][0]
    assert [f["code"] for f in summary["audit"]["findings"]] == ["ROLLBACK"]


@pytest.fixture
def source_cluster() -> Iterator[Cluster]:
    """A throwaway PostgreSQL cluster on a loopback port, archiving its WAL into ``root/wal-archive``."""
    pg_cluster.skip_or_fail("PostgreSQL restore drill tests")
    root = Cluster.new_root("evidence-ledger-test-src-")
    cluster = Cluster.initdb(root, archive_to=root / "wal-archive")
    try:
        cluster.start()
        with cluster.connect() as conn:
            conn.execute("CREATE DATABASE ledger")
        yield cluster
    finally:
        cluster.remove()


@pytest.mark.slow
@pytest.mark.postgres
def test_postgres_point_in_time_recovery_and_a_restore_to_before_the_newest_checkpoint(
    tmp_path: Path, source_cluster: Cluster
) -> None:
    ledger = new_ledger(tmp_path, source_cluster.url("ledger"))
    try:
        actors = Actors.register(ledger)
        grow(ledger, actors, 2, 0)
        base_size = ledger.log_size()
        env = _env(ledger.data_dir, source_cluster.url("ledger")) | {"EVIDENCE_LEDGER_KEYSTORE_DIR": str(tmp_path / "keystore")}
        base = backup("database", tmp_path / "backups" / "db", env)  # pg_basebackup while the ledger runs
        keystore = backup("keystore", tmp_path / "backups" / "keystore", env)
        assert (base / "base.tar.gz").is_file() and (base / "backup_manifest").is_file()
        newest = tmp_path / "monitor-newest.txt"
        newest.write_bytes(grow(ledger, actors, 2, 2))
        newest_size = ledger.log_size()
        keys = backup("keys", tmp_path / "backups" / "keys", env)  # its guard holds the newest checkpoint
        source_cluster.switch_wal_and_wait()
    finally:
        ledger.close()
    archive = source_cluster.root / "wal-archive"
    common: list[str | Path] = ["--backend", "postgres", "--database", base, "--wal-archive", archive, "--keys", keys,
              "--keystore", keystore, "--pg-database", "ledger", "--from-checkpoint", newest]

    code, summary, _ = drill(env, *common, "--work", tmp_path / "drill-1")
    assert code == 0 and summary["passed"], summary["failures"]
    assert summary["service"] == "ready" and summary["audit"]["findings"] == []
    assert summary["audit"]["log_size"] == newest_size == summary["newest_checkpoint"]  # replayed from the archive

    code, summary, _ = drill(env, *common, "--target", "immediate", "--work", tmp_path / "drill-2")
    assert code == 1 and summary["service"] == "refused"
    assert summary["audit"]["log_size"] == base_size
    assert summary["failures"][0].startswith("the service refuses writes: ROLLBACK_DETECTED")
    assert f"{newest_size - base_size} entries are missing" in summary["failures"][0]
    assert [f["code"] for f in summary["audit"]["findings"]] == ["ROLLBACK"]

    # Retention: a newer base backup; pruning to one removes the older one and the WAL only it needed.
    newer = tmp_path / "backups" / "db" / "base-99999999T999999Z"  # sorts after the first
    subprocess.run([str(bin_dir() / "pg_basebackup"), "-d", source_cluster.url("ledger"), "-D", str(newer), "-Ft",
                    "-z", "-X", "stream", "-c", "fast"], check=True, capture_output=True, timeout=120)
    source_cluster.switch_wal_and_wait()
    before = sorted(p.name for p in archive.iterdir())
    done = subprocess.run(["bash", str(BACKUP), "prune", "--base-dir", str(base.parent), "--archive", str(archive),
                           "--keep", "1"], env=env, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert [p.name for p in base.parent.iterdir()] == [newer.name]
    start = json.loads((newer / "backup_manifest").read_text())["WAL-Ranges"][0]["Start-LSN"]
    high, low = (int(part, 16) for part in start.split("/"))
    first = f"{1:08X}{high:08X}{low // (16 << 20):08X}"
    after = sorted(p.name for p in archive.iterdir())
    segments = [name for name in before if len(name) == 24]  # the history files are archived asynchronously
    assert [name for name in after if len(name) == 24] == [name for name in segments if name >= first]
    assert len(after) < len(before) and all(name[:24] >= first for name in after)


def test_the_drill_refuses_a_work_dir_in_use_a_missing_backup_and_a_file_that_is_no_database(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    init_data_dir(data_dir, ORIGIN, Settings(data_dir=data_dir), now=utc_now())
    (tmp_path / "in-use").mkdir()
    (tmp_path / "in-use" / "x").touch()
    not_a_db = tmp_path / "db.sqlite3"
    not_a_db.write_text("nothing", "utf-8")
    outside = tmp_path / "outside.txt"
    outside.write_bytes((data_dir / "checkpoints" / "latest").read_bytes())
    cases = [
        ("in-use", data_dir, "is not empty"),
        ("fresh-1", tmp_path / "none.tar.gz", "does not exist"),
        ("fresh-2", data_dir, "is not a SQLite database"),  # a keys backup may be a directory
    ]
    for work, keys, reason in cases:
        done = subprocess.run(["bash", str(DRILL), "--backend", "sqlite", "--database", str(not_a_db),
                               "--keys", str(keys), "--from-checkpoint", str(outside), "--work", str(tmp_path / work)],
                              env=_env(data_dir), capture_output=True, text=True, timeout=60, check=False)
        assert done.returncode == 2 and "DRILL FAILED" in done.stderr and reason in done.stderr, done.stderr


def test_db_backup_never_overwrites_and_leaves_postgresql_to_pg_basebackup(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    data_dir = tmp_path / "data"
    init_data_dir(data_dir, ORIGIN, Settings(data_dir=data_dir), now=utc_now())
    out = tmp_path / "copy.sqlite3"
    runner = CliRunner()
    env = {"EVIDENCE_LEDGER_DATA_DIR": str(data_dir)}
    done = runner.invoke(commands(), ["db", "backup", "--out", str(out), "--json"], env=env)
    assert done.exit_code == 0, done.output
    assert json.loads(done.stdout)["bytes"] == out.stat().st_size > 0 and out.stat().st_mode & 0o777 == 0o600
    again = runner.invoke(commands(), ["db", "backup", "--out", str(out)], env=env)
    assert again.exit_code == 2 and error_line(again).startswith("error: FILE_EXISTS:")
    pg = env | {"EVIDENCE_LEDGER_DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none"}
    refused = runner.invoke(commands(), ["db", "backup", "--out", str(tmp_path / "pg.sqlite3")], env=pg)
    assert refused.exit_code == 2 and "pg_basebackup" in error_line(refused)


def test_the_drill_instance_talks_to_no_production_witness_or_tsa(tmp_path: Path) -> None:
    from ops.backup.drill import isolate

    witnesses = [{"url": "https://witness.example/", "vkey": "w+1+AAAA"}]
    tsas = [{"name": "tsa", "url": "https://tsa.example/tsr", "cert": "tsa.pem"}]
    (tmp_path / "witnesses.json").write_text(json.dumps(witnesses), "utf-8")
    (tmp_path / "tsa.json").write_text(json.dumps(tsas), "utf-8")
    isolate(tmp_path)
    for name, before in (("witnesses.json", witnesses), ("tsa.json", tsas)):
        after = json.loads((tmp_path / name).read_text("utf-8"))
        assert [{k: v for k, v in e.items() if k != "url"} for e in after] == [
            {k: v for k, v in e.items() if k != "url"} for e in before
        ]
        assert all(e["url"].startswith("http://127.0.0.1:") for e in after)


def test_outside_checkpoints_are_held_to_the_log_key_and_a_bad_guard_file_is_named(tmp_path: Path) -> None:
    from ops.backup.drill import Drill, Unusable, restore_files
    from tests.support.witness import FakeLog

    data_dir = tmp_path / "data"
    init_data_dir(data_dir, ORIGIN, Settings(data_dir=data_dir), now=utc_now())
    other_log = tmp_path / "other.txt"
    other_log.write_bytes(FakeLog(ORIGIN).note(3))  # the right origin, another key
    with pytest.raises(Unusable, match="is not a checkpoint of this log"):
        restore_files(Drill("sqlite", tmp_path / "w1"), data_dir, None, [other_log])

    (data_dir / "checkpoints" / "latest").write_bytes(b"not a checkpoint\n")
    drill = Drill("sqlite", tmp_path / "w2")
    restore_files(drill, data_dir, None, [])
    (failure,) = drill.failures
    assert failure.startswith("the keys backup's checkpoints/latest is not a checkpoint of this log: ")
    assert drill.facts["newest_checkpoint"] is None


def test_the_drill_audits_with_the_auditors_pin_file(tmp_path: Path) -> None:
    """``--trust`` reaches the audit: an unusable pin file is the audit's BAD_PIN_FILE, not ignored."""
    from ops.backup.drill import Drill, _environment, finish_audit, start_audit

    work = tmp_path / "work"
    init_data_dir(work / "data", ORIGIN, Settings(data_dir=work / "data"), now=utc_now())
    pin = tmp_path / "trust.toml"
    pin.write_bytes(b"[[log]\n")
    drill = Drill("sqlite", work)
    env = _environment(drill, {"XDG_CONFIG_HOME": str(tmp_path / "config")}, False)
    finish_audit(drill, start_audit(env, [], 1, pin))
    (failure,) = drill.failures
    assert failure.startswith("audit exited 2 without a report: ") and "BAD_PIN_FILE" in failure

    clean = Drill("sqlite", work)
    finish_audit(clean, start_audit(env, [], 1))
    assert clean.failures == [] and clean.facts["audit"]["exit"] == 0
