"""A throwaway PostgreSQL 15 primary and its streaming replica on loopback, for the read-replica tests.

``primary_and_replica()`` runs ``initdb`` for a primary (``wal_level=replica``, ``hot_standby=on``, trust
auth on 127.0.0.1 for normal and replication connections), starts it on a free port, clones a replica
with ``pg_basebackup -R`` (which writes ``standby.signal`` and ``primary_conninfo``), starts it on
another free port and waits until it streams. Both servers are stopped and their directories removed
when the context ends, also on failure. As root the servers run as the ``postgres`` OS user (initdb
refuses root) from a temporary directory that user owns.

Lag is made deterministically with :meth:`Cluster.pause_replay` (``pg_wal_replay_pause()``: the replica
keeps receiving WAL but applies none of it) and undone with :meth:`Cluster.resume_replay`.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg

BIN = Path(os.environ.get("EVIDENCE_LEDGER_TEST_PG_BIN", "/usr/lib/postgresql/15/bin"))
USER = "postgres"  # the database superuser initdb creates (named after the OS user running it)
DATABASE = "ledger"
START_TIMEOUT = 30.0


class ClusterUnavailable(RuntimeError):
    """The PostgreSQL binaries are missing or a server could not be started."""


@dataclass
class Cluster:
    primary_port: int
    replica_port: int
    root: Path

    def url(self, port: int, dbname: str = DATABASE) -> str:
        return f"postgresql://{USER}@127.0.0.1:{port}/{dbname}"

    @property
    def primary_url(self) -> str:
        return self.url(self.primary_port)

    @property
    def replica_url(self) -> str:
        return self.url(self.replica_port)

    def execute(self, port: int, statement: str) -> list[tuple[object, ...]]:
        with psycopg.connect(self.url(port), autocommit=True, connect_timeout=5) as conn:
            cursor = conn.execute(statement)
            return list(cursor.fetchall()) if cursor.description else []

    def pause_replay(self) -> None:
        self.execute(self.replica_port, "SELECT pg_wal_replay_pause()")
        deadline = time.monotonic() + START_TIMEOUT
        while self.execute(self.replica_port, "SELECT pg_get_wal_replay_pause_state()")[0][0] != "paused":
            if time.monotonic() > deadline:
                raise ClusterUnavailable("the replica did not pause its WAL replay")
            time.sleep(0.01)

    def resume_replay(self) -> None:
        self.execute(self.replica_port, "SELECT pg_wal_replay_resume()")

    def stop_replica(self) -> None:
        """Stop the replica at once (connections to it fail until :meth:`start_replica`)."""
        _stop(self.root / "replica", os.geteuid() == 0)

    def start_replica(self) -> None:
        _run(
            [str(BIN / "pg_ctl"), "-D", str(self.root / "replica"), "-l", str(self.root / "replica.log"), "-w", "-t",
             "30", "start"],
            as_postgres=os.geteuid() == 0,
        )
        _wait_ready(self.replica_url)

    def wait_caught_up(self, timeout: float = START_TIMEOUT) -> None:
        """Until the replica has replayed everything the primary has written so far."""
        target = self.execute(self.primary_port, "SELECT pg_current_wal_lsn()::text")[0][0]
        deadline = time.monotonic() + timeout
        while True:
            done = self.execute(
                self.replica_port, f"SELECT pg_last_wal_replay_lsn() >= '{target}'::pg_lsn"
            )[0][0]
            if done:
                return
            if time.monotonic() > deadline:
                raise ClusterUnavailable(f"the replica did not replay up to {target}")
            time.sleep(0.01)


def required() -> bool:
    """The cluster tests must run, not skip: the rule of tests/conftest.py's ``postgres_required``."""
    return bool(os.environ.get("CI")) or os.environ.get("EVIDENCE_LEDGER_TEST_POSTGRES") == "required"


def available() -> str | None:
    """Why no cluster can be made here, or None."""
    for tool in ("initdb", "pg_ctl", "pg_basebackup"):
        if not (BIN / tool).is_file():
            return f"{BIN / tool} is missing (PostgreSQL 15 server binaries)"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root and there is no `postgres` OS user to run the servers as"
    return None


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _run(args: Sequence[str], *, as_postgres: bool) -> None:
    command = [*(["runuser", "-u", "postgres", "--"] if as_postgres else []), *args]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, cwd="/", check=False)
    if done.returncode != 0:
        raise ClusterUnavailable(f"{' '.join(args[:2])} exited {done.returncode}: {done.stderr.strip()[-800:]}")


