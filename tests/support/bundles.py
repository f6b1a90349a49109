"""Helpers for bundle tests: export the Cambridge scenario, rewrite bundles, forge a compromised server."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
import sys
import tomllib
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from importlib import metadata
from pathlib import Path
from typing import Any

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from ledger.envelope.canonical import canonical, format_time
from ledger.envelope.keys import load_private_key
from ledger.envelope.signing import build_envelope
from ledger.evidence.bundle import export_bundle
from ledger.log import merkle, note, receipt
from ledger.log.leaf import leaf_bytes
from ledger.log.proof_json import inclusion_proof_json
from ledger.log.witnessing import checkpoint_with_witnesses
from ledger.settings import key_path
from ledger.store import Ledger
from tests.support.cases import Actors, new_case_id, run_cambridge_scenario

Members = dict[str, bytes]

BLOCKER = """
import json, os, sys
OUTSIDE = frozenset(json.loads(os.environ["OUTSIDE_BASE"]))
def outside_base(top):
    return top in OUTSIDE
class Blocker:
    def find_spec(self, name, path=None, target=None):
        if outside_base(name.split(".")[0]):
            raise ModuleNotFoundError("not installed with the base package (the offline verifier): " + name, name=name)
        return None
STARTUP = set(sys.modules)  # site's own (.pth files), loaded before any of ours
sys.meta_path.insert(0, Blocker())
sys.argv = ["evidence-ledger-verify", *sys.argv[1:]]
from ledger.cli.offline import main
try:
    main()
finally:
    leaked = sorted(m for m in set(sys.modules) - STARTUP if outside_base(m.split(".")[0]))
    if leaked:
        print("LEAKED", leaked, file=sys.stderr)
