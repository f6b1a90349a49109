"""A throwaway PostgreSQL cluster on a loopback port: initdb, start, stop, and a restore of a base backup.

The restore drill (``ops/backup/drill.py``) restores production's base backup and WAL archive into
a new cluster made here; the tests also make the *source* cluster here (WAL archiving on). The
server binaries run as the ``postgres`` OS user when this process is root (PostgreSQL refuses to run
as root), directly otherwise; every directory they use is made inside one private root directory.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tarfile
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import psycopg

OS_USER = "postgres"


class ClusterError(Exception):
    """A cluster could not be made, started, recovered or stopped; the message says which and why."""


def bin_dir() -> Path:
    """``EVIDENCE_LEDGER_PG_BIN``, else the newest /usr/lib/postgresql/N/bin, else where ``pg_ctl`` is."""
    given = os.environ.get("EVIDENCE_LEDGER_PG_BIN")
    if given:
        if not (Path(given) / "pg_ctl").is_file():
            raise ClusterError(f"EVIDENCE_LEDGER_PG_BIN={given} holds no pg_ctl")
        return Path(given)
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"), key=lambda p: int(p.parent.parent.name))
    if found:
        return found[-1].parent
    on_path = shutil.which("pg_ctl")
    if on_path is None:
        raise ClusterError("no PostgreSQL server binaries (pg_ctl): set EVIDENCE_LEDGER_PG_BIN")
    return Path(on_path).parent


def _as_server_user(args: list[str]) -> list[str]:
    return ["runuser", "-u", OS_USER, "--", *args] if os.geteuid() == 0 else args


def _give_to_server_user(path: Path) -> None:
    if os.geteuid() != 0:
        return
    import pwd

    entry = pwd.getpwnam(OS_USER)
    uid, gid = entry.pw_uid, entry.pw_gid
    for root, dirs, files in os.walk(path):
        os.chown(root, uid, gid)
        for name in dirs + files:
            os.chown(os.path.join(root, name), uid, gid, follow_symlinks=False)


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _run(args: list[str], what: str, timeout: float = 120) -> str:
    done = subprocess.run(_as_server_user(args), capture_output=True, text=True, timeout=timeout, check=False)
    if done.returncode != 0:
        raise ClusterError(f"{what} failed (exit {done.returncode}): {(done.stderr or done.stdout).strip()[-800:]}")
    return done.stdout


@dataclass
class Cluster:
    """A cluster in ``root`` (``root/data``, its log ``root/server.log``, its socket in ``root``)."""

    root: Path
    port: int
    superuser: str = "postgres"

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def log(self) -> Path:
        return self.root / "server.log"

    def url(self, dbname: str = "postgres", user: str | None = None) -> str:
        return f"postgresql://{user or self.superuser}@127.0.0.1:{self.port}/{dbname}"

    @staticmethod
    def new_root(prefix: str) -> Path:
        """A private directory (mode 0700) the server user owns, in the temporary directory."""
        root = Path(tempfile.mkdtemp(prefix=prefix))
        _give_to_server_user(root)
        return root

    @classmethod
    def initdb(cls, root: Path, *, archive_to: Path | None = None) -> Cluster:
        """A new cluster in ``root`` (from :meth:`new_root`); with ``archive_to``, WAL archiving into it
        with ``ops/backup/archive_wal.sh`` (copied into ``root``)."""
        cluster = cls(root, free_port())
        _run([str(bin_dir() / "initdb"), "-D", str(cluster.data), "-U", cluster.superuser, "--auth=trust",
              "-E", "UTF8", "--no-instructions"], "initdb")
        settings = {"wal_level": "replica", "max_wal_senders": "4"}
        if archive_to is not None:
            archive_to.mkdir(mode=0o700, exist_ok=True)
            script = root / "archive_wal.sh"
            shutil.copy(Path(__file__).with_name("archive_wal.sh"), script)
            script.chmod(0o755)
            _give_to_server_user(root)
            settings |= {"archive_mode": "on", "archive_command": f"{script} %p %f {archive_to}"}
        cluster.configure(settings)
        return cluster

    def configure(self, settings: dict[str, str]) -> None:
        """Append ``settings`` (and this cluster's port, loopback address and socket directory) to
        ``postgresql.auto.conf``, which is read after ``postgresql.conf``: the last value wins."""
        ours = {
            "port": str(self.port),
            "listen_addresses": "127.0.0.1",
            "unix_socket_directories": str(self.root),
            "hba_file": str(self.data / "pg_hba.conf"),
            "ident_file": str(self.data / "pg_ident.conf"),
            "fsync": "on",
        } | settings
        lines = "".join(f"{name} = '{_quoted(value)}'\n" for name, value in ours.items())
        with (self.data / "postgresql.auto.conf").open("a", encoding="utf-8") as handle:
            handle.write(lines)

    def start(self, timeout: float = 120) -> None:
        _run([str(bin_dir() / "pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-w", "-t", str(int(timeout)),
              "start"], f"starting the cluster in {self.data} (log {self.log})", timeout=timeout + 10)

    def stop(self, mode: str = "fast") -> None:
        """Stop the server; quiet when it is not running."""
        if not (self.data / "postmaster.pid").exists():
            return
        with contextlib.suppress(ClusterError, subprocess.TimeoutExpired):
            _run([str(bin_dir() / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop"], "pg_ctl stop", 60)

    def remove(self) -> None:
        """Stop the server at once (its files are deleted next: nothing to flush) and delete the cluster."""
        self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)

    def connect(self, dbname: str = "postgres") -> psycopg.Connection:
        return psycopg.connect(self.url(dbname), autocommit=True, connect_timeout=5)

    def wait_promoted(self, timeout: float = 120) -> None:
        """Wait until archive recovery has ended and the server accepts writes."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with self.connect() as conn:
                    row = conn.execute("SELECT pg_is_in_recovery()").fetchone()
                    if row is not None and not row[0]:
                        return
            except psycopg.OperationalError:
                pass
            time.sleep(0.1)
        raise ClusterError(f"recovery did not end within {timeout:.0f} s (log {self.log})")

    def switch_wal_and_wait(self, timeout: float = 60) -> str:
        """Close the current WAL segment and wait until the archiver has archived it; returns its name."""
        with self.connect() as conn:
            row = conn.execute("SELECT pg_walfile_name(pg_switch_wal())").fetchone()
            assert row is not None
            segment = str(row[0])
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                done = conn.execute("SELECT last_archived_wal, last_failed_wal FROM pg_stat_archiver").fetchone()
                if done is not None and done[0] is not None and str(done[0]) >= segment:
                    return segment
                time.sleep(0.05)
        raise ClusterError(f"WAL segment {segment} was not archived within {timeout:.0f} s (log {self.log})")


def _quoted(value: str) -> str:
    return value.replace("'", "''")


def _extract(archive: Path, into: Path) -> None:
    with tarfile.open(archive) as tar:
        if hasattr(tarfile, "data_filter"):
            tar.extractall(into, filter="data")
        else:  # pragma: no cover - Python before 3.11.4
            tar.extractall(into)  # noqa: S202 - our own base backup


def restore_base_backup(
    base: Path, archive: Path | None, *, target: str | None = None, superuser: str = "postgres"
) -> Cluster:
    """A new cluster on a free loopback port from the ``pg_basebackup -Ft`` output in ``base``
    (``base.tar[.gz]`` and, with ``-X stream``, ``pg_wal.tar[.gz]``), recovered with the WAL in
    ``archive`` up to ``target`` (None: the end of the archive; ``immediate``: the end of the base
    backup; else an RFC 3339 time), then promoted. It never archives WAL itself (``archive_mode =
    off``), so it cannot write into production's archive, and it trusts connections only on loopback
    and its private socket."""
    tars = {name: next(iter(sorted(base.glob(f"{name}.tar*"))), None) for name in ("base", "pg_wal")}
    if tars["base"] is None:
        raise ClusterError(f"{base} holds no base.tar or base.tar.gz (pg_basebackup -Ft output)")
    root = Cluster.new_root("evidence-ledger-drill-pg-")
    cluster = Cluster(root, free_port(), superuser)
    try:
        cluster.data.mkdir(mode=0o700)
        _extract(tars["base"], cluster.data)
        if tars["pg_wal"] is not None:
            _extract(tars["pg_wal"], cluster.data / "pg_wal")
        for stale in ("postmaster.pid", "standby.signal"):
            (cluster.data / stale).unlink(missing_ok=True)
        if not (cluster.data / "postgresql.conf").exists():  # Debian keeps it in /etc, outside PGDATA
            (cluster.data / "postgresql.conf").write_text("", "utf-8")
        keep = cluster.data / "pg_hba.conf"
        if keep.exists():
            keep.rename(cluster.data / "pg_hba.conf.from-backup")
        keep.write_text("local all all trust\nhost all all 127.0.0.1/32 trust\n", "utf-8")
        (cluster.data / "pg_ident.conf").touch()
        settings = {"archive_mode": "off", "recovery_target_action": "promote", "primary_conninfo": ""}
        if archive is not None:
            settings["restore_command"] = f'cp "{archive}/%f" "%p"'
        if target == "immediate":
            settings["recovery_target"] = "immediate"
        elif target:
            settings["recovery_target_time"] = target
        cluster.configure(settings)
        (cluster.data / "recovery.signal").touch()
        _give_to_server_user(root)
        cluster.start()
        cluster.wait_promoted()
    except BaseException:
        cluster.remove()
        raise
    return cluster
