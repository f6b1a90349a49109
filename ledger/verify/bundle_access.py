"""Bundle check 13: the case's access-log entries (bundle format 2).

The access checkpoint must be signed by the log key the case-log checkpoint was checked with (check
8), under the origin ``<origin>/access`` (so a case-log checkpoint cannot stand in for it, nor it
for one); every access entry must parse strictly, sit at its own index, name the bundle's case and
be included in the access checkpoint's tree. A version 1 bundle carries no access entries.

Codes: BAD_ACCESS_CHECKPOINT, BAD_ACCESS_ENTRY, ACCESS_ENTRY_OTHER_CASE, BAD_ACCESS_INCLUSION.
"""

from __future__ import annotations

import base64
from typing import Any

from domain.errors import MalformedInputError, VerificationError
from ledger.log import merkle, note
from ledger.log.access_entry import access_origin, parse_entry
from ledger.log.proof_json import parse_inclusion_proof
from ledger.verify.bundle_files import BundleFiles
from ledger.verify.bundle_format import (
    ACCESS_CHECKPOINT,
    ACCESS_ENTRIES,
    ACCESS_INDEXED,
    ACCESS_PROOFS,
    member_path,
)
from ledger.verify.bundle_model import BundleVerification

STEP = 13


def _indexes(files: BundleFiles, kind: str) -> list[int]:
    found = []
    for name in files.names("access/"):
        match = ACCESS_INDEXED.fullmatch(name)
        if match and match.group(1) + "/" == kind[len("access/") :]:
            found.append(int(match.group(2)))
    return sorted(found)


def _checkpoint(v: BundleVerification, raw: bytes) -> note.Checkpoint | None:
    """The access checkpoint once its signature and origin are checked (None with a finding)."""
    origin = access_origin(v.manifest.origin)
    try:
        checkpoint = note.parse_checkpoint_body(note.open_note(raw)[0])
    except MalformedInputError as exc:
        v.find("BAD_ACCESS_CHECKPOINT", STEP, f"the access checkpoint cannot be parsed: {exc.message}",
               path=ACCESS_CHECKPOINT)
        return None
    v.access_checkpoint.update(
        origin=checkpoint.origin, size=checkpoint.size, root=checkpoint.root.hex(),
        root_base64=base64.b64encode(checkpoint.root).decode("ascii"), signature_valid=False,
    )
    key = v.log_key
    if key is None:
        v.find("BAD_ACCESS_CHECKPOINT", STEP, "no log key to check the access checkpoint with",
               path=ACCESS_CHECKPOINT)
        return None
    v.access_checkpoint["key"] = f"{key.name}+{key.key_id.hex()}"
    try:
        note.verify_checkpoint(raw, key, [], 0, origin=origin)
    except (VerificationError, MalformedInputError) as exc:
        v.find("BAD_ACCESS_CHECKPOINT", STEP, f"access checkpoint ({origin}): {exc.message}", path=ACCESS_CHECKPOINT)
        return None
    v.access_checkpoint["signature_valid"] = True
    announced = v.manifest.access_checkpoint_size
    if announced is not None and announced != checkpoint.size:
        v.find("BAD_ACCESS_CHECKPOINT", STEP, "the access checkpoint's size differs from the manifest's",
               path=ACCESS_CHECKPOINT, announced=announced)
    return checkpoint


def _summary(index: int, raw: bytes) -> dict[str, Any]:
    """An entry as reports show it: identifiers only (the entry holds nothing else)."""
    entry = parse_entry(raw)
    r = entry.record
    return {
        "index": index, "recorded_at": entry.recorded_at, "action": r.action, "outcome": r.outcome,
        "code": r.code, "actor": r.actor, "role": r.role, "token_id": r.token_id, "item": r.item,
        "case_id": r.case_id, "request_id": r.request_id, "ok": True,
    }


def _check_entry(v: BundleVerification, files: BundleFiles, index: int, checkpoint: note.Checkpoint | None) -> None:
    path = member_path(ACCESS_ENTRIES, index)
    raw = files.small(path) or b""
    try:
        row = _summary(index, raw)
    except MalformedInputError as exc:
        v.find("BAD_ACCESS_ENTRY", STEP, exc.message, path=path, access_index=index)
        v.access.append({"index": index, "ok": False})
        return
    problems = len(v.findings)
    if parse_entry(raw).index != index:
        v.find("BAD_ACCESS_ENTRY", STEP, "the entry states another index than its file name", path=path,
               access_index=index)
    if row["case_id"] != v.manifest.case_id:
        v.find("ACCESS_ENTRY_OTHER_CASE", STEP, "an access entry that does not name this bundle's case", path=path,
               access_index=index)
    if checkpoint is not None:
        _check_inclusion(v, files, index, raw, checkpoint)
    row["ok"] = len(v.findings) == problems
    v.access.append(row)


def _check_inclusion(
    v: BundleVerification, files: BundleFiles, index: int, raw: bytes, checkpoint: note.Checkpoint
) -> None:
    path = member_path(ACCESS_PROOFS, index)
    proof = files.small(path)
    if proof is None:
        v.find("BAD_ACCESS_INCLUSION", STEP, "the bundle holds no inclusion proof for this access entry",
               path=path, access_index=index)
        return
    try:
        proof_index, audit_path = parse_inclusion_proof(proof, tree_size=checkpoint.size)
        if proof_index != index:
            raise VerificationError(f"the proof is for access entry {proof_index}")
        merkle.verify_inclusion(merkle.leaf_hash(raw), index, checkpoint.size, audit_path, checkpoint.root)
    except (VerificationError, MalformedInputError) as exc:
        v.find("BAD_ACCESS_INCLUSION", STEP, f"access inclusion proof: {exc.message}", path=path,
               access_index=index)


def check_access(v: BundleVerification, files: BundleFiles) -> None:
    """Check 13 over a format 2 bundle (a format 1 bundle is left alone: the step is not applicable)."""
    if not v.manifest.has_access_log:
        return
    indexes = _indexes(files, ACCESS_ENTRIES)
    raw = files.small(ACCESS_CHECKPOINT)
    checkpoint = None
    if raw is not None:
        checkpoint = _checkpoint(v, raw)
    elif indexes or v.manifest.access_checkpoint_size is not None:
        v.find("BAD_ACCESS_CHECKPOINT", STEP, "the bundle holds access entries but no access checkpoint",
               path=ACCESS_CHECKPOINT)
    for index in indexes:
        _check_entry(v, files, index, checkpoint)
    for index in sorted(set(_indexes(files, ACCESS_PROOFS)) - set(indexes)):
        v.find("BAD_ACCESS_ENTRY", STEP, "an inclusion proof without its access entry",
               path=member_path(ACCESS_PROOFS, index), access_index=index)
    announced = v.manifest.access_entries
    if announced is not None and announced != len(indexes):
        v.find("BAD_ACCESS_ENTRY", STEP, f"the manifest announces {announced} access entries, the bundle holds "
               f"{len(indexes)}", path="manifest.json")
    size = "no access checkpoint" if checkpoint is None else f"against the access root of size {checkpoint.size}"
    v.counts[STEP] = f"{len(indexes)} access entries of the case, {size}"
