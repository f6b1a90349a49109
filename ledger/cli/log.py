"""`evidence-ledger log …`: checkpoints and proofs, produced from a data dir or checked offline.

The ``verify-*`` commands need only public keys and files: they import no database driver and no
web framework. The log key is pinned with ``--vkey`` or by the pin file's entry for the checkpoint's
origin (``ledger.verify.trust``). Exit codes: 0 verified, 1 verification failed, 2 unusable input,
pin file or arguments, 3 every check possible without the log key passed but no log key is pinned
(0 with ``--allow-unpinned``; the output still says UNPINNED, never verified).
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer

from domain.errors import LedgerError, MalformedInputError, VerificationError
from ledger.cli.app import DataDir, app, cli_errors, fail, open_ledger
from ledger.cli.verify import AllowUnpinned, TrustFile, load_pin_file

log_app = typer.Typer(no_args_is_help=True, help="Transparency log: checkpoints, proofs, offline checks.")
app.add_typer(log_app, name="log")

VKey = Annotated[
    str | None,
    typer.Option(
        "--vkey",
        help="log verifier key: the key text or a file holding it [default: the pin for the checkpoint's origin]",
    ),
]
Witness = Annotated[
    list[str] | None, typer.Option("--witness", help="witness verifier key (text or file); repeat")
]
MinWitnesses = Annotated[
    int | None, typer.Option("--min-witnesses", help="cosignatures required (default: all)")
]


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise MalformedInputError(f"cannot read {what} {path}: {exc.strerror}", code="BAD_ARGUMENT") from None


def _key_text(value: str) -> str:
    candidate = Path(value)
    if "+" not in value or candidate.is_file():
        return _read(candidate, "verifier key file").decode("utf-8", "replace").strip()
    return value.strip()


def _verifier_key(value: str) -> Any:
    from ledger.log import note

    try:
        return note.parse_verifier_key(_key_text(value))
    except MalformedInputError as exc:
        raise MalformedInputError(f"verifier key: {exc.message}", code="BAD_ARGUMENT") from None


def _verify_errors(func: Any) -> Any:
    """verify-* commands: a failed check is exit 1, unusable input exit 2."""
    import functools

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except VerificationError as exc:
            fail(f"verification failed: {exc.code}: {exc.message}", 1)
        except MalformedInputError as exc:
            fail(f"unusable input: {exc.code}: {exc.message}", 2)
        except ValueError as exc:
            fail(f"unusable input: {exc}", 2)
        except LedgerError as exc:
            fail(f"{exc.code}: {exc.message}", 2)

    return wrapper


def _print_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2))


# -- producing ---------------------------------------------------------------------------------------


@log_app.command("key")
@cli_errors
def log_key(data_dir: DataDir = None) -> None:
    """Print the log's verifier key (name+keyid+base64 key)."""
    from ledger.bootstrap import log_verifier_key
    from ledger.envelope.keys import load_private_key
    from ledger.settings import LedgerConfig, key_path

    settings_dir = data_dir or Path(__import__("os").environ.get("EVIDENCE_LEDGER_DATA_DIR", "./data"))
    config = LedgerConfig.load(settings_dir)
    typer.echo(log_verifier_key(config, load_private_key(key_path(settings_dir, "log"))))


@log_app.command("checkpoint")
@cli_errors
def log_checkpoint(
    size: Annotated[int | None, typer.Option(help="a past checkpoint of exactly this size")] = None,
    data_dir: DataDir = None,
) -> None:
    """Print a signed checkpoint covering every committed entry (signing one if needed), with the
    cosignatures of the configured witnesses."""
    from ledger.log.witnessing import checkpoint_with_witnesses

    with open_ledger(data_dir) as ledger:
        checkpoint = ledger.checkpoint_at(size) if size is not None else checkpoint_with_witnesses(ledger)
    if checkpoint is None:
        fail("EMPTY_LOG: the log has no entries yet", 1)
        return
    sys.stdout.buffer.write(checkpoint.with_cosignatures())
    sys.stdout.buffer.flush()


