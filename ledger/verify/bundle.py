"""Verify an evidence bundle offline: no server, no database, no network.

``verify_bundle(path, options)`` runs the numbered checks of ``findings.CHECKS`` that apply to a
bundle and returns a :class:`BundleVerification` holding every finding (it never stops at the first
one), each step's result, the case timeline, the checkpoint and witnesses, the media results and the
replayed case state. Only a bundle that is not a zip or has no usable manifest raises
(:class:`BundleUnusable`); anything wrong inside it is a finding.

The options' pin file entry for the bundle's origin fills the keys the options leave unset. The
verdict (:attr:`BundleVerification.verdict`) is ``verified`` only without findings and with both the
log key and the trust root pinned; without findings but with a pin missing it is ``unpinned``.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from ledger.envelope.dsse import REGISTRY_CASE_ID
from ledger.log import note
from ledger.verify.bundle_access import check_access
from ledger.verify.bundle_checks import (
    check_manifest,
    check_media,
    media_recorded,
    run_entry_checks,
    signature_verdicts,
)
from ledger.verify.bundle_files import (
    BundleFiles,
    BundleUnusable,
    Progress,
    load_bundle,
    open_bundle,
    parse_manifest,
    read_members,
)
from ledger.verify.bundle_format import CHECKPOINT, ENVELOPES
from ledger.verify.bundle_log import check_checkpoint, check_inclusion
from ledger.verify.bundle_memory import check_memory
from ledger.verify.bundle_model import BundleVerification, Step, VerifyOptions
from ledger.verify.bundle_receipts import check_receipts
from ledger.verify.bundle_state import case_summary
from ledger.verify.bundle_tiles import check_tiles
from ledger.verify.bundle_timestamps import check_timestamps
from ledger.verify.engine import EntryChecker
from ledger.verify.findings import CHECKS, Finding
from ledger.verify.forked import can_fork, forked

__all__ = ["BundleUnusable", "BundleVerification", "Step", "VerifyOptions", "verify_bundle"]

NOT_APPLICABLE = {
    6: "not applicable to a bundle: it holds one case, not the whole log (see the full-ledger audit)",
    11: "not applicable to a bundle: it holds no read models",
}
ACCESS_STEP = 13
RECEIPT_STEP = 14
NO_RECEIPTS = "not applicable: bundle formats 1 and 2 carry no receipts"
PARALLEL_FROM = 200  # entries; below this a worker process costs more than it saves
NO_ACCESS_LOG = "not applicable: bundle format 1 carries no access entries"


# --- the whole run --------------------------------------------------------------------------------


def _steps(v: BundleVerification) -> list[Step]:
    steps = []
    for number, title in CHECKS.items():
        failed = sum(1 for f in v.findings if f.step == number)
        if number in NOT_APPLICABLE:
            steps.append(Step(number, title, "not applicable", NOT_APPLICABLE[number]))
        elif number == ACCESS_STEP and not v.manifest.has_access_log:
            steps.append(Step(number, title, "not applicable", NO_ACCESS_LOG))
        elif number == RECEIPT_STEP and not v.manifest.has_receipts:
            steps.append(Step(number, title, "not applicable", NO_RECEIPTS))
        elif failed:
            steps.append(
                Step(number, title, "failed", f"{failed} finding(s); {v.counts.get(number, '')}".rstrip("; "))
            )
        elif v.counts.get(number, "").startswith("not run"):
            steps.append(Step(number, title, "not run", v.counts[number]))
        else:
            steps.append(Step(number, title, "passed", v.counts.get(number, "")))
    return steps


def _checkpoint_detail(cp: dict[str, Any]) -> str:
    if "size" not in cp:
        return "no usable checkpoint"
    return (
        f"size {cp['size']} signed by {cp.get('key', '?')} ({cp.get('key_source')}); "
        f"{cp.get('cosigned', 0)} valid witness cosignature(s), {cp.get('required', 0)} required"
        + _timestamp_detail(cp.get("timestamps") or {})
    )


def _timestamp_detail(section: dict[str, Any]) -> str:
    tokens = section.get("tokens") or []
    if section.get("gen_time"):
        return f"; time-stamped by {section['gen_time']} (RFC 3161, verified)"
    if section.get("checked"):
        return "; no verified time-stamp"
    return f"; {len(tokens)} time-stamp(s), not checked (no --tsa-cert)" if tokens else ""


def verify_bundle(
    path: Path, options: VerifyOptions | None = None, progress: Progress | None = None
) -> BundleVerification:
    """Run every applicable check on the bundle at ``path``; raise BundleUnusable only when the
    bundle itself cannot be used (not a zip, no usable manifest). ``progress`` hears of the bytes
    read (``(stage, done, total)`` after each chunk), then of the stage "checking"."""
    options = options or VerifyOptions()
    bundle_sha, source = load_bundle(Path(path), progress)
    with open_bundle(source, Path(path).name) as (zf, manifest_raw):
        manifest = parse_manifest(manifest_raw)
        files = read_members(zf, source.getvalue() if isinstance(source, io.BytesIO) else None, progress)
    if progress is not None:
        progress("checking", 0, 0)
    v = BundleVerification(Path(path).name, bundle_sha, manifest)
    options = options.pinned_for(manifest.origin)
    _pins(v, options)
    check_manifest(v, files)
    checkpoint = check_checkpoint(v, files, options)
    check_timestamps(v, files, options)
    v.counts[8] = _checkpoint_detail(v.checkpoint)
    checker = _entries_and_inclusion(v, files, options, checkpoint)
    check_access(v, files)
    check_receipts(v, files)
    track = checker.cases.get(manifest.case_id)
    state = None if track is None else track.state
    check_media(v, files, media_recorded(files, checker, manifest.case_id), options.media_dir)
    v.case_state = case_summary(state)
    v.timeline = [_timeline_row(c) for c in checker.checked if c.case_id == manifest.case_id]
    v.registry = [_timeline_row(c) for c in checker.checked if c.case_id == REGISTRY_CASE_ID]
    v.keys = _keys(checker)
    v.trust_root = None if checker.registry is None else checker.registry.root_key_id
    check_tiles(v, files, checkpoint, options)
    check_memory(v, files.small(CHECKPOINT), options)  # last: only a bundle without findings is compared
    v.findings.sort(key=lambda f: f.step)
    v.steps = _steps(v)
    return v


# What the forked workers inherit: the bundle so far, its files, and the checkpoint. Set just
# before the pool forks, cleared after.
_INHERITED: tuple[BundleVerification, BundleFiles, note.Checkpoint | None] | None = None


def _verdicts_in_worker() -> dict[int, bool]:
    assert _INHERITED is not None, "set before the pool forks"
    return signature_verdicts(_INHERITED[1])


def _inclusion_in_worker() -> tuple[list[Finding], str]:
    """In a worker process: ``check_inclusion``'s findings and its count line."""
    assert _INHERITED is not None, "set before the pool forks"
    v, files, checkpoint = _INHERITED
    part = BundleVerification(v.bundle, v.bundle_sha256, v.manifest)
    check_inclusion(part, files, checkpoint)
    return part.findings, part.counts[7]