"""


@cache
def base_distributions() -> list[str]:
    """The project and the distributions its base install brings (``[project].dependencies`` and
    their own requirements, no extras): all `evidence-ledger-verify` may import."""
    pyproject = tomllib.loads((Path(__file__).resolve().parents[2] / "pyproject.toml").read_text("utf-8"))
    todo = [Requirement(r) for r in pyproject["project"]["dependencies"]]
    seen = {canonicalize_name(pyproject["project"]["name"])}
    while todo:
        req = todo.pop()
        name = canonicalize_name(req.name)
        if name in seen or (req.marker is not None and not req.marker.evaluate({"extra": ""})):
            continue
        seen.add(name)
        todo.extend(Requirement(r) for r in metadata.requires(req.name) or [])
    installed = {canonicalize_name(d.metadata["Name"]): d.metadata["Name"] for d in metadata.distributions()}
    return sorted(installed.get(n, n) for n in seen)


BLOCKED = ("fastapi", "starlette", "eventsourcing", "psycopg", "sqlite3", "_sqlite3")


@cache
def outside_base_modules() -> list[str]:
    """The top-level modules `evidence-ledger-verify` must not import: the blocked ones and every one that
    an installed distribution outside :func:`base_distributions` provides. Computed once here (scanning
    every installed distribution costs about 0.4 s), not in each verifier process."""
    base = set(base_distributions())
    provided = metadata.packages_distributions()
    return sorted({*BLOCKED, *(top for top, dists in provided.items() if any(d not in base for d in dists))})


@dataclass
class Exported:
    ledger: Ledger
    actors: Actors
    case_id: str
    path: Path

    @property
    def log_vkey(self) -> str:
        return str(note.make_verifier_key(self.ledger.config.log_key_name, self.ledger.log_key.public_key()))

    @property
    def trust_root(self) -> str:
        return self.ledger.config.admin_key_id


def export_scenario(
    ledger: Ledger, out: Path, *, before_export: Callable[[Actors, str], None] | None = None, **kwargs: Any
) -> Exported:
    actors = Actors.register(ledger)
    case_id = new_case_id()
    sealed = ledger.sealed_store().seal({"name": "Jane Caller", "phone": "617-555-0100"}, now=ledger.clock())
    run_cambridge_scenario(actors, case_id, sealed.to_json())
    if before_export is not None:
        before_export(actors, case_id)
    checkpoint_with_witnesses(ledger, client=kwargs.pop("client", None))  # what `export` does first
    export_bundle(ledger, case_id, out, **kwargs)
    return Exported(ledger, actors, case_id, out)


def run_offline(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """`evidence-ledger-verify …` in a fresh interpreter that can import only what the base package
    installs (no driver, eventsourcing, FastAPI or HTTP client); ``env`` adds to a clean environment
    (which keeps the test's own client state directory)."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("EVIDENCE_LEDGER_")}
    clean["EVIDENCE_LEDGER_STATE_DIR"] = os.environ["EVIDENCE_LEDGER_STATE_DIR"]  # the test's own memory
    clean["OUTSIDE_BASE"] = json.dumps(outside_base_modules())
    return subprocess.run(
        [sys.executable, "-c", BLOCKER, *args],
        capture_output=True,
        text=True,
        env={**clean, **(env or {})},
        cwd=cwd,
        timeout=120,
        check=False,
    )


def run_verify(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """`evidence-ledger-verify verify …`, as :func:`run_offline`."""
    return run_offline("verify", *args, cwd=cwd)


# --- rewriting bundles --------------------------------------------------------------------------


def read_members(path: Path) -> Members:
    with zipfile.ZipFile(path) as zf:
        return {info.filename: zf.read(info) for info in zf.infolist()}


def write_members(members: Members, path: Path) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def refresh_manifest(members: Members) -> None:
    """List every member (but the manifest) with its current hash and size, as a careful forger would."""
    manifest = json.loads(members["manifest.json"])
    manifest["files"] = [
        {"path": name, "sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}
        for name, data in members.items()
        if name != "manifest.json"
    ]
    members["manifest.json"] = json.dumps(manifest, indent=2, sort_keys=True).encode()


def tampered(src: Path, dst: Path, change: Callable[[Members], object], *, manifest: bool = True) -> Path:
    members = read_members(src)
    change(members)
    if manifest:
        refresh_manifest(members)
    return write_members(members, dst)


def statement(envelope: bytes) -> dict[str, Any]:
    return json.loads(base64.b64decode(json.loads(envelope)["payload"]))


def case_indexes(members: Members, case_id: str) -> list[int]:
    """Leaf indexes of the case's envelopes in the bundle, in seq order."""
    found = []
    for name, data in members.items():
        if name.startswith("envelopes/"):
            st = statement(data)
            if st["case_id"] == case_id:
                found.append((st["seq"], int(name.split("/")[1].split(".")[0])))
    return [index for _, index in sorted(found)]


def index_of(members: Members, predicate: Callable[[dict[str, Any]], bool]) -> int:
    for name, data in sorted(members.items()):
        if name.startswith("envelopes/") and predicate(statement(data)):
            return int(name.split("/")[1].split(".")[0])
    raise AssertionError("no such envelope in the bundle")


def drop_entry(members: Members, index: int) -> None:
    for kind in ("envelopes", "leaves", "proofs"):
        del members[f"{kind}/{index}.json"]
    members.pop(f"receipts/{index}.txt", None)  # format 3


# --- a compromised server: re-signed tree and checkpoint -------------------------------------------


class Forger:
    """Rebuilds the log tree with replaced or extra envelopes, re-signs the checkpoint and the receipts
    with the data dir's real log key (keys/log.pem) and rewrites leaves, proofs and the manifest
    consistently."""

    def __init__(self, exported: Exported, members: Members) -> None:
        self.exported, self.members = exported, members
        size = json.loads(members["manifest.json"])["checkpoint_size"]
        self.leaves = [e.leaf for e in exported.ledger.iter_entries()][:size]

    def next_envelope(
        self,
        who: str,
        event_type: str,
        body: dict[str, Any],
        *,
        seq: int | None = None,
        prev: str | bool | None = False,
        origin: str | None = None,
    ) -> bytes:
        last = self.members[f"envelopes/{case_indexes(self.members, self.exported.case_id)[-1]}.json"]
        return build_envelope(
            origin=origin or self.exported.ledger.origin,
            case_id=self.exported.case_id,
            event_type=event_type,
            body=body,
            key=self.exported.actors.keys[who],
            seq=statement(last)["seq"] + 1 if seq is None else seq,
            prev=hashlib.sha256(last).hexdigest() if prev is False else prev,  # type: ignore[arg-type]
            occurred_at=self.exported.ledger.clock(),
        )

    def replace(self, index: int, envelope: bytes) -> None:
        old = json.loads(self.leaves[index])
        self.leaves[index] = leaf_bytes(hashlib.sha256(envelope).hexdigest(), index, old["integrated_at"])
        self.members[f"envelopes/{index}.json"] = envelope
        self.members[f"leaves/{index}.json"] = self.leaves[index]

    def append(self, envelope: bytes) -> int:
        index = len(self.leaves)
        stamp = format_time(self.exported.ledger.clock())
        self.leaves.append(leaf_bytes(hashlib.sha256(envelope).hexdigest(), index, stamp))
        self.members[f"envelopes/{index}.json"] = envelope
        self.members[f"leaves/{index}.json"] = self.leaves[index]
        return index

    def finish(self) -> Members:
        hashes = [merkle.leaf_hash(leaf) for leaf in self.leaves]
        size, root = len(hashes), merkle.root_from_leaf_hashes(hashes)
        ledger = self.exported.ledger
        key = load_private_key(key_path(ledger.data_dir, "log"))
        body = note.Checkpoint(ledger.origin, size, root).body()
        self.members["checkpoint.txt"] = note.sign_note(body, ledger.config.log_key_name, key)
        for name in [n for n in self.members if n.startswith("envelopes/")]:
            index = int(name.split("/")[1].split(".")[0])
            proof = inclusion_proof_json(
                index, merkle.reference_inclusion_path(index, hashes), tree_size=size
            )
            self.members[f"proofs/{index}.json"] = canonical(proof)
        for name in [n for n in self.members if n.startswith("receipts/")]:
            del self.members[name]
        for name in [n for n in self.members if n.startswith("leaves/")]:  # the log key signs receipts too
            index = int(name.split("/")[1].split(".")[0])
            leaf = json.loads(self.members[name])
            promise = receipt.Receipt(ledger.origin, index, hashes[index], leaf["integrated_at"],
                                      ledger.settings.receipt_max_delay, leaf["envelope_sha256"])
            self.members[f"receipts/{index}.txt"] = receipt.sign(promise, ledger.config.log_key_name, key)
        manifest = json.loads(self.members["manifest.json"])
        manifest["checkpoint_size"] = size
        manifest["case_events"] = len(case_indexes(self.members, self.exported.case_id))
        self.members["manifest.json"] = json.dumps(manifest).encode()
        refresh_manifest(self.members)
        return self.members


# --- verifying in a subprocess -------------------------------------------------------------------


def verify(path: Path, *args: str) -> tuple[int, dict[str, Any]]:
    result = run_verify(str(path), "--json", *args)
    assert "LEAKED" not in result.stderr and "Traceback" not in result.stderr, result.stderr
    assert result.returncode in (0, 1), result.stderr
    return result.returncode, json.loads(result.stdout)


def codes(report: dict[str, Any]) -> set[str]:
    return {f["code"] for f in report["findings"]}


def only(path: Path, code: str, *args: str) -> dict[str, Any]:
    """Verify ``path``: exit 1 and exactly the findings with ``code``."""
    rc, report = verify(path, *args)
    assert rc == 1 and codes(report) == {code}, report["findings"]
    return report


def forged(exported: Exported, tmp_path: Path, build: Callable[[Forger], object]) -> Path:
    members = read_members(exported.path)
    forger = Forger(exported, members)
    build(forger)
    return write_members(forger.finish(), tmp_path / "forged.zip")


def flip_sig(members: Members, index: int) -> None:
    env = json.loads(members[f"envelopes/{index}.json"])
    sig = bytearray(base64.b64decode(env["signatures"][0]["sig"]))
    sig[5] ^= 0x01
    env["signatures"][0]["sig"] = base64.b64encode(bytes(sig)).decode()
    members[f"envelopes/{index}.json"] = canonical(env)
