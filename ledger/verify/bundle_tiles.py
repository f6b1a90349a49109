"""``verify BUNDLE --tiles URL|DIR``: the bundle against the log published as C2SP tlog-tiles.

The tiles' checkpoint must be signed by the bundle's log key (the pinned one) for the bundle's
origin; the bundle's checkpoint must be a prefix of it — the RFC 6962 consistency proof is computed
from the tiles and verified against both signed roots, else ``EQUIVOCATION`` (check 8) — and each
of the bundle's leaves must be included in the tiles' tree (inclusion proof computed from the tiles,
verified against the tiles' signed root, else ``BAD_INCLUSION``, check 7). A tiled log older than the
bundle proves nothing either way: a caveat, not a finding.
"""

from __future__ import annotations

from domain.errors import LedgerError, MalformedInputError, VerificationError
from ledger.log import merkle, note, tiles
from ledger.verify.bundle_files import BundleFiles
from ledger.verify.bundle_format import CHECKPOINT, ENVELOPES, LEAVES, member_path
from ledger.verify.bundle_model import BundleVerification, VerifyOptions


def check_tiles(
    v: BundleVerification, files: BundleFiles, checkpoint: note.Checkpoint | None, options: VerifyOptions
) -> None:
    fetch = options.tiles
    if fetch is None:
        return
    section: dict[str, object] = {"source": options.tiles_source, "status": "not compared"}
    v.checkpoint["tiles"] = section
    if checkpoint is None or v.log_key is None or not v.checkpoint.get("signature_valid"):
        section["detail"] = "the bundle's checkpoint was not verified under a log key"
        return
    raw = fetch(tiles.CHECKPOINT)
    try:
        published = note.verify_checkpoint(raw, v.log_key, [], 0, origin=v.manifest.origin).checkpoint
    except (VerificationError, MalformedInputError) as exc:
        v.find("BAD_CHECKPOINT", 8, f"the tiles' checkpoint ({options.tiles_source}): {exc.message}", path=CHECKPOINT)
        section["status"] = "BAD_CHECKPOINT"
        return
    section["size"] = published.size
    if published.size < checkpoint.size:
        v.caveats.append(
            f"The tiled log at {options.tiles_source} (size {published.size}) is older than the bundle's checkpoint"
            f" (size {checkpoint.size}): not compared."
        )
        section["detail"] = "the tiles' checkpoint is older than the bundle's"
        return
    tree = tiles.TiledTree(fetch, published.size)
    try:
        proof = tree.consistency_proof(checkpoint.size) if checkpoint.size else []
        merkle.verify_consistency(checkpoint.size, published.size, proof, checkpoint.root, published.root)
    except LedgerError as exc:
        v.find(
            "EQUIVOCATION", 8,
            f"the bundle's checkpoint (size {checkpoint.size}) is not consistent with the tiles' (size"
            f" {published.size}) at {options.tiles_source}: {exc.message}",
            path=CHECKPOINT,
        )
        section["status"] = "EQUIVOCATION"
        return
    included = 0
    for index in files.indexes(ENVELOPES):
        leaf = files.small(member_path(LEAVES, index))
        if leaf is None:
            continue  # LEAF_MISMATCH already says so
        try:
            path = tree.inclusion_proof(index)
            merkle.verify_inclusion(merkle.leaf_hash(leaf), index, published.size, path, published.root)
        except (LedgerError, ValueError) as exc:
            message = exc.message if isinstance(exc, LedgerError) else str(exc)
            v.find("BAD_INCLUSION", 7, f"not included in the tiles' tree of size {published.size}: {message}",
                   leaf_index=index)
            continue
        included += 1
    section.update(status="consistent", included=included)


__all__ = ["check_tiles"]
