"""The restore drill: restore a backup to a fresh instance, start the service on it, audit it.

``ops/restore_drill.sh`` runs this module (docs/operations.md, "The restore drill"):

1. a fresh data dir from the *keys* backup (ledger.json, keys/, witnesses.json, tsa.json and the
   rollback guard ``checkpoints/``), the keystore backup beside it when given; the witnesses' and
   TSAs' URLs point at a closed loopback port (the drill talks to no production witness);
2. every ``--from-checkpoint`` (the newest witnessed checkpoint, kept outside the restored data: the
   monitor's memory, a client's ``logs/<origin>/latest``, the tiles' ``checkpoint``; at least one is
   required) is recorded in that fresh guard, verified with the log key;
3. the database: SQLite, the ``db backup`` file copied into the fresh data dir; PostgreSQL, a new
   cluster on a free loopback port from the base backup, recovered with the archived WAL (to the end
   of the archive, or ``--target``) and promoted;
4. ``evidence-ledger serve`` on it, until ``/readyz`` answers: ready, or refused (``ROLLBACK_DETECTED``
   when the restored log is behind or diverges from the recorded checkpoint);
5. ``evidence-ledger audit --json --from-checkpoint … [--trust PIN]`` on the restored database: with an
   auditor's pin file, the witnesses' keys come from it, not from the backup's ``witnesses.json``.

The drill passes only when the service is ready and the audit has no finding. It prints a summary
(``--json``: one JSON document) and exits 0 when it passed, 1 when it failed (the reason is given:
a rollback, a finding, a service that would not start), 2 when the backup cannot be used at all.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from ops.pgcluster import Cluster, ClusterError, free_port, restore_base_backup
from ops.procs import stop

#: the service's answers that end the wait for readiness: a refusal that waiting does not change
FINAL_REFUSALS = ("ROLLBACK_DETECTED", "STATE_TAMPERED", "UNSAFE_DURABILITY")


class Unusable(Exception):
    """The backup or the arguments cannot be used: exit 2."""


@dataclass
class Drill:
    backend: str
    work: Path
    timings: dict[str, float] = field(default_factory=dict)
    facts: dict[str, Any] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)

    @contextmanager
    def step(self, name: str) -> Iterator[None]:
        started = time.monotonic()
        try:
            yield
        finally:
            self.timings[name] = round(time.monotonic() - started, 3)

    @property
    def data_dir(self) -> Path:
        return self.work / "data"

    def summary(self) -> dict[str, Any]:
        return {
            "passed": not self.failures,
            "backend": self.backend,
            "failures": self.failures,
            **self.facts,
            "timings": self.timings,
            "wall_seconds": round(sum(self.timings.values()), 3),
        }


def _unpack(source: Path, into: Path, what: str) -> None:
    """``source`` is a ``.tar[.gz]`` made by backup.sh or a directory: its contents go into ``into``."""
    if not source.exists():
        raise Unusable(f"the {what} backup {source} does not exist")
    into.mkdir(mode=0o700, parents=True, exist_ok=True)
    if source.is_dir():
        shutil.copytree(source, into, dirs_exist_ok=True)
    elif tarfile.is_tarfile(source):
        with tarfile.open(source) as tar:
            if hasattr(tarfile, "data_filter"):
                tar.extractall(into, filter="data")
            else:  # pragma: no cover - Python before 3.11.4
                tar.extractall(into)  # noqa: S202 - the operator's own backup
    else:
        raise Unusable(f"the {what} backup {source} is neither a directory nor a tar file")


def _log_key(data_dir: Path) -> tuple[Any, str]:
    from domain.errors import LedgerError
    from ledger.bootstrap import log_verifier_key
    from ledger.envelope.keys import load_private_key
    from ledger.log import note
    from ledger.settings import ConfigurationError, LedgerConfig, key_path

    try:
        config = LedgerConfig.load(data_dir)
        vkey = log_verifier_key(config, load_private_key(key_path(data_dir, "log")))
    except (ConfigurationError, OSError) as exc:
        raise Unusable(f"the keys backup gives no usable data dir: {exc}") from None
    except LedgerError as exc:
        raise Unusable(f"the keys backup's log key is unusable: {exc.code}: {exc.message}") from None
    return note.parse_verifier_key(vkey), config.origin


def isolate(data_dir: Path) -> None:
    """Point every witness and TSA of the restored data dir at a closed loopback port: the drill's
    service must never send the production witnesses or TSAs anything. Their keys and certificates
    stay, so the audit still applies the ledger's witness policy and checks the stored time-stamps."""
    closed = f"http://127.0.0.1:{free_port()}/"
    for name in ("witnesses.json", "tsa.json"):
        path = data_dir / name
        if not path.is_file():
            continue
        try:
            endpoints = json.loads(path.read_text("utf-8"))
            for endpoint in endpoints:
                endpoint["url"] = closed
        except (ValueError, TypeError, KeyError) as exc:
            raise Unusable(f"{name} in the keys backup is unreadable: {exc}") from None
        path.write_text(json.dumps(endpoints, indent=2) + "\n", "utf-8")


