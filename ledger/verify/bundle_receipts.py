"""Bundle check 14: the signed receipt of every leaf (bundle format 3).

Each ``receipts/<n>.txt`` must parse strictly as a receipt (``ledger.log.receipt``), be signed by the
log key that check 8 used for the checkpoint, and state the bundle's origin, index n and the RFC 6962
hash of ``leaves/<n>.json``. Every leaf of the bundle has one, and there is none without its leaf.
Not run when no log key verified the checkpoint (check 8 has the finding).
Versions 1 and 2 carry no receipts (the check is not applicable).

Code: BAD_RECEIPT.
"""

from __future__ import annotations

from domain.errors import MalformedInputError, VerificationError
from ledger.log import merkle
from ledger.log import receipt as receipts
from ledger.verify.bundle_files import BundleFiles
from ledger.verify.bundle_format import LEAVES, RECEIPT_INDEXED, RECEIPTS, member_path, receipt_path
from ledger.verify.bundle_model import BundleVerification

STEP = 14
CODE = "BAD_RECEIPT"


def _receipt_indexes(files: BundleFiles) -> list[int]:
    found = []
    for name in files.names(RECEIPTS):
        match = RECEIPT_INDEXED.fullmatch(name)
        if match:
            found.append(int(match.group(1)))
    return sorted(found)


def _check_one(v: BundleVerification, files: BundleFiles, index: int) -> None:
    path = receipt_path(index)
    raw = files.small(path)
    if raw is None:
        v.find(CODE, STEP, "the bundle holds no receipt for this leaf", leaf_index=index, path=path)
        return
    key = v.log_key
    assert key is not None, "check 14 runs only once the log key verified the checkpoint"
    try:
        receipt = receipts.verify(raw, key)
    except (MalformedInputError, VerificationError) as exc:
        v.find(CODE, STEP, exc.message, leaf_index=index, path=path)
        return
    if receipt.origin != v.manifest.origin:
        v.find(CODE, STEP, "the receipt is for another origin than the bundle's", leaf_index=index, path=path)
    elif receipt.index != index:
        v.find(CODE, STEP, f"the receipt is for leaf {receipt.index}", leaf_index=index, path=path)
    elif receipt.leaf_hash != merkle.leaf_hash(files.small(member_path(LEAVES, index)) or b""):
        v.find(CODE, STEP, "the receipt's leaf hash is not the hash of the bundle's leaf", leaf_index=index,
               path=path)


def check_receipts(v: BundleVerification, files: BundleFiles) -> None:
    """Check 14 over a format 3 bundle (earlier formats are left alone: the step is not applicable)."""
    if not v.manifest.has_receipts:
        return
    if not v.checkpoint.get("signature_valid"):  # one finding in check 8, not one per receipt here
        v.counts[STEP] = "not run: no log key verified the checkpoint (check 8)"
        return
    leaves = files.indexes(LEAVES)
    for index in leaves:
        _check_one(v, files, index)
    for index in sorted(set(_receipt_indexes(files)) - set(leaves)):
        v.find(CODE, STEP, "a receipt without its leaf", leaf_index=index, path=receipt_path(index))
    v.counts[STEP] = f"{len(leaves)} receipts, each signed by the log key for its leaf"
