"""The receipts a client got, kept in its state directory (``ledger.verify.state_dir``).

Every append made through the command line or :class:`ledger.client.RemoteLedger` keeps the signed
receipt it got as ``logs/<origin>/receipts/<leaf index>.txt`` (directories 0700, files 0600, written
atomically). A receipt is the log's signed promise about one leaf index: a second receipt for the
same index that names another entry (another leaf hash, envelope or integration time) means the log
promised two different things at one position — equivocation. Both are kept (the new one under
``conflicts/``) and :class:`Equivocation` is raised. The same entry receipted again (a duplicate
append; the same bytes, or only another max delay) is not a conflict: the first receipt stays.

A kept receipt must be signed by the log key: the pin file's entry for the receipt's origin, else the
key this client recorded for the origin on first use (``vkey`` beside ``latest``,
:mod:`ledger.verify.memory`); ``BAD_RECEIPT`` otherwise, so that only the log itself can cause an
EQUIVOCATION. :func:`check_append_receipt` is what an append's answer must pass: the receipt verifies,
is for the envelope sent, and names the leaf index, leaf hash, envelope hash and integration time the
answer states.

A state directory that cannot be written is not a reason to fail an append that succeeded: the
caller is warned once per process on standard error (:func:`keep_receipt` returns None).
"""

from __future__ import annotations

import hashlib
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from domain.errors import MalformedInputError, VerificationError
from ledger.durable import write_atomic
from ledger.log import note
from ledger.log import receipt as receipts
from ledger.verify.memory import VKEY
from ledger.verify.state_dir import origin_dir, state_dir
from ledger.verify.trust import LogPin, PinFileError, load_pins

RECEIPTS, CONFLICTS = "receipts", "conflicts"
_warned: list[bool] = []


class Equivocation(VerificationError):
    """Two receipts for one leaf index naming different entries: the log forked (both kept)."""

    code = "EQUIVOCATION"


@dataclass(frozen=True)
class StoredReceipt:
    index: int
    path: Path
    data: bytes


def _dir(path: Path) -> None:
    path.mkdir(mode=0o700, parents=True, exist_ok=True)


def _same_entry(a: receipts.Receipt, b: receipts.Receipt) -> bool:
    return (a.origin, a.index, a.leaf_hash, a.integrated_at, a.envelope_sha256) == (
        b.origin, b.index, b.leaf_hash, b.integrated_at, b.envelope_sha256
    )


def warn_once(message: str) -> None:
    """One warning line on standard error, the first time only (per process)."""
    if not _warned:
        _warned.append(True)
        sys.stderr.write(f"warning: {message}\n")


def _pin(origin: str) -> LogPin | None:
    """The pin file's entry for ``origin`` (None without one, or when the pin file is unusable: the
    verify commands say why)."""
    try:
        pins = load_pins()
    except (PinFileError, OSError):
        return None
    return None if pins is None else pins.get(origin)


def receipt_key(origin: str, root: Path | None = None) -> note.VerifierKey | None:
    """The log key a receipt of ``origin`` must be signed by: the pin file's, else the key recorded on
    first use in the client state directory (``vkey``); None when there is neither."""
    pin = _pin(origin)
    if pin is not None:
        return pin.vkey
    base = state_dir() if root is None else root
    if base is None:
        return None
    path = origin_dir(base, origin) / VKEY
    try:
        text = path.read_text("utf-8").strip()
    except OSError:  # nothing recorded, or no usable state directory (the caller warns when it writes)
        return None
    try:
        return note.parse_verifier_key(text)
    except MalformedInputError as exc:
        raise VerificationError(
            f"the log key recorded for {origin} in {path} does not parse ({exc.message}): it was edited; "
            "obtain the log's key independently and pin it (`evidence-ledger trust pin`)",
            code="BAD_RECEIPT",
        ) from None