def restore_files(drill: Drill, keys: Path, keystore: Path | None, checkpoints: list[Path]) -> None:
    """The data dir from the keys backup; the outside checkpoints recorded in its rollback guard."""
    from domain.errors import LedgerError
    from ledger.log.rollback import CheckpointGuard

    _unpack(keys, drill.data_dir, "keys")
    if not (drill.data_dir / "ledger.json").is_file():
        raise Unusable(f"the keys backup {keys} holds no ledger.json")
    if keystore is not None:
        _unpack(keystore, drill.work / "keystore", "keystore")
    isolate(drill.data_dir)
    vkey, origin = _log_key(drill.data_dir)
    guard = CheckpointGuard(drill.data_dir, vkey, origin)
    try:
        before = guard.recorded()
    except LedgerError as exc:  # the service will refuse writes as `unreadable`; say why first
        drill.failures.append(f"the keys backup's checkpoints/latest is not a checkpoint of this log: {exc.code}")
        before = None
    drill.facts["guard_size_in_keys_backup"] = None if before is None else before.size
    for path in checkpoints:
        try:
            guard.record(path.read_bytes())
        except OSError as exc:
            raise Unusable(f"cannot read --from-checkpoint {path}: {exc.strerror}") from None
        except LedgerError as exc:
            if exc.code == "ROLLBACK_DETECTED":  # another root for a size already recorded
                drill.failures.append(f"{exc.code}: --from-checkpoint {path}: {exc.message}")
                continue
            raise Unusable(f"--from-checkpoint {path} is not a checkpoint of this log: {exc.code}: {exc.message}") from None
    try:
        newest = guard.recorded()
    except LedgerError:
        newest = None
    drill.facts["newest_checkpoint"] = None if newest is None else newest.size


def restore_sqlite(drill: Drill, backup: Path) -> dict[str, str]:
    if not backup.is_file():
        raise Unusable(f"the SQLite backup {backup} is not a file")
    with backup.open("rb") as handle:
        if handle.read(16) != b"SQLite format 3\x00":
            raise Unusable(f"{backup} is not a SQLite database")
    target = drill.data_dir / "ledger.sqlite3"
    for stale in ("", "-wal", "-shm"):  # a keys backup never holds them; a directory given as one might
        Path(f"{target}{stale}").unlink(missing_ok=True)
    shutil.copyfile(backup, target)
    target.chmod(0o600)
    return {}


def restore_postgres(drill: Drill, args: argparse.Namespace) -> tuple[Cluster, dict[str, str]]:
    if not args.database.is_dir():
        raise Unusable(f"the PostgreSQL base backup {args.database} is not a directory (pg_basebackup -Ft -D DIR)")
    if args.wal_archive is not None and not args.wal_archive.is_dir():
        raise Unusable(f"--wal-archive {args.wal_archive} is not a directory")
    cluster = restore_base_backup(args.database, args.wal_archive, target=args.target, superuser=args.pg_superuser)
    with cluster.connect() as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (args.pg_database,)).fetchone()
    if exists is None:
        cluster.remove()
        raise Unusable(f"the restored cluster has no database {args.pg_database!r} (--pg-database)")
    url = cluster.url(args.pg_database, args.pg_user) + (f"?schema={args.pg_schema}" if args.pg_schema else "")
    drill.facts["postgres"] = {"port": cluster.port, "target": args.target or "end of archive"}
    return cluster, {"EVIDENCE_LEDGER_DATABASE_URL": url}


def _python() -> list[str]:
    return [sys.executable, "-m", "api"]


def _environment(drill: Drill, extra: dict[str, str], keystore: bool) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EVIDENCE_LEDGER_")}
    env |= {"EVIDENCE_LEDGER_DATA_DIR": str(drill.data_dir), "EVIDENCE_LEDGER_STATE_DIR": str(drill.work / "client-state")}
    if keystore:
        env["EVIDENCE_LEDGER_KEYSTORE_DIR"] = str(drill.work / "keystore")
    pythonpath = os.environ.get("PYTHONPATH")
    root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = root if not pythonpath else f"{root}{os.pathsep}{pythonpath}"
    return env | extra


