"""What a client remembers of each log: the newest checkpoint it verified, checked against every later one.

Like Go's checksum-database client (``golang.org/x/mod/sumdb``), a client keeps, per log origin, the
signed note of the newest checkpoint it has verified (``logs/<origin>/latest`` in the client state
directory, :mod:`ledger.verify.state_dir`) and compares every checkpoint it is shown later with it:

- nothing remembered: the checkpoint is remembered;
- a smaller tree than remembered: ``ROLLBACK`` (for a server's latest checkpoint), or, for an older
  bundle (``older_ok``), a prefix that must be proven with a consistency proof when one is available;
- the same size with another root: ``EQUIVOCATION`` (a fork);
- a larger tree: the RFC 6962 consistency proof from the remembered tree must verify (else
  ``EQUIVOCATION``: a server that answers but does not prove the consistency of checkpoints it signed
  — an error status, a malformed proof, a proof that fails — is showing two histories; only no
  answer at all, ``SERVER_UNREACHABLE``, leaves the question open, exit 3), and then the larger checkpoint replaces ``latest``; without a proof (offline)
  nothing is advanced and the outcome says consistency was not proven.

A rollback or a fork keeps both notes under ``conflicts/<UTC stamp>-<code>/`` (``remembered.txt``,
``presented.txt``, ``conflict.json``) and raises :class:`domain.errors.VerificationError` naming
both sizes, that directory and what to do next. A remembered note that no longer verifies under the
log key is its own error (``REMEMBERED_CHECKPOINT_INVALID``): it is never silently overwritten.

Without a pinned log key the first key seen is recorded beside ``latest`` (``vkey``: trust on first
use) and a later different key is refused (``KEY_CHANGED``). Updates are atomic (temp file, fsync,
rename) under an ``fcntl`` lock per origin, so two processes never tear or regress the file; the
files are 0600 in 0700 directories.

Standard library and ``ledger.log`` (notes, Merkle proofs) only: the offline verifier imports it.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from domain.errors import LedgerError, MalformedInputError, VerificationError
from ledger.durable import write_atomic
from ledger.log import merkle, note
from ledger.verify.state_dir import origin_dir, state_dir

LATEST, VKEY, CONFLICTS, LOCK = "latest", "vkey", "conflicts", ".lock"
ROLLBACK, EQUIVOCATION, KEY_CHANGED = "ROLLBACK", "EQUIVOCATION", "KEY_CHANGED"
REMEMBERED_INVALID = "REMEMBERED_CHECKPOINT_INVALID"
FILE_MODE, DIR_MODE = 0o600, 0o700
MAX_NOTE = 1 << 16

#: outcomes of :meth:`CheckpointMemory.observe`
FIRST = "first"  # nothing was remembered: remembered now
SAME = "same"  # the remembered checkpoint (same size, same root)
ADVANCED = "advanced"  # larger, proven consistent: remembered now
UNPROVEN = "unproven"  # larger, no proof available: not remembered
OLDER_PROVEN = "older-proven"  # smaller, proven a prefix of the remembered tree (older_ok)
OLDER_UNPROVEN = "older-unproven"  # smaller, no proof available (older_ok)

#: consistency proof between two tree sizes (first, second) as a list of hashes. It raises a
#: LedgerError coded SERVER_UNREACHABLE when no answer came (nothing was shown: the error propagates,
#: exit 3) or BAD_ARGUMENT when it is not the server of this log; any other failure to produce a
#: proof that verifies (an error status, a malformed or oversized answer) is EQUIVOCATION.
ProofSource = Callable[[int, int], list[bytes]]
NOT_ASKED = frozenset({"SERVER_UNREACHABLE", "BAD_ARGUMENT"})


@dataclass(frozen=True)
class Observation:
    """What comparing a checkpoint with the memory found; ``remembered_size`` is after the comparison's
    start (None: nothing was remembered)."""

    status: str
    origin: str
    size: int
    root: bytes
    remembered_size: int | None
    latest: Path

    @property
    def advanced(self) -> bool:
        return self.status in (FIRST, ADVANCED)

    def describe(self) -> str:
        """One sentence for a report."""
        n = self.remembered_size
        return {
            FIRST: f"nothing was remembered for {self.origin}: checkpoint {self.size} is remembered now",
            SAME: f"the same as the remembered checkpoint {self.size}",
            ADVANCED: f"consistent with the remembered checkpoint {n} (proof checked): checkpoint {self.size} "
            "is remembered now",
            UNPROVEN: f"consistency with remembered checkpoint {n} not proven offline (pass --server to "
            f"prove it); the memory keeps checkpoint {n}",
            OLDER_PROVEN: f"an older checkpoint: proven a prefix of the remembered checkpoint {n}",
            OLDER_UNPROVEN: f"an older checkpoint than the remembered {n}: that it is a prefix was not "
            "proven offline (pass --server to prove it)",
        }[self.status]

    def to_json(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "origin": self.origin,
            "size": self.size,
            "root": self.root.hex(),
            "remembered_size": self.remembered_size,
            "latest": str(self.latest),
            "detail": self.describe(),
        }


def _mkdir(path: Path) -> None:
    path.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)


def _stamp() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%S.%fZ")


def _b64(value: bytes) -> str:
    return base64.b64encode(value).decode("ascii")


class CheckpointMemory:
    """The per-origin memory under ``root`` (the client state directory)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self._held: dict[str, int] = {}

    @classmethod
    def default(cls) -> CheckpointMemory | None:
        """The memory in the client state directory (``$EVIDENCE_LEDGER_STATE_DIR``, else the XDG state
        directory); None when there is no home directory to put it in."""
        root = state_dir()
        return None if root is None else cls(root)

    def directory(self, origin: str) -> Path:
        return origin_dir(self.root, origin)

    # --- locking ---------------------------------------------------------------------------------

    @contextlib.contextmanager
    def holding(self, origin: str) -> Iterator[None]:
        """Hold the origin's lock (``fcntl.flock``, exclusive): for fetching a checkpoint and comparing it
        in one step, so that a concurrent process cannot remember a newer one in between. Reentrant."""
        if origin in self._held:
            self._held[origin] += 1
            try:
                yield
            finally:
                self._held[origin] -= 1
            return
        directory = self.directory(origin)
        _mkdir(directory)
        fd = os.open(directory / LOCK, os.O_RDWR | os.O_CREAT, FILE_MODE)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            self._held[origin] = 1
            try:
                yield
            finally:
                del self._held[origin]
        finally:
            os.close(fd)  # closing the descriptor releases the lock

    # --- what is remembered ----------------------------------------------------------------------

    def latest(self, origin: str) -> bytes | None:
        """The remembered note for ``origin`` (unverified bytes), or None."""
        try:
            with open(self.directory(origin) / LATEST, "rb") as handle:
                return handle.read(MAX_NOTE + 1)
        except FileNotFoundError:
            return None

    def _remembered(self, origin: str, key: note.VerifierKey) -> tuple[bytes, note.Checkpoint] | None:
        raw = self.latest(origin)
        if raw is None:
            return None
        path = self.directory(origin) / LATEST
        try:
            if len(raw) > MAX_NOTE:
                raise MalformedInputError(f"it is larger than {MAX_NOTE} bytes")
            checkpoint = note.verify_checkpoint(raw, key, [], 0, origin=origin).checkpoint
        except (VerificationError, MalformedInputError) as exc:
            raise VerificationError(
                f"the remembered checkpoint {path} does not verify under the log key "
                f"{key.name}+{key.key_id.hex()} ({exc.message}): it was edited, or the key is not the one it "
                "was verified with; inspect it, and move it away only if you know why it changed",
                code=REMEMBERED_INVALID,
                path=str(path),
            ) from None
        return raw, checkpoint

    def _check_key(self, origin: str, key: note.VerifierKey, pinned: bool) -> None:
        """Trust on first use when nothing pins the key: record it, refuse a different one later."""
        path = self.directory(origin) / VKEY
        try:
            recorded = path.read_text("utf-8").strip()
        except FileNotFoundError:
            write_atomic(path, f"{key}\n".encode(), FILE_MODE)
            return
        if recorded == str(key):
            return
        if pinned:  # an independently obtained key replaces the one first seen
            write_atomic(path, f"{key}\n".encode(), FILE_MODE)
            return
        raise VerificationError(
            f"the log {origin} now presents the key {key.name}+{key.key_id.hex()}, but the key first seen "
            f"was {recorded.rsplit('+', 1)[0]} (recorded in {path}); a changed log key is never accepted "
            "silently: obtain the log's key independently and pin it (`evidence-ledger trust pin`, or --vkey)",
            code=KEY_CHANGED,
            path=str(path),
        )

    def record_key(self, origin: str, key: note.VerifierKey) -> None:
        """Trust ``key`` on first use for ``origin`` (nothing pinned, nothing recorded yet): recorded in
        ``vkey``; KEY_CHANGED if another key is recorded already."""
        with self.holding(origin):
            self._check_key(origin, key, pinned=False)

    # --- comparing -------------------------------------------------------------------------------

    def observe(
        self,
        note_bytes: bytes,
        log_key: note.VerifierKey,
        consistency_proof: ProofSource | None = None,
        *,
        pinned: bool = True,
        older_ok: bool = False,
        source: str = "",
    ) -> Observation:
        """Compare the checkpoint ``note_bytes`` (its log signature verified here under ``log_key``) with
        the memory of its origin and remember it if it is the first or a proven newer one. ``pinned``:
        the key was obtained independently (else trust on first use). ``older_ok``: a smaller tree is an
        older document (a bundle), not a rollback. ``source`` names where the checkpoint came from."""
        checkpoint = note.verify_checkpoint(note_bytes, log_key, [], 0).checkpoint
        origin = checkpoint.origin
        with self.holding(origin):
            self._check_key(origin, log_key, pinned)
            remembered = self._remembered(origin, log_key)
            latest = self.directory(origin) / LATEST

            def seen(status: str, size: int | None) -> Observation:
                return Observation(status, origin, checkpoint.size, checkpoint.root, size, latest)

            if remembered is None:
                write_atomic(latest, note_bytes, FILE_MODE)
                return seen(FIRST, None)
            old_raw, old = remembered
            if checkpoint.size == old.size:
                if checkpoint.root != old.root:
                    self._conflict(EQUIVOCATION, old_raw, old, note_bytes, checkpoint, source, None, "")
                return seen(SAME, old.size)
            if checkpoint.size < old.size:
                if not older_ok:
                    self._conflict(ROLLBACK, old_raw, old, note_bytes, checkpoint, source, None, "")
                if consistency_proof is None:
                    return seen(OLDER_UNPROVEN, old.size)
                self._prove(consistency_proof, checkpoint, old, old_raw, note_bytes, source, older=True)
                return seen(OLDER_PROVEN, old.size)
            if consistency_proof is None:
                return seen(UNPROVEN, old.size)
            self._prove(consistency_proof, old, checkpoint, old_raw, note_bytes, source, older=False)
            write_atomic(latest, note_bytes, FILE_MODE)
            return seen(ADVANCED, old.size)

    def _prove(
        self,
        source_of_proof: ProofSource,
        small: note.Checkpoint,
        large: note.Checkpoint,
        old_raw: bytes,
        new_raw: bytes,
        source: str,
        *,
        older: bool,
    ) -> None:
        """Raise EQUIVOCATION (keeping both notes) unless tree ``small`` is proven a prefix of ``large``."""
        remembered, presented = (large, small) if older else (small, large)
        proof: list[bytes] | None = None
        try:
            proof = source_of_proof(small.size, large.size)
            merkle.verify_consistency(small.size, large.size, proof, small.root, large.root)
        except LedgerError as exc:
            if exc.code in NOT_ASKED:  # no answer (or not this log's server): nothing was shown
                raise
            why = exc.message if proof is not None else f"the server gave no consistency proof: {exc.message}"
            self._conflict(EQUIVOCATION, old_raw, remembered, new_raw, presented, source, proof, why)

    def _conflict(
        self,
        code: str,
        old_raw: bytes,
        old: note.Checkpoint,
        new_raw: bytes,
        new: note.Checkpoint,
        source: str,
        proof: list[bytes] | None,
        why: str,
    ) -> None:
        where = self._keep(code, old_raw, old, new_raw, new, source, proof, why)
        shown = f" by {source}" if source else ""
        if code == ROLLBACK:
            what = (
                f"the log {old.origin} shows a tree of size {new.size}{shown}, smaller than the checkpoint of "
                f"size {old.size} already verified: a rollback"
            )
        elif not why:
            what = (
                f"the log {old.origin} shows a different root for the tree of size {new.size}{shown} than the "
                f"checkpoint of size {old.size} already verified: two histories (a fork)"
            )
        else:
            what = (
                f"no valid consistency proof between the remembered checkpoint of size {old.size} and the "
                f"checkpoint of size {new.size}{shown} of the log {old.origin} ({why}): two histories (a fork)"
            )
        raise VerificationError(
            f"{what}; both signed notes are kept in {where}: keep them as evidence and report them to the "
            "log's operator and its witnesses; do not trust this log until it is explained",
            code=code,
            remembered_size=old.size,
            presented_size=new.size,
            conflict=str(where),
        )

    def _keep(
        self,
        code: str,
        old_raw: bytes,
        old: note.Checkpoint,
        new_raw: bytes,
        new: note.Checkpoint,
        source: str,
        proof: list[bytes] | None,
        why: str,
    ) -> Path:
        base = self.directory(old.origin) / CONFLICTS
        _mkdir(base)
        stamp = _stamp()
        for n in range(1000):
            where = base / (f"{stamp}-{code}" if n == 0 else f"{stamp}-{n}-{code}")
            try:
                where.mkdir(mode=DIR_MODE)
                break
            except FileExistsError:
                continue
        else:
            raise OSError(f"cannot name a new conflict directory under {base}")
        write_atomic(where / "remembered.txt", old_raw, FILE_MODE)
        write_atomic(where / "presented.txt", new_raw, FILE_MODE)
        explanation = {
            "code": code,
            "origin": old.origin,
            "remembered": {"size": old.size, "root": _b64(old.root)},
            "presented": {"size": new.size, "root": _b64(new.root)},
            "presented_by": source or None,
            "consistency_proof": None if proof is None else [_b64(h) for h in proof],
            "proof_error": why or None,
            "seen_at": datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
        }
        write_atomic(where / "conflict.json", (json.dumps(explanation, indent=2) + "\n").encode(), FILE_MODE)
        return where


__all__ = [
    "ADVANCED",
    "EQUIVOCATION",
    "FIRST",
    "KEY_CHANGED",
    "OLDER_PROVEN",
    "OLDER_UNPROVEN",
    "REMEMBERED_INVALID",
    "ROLLBACK",
    "SAME",
    "UNPROVEN",
    "CheckpointMemory",
    "Observation",
    "ProofSource",
]
