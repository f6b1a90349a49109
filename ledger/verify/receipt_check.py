"""Did the log keep the promise of a receipt? (``evidence-ledger receipt check``)

Given a receipt whose signature by the pinned log key is checked, the log's latest checkpoint
(checked with the same key, for the receipt's origin) and, when it covers the receipt's index, the
inclusion proof of that index in it:

* covered, and the receipt's leaf hash is in the tree by the proof → ``included``;
* covered, but the proof does not lead to the root, or the log has no proof or no entry at that
  index → ``BROKEN_PROMISE`` (the log removed or replaced the entry it receipted);
* not covered yet, before ``integrated_at + max delay`` → ``pending`` (and how long until due);
* not covered, after that → ``BROKEN_PROMISE``.

The log is read through ``fetch(path) -> bytes``, which raises ``NotFoundError`` for a 404 and
``ServerUnreachable`` (or another LedgerError) when there is no answer: this module makes no
connection of its own (it is part of the offline verifier's package).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from domain.errors import MalformedInputError, NotFoundError, VerificationError
from ledger.envelope.canonical import format_time
from ledger.log import merkle, note
from ledger.log import receipt as receipts
from ledger.log.proof_json import parse_inclusion_proof

INCLUDED, PENDING, BROKEN = "included", "pending", "broken_promise"
Fetch = Callable[[str], bytes]


class BrokenPromise(VerificationError):
    code = "BROKEN_PROMISE"


@dataclass(frozen=True)
class ReceiptStatus:
    receipt: receipts.Receipt
    verdict: str  # included | pending | broken_promise
    message: str
    checkpoint_size: int | None
    seconds_left: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            **self.receipt.to_json(),
            "verdict": self.verdict,
            "message": self.message,
            "checkpoint_size": self.checkpoint_size,
            "seconds_left": self.seconds_left,
        }


def log_checkpoint(
    fetch: Fetch,
    key: note.VerifierKey,
    origin: str,
    witnesses: Sequence[note.VerifierKey] = (),
    min_witnesses: int | None = None,
) -> note.Checkpoint | None:
    """The log's latest checkpoint, its signature checked, and its cosignatures when ``witnesses`` are
    given (``min_witnesses`` of them, default all: WITNESS_POLICY); None while the log has none."""
    try:
        raw = fetch("/v1/log/checkpoint")
    except NotFoundError:
        return None
    return note.verify_checkpoint(raw, key, witnesses, min_witnesses if witnesses else 0, origin=origin).checkpoint


def check_receipt(
    data: bytes,
    key: note.VerifierKey,
    fetch: Fetch,
    now: datetime,
    witnesses: Sequence[note.VerifierKey] = (),
    min_witnesses: int | None = None,
) -> ReceiptStatus:
    """The status of a receipt against the log (see the module doc); raise BAD_RECEIPT if the receipt
    itself does not verify, BAD_CHECKPOINT if the log's checkpoint does not, WITNESS_POLICY if it lacks
    the cosignatures asked for, BROKEN_PROMISE."""
    receipt = receipts.verify(data, key)
    checkpoint = log_checkpoint(fetch, key, receipt.origin, witnesses, min_witnesses)
    return receipt_status(receipt, checkpoint, fetch, now)


def receipt_status(
    receipt: receipts.Receipt, cp: note.Checkpoint | None, fetch: Fetch, now: datetime
) -> ReceiptStatus:
    """The status of a verified receipt given the log's latest checked checkpoint (None: none yet)."""
    if cp is not None and cp.size > receipt.index:
        _require_included(receipt, cp, fetch)
        return ReceiptStatus(receipt, INCLUDED, f"leaf {receipt.index} is in the checkpoint of size {cp.size}",
                             cp.size)
    size = None if cp is None else cp.size
    left = int((receipt.due - now).total_seconds())
    due = format_time(receipt.due)
    if now <= receipt.due:
        where = "the log has no checkpoint yet" if cp is None else f"the latest checkpoint has size {size}"
        return ReceiptStatus(receipt, PENDING, f"leaf {receipt.index} is not covered yet ({where}); a checkpoint "
                             f"must cover it by {due}, in {max(left, 0)} s", size, max(left, 0))
    raise BrokenPromise(
        f"no checkpoint covers leaf {receipt.index} although the receipt promised one by {due}"
        f" (the latest checkpoint has size {size or 0})",
        leaf_index=receipt.index,
    )


def _require_included(receipt: receipts.Receipt, cp: note.Checkpoint, fetch: Fetch) -> None:
    try:
        raw = fetch(f"/v1/log/proof/inclusion?index={receipt.index}&size={cp.size}")
        index, path = parse_inclusion_proof(raw, tree_size=cp.size)
        if index != receipt.index:
            raise VerificationError(f"the log answered with a proof for leaf {index}")
        merkle.verify_inclusion(receipt.leaf_hash, receipt.index, cp.size, path, cp.root)
    except (NotFoundError, MalformedInputError, VerificationError) as exc:
        raise BrokenPromise(
            f"the receipted entry at leaf {receipt.index} is not in the log's checkpoint of size {cp.size}:"
            f" {exc.message}. The log removed or replaced an entry it had promised to keep; keep the receipt"
            " and report it",
            leaf_index=receipt.index,
        ) from None
