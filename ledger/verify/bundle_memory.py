"""A verified bundle's checkpoint against the checkpoint this client remembers for its log.

Only a bundle that verified with both the log key and the trust root pinned is compared, and only
its checkpoint can become the remembered one (:mod:`ledger.verify.memory`). A bundle is a document
of its time: an older (smaller) checkpoint than the remembered one is no rollback, and is proven a
prefix of it when a log server can give the consistency proof (``--server``); a newer one replaces
the remembered checkpoint only when proven consistent with it. The same size with another root,
or a proof that fails, is an ``EQUIVOCATION`` finding (check 8), both notes kept.
"""

from __future__ import annotations

from domain.errors import VerificationError
from ledger.verify.bundle_format import CHECKPOINT
from ledger.verify.bundle_model import BundleVerification, VerifyOptions
from ledger.verify.memory import OLDER_UNPROVEN, UNPROVEN

NOT_COMPARED = "not compared"


def check_memory(v: BundleVerification, raw: bytes | None, options: VerifyOptions) -> None:
    """Compare the bundle's checkpoint ``raw`` with the memory (``options.memory``); the outcome goes
    to ``v.checkpoint["remembered"]``, a conflict is a finding."""
    memory = options.memory
    if memory is None:
        return
    if raw is None or v.findings or v.missing_pins or v.log_key is None:
        v.checkpoint["remembered"] = {
            "status": NOT_COMPARED,
            "detail": "only a bundle without findings, checked with the log key and the trust root pinned, "
            "is compared with the checkpoint remembered for its log",
        }
        return
    proofs = None if options.consistency is None else options.consistency(v.manifest.origin)
    try:
        seen = memory.observe(
            raw, v.log_key, proofs, pinned=True, older_ok=True, source=f"the bundle {v.bundle}"
        )
    except VerificationError as exc:
        conflict = exc.refs.get("conflict")
        v.find(exc.code, 8, exc.message, path=CHECKPOINT, conflict=conflict)
        v.checkpoint["remembered"] = {"status": exc.code, "detail": exc.message, "conflict": conflict}
        return
    v.checkpoint["remembered"] = seen.to_json()
    if seen.status in (UNPROVEN, OLDER_UNPROVEN):
        v.caveats.append(f"Remembered checkpoint: {seen.describe()}.")
