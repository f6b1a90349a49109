"""`evidence-ledger receipt verify`: a signed receipt checked offline against the pinned log key.

Part of the offline verifier too (``evidence-ledger-verify receipt verify``): it imports no database
driver, web framework or HTTP client. ``receipt check`` (which asks a server) is in
``ledger.cli.receipt_remote``. The log key is ``--vkey``, else the pin file's entry for the receipt's
origin; with neither the verdict is UNPINNED (exit 4; 0 with ``--allow-unpinned``).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer

from domain.errors import VerificationError
from ledger.cli.args import read_file, verifier_key
from ledger.cli.errors import UNPINNED, check_errors
from ledger.cli.log_checks import JsonFlag, VKey, _result
from ledger.cli.verify import AllowUnpinned, TrustFile, load_pin_file

ReceiptFile = Annotated[Path, typer.Argument(metavar="RECEIPT", help="signed receipt file (as an append returned it)")]
EnvelopeFile = Annotated[
    Path | None, typer.Option("--envelope", help="the envelope file the receipt is for: its SHA-256 must match")
]


@dataclass(frozen=True)
class LogKey:
    """The log key for an origin: from --vkey, else from the pin file, else none (``where`` says why)."""

    key: Any  # note.VerifierKey | None
    suffix: str  # where a pinned key came from, when not from --vkey
    where: str  # why there is none


def log_key_for(origin: str, vkey: str | None, trust: Path | None) -> LogKey:
    from ledger.log import note

    pins = load_pin_file(trust)
    if vkey is not None:
        return LogKey(verifier_key(vkey, "--vkey", note.SIG_TYPE_ED25519), "", "")
    pin = None if pins is None else pins.get(origin)
    if pin is not None:
        return LogKey(pin.vkey, f" (log key pinned in {pins.path})", "")
    where = "no pin file" if pins is None else f"the pin file {pins.path} has no entry for it"
    return LogKey(None, "", where)


def unpinned_message(origin: str, what: str, where: str) -> str:
    return (
        f"UNPINNED: {what}; the log signature was not checked: no log key is pinned for {origin} ({where})."
        f" Give --vkey, or pin it: evidence-ledger trust pin --origin {origin} --vkey KEY"
    )


@check_errors
def verify(
    receipt_file: ReceiptFile,
    vkey: VKey = None,
    trust: TrustFile = None,
    envelope: EnvelopeFile = None,
    allow_unpinned: AllowUnpinned = False,
    as_json: JsonFlag = False,
) -> None:
    """Check a receipt's signature by the log key (and, with --envelope, that it is for that envelope).

    Exit 0 verified, 1 BAD_RECEIPT (forged, altered, another key or envelope), 2 unusable input,
    4 UNPINNED (no log key pinned for the receipt's origin)."""
    from ledger.log import receipt as receipts

    raw = read_file(receipt_file, "receipt")
    parsed = receipts.parse(raw)
    if envelope is not None:
        digest = hashlib.sha256(read_file(envelope, "envelope")).hexdigest()
        if digest != parsed.envelope_sha256:
            raise VerificationError(
                f"the receipt is for the envelope {parsed.envelope_sha256}, the file given hashes to {digest}",
                code="BAD_RECEIPT",
            )
    anchor = log_key_for(parsed.origin, vkey, trust)
    data = {**parsed.to_json(), "envelope_checked": envelope is not None}
    if anchor.key is None:
        code = 0 if allow_unpinned else UNPINNED
        message = unpinned_message(parsed.origin, f"the receipt for leaf {parsed.index} parses", anchor.where)
        _result(as_json, {**data, "verdict": "unpinned", "message": message, "exit_code": code}, message)
        raise typer.Exit(code)
    receipts.verify(raw, anchor.key)
    envelope_note = "; the envelope matches" if envelope is not None else ""
    _result(
        as_json,
        {**data, "verdict": "verified", "exit_code": 0},
        f"verified: receipt for leaf {parsed.index} of {parsed.origin}, integrated at {parsed.integrated_at};"
        f" a checkpoint must cover it by {data['due']}{envelope_note}{anchor.suffix}",
    )


def keep_local_receipt(signed: str) -> None:
    """Keep the signed receipt of a local append in the client state directory, like a remote one
    (``ledger.verify.keep_receipt``: EQUIVOCATION on a second, different receipt for the index)."""
    from ledger.verify import keep_receipt

    keep_receipt(signed.encode("utf-8"))


#: the offline verifier's `receipt` group (``evidence-ledger-verify``); the full CLI's group adds `check`
offline_receipt_app = typer.Typer(no_args_is_help=True, help="Check signed receipts (promises of inclusion).")
offline_receipt_app.command("verify")(verify)
