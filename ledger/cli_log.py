"""`evidence-ledger log …`: checkpoints and proofs, produced from a data dir or checked offline.

The ``verify-*`` commands need only public keys and files: they import no database driver and no
web framework. Exit codes: 0 verified, 1 verification failed, 2 unusable input or arguments.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from domain.errors import LedgerError, MalformedInputError, VerificationError
from ledger.cli import DataDir, app, cli_errors, fail, open_ledger

log_app = typer.Typer(no_args_is_help=True, help="Transparency log: checkpoints, proofs, offline checks.")
app.add_typer(log_app, name="log")

VKey = Annotated[str, typer.Option("--vkey", help="log verifier key: the key text or a file holding it")]
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
    from ledger import note

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
    from ledger.keys import load_private_key
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
    from ledger.witness_client import checkpoint_with_witnesses

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
    from ledger.merkle_json import inclusion_proof_json

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
    from ledger.merkle_json import consistency_proof_json

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


def _checkpoint(note_bytes: bytes, vkey: str, witnesses: list[str] | None, min_witnesses: int | None) -> Any:
    from ledger import note

    return note.verify_checkpoint(
        note_bytes, _verifier_key(vkey), [_verifier_key(w) for w in witnesses or []], min_witnesses
    )


@log_app.command("verify-checkpoint")
@_verify_errors
def verify_checkpoint(
    file: Path, vkey: VKey, witness: Witness = None, min_witnesses: MinWitnesses = None
) -> None:
    """Check a checkpoint's log signature and witness cosignatures."""
    verified = _checkpoint(_read(file, "checkpoint"), vkey, witness, min_witnesses)
    names = ", ".join(c.name for c in verified.cosignatures) or "none"
    typer.echo(f"verified: {verified.checkpoint.origin} size {verified.checkpoint.size}; cosigned by {names}")


@log_app.command("verify-inclusion")
@_verify_errors
def verify_inclusion(
    vkey: VKey,
    checkpoint: Annotated[Path, typer.Option(help="signed checkpoint file")],
    leaf: Annotated[Path, typer.Option(help="exact leaf bytes (opaque)")],
    proof: Annotated[Path, typer.Option(help="inclusion proof JSON")],
) -> None:
    """Check that LEAF is in the tree the checkpoint signs."""
    from ledger import merkle
    from ledger.merkle_json import parse_inclusion_proof

    verified = _checkpoint(_read(checkpoint, "checkpoint"), vkey, None, None)
    size = verified.checkpoint.size
    index, path = parse_inclusion_proof(_read(proof, "proof"), tree_size=size)
    merkle.verify_inclusion(
        merkle.leaf_hash(_read(leaf, "leaf")), index, size, path, verified.checkpoint.root
    )
    typer.echo(f"verified: leaf {index} is in {verified.checkpoint.origin} at size {size}")


@log_app.command("verify-consistency")
@_verify_errors
def verify_consistency(
    vkey: VKey,
    old: Annotated[Path, typer.Option(help="older signed checkpoint")],
    new: Annotated[Path, typer.Option(help="newer signed checkpoint")],
    proof: Annotated[Path, typer.Option(help="consistency proof JSON")],
) -> None:
    """Check that the newer checkpoint's tree extends the older one's."""
    from ledger import merkle
    from ledger.merkle_json import parse_consistency_proof

    first = _checkpoint(_read(old, "old checkpoint"), vkey, None, None).checkpoint
    second = _checkpoint(_read(new, "new checkpoint"), vkey, None, None).checkpoint
    if first.origin != second.origin:
        raise VerificationError("checkpoints are from different origins", code="BAD_CHECKPOINT")
    path = parse_consistency_proof(_read(proof, "proof"), first=first.size, second=second.size)
    merkle.verify_consistency(first.size, second.size, path, first.root, second.root)
    typer.echo(f"verified: size {second.size} extends size {first.size}")