def serve_and_check(drill: Drill, env: dict[str, str], timeout: float) -> subprocess.Popen[bytes]:
    """Start the service; wait until /readyz is 200, or refuses for good (recorded as a failure)."""
    port = free_port()
    log_path = drill.work / "serve.log"
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            [*_python(), "serve", "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"],
            env=env, stdout=log, stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}/readyz"
    deadline = time.monotonic() + timeout
    last = "no answer"
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = log_path.read_text(errors="replace").strip().splitlines()[-5:]
            drill.facts["service"] = "exited"
            drill.failures.append(f"the service exited ({process.returncode}): " + " | ".join(tail))
            return process
        try:
            answer = httpx.get(url, timeout=2)
        except httpx.HTTPError:
            time.sleep(0.1)
            continue
        if answer.status_code == 200:
            drill.facts["service"] = "ready"
            return process
        body = answer.json() if answer.headers.get("content-type", "").endswith("json") else {}
        last = f"{body.get('code', answer.status_code)}: {body.get('detail', answer.text[:200])}"
        if body.get("code") in FINAL_REFUSALS:
            drill.facts["service"] = "refused"
            drill.failures.append(f"the service refuses writes: {last}")
            return process
        time.sleep(0.1)
    drill.facts["service"] = "not ready"
    drill.failures.append(f"the service was not ready within {timeout:.0f} s: {last}")
    return process


def start_audit(env: dict[str, str], checkpoints: list[Path], workers: int | None,
                trust: Path | None = None) -> subprocess.Popen[str]:
    args = [*_python(), "audit", "--json", *(["--workers", str(workers)] if workers else [])]
    args += ["--trust", str(trust)] if trust is not None else []
    for path in checkpoints:
        args += ["--from-checkpoint", str(path)]
    return subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish_audit(drill: Drill, process: subprocess.Popen[str]) -> None:
    try:
        stdout, stderr = process.communicate(timeout=600)
    except subprocess.TimeoutExpired:
        process.kill()
        stdout, stderr = process.communicate()
    (drill.work / "audit.json").write_text(stdout, "utf-8")
    try:
        report = json.loads(stdout)
    except ValueError:
        drill.failures.append(f"audit exited {process.returncode} without a report: {stderr.strip()[-400:]}")
        return
    findings = report.get("findings", [])
    drill.facts["audit"] = {
        "exit": process.returncode,
        "log_size": report.get("log_size"),
        "latest_checkpoint": report.get("latest_checkpoint"),
        "checkpoints_outside": report.get("checkpoints"),
        "findings": [{"code": f.get("code"), "message": f.get("message")} for f in findings],
    }
    for finding in findings:
        drill.failures.append(f"audit {finding.get('code')}: {finding.get('message')}")
    if process.returncode != 0 and not findings:
        drill.failures.append(f"audit exited {process.returncode}: {stderr.strip()[-400:]}")


def run(args: argparse.Namespace) -> Drill:
    if args.work is not None and args.work.exists() and any(args.work.iterdir()):
        raise Unusable(f"--work {args.work} is not empty: the drill restores into a fresh directory")
    work = args.work or Path(tempfile.mkdtemp(prefix="evidence-ledger-drill-"))
    work.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        return _run(args, Drill(args.backend, work))
    except (Unusable, ClusterError):
        if args.work is None:  # nothing of the drill to keep
            shutil.rmtree(work, ignore_errors=True)
        raise


def _run(args: argparse.Namespace, drill: Drill) -> Drill:
    work = drill.work
    checkpoints = [path.resolve() for path in args.from_checkpoint]
    cluster: Cluster | None = None
    process: subprocess.Popen[bytes] | None = None
    auditing: subprocess.Popen[str] | None = None
    try:
        with drill.step("restore_files"):
            restore_files(drill, args.keys, args.keystore, checkpoints)
        with drill.step("restore_database"):
            if args.backend == "sqlite":
                extra = restore_sqlite(drill, args.database)
            else:
                cluster, extra = restore_postgres(drill, args)
        env = _environment(drill, extra, args.keystore is not None)
        with drill.step("serve_and_audit"):  # the audit reads while the service starts: both only read
            auditing = start_audit(env, checkpoints, args.audit_workers, args.trust and args.trust.resolve())
            process = serve_and_check(drill, env, args.timeout)
            finish_audit(drill, auditing)
    finally:
        with drill.step("cleanup"):
            for running in (auditing, process):
                if running is not None:
                    stop(running)
            if cluster is not None and not args.keep:
                cluster.remove()
            if not args.keep:
                shutil.rmtree(drill.data_dir, ignore_errors=True)  # a copy of the keys: not left behind
                shutil.rmtree(work / "keystore", ignore_errors=True)
    drill.facts["work"] = str(work)
    if args.keep and cluster is not None:
        drill.facts["kept_cluster"] = str(cluster.root)
    return drill


