"""Throwaway PostgreSQL clusters on loopback ports: initdb, start, stop, remove, a restore of a base
backup, and a primary with a streaming replica.

The restore drill (``ops/backup/drill.py``) restores production's base backup and WAL archive into a
new cluster made here (:func:`restore_base_backup`); its tests make the *source* cluster here too (WAL
archiving on). The read-replica tests and ``ops/bench/bench_replica_reads.py`` use
:func:`primary_and_replica`: a primary and a hot standby cloned with ``pg_basebackup -R``, whose replay
can be paused (``pg_wal_replay_pause()``: the replica keeps receiving WAL but applies none of it) to
make lag deterministically.

The server binaries run as the ``postgres`` OS user when this process is root (PostgreSQL refuses to
run as root), directly otherwise; every directory they use is made inside one private root directory,
which is removed when the cluster is, also on failure. Every cluster trusts connections only on
127.0.0.1 and its private socket.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
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


def unavailable() -> str | None:
    """Why no cluster (nor a replica) can be made here, or None."""
    try:
        found = bin_dir()
    except ClusterError as exc:
        return str(exc)
    for tool in ("initdb", "pg_ctl", "pg_basebackup"):
        if not (found / tool).is_file():
            return f"{found / tool} is missing (PostgreSQL server binaries)"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam(OS_USER)
        except KeyError:
            return f"running as root and there is no `{OS_USER}` OS user to run the servers as"
    return None


def _as_server_user(args: list[str]) -> list[str]:
    return ["runuser", "-u", OS_USER, "--", *args] if os.geteuid() == 0 else args


def _give_to_server_user(path: Path) -> None:
    if os.geteuid() != 0:
        return
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
    done = subprocess.run(_as_server_user(args), capture_output=True, text=True, timeout=timeout, cwd="/",
                          check=False)
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
    def initdb(
        cls, root: Path, *, archive_to: Path | None = None, settings: dict[str, str] | None = None
    ) -> Cluster:
        """A new cluster in ``root`` (from :meth:`new_root`), ready to be a replication primary, with
        ``settings`` on top; with ``archive_to``, WAL archiving into it with ``ops/backup/archive_wal.sh``
        (copied into ``root``)."""
        cluster = cls(root, free_port())
        _run([str(bin_dir() / "initdb"), "-D", str(cluster.data), "-U", cluster.superuser, "--auth=trust",
              "-E", "UTF8", "--locale=C", "--no-sync", "--no-instructions"], "initdb")
        (cluster.data / "pg_hba.conf").write_text(HBA, "utf-8")  # initdb's file, so still the server user's
        ours = {"wal_level": "replica", "max_wal_senders": "4"} | (settings or {})
        if archive_to is not None:
            archive_to.mkdir(mode=0o700, exist_ok=True)
            script = root / "archive_wal.sh"
            shutil.copy(Path(__file__).parent / "backup" / "archive_wal.sh", script)
            script.chmod(0o755)
            _give_to_server_user(root)
            ours |= {"archive_mode": "on", "archive_command": f"{script} %p %f {archive_to}"}
        cluster.configure(ours)
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

    def execute(self, statement: str, dbname: str = "postgres") -> list[tuple[object, ...]]:
        """Run one statement (autocommit); its rows, if it returns any."""
        with self.connect(dbname) as conn:
            cursor = conn.execute(statement.encode())
            return list(cursor.fetchall()) if cursor.description else []

    def wait_ready(self, timeout: float = 30) -> None:
        """Wait until the server accepts connections."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                with psycopg.connect(self.url(), connect_timeout=2):
                    return
            except psycopg.OperationalError as exc:
                if time.monotonic() > deadline:
                    raise ClusterError(f"the server at {self.url()} did not accept connections: {exc}") from None
                time.sleep(0.05)

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


HBA = """local all all trust
host all all 127.0.0.1/32 trust
host replication all 127.0.0.1/32 trust
"""

#: the primary's and the replica's settings on top of :meth:`Cluster.initdb`'s
REPLICATION_SETTINGS = {
    "hot_standby": "on",
    "wal_keep_size": "64MB",
    "synchronous_commit": "on",
    "full_page_writes": "on",
    "shared_buffers": "32MB",
    "max_connections": "60",
    "logging_collector": "off",
}


@dataclass
class PrimaryAndReplica:
    """A running primary and its streaming hot standby, both with the database ``database``."""

    primary: Cluster
    replica: Cluster
    database: str = "ledger"

    @property
    def primary_url(self) -> str:
        return self.primary.url(self.database)

    @property
    def replica_url(self) -> str:
        return self.replica.url(self.database)

    def pause_replay(self, timeout: float = 30) -> None:
        """Stop applying WAL on the replica (it keeps receiving it); returns once replay is paused."""
        self.replica.execute("SELECT pg_wal_replay_pause()")
        deadline = time.monotonic() + timeout
        while self.replica.execute("SELECT pg_get_wal_replay_pause_state()")[0][0] != "paused":
            if time.monotonic() > deadline:
                raise ClusterError(f"the replica did not pause its WAL replay (log {self.replica.log})")
            time.sleep(0.01)

    def resume_replay(self) -> None:
        self.replica.execute("SELECT pg_wal_replay_resume()")

    def stop_replica(self) -> None:
        """Stop the replica at once (connections to it fail until :meth:`start_replica`)."""
        self.replica.stop("immediate")

    def start_replica(self) -> None:
        self.replica.start(timeout=30)
        self.replica.wait_ready()

    def wait_caught_up(self, timeout: float = 30) -> None:
        """Until the replica has replayed everything the primary has written so far."""
        target = self.primary.execute("SELECT pg_current_wal_lsn()::text")[0][0]
        deadline = time.monotonic() + timeout
        while not self.replica.execute(f"SELECT pg_last_wal_replay_lsn() >= '{target}'::pg_lsn")[0][0]:
            if time.monotonic() > deadline:
                raise ClusterError(f"the replica did not replay up to {target} (log {self.replica.log})")
            time.sleep(0.01)


@contextmanager
def primary_and_replica(database: str = "ledger") -> Iterator[PrimaryAndReplica]:
    """A running primary with the database ``database`` and a streaming hot-standby replica of it
    (``pg_basebackup -R``: ``standby.signal`` and ``primary_conninfo``), caught up. Both servers are
    stopped and their directories removed when the context ends, also on failure."""
    reason = unavailable()
    if reason is not None:
        raise ClusterError(reason)
    top = Cluster.new_root("el-pg-cluster-")
    with ExitStack() as stack:
        stack.callback(shutil.rmtree, top, True)
        for name in ("primary", "replica"):
            (top / name).mkdir(mode=0o700)
        _give_to_server_user(top)
        primary = Cluster.initdb(top / "primary", settings=REPLICATION_SETTINGS)
        stack.callback(primary.stop, "immediate")
        primary.start(timeout=30)
        primary.wait_ready()
        primary.execute(f'CREATE DATABASE "{database}"')
        replica = Cluster(top / "replica", free_port())
        _run([str(bin_dir() / "pg_basebackup"), "-h", "127.0.0.1", "-p", str(primary.port), "-U", primary.superuser,
              "-D", str(replica.data), "-R", "-X", "stream", "--checkpoint=fast", "--no-sync"], "pg_basebackup")
        replica.configure({})  # the copied settings name the primary's port, socket and files: its own win
        stack.callback(replica.stop, "immediate")
        replica.start(timeout=30)
        replica.wait_ready()
        made = PrimaryAndReplica(primary, replica, database)
        made.wait_caught_up()
        yield made


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
