"""A newer bundle of a case against an older one: ``evidence-ledger verify NEW.zip --previous OLD.zip``.

Both bundles are verified in full (the older one must verify too). Then, as a court would compare two
productions of the same record: the same log (origin and log key) and the same case; the older
checkpoint's tree is not larger (else ``ROLLBACK``); the same size has the same root (else
``EQUIVOCATION``); every entry of the older bundle is in the newer one at the same leaf index with
identical envelope and leaf bytes, and the older case stream (its seqs in leaf order) is a prefix of
the newer one (else ``EQUIVOCATION`` naming the indexes and seqs). That proves the older bundle's
entries unchanged (leaf level). That the older *tree* is a prefix of the newer one (tree level) needs
an RFC 6962 consistency proof between the two checkpoints, which a bundle does not carry: it is
checked when a log server is given (``--server``), else the report says it was not proven.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from domain.errors import LedgerError, MalformedInputError
from ledger.envelope.dsse import parse_envelope
from ledger.log import merkle, note
from ledger.verify.bundle_files import BundleFiles, load_bundle, open_bundle, parse_manifest, read_members
from ledger.verify.bundle_format import CHECKPOINT, ENVELOPES, LEAVES, member_path
from ledger.verify.bundle_model import BundleVerification
from ledger.verify.memory import EQUIVOCATION, KEY_CHANGED, NOT_ASKED, ROLLBACK, ProofSource

PREVIOUS_INVALID = "PREVIOUS_INVALID"


@dataclass
class PreviousComparison:
    """What comparing the newer bundle with the older one found."""

    previous: str
    previous_verdict: str
    previous_size: int | None = None
    size: int | None = None
    entries_compared: int = 0
    leaf_level: str = "not checked"
    tree_level: str = "not proven"
    #: under which key each checkpoint's signature was checked ("previous", "this"; see :func:`_key_checked`)
    checkpoint_keys: dict[str, str] = field(default_factory=dict)
    findings: list[dict[str, Any]] = field(default_factory=list)

    def find(self, code: str, message: str, **where: Any) -> None:
        self.findings.append({"code": code, "message": message, **where})

    @property
    def failed(self) -> bool:
        return bool(self.findings)

    def to_json(self) -> dict[str, Any]:
        return {
            "previous": self.previous,
            "previous_verdict": self.previous_verdict,
            "previous_checkpoint_size": self.previous_size,
            "checkpoint_size": self.size,
            "entries_compared": self.entries_compared,
            "leaf_level": self.leaf_level,
            "tree_level": self.tree_level,
            "checkpoint_keys": self.checkpoint_keys,
            "result": "failed" if self.failed else "consistent",
            "findings": self.findings,
        }

    def render_text(self) -> str:
        lines = [
            f"Compared with the previous bundle {self.previous} ({self.previous_verdict}): "
            + ("FAILED" if self.failed else "consistent"),
            f"  checkpoints: previous size {self.previous_size}, this one size {self.size}",
            f"  leaf level: {self.leaf_level}",
            f"  tree level: {self.tree_level}",
            f"  checkpoint signatures: previous {self.checkpoint_keys.get('previous')}; "
            f"this one {self.checkpoint_keys.get('this')}",
        ]
        lines += [f"  {f['code']}: {f['message']}" for f in self.findings]
        return "\n".join(lines) + "\n"


def _files(path: Path) -> BundleFiles:
    source = load_bundle(path)[1]
    with open_bundle(source, path.name) as (zf, manifest_raw):
        parse_manifest(manifest_raw)
        return read_members(zf)


def _checkpoint(files: BundleFiles) -> note.Checkpoint | None:
    raw = files.small(CHECKPOINT)
    try:
        return None if raw is None else note.parse_checkpoint_body(note.open_note(raw)[0])
    except MalformedInputError:
        return None


def _case_stream(files: BundleFiles, case_id: str) -> list[tuple[int, int]]:
    """(leaf index, seq) of the case's entries, in leaf order."""
    stream = []
    for index in files.indexes(ENVELOPES):
        raw = files.small(member_path(ENVELOPES, index))
        try:
            statement = parse_envelope(raw or b"").statement
        except MalformedInputError:
            continue  # the bundle's own verification reports it
        if statement.case_id == case_id:
            stream.append((index, statement.seq))
    return stream