def _entries_and_inclusion(
    v: BundleVerification, files: BundleFiles, options: VerifyOptions, checkpoint: note.Checkpoint | None
) -> EntryChecker:
    """Checks 2-5 and 10 (the entries), then 7 (the inclusion proofs). With more than one worker,
    forked workers check the signatures and the inclusion proofs from the files they inherit while
    this process parses and replays the entries; each sends back one answer, added in the same
    order as in one process (``ledger.verify.forked``: a worker's exception is raised here, a dead
    worker is ``BrokenProcessPool``)."""
    global _INHERITED
    if options.workers <= 1 or len(files.indexes(ENVELOPES)) < PARALLEL_FROM or not can_fork():
        checker = run_entry_checks(v, files, options)
        check_inclusion(v, files, checkpoint)
        return checker
    _INHERITED = (v, files, checkpoint)
    try:
        with forked([_verdicts_in_worker, _inclusion_in_worker], options.workers - 1) as workers:
            checker = run_entry_checks(v, files, options, lambda: workers.result(0))
            found, count = workers.result(1)
    finally:
        _INHERITED = None
    v.findings += found
    v.counts[7] = count
    return checker


def _pins(v: BundleVerification, options: VerifyOptions) -> None:
    """Record what was pinned and from where, with a caveat for each missing pin."""
    v.log_key_pinned = options.vkey is not None
    v.log_key_source = options.vkey_source if v.log_key_pinned else None
    v.trust_root_pinned = options.trust_root is not None
    v.trust_root_source = options.trust_root_source if v.trust_root_pinned else None
    origin = v.manifest.origin
    if options.pins is not None:
        v.pin_file = str(options.pins.path)
        if options.pins.get(origin) is None:
            v.caveats.append(f"The pin file {options.pins.path} has no entry for the origin {origin}.")
    if options.trust_root is None:
        v.caveats.append(
            "The trust root was not pinned: pass --trust-root with the key id the City published, or pin it "
            f"with `evidence-ledger trust pin` (this bundle's trust root claims {v.manifest.trust_root_key_id})."
        )


def _timeline_row(c: Any) -> dict[str, Any]:
    return {
        "seq": c.seq,
        "leaf_index": c.leaf_index,
        "type": c.event_type,
        "occurred_at": c.occurred_at,
        "integrated_at": c.integrated_at,
        "actor": c.actor,
        "role": c.role,
        "signer": c.signer,
        "envelope_sha256": c.envelope_sha256,
        "ok": c.ok,
    }


def _keys(checker: EntryChecker) -> list[dict[str, Any]]:
    if checker.registry is None:
        return []
    return [
        {
            "key_id": k.key_id,
            "actor": k.actor,
            "role": k.role,
            "authority": k.authority,
            "registered_at": k.registered_at,
            "revoked_at": k.revoked_at,
            "compromised_since": k.compromised_since,
        }
        for k in checker.registry.keys
    ]