@log_app.command("prove-inclusion")
@cli_errors
def prove_inclusion(
    index: int,
    size: Annotated[int | None, typer.Option(help="tree size (default: the latest checkpoint)")] = None,
    data_dir: DataDir = None,
) -> None:
    """Print the RFC 6962 inclusion proof of leaf INDEX in the tree of SIZE."""
    from ledger.log.proof_json import inclusion_proof_json

    with open_ledger(data_dir) as ledger:
        if size is None:
            checkpoint = ledger.checkpoint()
            size = 0 if checkpoint is None else checkpoint.size
        _check_range(0 <= index < size, f"index must be in [0, {size})")
        _print_json(inclusion_proof_json(index, ledger.inclusion_proof(index, size), tree_size=size))


@log_app.command("prove-consistency")
@cli_errors
def prove_consistency(size1: int, size2: int, data_dir: DataDir = None) -> None:
    """Print the RFC 6962 consistency proof between tree sizes SIZE1 and SIZE2."""
    from ledger.log.proof_json import consistency_proof_json

    with open_ledger(data_dir) as ledger:
        _check_range(0 < size1 <= size2 <= ledger.log_size(), "need 0 < SIZE1 <= SIZE2 <= log size")
        _print_json(consistency_proof_json(ledger.consistency_proof(size1, size2), first=size1, second=size2))


def _check_range(ok: bool, message: str) -> None:
    if not ok:
        raise MalformedInputError(message, code="BAD_ARGUMENT")


@log_app.command("entry")
@cli_errors
def log_entry(
    index: int,
    out: Annotated[Path | None, typer.Option(help="write the leaf bytes here instead of stdout")] = None,
    data_dir: DataDir = None,
) -> None:
    """Write the exact leaf bytes of entry INDEX."""
    with open_ledger(data_dir) as ledger:
        leaf = ledger.leaf(index)
    if out is not None:
        out.write_bytes(leaf)
    else:
        sys.stdout.buffer.write(leaf)
        sys.stdout.buffer.flush()


# -- checking offline ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class _LogTrust:
    """The log key for a checkpoint's origin: from --vkey, else from the pin file, else none."""

    checkpoint: Any  # note.Checkpoint, parsed but not yet verified
    key: Any  # note.VerifierKey | None
    pin: Any  # trust.LogPin | None
    pins: Any  # trust.PinFile | None
    suffix: str  # says where a pinned key came from, when not from --vkey

    def unpinned(self, what: str, allow_unpinned: bool) -> NoReturn:
        """Print the UNPINNED verdict of a check done without the log key; exit 3 (0 if allowed)."""
        origin = self.checkpoint.origin
        where = "no pin file" if self.pins is None else f"the pin file {self.pins.path} has no entry for it"
        typer.echo(
            f"UNPINNED: {what}; the log signature was not checked: no log key is pinned for {origin}"
            f" ({where}). Give --vkey, or pin it: evidence-ledger trust pin --origin {origin} --vkey KEY"
        )
        raise typer.Exit(0 if allow_unpinned else 3)


def _log_trust(note_bytes: bytes, vkey: str | None, trust: Path | None) -> _LogTrust:
    from ledger.log import note

    checkpoint = note.parse_checkpoint_body(note.open_note(note_bytes)[0])
    pins = load_pin_file(trust)
    pin = None if pins is None else pins.get(checkpoint.origin)
    if vkey is not None:
        return _LogTrust(checkpoint, _verifier_key(vkey), pin, pins, "")
    if pin is not None:
        return _LogTrust(checkpoint, pin.vkey, pin, pins, f" (log key pinned in {pins.path})")
    return _LogTrust(checkpoint, None, None, pins, "")


def _witness_policy(
    trust: _LogTrust, witnesses: list[str] | None, min_witnesses: int | None
) -> tuple[list[Any], int | None]:
    """--witness/--min-witnesses, else the pinned witnesses and their minimum."""
    if witnesses:
        return [_verifier_key(w) for w in witnesses], min_witnesses
    pinned = [] if trust.pin is None else list(trust.pin.witnesses)
    if min_witnesses is None and trust.pin is not None:
        min_witnesses = trust.pin.min_witnesses
    return pinned, min_witnesses


