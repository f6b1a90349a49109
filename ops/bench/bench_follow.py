"""The monitor catching up on a log vs the one-shot audit of the same log, through a real server.

    python -m ops.bench.bench_follow [--backend sqlite|postgres] [--events N]

The ledger is filled with N pre-signed CaseOpened envelopes (one case each) through the real append
path and checkpointed; `evidence-ledger serve` runs on loopback. Then, as an operator would run them
(each a fresh process, so start-up is included in both):

  * one-shot: ``evidence-ledger audit --server URL --token T --vkey K --json`` (reads every
    envelope page, verifies signatures on all cores, chains, leaves, the tree and the checkpoint);
  * monitor:  ``evidence-ledger audit --once --server URL --token T --vkey K --state FILE`` from an
    empty state (reads the same pages, verifies each entry in one process, folds the compact range
    and checks the checkpoint), then once more with nothing new (the cost of a quiet poll).

Prints entries/s for both and their ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import tempfile
import time
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ledger.bootstrap import log_verifier_key, register_key
from ledger.envelope.keys import raw_public_key
from ledger.settings import key_path
from ops.bench.common import bench_ledger, case_opened_envelopes
from ops.procs import CLI, issue_token, serving

BATCH = 1000


def timed(command: list[str], env: dict[str, str]) -> tuple[float, subprocess.CompletedProcess[str]]:
    start = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=3600, check=False)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command[:3])} exited {done.returncode}: {done.stderr[-2000:]}")
    return elapsed, done


def run(backend: str, events: int) -> None:
    with bench_ledger(backend) as bench, tempfile.TemporaryDirectory(prefix="el-follow-") as tmp:
        ledger = bench.ledger
        envelopes = case_opened_envelopes(bench.investigator, events)
        for i in range(0, len(envelopes), BATCH):
            ledger.append(envelopes[i : i + BATCH])
        # the auditor whose token reads the log (a token needs a registered key of its actor and role)
        register_key(ledger, key_path(ledger.data_dir, "admin"), raw_public_key(Ed25519PrivateKey.generate()),
                     actor="Auditor", role="auditor", authority=None)
        ledger.checkpoint()
        total = ledger.log_size()
        vkey = log_verifier_key(ledger.config, ledger.log_key)
        env = {**os.environ, "EVIDENCE_LEDGER_DATA_DIR": str(bench.settings.data_dir)}
        if bench.settings.database_url:
            env["EVIDENCE_LEDGER_DATABASE_URL"] = bench.settings.database_url
        token = issue_token(bench.settings.data_dir, env, actor="Auditor", role="auditor")
        with serving(env, Path(tmp) / "server.log") as server:
            common = ["--server", server.url, "--token", token, "--vkey", vkey]
            one_shot, done = timed([*CLI, "audit", *common, "--json"], env)
            report = json.loads(done.stdout)
            assert report["ok"] and report["log_size"] == total, report["findings"][:3]
            state = str(Path(tmp) / "monitor.json")
            follow, done = timed([*CLI, "audit", "--once", *common, "--state", state], env)
            caught_up = [json.loads(line) for line in done.stderr.splitlines()][-1]
            assert done.stdout == "" and caught_up["verified"] == total, done.stderr[-500:]
            quiet, _ = timed([*CLI, "audit", "--once", *common, "--state", state], env)
    print(f"{backend}: {total:,} entries, {os.cpu_count()} cores, through `evidence-ledger serve` on loopback")
    print(f"  one-shot  audit --server:        {one_shot:6.2f} s = {total / one_shot:8,.0f} entries/s")
    print(f"  monitor   audit --once (catch-up): {follow:6.2f} s = {total / follow:8,.0f} entries/s")
    print(f"  ratio monitor / one-shot: {one_shot / follow:.2f}")
    print(f"  a quiet poll (nothing new, process start included): {quiet:.2f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--events", type=int, default=5000)
    args = parser.parse_args()
    run(args.backend, args.events)


if __name__ == "__main__":
    main()
