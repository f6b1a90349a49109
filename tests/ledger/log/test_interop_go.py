"""Go interop: the Go team's own verifier must accept what the ledger emits and reject tampering.

Python builds checkpoints (signed notes) and CT-JSON proofs for trees of 1..70 leaves through the
node store, plus tampered variants. ``ops/interop/gocheck`` checks each case with
``golang.org/x/mod/sumdb/note.Open`` and ``sumdb/tlog.CheckRecord``/``CheckTree`` (Debian's
x/mod 0.7.0, built offline). Every case is also checked by our own verifiers, and the three
verdicts (expected, Go, Python) must agree.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from domain.errors import LedgerError
from ledger.log import merkle, note
from ledger.log.proof_json import (
    consistency_proof_json,
    inclusion_proof_json,
    parse_consistency_proof,
    parse_inclusion_proof,
)
from tests.support.gocheck import build_gocheck, go_or_skip

MAX_SIZE = 70
ORIGIN = "interop.example/log"


def _key(label: str) -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(hashlib.sha256(label.encode()).digest())


LOG_SK, IMPOSTOR_SK = _key("interop log"), _key("interop impostor")
LOG_VK = note.make_verifier_key(ORIGIN, LOG_SK.public_key())
LEAVES = [b"interop leaf %d" % i for i in range(MAX_SIZE)]


# --- building the cases -----------------------------------------------------------------------


def _node_store() -> dict[merkle.Coord, bytes]:
    """All nodes, appended one leaf at a time exactly as the database layer does."""
    tree = merkle.CompactRange.empty()
    nodes: dict[merkle.Coord, bytes] = {}
    for leaf in LEAVES:
        nodes.update(((lvl, idx), h) for lvl, idx, h in tree.append(merkle.leaf_hash(leaf)))
    return nodes


NODES = _node_store()


def _fetch(coords: list[merkle.Coord]) -> dict[merkle.Coord, bytes]:
    return {c: NODES[c] for c in coords}


def _root(size: int) -> bytes:
    return merkle.root_from_nodes(size, _fetch(merkle.root_coords(size)))


def _flip(value: bytes, bit: int = 0) -> bytes:
    out = bytearray(value)
    out[bit // 8 % len(out)] ^= 1 << (bit % 8)
    return bytes(out)


def _signed(size: int, *, root: bytes | None = None, key: Ed25519PrivateKey = LOG_SK) -> str:
    body = note.Checkpoint(ORIGIN, size, _root(size) if root is None else root).body()
    return note.sign_note(body, ORIGIN, key).decode()


def _bad_signature(size: int) -> str:
    """A correctly shaped note whose signature bytes (not the key id) were altered."""
    body, (line,) = note.open_note(_signed(size).encode())
    bad = note.SignatureLine(line.name, line.key_id, _flip(line.signature, 77))
    return (body + b"\n" + bad.encode()).decode()


def _inclusion(
    size: int, index: int, *, leaf: bytes | None = None, flip: int | None = None
) -> dict[str, Any]:
    path = merkle.inclusion_proof(index, size, _fetch(merkle.inclusion_coords(index, size)))
    if flip is not None:
        path[flip % len(path)] = _flip(path[flip % len(path)], flip)
    return {
        "leaf_hex": (LEAVES[index] if leaf is None else leaf).hex(),
        "proof": inclusion_proof_json(index, path),
    }


def _consistency(
    size1: int, size2: int, *, old_note: str | None = None, flip: int | None = None
) -> dict[str, Any]:
    path = merkle.consistency_proof(size1, size2, _fetch(merkle.consistency_coords(size1, size2)))
    if flip is not None:
        path[flip % len(path)] = _flip(path[flip % len(path)], flip)
    return {"old_note": old_note or _signed(size1), "proof": consistency_proof_json(path)}


@dataclass(frozen=True)
class Case:
    name: str
    good: bool
    body: dict[str, Any]


def _good_cases() -> list[Case]:
    cases = []
    for size in range(1, MAX_SIZE + 1):
        checkpoint = _signed(size)
        for index in range(size):
            body = {"note": checkpoint, "inclusion": _inclusion(size, index)}
            cases.append(Case(f"inclusion-{index}-of-{size}", True, body))
        for size1 in range(1, size + 1):
            body = {"note": checkpoint, "consistency": _consistency(size1, size)}
            cases.append(Case(f"consistency-{size1}-to-{size}", True, body))
    return cases


def _tampered_cases(size: int) -> list[Case]:
    index, size1 = size // 2, max(1, (size - 1) // 2)
    checkpoint = _signed(size)
    variants: dict[str, dict[str, Any]] = {
        "root-bit": {
            "note": _signed(size, root=_flip(_root(size), size)),
            "inclusion": _inclusion(size, index),
        },
        "bad-signature": {"note": _bad_signature(size), "inclusion": _inclusion(size, index)},
        "other-key-same-name": {"note": _signed(size, key=IMPOSTOR_SK), "inclusion": _inclusion(size, index)},
        "leaf": {"note": checkpoint, "inclusion": _inclusion(size, index, leaf=LEAVES[index] + b"!")},
        "old-root-bit": {
            "note": checkpoint,
            "consistency": _consistency(size1, size, old_note=_signed(size1, root=_flip(_root(size1), size))),
        },
    }
    if size > 1:
        variants["proof-bit"] = {"note": checkpoint, "inclusion": _inclusion(size, index, flip=size * 7)}
        variants["other-index"] = {"note": checkpoint, "inclusion": _inclusion(size, index)}
        variants["other-index"]["inclusion"]["proof"]["leaf_index"] = (index + 1) % size
        variants["consistency-bit"] = {
            "note": checkpoint,
            "consistency": _consistency(size1, size, flip=size * 5),
        }
        variants["consistency-new-bad-signature"] = {
            "note": _bad_signature(size),
            "consistency": _consistency(size1, size),
        }
    return [Case(f"tampered-{kind}-{size}", False, body) for kind, body in variants.items()]


@cache
def _cases() -> tuple[Case, ...]:
    tampered = [case for size in range(1, MAX_SIZE + 1) for case in _tampered_cases(size)]
    return (*_good_cases(), *tampered)


# --- the Python verdict -----------------------------------------------------------------------


def _python_accepts(body: dict[str, Any]) -> bool:
    checks: list[Callable[[], object]] = []
    tree = note.verify_checkpoint(body["note"].encode(), LOG_VK).checkpoint
    if "inclusion" in body:
        inc = body["inclusion"]
        index, path = parse_inclusion_proof(json.dumps(inc["proof"]).encode(), tree_size=tree.size)
        leaf = merkle.leaf_hash(bytes.fromhex(inc["leaf_hex"]))
        checks.append(lambda: merkle.verify_inclusion(leaf, index, tree.size, path, tree.root))
    if "consistency" in body:
        con = body["consistency"]
        old = note.verify_checkpoint(con["old_note"].encode(), LOG_VK).checkpoint
        path = parse_consistency_proof(json.dumps(con["proof"]).encode())
        checks.append(lambda: merkle.verify_consistency(old.size, tree.size, path, old.root, tree.root))
    for check in checks:
        check()
    return True


def _python_verdict(body: dict[str, Any]) -> bool:
    try:
        return _python_accepts(body)
    except LedgerError:
        return False


# --- running Go -------------------------------------------------------------------------------


def _run_go(go: str, workdir: Path) -> dict[str, str]:
    binary = build_gocheck(go, workdir)
    cases_file = workdir / "cases.json"
    cases_file.write_text(json.dumps([{"name": c.name, "vkey": str(LOG_VK), **c.body} for c in _cases()]))
    run = subprocess.run([str(binary), str(cases_file)], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    verdicts = {rest.split(":", 1)[0]: status for status, _, rest in (line.partition(" ") for line in lines)}
    assert len(verdicts) == len(lines) == len(_cases()), "gocheck must report every case exactly once"
    return verdicts


@pytest.fixture(scope="module")
def go_verdicts(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    go = go_or_skip()
    verdicts = _run_go(go, tmp_path_factory.mktemp("gocheck"))
    assert set(verdicts) == {c.name for c in _cases()}
    assert set(verdicts.values()) == {"OK", "FAIL"}
    return verdicts


def test_case_set_is_large_and_mixed() -> None:
    good = sum(c.good for c in _cases())
    assert good == MAX_SIZE * (MAX_SIZE + 1)  # every (index, size) and every (size1 <= size2)
    assert len(_cases()) - good == 5 * MAX_SIZE + 4 * (MAX_SIZE - 1)


@pytest.mark.xdist_group("gocheck")  # one Go build, shared by both tests on one worker
def test_go_accepts_every_good_case(go_verdicts: dict[str, str]) -> None:
    rejected = [c.name for c in _cases() if c.good and go_verdicts[c.name] != "OK"]
    assert not rejected, f"Go rejected {len(rejected)} good cases, e.g. {rejected[:5]}"


@pytest.mark.xdist_group("gocheck")
def test_go_rejects_every_tampered_case(go_verdicts: dict[str, str]) -> None:
    accepted = [c.name for c in _cases() if not c.good and go_verdicts[c.name] != "FAIL"]
    assert not accepted, f"Go accepted {len(accepted)} tampered cases, e.g. {accepted[:5]}"


def test_python_agrees_with_the_expected_verdicts() -> None:
    wrong = [c.name for c in _cases() if _python_verdict(c.body) != c.good]
    assert not wrong, f"our verifiers disagree on {len(wrong)} cases, e.g. {wrong[:5]}"