def render(summary: dict[str, Any]) -> str:
    lines = [f"restore drill ({summary['backend']}) in {summary['work']}"]
    lines.append(f"  newest checkpoint kept outside the database: {summary.get('newest_checkpoint')}")
    audit_facts = summary.get("audit") or {}
    lines.append(f"  restored log: {audit_facts.get('log_size')} entries, latest stored checkpoint "
                 f"{audit_facts.get('latest_checkpoint')}")
    lines.append(f"  service: {summary.get('service')}")
    lines.append("  time: " + ", ".join(f"{k} {v:.2f}s" for k, v in summary["timings"].items())
                 + f" (total {summary['wall_seconds']:.2f}s)")
    if summary["passed"]:
        lines.append("DRILL PASSED: the service is ready and the audit has no findings")
    else:
        lines.append(f"DRILL FAILED: {summary['failures'][0]}")
        lines.extend(f"  - {reason}" for reason in summary["failures"][1:])
    return "\n".join(lines)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="restore_drill.sh", description=__doc__.split("\n\n")[0])
    p.add_argument("--backend", choices=("sqlite", "postgres"), required=True)
    p.add_argument("--database", type=Path, required=True,
                   help="SQLite: the `db backup` file; PostgreSQL: the pg_basebackup -Ft directory")
    p.add_argument("--keys", type=Path, required=True, help="the keys backup (keys-*.tar.gz or a directory)")
    p.add_argument("--keystore", type=Path, help="the keystore backup (keystore-*.tar.gz or a directory)")
    p.add_argument("--from-checkpoint", type=Path, action="append", default=[],
                   help="the newest witnessed checkpoint, kept outside the backup: a client's "
                   "logs/<origin>/latest, the monitor's, the tiles' checkpoint (required; repeat)")
    p.add_argument("--trust", type=Path, help="an auditor's pin file for the audit: the witnesses' keys "
                   "from it, not from the backup's witnesses.json")
    p.add_argument("--wal-archive", type=Path, help="PostgreSQL: the WAL archive (archive_command's directory)")
    p.add_argument("--target", help="PostgreSQL: recover to 'immediate' (the base backup's end) or to an "
                   "RFC 3339 time; default the end of the archive")
    p.add_argument("--pg-database", default="ledger", help="PostgreSQL: the ledger's database (default ledger)")
    p.add_argument("--pg-user", default="postgres", help="PostgreSQL: the role to serve and audit as")
    p.add_argument("--pg-superuser", default="postgres", help="PostgreSQL: a superuser of the backed-up cluster")
    p.add_argument("--pg-schema", help="PostgreSQL: the ledger's schema, if not public")
    p.add_argument("--work", type=Path, help="a new, empty directory for the drill (default: a temporary one)")
    p.add_argument("--audit-workers", type=int, help="the audit's signature-verifying processes (default: all cores)")
    p.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for the service's answer")
    p.add_argument("--keep", action="store_true", help="leave the restored data dir and cluster in place")
    p.add_argument("--json", action="store_true", help="print the summary as one JSON document")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.backend == "sqlite" and (args.wal_archive or args.target):
        print("restore_drill: --wal-archive and --target are for PostgreSQL", file=sys.stderr)
        return 2
    if not args.from_checkpoint:  # else the audit holds the restore only to the keys backup's own guard
        print("restore_drill: DRILL FAILED: no checkpoint from outside the backup: give the newest witnessed one "
              "with --from-checkpoint FILE (a client's logs/<origin>/latest, the monitor's, the tiles' "
              "checkpoint)", file=sys.stderr)
        return 2
    if args.trust is not None and not args.trust.is_file():
        print(f"restore_drill: DRILL FAILED: --trust {args.trust} is not a file", file=sys.stderr)
        return 2
    try:
        drill = run(args)
    except (Unusable, ClusterError) as exc:
        print(f"restore_drill: DRILL FAILED: {exc}", file=sys.stderr)
        return 2
    summary = drill.summary()
    print(json.dumps(summary, indent=2, sort_keys=True) if args.json else render(summary))
    return 0 if summary["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