def check_append_receipt(
    data: bytes, key: note.VerifierKey, *, envelope: bytes, answer: dict[str, Any]
) -> receipts.Receipt:
    """The receipt of an append, once it is signed by ``key``, is for ``envelope`` (its SHA-256) and
    names what the server's ``answer`` states (leaf index, leaf hash, envelope hash, integration time);
    BAD_RECEIPT otherwise."""
    try:
        signed = receipts.verify(data, key)
    except MalformedInputError as exc:  # the server's answer, not the caller's input
        raise VerificationError(exc.message, code="BAD_RECEIPT") from None
    digest = hashlib.sha256(envelope).hexdigest()
    if signed.envelope_sha256 != digest:
        raise VerificationError(
            f"the receipt for leaf {signed.index} is for the envelope {signed.envelope_sha256}, not for the one "
            f"appended ({digest}): report it to the log's operator", code="BAD_RECEIPT", leaf_index=signed.index
        )
    stated = {
        "leaf_index": signed.index,
        "leaf_hash": signed.leaf_hash.hex(),
        "envelope_sha256": signed.envelope_sha256,
        "integrated_at": signed.integrated_at,
    }
    differ = sorted(k for k, v in stated.items() if k in answer and answer[k] != v)
    if differ:
        raise VerificationError(
            f"the server's answer states another {', '.join(differ)} than its signed receipt for leaf "
            f"{signed.index}: the answer is not what the log signed; report it to the log's operator",
            code="BAD_RECEIPT", leaf_index=signed.index,
        )
    return signed


def keep_receipt(data: bytes, *, envelope: bytes | None = None, root: Path | None = None) -> Path | None:
    """Store a signed receipt under its origin and index; the path (None if the state dir is not usable).

    ``envelope``: the bytes that were appended; the receipt must be for them (BAD_RECEIPT). The receipt
    must be signed by :func:`receipt_key` when there is one (BAD_RECEIPT). Raises
    :class:`Equivocation` when another receipt for the index names another entry."""
    parsed = receipts.parse(data)
    key = receipt_key(parsed.origin, root)
    if key is not None:  # a receipt not signed by the log's key (pinned or first seen) is no promise of it
        receipts.verify(data, key)
    if envelope is not None and hashlib.sha256(envelope).hexdigest() != parsed.envelope_sha256:
        raise VerificationError("the receipt is for another envelope than the one appended", code="BAD_RECEIPT",
                                leaf_index=parsed.index)
    base = state_dir() if root is None else root
    if base is None:
        warn_once("no client state directory (set EVIDENCE_LEDGER_STATE_DIR): the receipt was not kept")
        return None
    folder = origin_dir(base, parsed.origin)
    path = folder / RECEIPTS / f"{parsed.index}.txt"
    try:
        _dir(path.parent)
        try:
            old = path.read_bytes()
        except FileNotFoundError:
            write_atomic(path, data, mode=0o600)
            return path
        if old == data:
            return path
        try:
            same = _same_entry(receipts.parse(old), parsed)
        except MalformedInputError:
            same = False  # an unreadable stored receipt is replaced only through conflicts/
        if same:
            return path
        _dir(folder / CONFLICTS)
        digest = hashlib.sha256(data).hexdigest()[:16]
        conflict = folder / CONFLICTS / f"receipt-{parsed.index}-{digest}.txt"
        write_atomic(conflict, data, mode=0o600)
    except OSError as exc:
        warn_once(f"cannot write to the client state directory {base} ({exc.strerror or exc}): the receipt of "
                  f"leaf {parsed.index} was not kept")
        return None
    raise Equivocation(
        f"the log issued two receipts naming different entries for leaf {parsed.index}: both are kept "
        f"({path} and {conflict}); report it to the log's operator and its witnesses",
        leaf_index=parsed.index,
    )


def stored_receipts(origin: str, root: Path | None = None) -> Iterator[StoredReceipt]:
    """The receipts kept for ``origin``, by leaf index."""
    base = state_dir() if root is None else root
    if base is None:
        return
    folder = origin_dir(base, origin) / RECEIPTS
    try:
        names = os.listdir(folder)
    except FileNotFoundError:
        return
    found = []
    for name in names:
        stem, dot, ext = name.partition(".")
        if ext == "txt" and dot and stem.isdigit() and str(int(stem)) == stem:
            found.append((int(stem), folder / name))
    for index, path in sorted(found):
        yield StoredReceipt(index, path, path.read_bytes())
