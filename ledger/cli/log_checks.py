"""`evidence-ledger log verify-checkpoint | verify-inclusion | verify-consistency`: checkpoints and
proofs checked offline, with public keys only.

They import no database driver and no web framework (they are also the `log` commands of
``evidence-ledger-verify``, ``ledger.cli.offline``). The log key is pinned with ``--vkey`` or by the
pin file's entry for the checkpoint's origin (``ledger.verify.trust``). Exit codes: 0 verified, 1
verification failed, 2 unusable input, pin file or arguments, 4 every check possible without the
log key passed but no log key is pinned (0 with ``--allow-unpinned``; the output still says
UNPINNED, never verified).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer

from domain.errors import VerificationError
from ledger.cli.args import read_file, verifier_key
from ledger.cli.errors import UNPINNED, check_errors
from ledger.cli.verify import AllowUnpinned, TrustFile, load_pin_file

VKey = Annotated[
    str | None,
    typer.Option(
        "--vkey",
        help="log verifier key: the key text or a file holding it \\[default: the pin for the checkpoint's origin]",
    ),
]
Witness = Annotated[
    list[str] | None, typer.Option("--witness", help="witness verifier key (text or file); repeat")
]
MinWitnesses = Annotated[
    int | None, typer.Option("--min-witnesses", help="cosignatures required (default: all)")
]




@dataclass(frozen=True)
class _LogTrust:
    """The log key for a checkpoint's origin: from --vkey, else from the pin file, else none."""

    checkpoint: Any  # note.Checkpoint, parsed but not yet verified
    key: Any  # note.VerifierKey | None
    pin: Any  # trust.LogPin | None
    pins: Any  # trust.PinFile | None
    suffix: str  # says where a pinned key came from, when not from --vkey

    def unpinned(self, what: str, allow_unpinned: bool, as_json: bool = False) -> NoReturn:
        """Print the UNPINNED verdict of a check done without the log key; exit 4 (0 if allowed)."""
        origin = self.checkpoint.origin
        where = "no pin file" if self.pins is None else f"the pin file {self.pins.path} has no entry for it"
        message = (
            f"UNPINNED: {what}; the log signature was not checked: no log key is pinned for {origin}"
            f" ({where}). Give --vkey, or pin it: evidence-ledger trust pin --origin {origin} --vkey KEY"
        )
        code = 0 if allow_unpinned else UNPINNED
        _result(as_json, {"verdict": "unpinned", "origin": origin, "size": self.checkpoint.size,
                          "message": message, "exit_code": code}, message)
        raise typer.Exit(code)


JsonFlag = Annotated[bool, typer.Option("--json", help="print the verdict as JSON")]


def _result(as_json: bool, data: dict[str, Any], text: str) -> None:
    if as_json:
        typer.echo(json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False))
    else:
        typer.echo(text)


def _log_trust(note_bytes: bytes, vkey: str | None, trust: Path | None) -> _LogTrust:
    from ledger.log import note

    checkpoint = note.parse_checkpoint_body(note.open_note(note_bytes)[0])
    pins = load_pin_file(trust)
    pin = None if pins is None else pins.get(checkpoint.origin)
    if vkey is not None:
        return _LogTrust(checkpoint, verifier_key(vkey, "--vkey", note.SIG_TYPE_ED25519), pin, pins, "")
    if pin is not None:
        return _LogTrust(checkpoint, pin.vkey, pin, pins, f" (log key pinned in {pins.path})")
    return _LogTrust(checkpoint, None, None, pins, "")


def _witness_policy(
    trust: _LogTrust, witnesses: list[str] | None, min_witnesses: int | None
) -> tuple[list[Any], int | None]:
    """--witness/--min-witnesses, else the pinned witnesses and their minimum (a production pin's
    minimum is a floor either way)."""
    from ledger.log import note

    if witnesses:
        keys = [verifier_key(w, "--witness", note.SIG_TYPE_COSIGNATURE_V1) for w in witnesses]
        if trust.pin is not None:  # a production pin's minimum is a floor, whatever the command line says
            min_witnesses = trust.pin.required_with_own(len(keys), min_witnesses)
        return keys, min_witnesses
    pinned = [] if trust.pin is None else list(trust.pin.witnesses)
    if trust.pin is not None:
        min_witnesses = trust.pin.required_witnesses(min_witnesses)  # a production pin's minimum is a floor
    return pinned, min_witnesses