def _wait_ready(url: str) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        try:
            with psycopg.connect(url, connect_timeout=2):
                return
        except psycopg.OperationalError as exc:
            if time.monotonic() > deadline:
                raise ClusterUnavailable(f"server at {url} did not accept connections: {exc}") from None
            time.sleep(0.05)


CONFIG = """
listen_addresses = '127.0.0.1'
port = {port}
unix_socket_directories = '{sockets}'
wal_level = replica
hot_standby = on
max_wal_senders = 4
wal_keep_size = '64MB'
fsync = on
synchronous_commit = on
full_page_writes = on
shared_buffers = '32MB'
max_connections = 60
logging_collector = off
"""
HBA = """
local all all trust
host all all 127.0.0.1/32 trust
host replication all 127.0.0.1/32 trust
"""


@contextmanager
def primary_and_replica() -> Iterator[Cluster]:
    """A running primary with database ``ledger`` and a streaming hot-standby replica of it."""
    reason = available()
    if reason is not None:
        raise ClusterUnavailable(reason)
    as_postgres = os.geteuid() == 0
    root = Path(tempfile.mkdtemp(prefix="el-pg-cluster-"))
    with ExitStack() as stack:
        stack.callback(shutil.rmtree, root, True)
        if as_postgres:
            shutil.chown(root, "postgres", "postgres")
        os.chmod(root, 0o700)
        primary, replica, sockets = root / "primary", root / "replica", root / "sockets"
        _run(["mkdir", "-m", "0700", str(sockets)], as_postgres=as_postgres)
        _run(
            [str(BIN / "initdb"), "-D", str(primary), "-U", USER, "--auth=trust", "--no-sync", "-E", "UTF8",
             "--locale=C"],
            as_postgres=as_postgres,
        )
        primary_port, replica_port = free_port(), free_port()
        while replica_port == primary_port:
            replica_port = free_port()
        _write(primary / "postgresql.auto.conf", CONFIG.format(port=primary_port, sockets=sockets), as_postgres)
        _write(primary / "pg_hba.conf", HBA, as_postgres)
        _start(primary, root / "primary.log", stack, as_postgres)
        cluster = Cluster(primary_port, replica_port, root)
        _wait_ready(cluster.url(primary_port, "postgres"))
        with psycopg.connect(cluster.url(primary_port, "postgres"), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{DATABASE}"')
        _run(
            [str(BIN / "pg_basebackup"), "-h", "127.0.0.1", "-p", str(primary_port), "-U", USER, "-D",
             str(replica), "-R", "-X", "stream", "--checkpoint=fast", "--no-sync"],
            as_postgres=as_postgres,
        )
        # the copied auto.conf names the primary's port; the replica gets its own
        _write(
            replica / "postgresql.auto.conf",
            (replica / "postgresql.auto.conf").read_text().replace(f"port = {primary_port}\n", f"port = {replica_port}\n"),
            as_postgres,
        )
        _start(replica, root / "replica.log", stack, as_postgres)
        _wait_ready(cluster.replica_url)
        cluster.wait_caught_up()
        yield cluster


def _write(path: Path, text: str, as_postgres: bool) -> None:
    path.write_text(text, "utf-8")
    if as_postgres:
        shutil.chown(path, "postgres", "postgres")
    os.chmod(path, 0o600)


def _start(data: Path, log: Path, stack: ExitStack, as_postgres: bool) -> None:
    _run([str(BIN / "pg_ctl"), "-D", str(data), "-l", str(log), "-w", "-t", "30", "start"], as_postgres=as_postgres)
    stack.callback(_stop, data, as_postgres)


def _stop(data: Path, as_postgres: bool) -> None:
    if (data / "postmaster.pid").exists():
        command = [str(BIN / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "-t", "30", "stop"]
        subprocess.run(
            [*(["runuser", "-u", "postgres", "--"] if as_postgres else []), *command],
            capture_output=True, timeout=60, cwd="/", check=False,
        )
