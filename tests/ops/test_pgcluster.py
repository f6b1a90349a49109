"""The throwaway clusters of ops/pgcluster.py: the skip-or-fail rule, and teardown that leaves nothing."""

from __future__ import annotations

import tarfile
import tempfile
from pathlib import Path

import psycopg
import pytest

from ops import pgcluster
from tests.support import pg_cluster


def test_missing_binaries_fail_the_cluster_tests_where_they_are_required_and_skip_them_elsewhere(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("EVIDENCE_LEDGER_PG_BIN", str(tmp_path))
    reason = pgcluster.unavailable()
    assert reason == f"EVIDENCE_LEDGER_PG_BIN={tmp_path} holds no pg_ctl"
    assert pg_cluster.available() == reason
    monkeypatch.delenv("CI", raising=False)
    for setting in ("", "required"):
        monkeypatch.setenv("EVIDENCE_LEDGER_TEST_POSTGRES", setting)
        outcome = pytest.fail.Exception if setting else pytest.skip.Exception
        with pytest.raises(outcome, match="holds no pg_ctl"):
            pg_cluster.skip_or_fail("cluster tests")
    monkeypatch.setenv("EVIDENCE_LEDGER_TEST_POSTGRES", "")
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="the cluster tests must run here"):
        pg_cluster.skip_or_fail("cluster tests")


def test_a_restore_that_fails_leaves_no_cluster_directory(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    pg_cluster.skip_or_fail("cluster tests")
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    base = tmp_path / "base"
    base.mkdir()
    (base / "base.tar.gz").write_bytes(b"not a tar file")
    with pytest.raises(tarfile.ReadError):
        pgcluster.restore_base_backup(base, None)
    assert [p.name for p in tmp_path.iterdir()] == ["base"]


@pytest.mark.slow
@pytest.mark.postgres
def test_a_failure_inside_primary_and_replica_stops_both_servers_and_removes_their_files() -> None:
    pg_cluster.skip_or_fail("cluster tests")  # the servers' user must reach the directory: the usual tempdir
    with pytest.raises(RuntimeError, match="the test failed"), pgcluster.primary_and_replica() as made:
        made.pause_replay()
        assert made.replica.execute("SELECT pg_is_in_recovery()") == [(True,)]
        urls, root = (made.primary_url, made.replica_url), made.primary.root.parent
        assert made.replica.root.parent == root and root.is_dir()
        raise RuntimeError("the test failed")
    assert not root.exists()
    for url in urls:
        with pytest.raises(psycopg.OperationalError):
            psycopg.connect(url, connect_timeout=2).close()