@check_errors
def verify_checkpoint(
    file: Path,
    vkey: VKey = None,
    witness: Witness = None,
    min_witnesses: MinWitnesses = None,
    trust: TrustFile = None,
    allow_unpinned: AllowUnpinned = False,
    as_json: JsonFlag = False,
) -> None:
    """Check a checkpoint's log signature and witness cosignatures (exit 4 if no log key is pinned)."""
    from ledger.log import note

    raw = read_file(file, "checkpoint")
    anchor = _log_trust(raw, vkey, trust)
    cp = anchor.checkpoint
    witnesses, required = _witness_policy(anchor, witness, min_witnesses)
    if anchor.key is None:
        skipped = "; witness cosignatures were not checked either" if witness else ""
        anchor.unpinned(f"the checkpoint of {cp.origin} at size {cp.size} parses{skipped}", allow_unpinned, as_json)
    verified = note.verify_checkpoint(raw, anchor.key, witnesses, required)
    names = ", ".join(c.name for c in verified.cosignatures) or "none"
    _result(
        as_json,
        {"verdict": "verified", "origin": verified.checkpoint.origin, "size": verified.checkpoint.size,
         "cosigned_by": [c.name for c in verified.cosignatures], "exit_code": 0},
        f"verified: {verified.checkpoint.origin} size {verified.checkpoint.size}; cosigned by {names}{anchor.suffix}",
    )


@check_errors
def verify_inclusion(
    checkpoint: Annotated[Path, typer.Option(help="signed checkpoint file")],
    leaf: Annotated[Path, typer.Option(help="exact leaf bytes (opaque)")],
    proof: Annotated[Path, typer.Option(help="inclusion proof JSON")],
    vkey: VKey = None,
    trust: TrustFile = None,
    allow_unpinned: AllowUnpinned = False,
    as_json: JsonFlag = False,
) -> None:
    """Check that LEAF is in the tree the checkpoint signs (exit 4 if no log key is pinned)."""
    from ledger.log import merkle, note
    from ledger.log.proof_json import parse_inclusion_proof

    raw = read_file(checkpoint, "checkpoint")
    anchor = _log_trust(raw, vkey, trust)
    if anchor.key is not None:
        note.verify_checkpoint(raw, anchor.key)
    cp = anchor.checkpoint
    index, path = parse_inclusion_proof(read_file(proof, "proof"), tree_size=cp.size)
    merkle.verify_inclusion(merkle.leaf_hash(read_file(leaf, "leaf")), index, cp.size, path, cp.root)
    if anchor.key is None:
        anchor.unpinned(
            f"leaf {index} leads to the root that the checkpoint of {cp.origin} at size {cp.size} states",
            allow_unpinned,
            as_json,
        )
    _result(as_json, {"verdict": "verified", "origin": cp.origin, "size": cp.size, "index": index, "exit_code": 0},
            f"verified: leaf {index} is in {cp.origin} at size {cp.size}{anchor.suffix}")


@check_errors
def verify_consistency(
    old: Annotated[Path, typer.Option(help="older signed checkpoint")],
    new: Annotated[Path, typer.Option(help="newer signed checkpoint")],
    proof: Annotated[Path, typer.Option(help="consistency proof JSON")],
    vkey: VKey = None,
    trust: TrustFile = None,
    allow_unpinned: AllowUnpinned = False,
    as_json: JsonFlag = False,
) -> None:
    """Check that the newer checkpoint's tree extends the older one's (exit 4 if no log key is pinned)."""
    from ledger.log import merkle, note
    from ledger.log.proof_json import parse_consistency_proof

    old_raw, new_raw = read_file(old, "old checkpoint"), read_file(new, "new checkpoint")
    anchor = _log_trust(old_raw, vkey, trust)
    second = note.parse_checkpoint_body(note.open_note(new_raw)[0])
    if anchor.key is not None:
        note.verify_checkpoint(old_raw, anchor.key)
        note.verify_checkpoint(new_raw, anchor.key)
    first = anchor.checkpoint
    if first.origin != second.origin:
        raise VerificationError("checkpoints are from different origins", code="BAD_CHECKPOINT")
    path = parse_consistency_proof(read_file(proof, "proof"), first=first.size, second=second.size)
    merkle.verify_consistency(first.size, second.size, path, first.root, second.root)
    if anchor.key is None:
        anchor.unpinned(
            f"the proof shows that the tree of size {second.size} extends the tree of size {first.size}"
            " as the two checkpoints state them",
            allow_unpinned,
            as_json,
        )
    _result(as_json, {"verdict": "verified", "origin": first.origin, "old_size": first.size, "size": second.size,
                      "exit_code": 0},
            f"verified: size {second.size} extends size {first.size}{anchor.suffix}")