def compare_previous(
    new: BundleVerification,
    new_path: Path,
    old: BundleVerification,
    old_path: Path,
    proofs: Callable[[str], ProofSource] | None = None,
) -> PreviousComparison:
    """Compare the verified newer bundle ``new`` with the verified older ``old`` (see the module).
    MalformedInputError (unusable input) when they are not bundles of the same log and case."""
    result = PreviousComparison(old_path.name, old.verdict)
    result.checkpoint_keys = {"previous": _key_checked(old), "this": _key_checked(new)}
    if new.manifest.origin != old.manifest.origin:
        raise MalformedInputError(
            f"--previous {old_path.name} is a bundle of the log {old.manifest.origin!r}, not "
            f"{new.manifest.origin!r}: compare two bundles of the same log",
            code="BAD_ARGUMENT",
        )
    if new.manifest.case_id != old.manifest.case_id:
        raise MalformedInputError(
            f"--previous {old_path.name} is a bundle of the case {old.manifest.case_id}, not "
            f"{new.manifest.case_id}: compare two bundles of the same case",
            code="BAD_ARGUMENT",
        )
    if old.findings:
        result.find(PREVIOUS_INVALID, f"the previous bundle does not verify ({len(old.findings)} finding(s)): "
                    "run `evidence-ledger verify` on it alone to see them")
    if new.log_key is not None and old.log_key is not None and str(new.log_key) != str(old.log_key):
        result.find(KEY_CHANGED, f"the bundles were checked with different log keys ({old.log_key.name}+"
                    f"{old.log_key.key_id.hex()} and {new.log_key.name}+{new.log_key.key_id.hex()})")
    new_files, old_files = _files(new_path), _files(old_path)
    new_cp, old_cp = _checkpoint(new_files), _checkpoint(old_files)
    if new_cp is None or old_cp is None:
        result.find(PREVIOUS_INVALID, "a bundle holds no usable checkpoint")
        return result
    result.size, result.previous_size = new_cp.size, old_cp.size
    if old_cp.size > new_cp.size:
        result.find(ROLLBACK, f"the previous bundle's checkpoint has size {old_cp.size}, larger than this "
                    f"bundle's {new_cp.size}: the newer bundle shows a smaller log (a rollback)")
    elif old_cp.size == new_cp.size and old_cp.root != new_cp.root:
        result.find(EQUIVOCATION, f"both checkpoints have size {new_cp.size} but different roots: two histories")
    _compare_entries(result, new_files, old_files, new.manifest.case_id)
    _tree_level(result, new_cp, old_cp, proofs)
    return result


def _compare_entries(result: PreviousComparison, new: BundleFiles, old: BundleFiles, case_id: str) -> None:
    changed = []
    indexes = old.indexes(ENVELOPES)
    for index in indexes:
        for kind in (ENVELOPES, LEAVES):
            name = member_path(kind, index)
            if old.small(name) != new.small(name):
                changed.append(index)
                break
    result.entries_compared = len(indexes)
    if changed:
        shown = ", ".join(str(i) for i in changed[:20]) + (" …" if len(changed) > 20 else "")
        result.find(EQUIVOCATION, f"{len(changed)} entr(y/ies) of the previous bundle are missing or differ in "
                    f"this one, at leaf index {shown}: the log's history was rewritten", leaf_indexes=changed)
    old_stream, new_stream = _case_stream(old, case_id), _case_stream(new, case_id)
    if new_stream[: len(old_stream)] != old_stream:
        part = next(i for i, o in enumerate(old_stream) if i >= len(new_stream) or new_stream[i] != o)
        first = old_stream[part]
        result.find(EQUIVOCATION, f"the previous case stream is not a prefix of this one: they part at leaf "
                    f"index {first[0]} (seq {first[1]} in the previous bundle)", leaf_index=first[0], seq=first[1])
    if not changed and new_stream[: len(old_stream)] == old_stream:
        result.leaf_level = (
            f"proven: all {len(indexes)} entries of the previous bundle are in this one at the same leaf "
            f"index with identical bytes, and its {len(old_stream)} case events are a prefix of this one's "
            f"{len(new_stream)}"
        )
    else:
        result.leaf_level = "FAILED"


def _key_checked(v: BundleVerification) -> str:
    """Under which key the bundle's checkpoint signature was checked: a pinned one, or only the key the
    bundle itself carries (which anyone who made the bundle could have made: UNPINNED)."""
    if v.log_key_pinned:
        return f"checked under the pinned log key (from {v.log_key_source})"
    return "UNPINNED: checked only under the log key the bundle itself carries (log.vkey), not an independent key"


def _tree_level(
    result: PreviousComparison,
    new_cp: note.Checkpoint,
    old_cp: note.Checkpoint,
    proofs: Callable[[str], ProofSource] | None,
) -> None:
    if old_cp.size > new_cp.size:
        result.tree_level = "FAILED: the previous tree is larger"
        return
    if old_cp.size == new_cp.size:
        same = old_cp.root == new_cp.root
        result.tree_level = "proven: the same tree (same size, same root)" if same else "FAILED: different roots"
        return
    if proofs is None:
        result.tree_level = (
            f"not proven: that the previous tree (size {old_cp.size}) is a prefix of this one (size "
            f"{new_cp.size}) needs a consistency proof, which bundles do not carry: pass --server URL"
        )
        return
    try:
        proof = proofs(new_cp.origin)(old_cp.size, new_cp.size)
        merkle.verify_consistency(old_cp.size, new_cp.size, proof, old_cp.root, new_cp.root)
    except LedgerError as exc:
        if exc.code in NOT_ASKED:  # no answer, or not this log's server: nothing was shown
            raise
        result.tree_level = "FAILED"
        result.find(EQUIVOCATION, f"no valid consistency proof from the previous checkpoint (size "
                    f"{old_cp.size}) to this one (size {new_cp.size}): {exc.message}")
        return
    keys = result.checkpoint_keys
    pinned = all(k.startswith("checked under the pinned") for k in (keys["previous"], keys["this"]))
    signed = (
        "both roots signed, the signatures checked under the pinned log key"
        if pinned
        else "a root's signature was not checked under a pinned log key (UNPINNED): this proves the trees "
        "consistent with each other, not that they are the log's"
    )
    result.tree_level = (
        f"proven: the server's consistency proof shows the tree of size {old_cp.size} is a prefix of the "
        f"tree of size {new_cp.size} ({signed})"
    )
