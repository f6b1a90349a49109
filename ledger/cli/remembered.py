"""The one check every command that talks to a server makes first: is the server's log the one this
client saw before?

:func:`check_log` fetches the server's latest checkpoint, verifies its signature under the log key
(``--vkey``, else the pin file's entry for the origin, else the key the server states, trusted on
first use and recorded), and compares it with the checkpoint this client remembers for the origin
(:class:`ledger.verify.CheckpointMemory`, in the client state directory): a smaller tree is a
``ROLLBACK``, another root for the same size or no valid consistency proof (an error status, a
malformed proof or one that fails; only no answer at all is exit 3) is an ``EQUIVOCATION``,
a changed unpinned key is ``KEY_CHANGED`` — each exit 1 before the command does its own work, with
both signed notes kept. A consistent larger tree (proved with ``GET /v1/log/proof/consistency``)
becomes the remembered one. There is deliberately no option to skip it; the state directory is
``$EVIDENCE_LEDGER_STATE_DIR`` (see ``ledger.verify.state_dir``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from domain.errors import MalformedInputError, NotFoundError, VerificationError

if TYPE_CHECKING:
    from ledger.client import RemoteLedger
    from ledger.log.note import VerifierKey
    from ledger.verify import CheckpointMemory, Observation


def client_memory() -> CheckpointMemory:
    """The memory in the client state directory; CONFIGURATION (exit 2) when there is none."""
    from ledger.verify import CheckpointMemory

    memory = CheckpointMemory.default()
    if memory is None:
        raise MalformedInputError(
            "there is no client state directory (no home directory): set EVIDENCE_LEDGER_STATE_DIR",
            code="CONFIGURATION",
        )
    return memory


def _log_key(remote: RemoteLedger, origin: str, vkey: Any) -> tuple[VerifierKey, bool]:
    """(key, pinned): ``vkey`` (a parsed key or its text), else the pin file's, else the server's (TOFU)."""
    from ledger.cli.verify import load_pin_file
    from ledger.log import note

    if vkey is not None:
        return (vkey if isinstance(vkey, note.VerifierKey) else note.parse_verifier_key(str(vkey))), True
    pins = load_pin_file(None)
    pin = None if pins is None else pins.get(origin)
    if pin is not None:
        return pin.vkey, True
    stated = note.parse_verifier_key(remote.log_key())
    if stated.type != note.SIG_TYPE_ED25519:
        raise VerificationError(
            f"the server states a key of type {stated.type:#04x} for {origin}, not a log key (type 0x01): its "
            "checkpoints cannot be checked; obtain the log's key independently and pin it (`evidence-ledger trust "
            "pin`, or --vkey)",
            code="BAD_CHECKPOINT",
        )
    return stated, False


def check_log(remote: RemoteLedger, vkey: Any = None) -> Observation | None:
    """Compare the server's latest checkpoint with the remembered one (see the module); None when the
    server has no checkpoint yet (nothing to compare). Raises VerificationError on a rollback, a fork,
    a changed key or a remembered checkpoint that no longer verifies."""
    from ledger.log.proof_json import parse_consistency_proof

    try:
        origin = remote.origin()
    except NotFoundError as exc:
        if exc.code == "NO_CHECKPOINT":
            return None
        raise
    key, pinned = _log_key(remote, origin, vkey)
    memory = client_memory()

    def proof(first: int, second: int) -> list[bytes]:
        return parse_consistency_proof(remote.consistency_proof(first, second), first=first, second=second)

    with memory.holding(origin):  # fetched under the lock: a concurrent command cannot overtake it
        raw = remote.checkpoint_note()
        return memory.observe(raw, key, proof, pinned=pinned, source=f"the server at {remote.transport.url('/v1/log/checkpoint')}")
