"""Bundle checks 7 (inclusion proofs) and 8 (checkpoint signature and witness policy)."""

from __future__ import annotations

import base64
from typing import Any

from domain.errors import MalformedInputError, VerificationError
from ledger.log import merkle, note
from ledger.log.proof_json import parse_inclusion_proof
from ledger.verify.bundle_files import BundleFiles
from ledger.verify.bundle_format import (
    CHECKPOINT,
    ENVELOPES,
    LEAVES,
    LOG_VKEY,
    PROOFS,
    WITNESSES,
    member_path,
)
from ledger.verify.bundle_model import BundleVerification, VerifyOptions


def _bundle_key(files: BundleFiles, name: str) -> note.VerifierKey | None:
    raw = files.small(name)
    try:
        return None if raw is None else note.parse_verifier_key(raw.decode("utf-8").strip())
    except (MalformedInputError, UnicodeDecodeError):
        return None


def _log_key(v: BundleVerification, files: BundleFiles, options: VerifyOptions) -> note.VerifierKey | None:
    if options.vkey is not None:
        v.checkpoint["key_source"] = options.vkey_source
        return options.vkey
    v.checkpoint["key_source"] = "bundle"
    v.caveats.append(
        "The checkpoint was checked with the log key shipped inside the bundle (log.vkey), which is not an "
        "independent check: pass --vkey with the key published by the City, or pin it with "
        "`evidence-ledger trust pin`."
    )
    key = _bundle_key(files, LOG_VKEY)
    if key is None or key.type != note.SIG_TYPE_ED25519:
        v.find(
            "BAD_CHECKPOINT",
            8,
            "the bundle's log.vkey is missing or is not a log verifier key",
            path=LOG_VKEY,
        )
    return key


def _witness_keys(
    v: BundleVerification, files: BundleFiles, options: VerifyOptions
) -> list[note.VerifierKey]:
    if options.witnesses:
        v.checkpoint["witness_source"] = options.witness_source
        return list(options.witnesses)
    keys = [k for n in files.names(WITNESSES) if (k := _bundle_key(files, n)) is not None]
    unique = {(k.name, k.key_id): k for k in keys if k.type == note.SIG_TYPE_COSIGNATURE_V1}
    keys = list(unique.values())
    v.checkpoint["witness_source"] = "bundle"
    if keys:
        v.caveats.append(
            "Witness keys were taken from the bundle (witnesses/*.vkey): pass --witness with keys obtained "
            "from the witnesses themselves for an independent check."
        )
    return keys


def _judge_witness(raw: bytes, log_key: note.VerifierKey, witness: note.VerifierKey) -> dict[str, Any]:
    row: dict[str, Any] = {"name": witness.name, "key_id": witness.key_id.hex()}
    try:
        verified = note.verify_checkpoint(raw, log_key, [witness], 1)
    except (VerificationError, MalformedInputError) as exc:
        row["status"] = {"WITNESS_POLICY": "no cosignature", "BAD_COSIGNATURE": "invalid cosignature"}.get(
            exc.code, "not checked: the log signature does not verify"
        )
        return row
    row["status"], row["timestamp"] = "cosigned", verified.cosignatures[0].timestamp
    return row


def check_checkpoint(
    v: BundleVerification, files: BundleFiles, options: VerifyOptions
) -> note.Checkpoint | None:
    raw = files.small(CHECKPOINT)
    log_key = _log_key(v, files, options)
    v.log_key = log_key
    if raw is None:
        v.find("BAD_CHECKPOINT", 8, "the bundle holds no checkpoint", path=CHECKPOINT)
        return None
    try:
        checkpoint = note.parse_checkpoint_body(note.open_note(raw)[0])
    except MalformedInputError as exc:
        v.find("BAD_CHECKPOINT", 8, f"the checkpoint cannot be parsed: {exc.message}", path=CHECKPOINT)
        return None
    v.checkpoint.update(
        origin=checkpoint.origin,
        size=checkpoint.size,
        root=checkpoint.root.hex(),
        root_base64=base64.b64encode(checkpoint.root).decode("ascii"),
    )
    signed = False
    if log_key is not None:
        v.checkpoint["key"] = f"{log_key.name}+{log_key.key_id.hex()}"
        try:
            note.verify_checkpoint(raw, log_key, [], 0, origin=v.manifest.origin)
            signed = True
        except (VerificationError, MalformedInputError) as exc:
            v.find("BAD_CHECKPOINT", 8, f"checkpoint signature: {exc.message}", path=CHECKPOINT)
    v.checkpoint["signature_valid"] = signed
    _check_witnesses(v, files, options, raw, log_key if signed else None)
    return checkpoint


def _check_witnesses(
    v: BundleVerification,
    files: BundleFiles,
    options: VerifyOptions,
    raw: bytes,
    log_key: note.VerifierKey | None,
) -> None:
    keys = _witness_keys(v, files, options)
    required = len(keys) if options.min_witnesses is None else options.min_witnesses
    rows = [
        _judge_witness(raw, log_key, k)
        if log_key is not None
        else {"name": k.name, "key_id": k.key_id.hex(), "status": "not checked"}
        for k in keys
    ]
    valid = sum(1 for r in rows if r["status"] == "cosigned")
    v.checkpoint.update(witnesses=rows, required=required, cosigned=valid)
    if required == 0:
        v.caveats.append("No witness cosignature was required (--witness / --min-witnesses).")
    if log_key is not None and valid < required:
        v.find(
            "WITNESS_POLICY",
            8,
            f"the policy needs {required} valid witness cosignatures, found {valid}",
            required=required,
            found=valid,
            path=CHECKPOINT,
        )


def check_inclusion(v: BundleVerification, files: BundleFiles, checkpoint: note.Checkpoint | None) -> None:
    indexes = files.indexes(ENVELOPES)
    if checkpoint is None:
        v.counts[7] = "not run: no usable checkpoint"
        return
    for index in indexes:
        raw, leaf = (
            files.small(member_path(PROOFS, index)),
            files.small(member_path(LEAVES, index)),
        )
        if raw is None:
            v.find("BAD_INCLUSION", 7, "the bundle holds no inclusion proof for this entry", leaf_index=index)
            continue
        if leaf is None:
            continue  # LEAF_MISMATCH already says so
        try:
            proof_index, path = parse_inclusion_proof(raw, tree_size=checkpoint.size)
            if proof_index != index:
                raise VerificationError(f"the proof is for leaf {proof_index}")
            merkle.verify_inclusion(merkle.leaf_hash(leaf), index, checkpoint.size, path, checkpoint.root)
        except (VerificationError, MalformedInputError) as exc:
            v.find("BAD_INCLUSION", 7, f"inclusion proof: {exc.message}", leaf_index=index)
    v.counts[7] = f"{len(indexes)} inclusion proofs against the root of size {checkpoint.size}"