@log_app.command("verify-checkpoint")
@_verify_errors
def verify_checkpoint(
    file: Path,
    vkey: VKey = None,
    witness: Witness = None,
    min_witnesses: MinWitnesses = None,
    trust: TrustFile = None,
    allow_unpinned: AllowUnpinned = False,
) -> None:
    """Check a checkpoint's log signature and witness cosignatures (exit 3 if no log key is pinned)."""
    from ledger.log import note

    raw = _read(file, "checkpoint")
    anchor = _log_trust(raw, vkey, trust)
    cp = anchor.checkpoint
    witnesses, required = _witness_policy(anchor, witness, min_witnesses)
    if anchor.key is None:
        skipped = "; witness cosignatures were not checked either" if witness else ""
        anchor.unpinned(f"the checkpoint of {cp.origin} at size {cp.size} parses{skipped}", allow_unpinned)
    verified = note.verify_checkpoint(raw, anchor.key, witnesses, required)
    names = ", ".join(c.name for c in verified.cosignatures) or "none"
    typer.echo(
        f"verified: {verified.checkpoint.origin} size {verified.checkpoint.size}; cosigned by {names}{anchor.suffix}"
    )


@log_app.command("verify-inclusion")
@_verify_errors
def verify_inclusion(
    checkpoint: Annotated[Path, typer.Option(help="signed checkpoint file")],
    leaf: Annotated[Path, typer.Option(help="exact leaf bytes (opaque)")],
    proof: Annotated[Path, typer.Option(help="inclusion proof JSON")],
    vkey: VKey = None,
    trust: TrustFile = None,
    allow_unpinned: AllowUnpinned = False,
) -> None:
    """Check that LEAF is in the tree the checkpoint signs (exit 3 if no log key is pinned)."""
    from ledger.log import merkle, note
    from ledger.log.proof_json import parse_inclusion_proof

    raw = _read(checkpoint, "checkpoint")
    anchor = _log_trust(raw, vkey, trust)
    if anchor.key is not None:
        note.verify_checkpoint(raw, anchor.key)
    cp = anchor.checkpoint
    index, path = parse_inclusion_proof(_read(proof, "proof"), tree_size=cp.size)
    merkle.verify_inclusion(merkle.leaf_hash(_read(leaf, "leaf")), index, cp.size, path, cp.root)
    if anchor.key is None:
        anchor.unpinned(
            f"leaf {index} leads to the root that the checkpoint of {cp.origin} at size {cp.size} states",
            allow_unpinned,
        )
    typer.echo(f"verified: leaf {index} is in {cp.origin} at size {cp.size}{anchor.suffix}")


@log_app.command("verify-consistency")
@_verify_errors
def verify_consistency(
    old: Annotated[Path, typer.Option(help="older signed checkpoint")],
    new: Annotated[Path, typer.Option(help="newer signed checkpoint")],
    proof: Annotated[Path, typer.Option(help="consistency proof JSON")],
    vkey: VKey = None,
    trust: TrustFile = None,
    allow_unpinned: AllowUnpinned = False,
) -> None:
    """Check that the newer checkpoint's tree extends the older one's (exit 3 if no log key is pinned)."""
    from ledger.log import merkle, note
    from ledger.log.proof_json import parse_consistency_proof

    old_raw, new_raw = _read(old, "old checkpoint"), _read(new, "new checkpoint")
    anchor = _log_trust(old_raw, vkey, trust)
    second = note.parse_checkpoint_body(note.open_note(new_raw)[0])
    if anchor.key is not None:
        note.verify_checkpoint(old_raw, anchor.key)
        note.verify_checkpoint(new_raw, anchor.key)
    first = anchor.checkpoint
    if first.origin != second.origin:
        raise VerificationError("checkpoints are from different origins", code="BAD_CHECKPOINT")
    path = parse_consistency_proof(_read(proof, "proof"), first=first.size, second=second.size)
    merkle.verify_consistency(first.size, second.size, path, first.root, second.root)
    if anchor.key is None:
        anchor.unpinned(
            f"the proof shows that the tree of size {second.size} extends the tree of size {first.size}"
            " as the two checkpoints state them",
            allow_unpinned,
        )
    typer.echo(f"verified: size {second.size} extends size {first.size}{anchor.suffix}")
