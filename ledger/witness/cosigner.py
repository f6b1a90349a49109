"""A C2SP tlog-witness: cosign a log's checkpoints only while they extend what it already cosigned.

The witness keeps, per log origin, the log's verifier key and the latest checkpoint it cosigned
(size, root, note). ``Witness.add_checkpoint`` is the whole protocol (c2sp.org/tlog-witness): it
checks the log signature, that ``old_size`` is the size the witness holds, and the consistency proof
from that size to the new one; then it persists the new state and only then returns a
cosignature/v1 line. Check and update happen under one lock (a thread lock plus ``flock`` on
``witness.lock``), reading ``state.json`` afresh each time, so two requests — even from two
processes — cannot both pass the check. Notes are kept (in the state and as evidence) with the
log's signature lines only: other signature lines are anyone's to add and vary.

Data dir (created by ``Witness.create``; mode 0700)::

    witness.json        {"version": 1, "name": NAME}
    keys/witness.pem    Ed25519 private key, PEM PKCS#8, mode 0600 (+ witness.pem.pub)
    state.json          {"version": 1, "last_timestamp": T, "logs": {ORIGIN: {"vkey", "size", "root",
                        "checkpoint"}}} — replaced atomically (temp file, fsync, rename, fsync dir)
    evidence/           one JSON file per distinct fork (a second root, signed by the log, at a size
                        the witness cosigned); at most MAX_EVIDENCE_FILES files, MAX_EVIDENCE_BYTES bytes
    witness.lock        the inter-process lock

Refusals raise ``WitnessError`` subclasses that ``ledger.witness_server`` maps to HTTP statuses:
malformed → 400, unknown origin → 404, bad log signature → 403, old size not the witness's size,
a checkpoint older than the cosigned one, or a fork → 409 (carrying the witness's size), bad
consistency proof → 422.

An older checkpoint is an ordinary conflict, whoever sends it and whatever its signatures: anyone
can replay a checkpoint the log once published, and without a proof nothing shows it inconsistent.
Only a fork is evidence. It is logged as a WARNING (logger ``ledger.witness``) when its file is
first written; a fork already on file, or one refused while the evidence store is full, is not.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from domain.errors import (
    AuthorizationError,
    ConflictError,
    LedgerError,
    MalformedInputError,
    NotFoundError,
    VerificationError,
)
from ledger.durable import write_atomic
from ledger.envelope.b64 import b64decode, b64encode
from ledger.envelope.keys import generate_key_pair, load_private_key
from ledger.log import merkle, note

CONFIG_FILE = "witness.json"
STATE_FILE = "state.json"
LOCK_FILE = "witness.lock"
EVIDENCE_DIR = "evidence"
KEY_FILE = Path("keys") / "witness.pem"
FORMAT_VERSION = 1
MAX_PROOF_HASHES = 64  # a consistency proof up to 2**63 leaves has at most 2 * 63 hashes; 64 is plenty here
MAX_EVIDENCE_FILES = 100  # entries in evidence/ beyond which no fork is recorded (still refused)
MAX_EVIDENCE_BYTES = 10 * 1024 * 1024  # total bytes in evidence/ likewise

logger = logging.getLogger("ledger.witness.cosigner")
_store_full_warned = threading.Event()  # one "evidence store full" warning per process, not per request


# --- errors -----------------------------------------------------------------------------------


class WitnessError(LedgerError):
    """Marker for witness refusals (every subclass also derives from a ``domain.errors`` class)."""


class WitnessConfigError(WitnessError):
    """The witness data dir is missing, damaged or would be overwritten."""

    code = "CONFIGURATION"


class WitnessMalformed(WitnessError, MalformedInputError):
    """The request cannot be parsed or is contradictory (HTTP 400)."""

    code = "WITNESS_BAD_REQUEST"


class WitnessUnknownLog(WitnessError, NotFoundError):
    """The checkpoint's origin is not a log this witness follows (HTTP 404)."""

    code = "WITNESS_UNKNOWN_LOG"


class WitnessForbidden(WitnessError, AuthorizationError):
    """The checkpoint is not signed by the log key the witness trusts for its origin (HTTP 403)."""

    code = "WITNESS_BAD_LOG_SIGNATURE"


class WitnessBadProof(WitnessError, VerificationError):
    """The consistency proof does not lead from the witness's root to the new one (HTTP 422)."""

    code = "WITNESS_BAD_PROOF"


class WitnessConflict(WitnessError, ConflictError):
    """``old_size`` is not the size the witness holds; ``latest_size`` is (HTTP 409, text/x.tlog.size)."""

    code = "WITNESS_CONFLICT"

    def __init__(self, message: str, *, latest_size: int, code: str | None = None, **refs: object) -> None:
        super().__init__(message, code=code, latest_size=latest_size, **refs)
        self.latest_size = latest_size


class WitnessFork(WitnessConflict):
    """Two different roots at the same size, both signed by the log key: equivocation, kept as evidence.

    ``evidence`` is the file that holds it (None when the evidence store was full); ``recorded`` says
    whether this request wrote that file.
    """

    code = "WITNESS_FORK"

    def __init__(self, message: str, *, latest_size: int, evidence: Path | None, recorded: bool) -> None:
        super().__init__(message, latest_size=latest_size)
        self.evidence = evidence
        self.recorded = recorded


# --- persisted state --------------------------------------------------------------------------


@dataclass(frozen=True)
class LogState:
    """What the witness holds for one log: its key and the latest checkpoint it cosigned."""

    vkey: str
    size: int = 0
    root: bytes | None = None
    checkpoint: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "vkey": self.vkey,
            "size": self.size,
            "root": None if self.root is None else b64encode(self.root),
            "checkpoint": self.checkpoint,
        }

    @staticmethod
    def from_json(data: Any) -> LogState:
        if not isinstance(data, dict) or set(data) != {"vkey", "size", "root", "checkpoint"}:
            raise WitnessConfigError("state.json: a log entry has keys vkey, size, root, checkpoint")
        size, root, checkpoint = data["size"], data["root"], data["checkpoint"]
        if isinstance(size, bool) or not isinstance(size, int) or not 0 <= size <= note.MAX_TREE_SIZE:
            raise WitnessConfigError("state.json: a log size is an int >= 0")
        if size > 0 and (root is None or checkpoint is None):
            raise WitnessConfigError("state.json: a log with size > 0 has a root and a checkpoint")
        try:
            note.parse_verifier_key(data["vkey"])
            raw_root = None if root is None else b64decode(root, what="state root")
        except MalformedInputError as exc:
            raise WitnessConfigError(f"state.json: {exc.message}") from None
        if raw_root is not None and len(raw_root) != merkle.HASH_SIZE:
            raise WitnessConfigError("state.json: a root is 32 bytes")
        if checkpoint is not None and not isinstance(checkpoint, str):
            raise WitnessConfigError("state.json: a checkpoint is a string")
        return LogState(data["vkey"], size, raw_root, checkpoint)


@dataclass(frozen=True)
class WitnessState:
    """Every log the witness follows, and the last cosignature time it used (never decreases)."""

    logs: dict[str, LogState] = field(default_factory=dict)
    last_timestamp: int = 0

    def to_bytes(self) -> bytes:
        payload = {
            "version": FORMAT_VERSION,
            "last_timestamp": self.last_timestamp,
            "logs": {origin: log.to_json() for origin, log in sorted(self.logs.items())},
        }
        return (json.dumps(payload, indent=2, ensure_ascii=False) + "\n").encode("utf-8")

    @staticmethod
    def from_bytes(raw: bytes) -> WitnessState:
        try:
            data = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            raise WitnessConfigError("state.json is not valid JSON") from None
        if not isinstance(data, dict) or data.get("version") != FORMAT_VERSION:
            raise WitnessConfigError(f"state.json must be a version {FORMAT_VERSION} object")
        logs, stamp = data.get("logs"), data.get("last_timestamp")
        if not isinstance(logs, dict) or isinstance(stamp, bool) or not isinstance(stamp, int) or stamp < 0:
            raise WitnessConfigError("state.json needs logs (object) and last_timestamp (int >= 0)")
        return WitnessState({str(k): LogState.from_json(v) for k, v in logs.items()}, stamp)


# --- helpers ----------------------------------------------------------------------------------


def parse_log_key(vkey: str) -> note.VerifierKey:
    key = note.parse_verifier_key(vkey.strip() if isinstance(vkey, str) else vkey)
    if key.type != note.SIG_TYPE_ED25519:
        raise MalformedInputError("a log verifier key is an Ed25519 (type 0x01) key", code="BAD_KEY")
    return key


def _require_origin(origin: object) -> str:
    if not isinstance(origin, str) or not origin or not origin.isprintable():
        raise MalformedInputError("a log origin is one non-empty line of printable text", code="BAD_ARGUMENT")
    return origin


def _timestamp(now: float | datetime) -> int:
    seconds = now.timestamp() if isinstance(now, datetime) else now
    return min(max(int(seconds), 0), note.MAX_TIMESTAMP)


def _check_request(old_size: object, proof: Sequence[object]) -> list[bytes]:
    if isinstance(old_size, bool) or not isinstance(old_size, int) or not 0 <= old_size <= note.MAX_TREE_SIZE:
        raise WitnessMalformed(f"old size must be an int in [0, 2**63-1], found {old_size!r}")
    if len(proof) > MAX_PROOF_HASHES:
        raise WitnessMalformed(f"a consistency proof has at most {MAX_PROOF_HASHES} hashes")
    if not all(isinstance(h, bytes) and len(h) == merkle.HASH_SIZE for h in proof):
        raise WitnessMalformed("every consistency proof hash is 32 bytes")
    return list(proof)  # type: ignore[arg-type]


def _log_signed_note(body: bytes, lines: Sequence[note.SignatureLine], key: note.VerifierKey) -> bytes:
    """``body`` with only the signature lines of ``key`` (each once, sorted): a note's identity.

    Other lines (cosignatures, anything) are dropped: anyone can add, vary or repeat them.
    """
    mine = sorted({line.encode() for line in lines if key.matches(line)})
    return body + b"\n" + b"".join(mine)


# --- the witness ------------------------------------------------------------------------------


class Witness:
    """One witness identity (name + Ed25519 key) over one data dir. Thread-safe and process-safe."""

    max_evidence_files = MAX_EVIDENCE_FILES
    max_evidence_bytes = MAX_EVIDENCE_BYTES

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = Path(data_dir)
        try:
            config = json.loads((self.data_dir / CONFIG_FILE).read_text("utf-8"))
        except FileNotFoundError:
            raise WitnessConfigError(
                f"{self.data_dir} is not a witness data dir (run `witness init`)"
            ) from None
        except (OSError, ValueError) as exc:
            raise WitnessConfigError(f"cannot read {CONFIG_FILE}: {exc}") from None
        if not isinstance(config, dict) or config.get("version") != FORMAT_VERSION:
            raise WitnessConfigError(f"{CONFIG_FILE} must be a version {FORMAT_VERSION} object")
        if not isinstance(config.get("name"), str):
            raise WitnessConfigError(f"{CONFIG_FILE} names no witness")
        self._key: Ed25519PrivateKey = load_private_key(self.data_dir / KEY_FILE)
        self.verifier_key = note.make_verifier_key(
            config["name"], self._key.public_key(), note.SIG_TYPE_COSIGNATURE_V1
        )
        self._thread_lock = threading.Lock()

    @property
    def name(self) -> str:
        return self.verifier_key.name

    @classmethod
    def create(cls, data_dir: Path, name: str, log_vkey: str, *, origin: str | None = None) -> Witness:
        """Create the key (0600), the config and the state trusting one log; refuse to overwrite."""
        data_dir = Path(data_dir)
        if (data_dir / CONFIG_FILE).exists() or (data_dir / STATE_FILE).exists():
            raise WitnessConfigError(f"{data_dir} already holds a witness; refusing to overwrite its state")
        log_key = parse_log_key(log_vkey)
        origin = _require_origin(log_key.name if origin is None else origin)
        probe = Ed25519PrivateKey.generate()  # validates the name before anything is written
        note.make_verifier_key(name, probe.public_key(), note.SIG_TYPE_COSIGNATURE_V1)
        data_dir.mkdir(parents=True, exist_ok=True)
        os.chmod(data_dir, 0o700)
        key_file = data_dir / KEY_FILE
        if not key_file.exists():  # a previous init may have stopped after creating the key
            generate_key_pair(key_file)
        (data_dir / EVIDENCE_DIR).mkdir(exist_ok=True)
        state = WitnessState({origin: LogState(str(log_key))})
        write_atomic(data_dir / STATE_FILE, state.to_bytes())
        config = {"version": FORMAT_VERSION, "name": name}
        write_atomic(data_dir / CONFIG_FILE, (json.dumps(config, indent=2) + "\n").encode("utf-8"))
        return cls(data_dir)

    # -- state under the lock -----------------------------------------------------------------

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        with self._thread_lock:
            fd = os.open(self.data_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                yield
            finally:
                os.close(fd)  # closing the descriptor releases the flock

    def _load(self) -> WitnessState:
        try:
            raw = (self.data_dir / STATE_FILE).read_bytes()
        except FileNotFoundError:
            raise WitnessConfigError(f"{STATE_FILE} is missing from {self.data_dir}") from None
        return WitnessState.from_bytes(raw)

    def _save(self, state: WitnessState) -> None:
        write_atomic(self.data_dir / STATE_FILE, state.to_bytes())

    def state(self) -> WitnessState:
        with self._locked():
            return self._load()

    def add_log(self, vkey: str, *, origin: str | None = None) -> str:
        """Trust one more log (idempotent); refuse another key for an origin already followed."""
        log_key = parse_log_key(vkey)
        origin = _require_origin(log_key.name if origin is None else origin)
        with self._locked():
            state = self._load()
            known = state.logs.get(origin)
            if known is not None:
                if known.vkey != str(log_key):
                    raise WitnessConfigError(
                        f"origin {origin!r} is already followed with another key; key rotation is not supported"
                    )
                return origin
            self._save(replace(state, logs={**state.logs, origin: LogState(str(log_key))}))
        return origin

    # -- the protocol -------------------------------------------------------------------------

    def add_checkpoint(
        self, old_size: int, proof: Sequence[bytes], note_bytes: bytes, *, now: float | datetime
    ) -> bytes:
        """Cosign ``note_bytes`` if it extends the witness's state; the state is persisted first.

        Returns one cosignature/v1 signature line (ending in LF). Raises a ``WitnessError``.
        """
        hashes = _check_request(old_size, proof)
        try:
            body, lines = note.open_note(note_bytes)
            checkpoint = note.parse_checkpoint_body(body)
        except MalformedInputError as exc:
            raise WitnessMalformed(f"checkpoint note: {exc.message}") from None
        with self._locked():
            state = self._load()
            log = state.logs.get(checkpoint.origin)
            if log is None:
                raise WitnessUnknownLog("this witness does not follow the checkpoint's origin")
            log_key = note.parse_verifier_key(log.vkey)
            self._verify_signature(note_bytes, log_key, checkpoint.origin)  # c2sp: 403 before anything else
            if checkpoint.size < log.size:  # a replay of an old checkpoint, or a rollback: not evidence
                raise WitnessConflict(
                    f"checkpoint size {checkpoint.size} is older than the cosigned size {log.size}",
                    latest_size=log.size,
                    code="WITNESS_OLD_CHECKPOINT",
                )
            signed = _log_signed_note(body, lines, log_key)
            self._check_extends(log, log_key, checkpoint, old_size, hashes, signed, now)
            timestamp = max(_timestamp(now), state.last_timestamp)
            line = note.cosign(body, self.name, self._key, timestamp)
            updated = LogState(log.vkey, checkpoint.size, checkpoint.root, signed.decode("utf-8"))
            self._save(WitnessState({**state.logs, checkpoint.origin: updated}, timestamp))
        return line

    @staticmethod
    def _verify_signature(note_bytes: bytes, log_key: note.VerifierKey, origin: str) -> None:
        try:
            note.verify_checkpoint(note_bytes, log_key, origin=origin)
        except (VerificationError, MalformedInputError):
            raise WitnessForbidden(
                "the checkpoint is not signed by the log key this witness trusts"
            ) from None

    def _check_extends(
        self,
        log: LogState,
        log_key: note.VerifierKey,
        checkpoint: note.Checkpoint,
        old_size: int,
        proof: list[bytes],
        signed: bytes,
        now: float | datetime,
    ) -> None:
        """Raise unless ``checkpoint`` (not older than the witness's latest) extends or equals it.

        ``signed`` is the checkpoint note with only the log's (verified) signature lines.
        """
        if checkpoint.size == log.size and log.root is not None and checkpoint.root != log.root:
            path, recorded = self._keep_fork(log, log_key, checkpoint, signed, now)
            raise WitnessFork(
                f"refusing a fork: a different root at cosigned size {log.size}",
                latest_size=log.size,
                evidence=path,
                recorded=recorded,
            )
        if old_size > checkpoint.size:
            raise WitnessMalformed(f"old size {old_size} exceeds the checkpoint size {checkpoint.size}")
        if old_size != log.size:
            raise WitnessConflict(
                f"old size {old_size} is not the witness's size {log.size}", latest_size=log.size
            )
        if checkpoint.size == log.size:
            current = merkle.EMPTY_ROOT if log.root is None else log.root
            if checkpoint.root != current or proof:
                raise WitnessBadProof(
                    "a checkpoint of the witness's own size needs its root and an empty proof"
                )
            return
        if old_size == 0:
            if proof:
                raise WitnessBadProof("the first checkpoint of a log (old size 0) takes an empty proof")
            return
        assert log.root is not None
        try:
            merkle.verify_consistency(old_size, checkpoint.size, proof, log.root, checkpoint.root)
        except (VerificationError, MalformedInputError) as exc:
            raise WitnessBadProof(f"consistency proof: {exc.message}") from None

    def _keep_fork(
        self,
        log: LogState,
        log_key: note.VerifierKey,
        checkpoint: note.Checkpoint,
        signed: bytes,
        now: float | datetime,
    ) -> tuple[Path | None, bool]:
        """Write a fork (once per distinct log-signed note) beside the cosigned checkpoint, within bounds.

        Returns (the evidence file or None if the store is full, whether this call wrote it).
        """
        directory = self.data_dir / EVIDENCE_DIR
        directory.mkdir(mode=0o700, exist_ok=True)
        path = directory / f"fork-{checkpoint.size}-{hashlib.sha256(signed).hexdigest()[:32]}.json"
        if path.exists():
            return path, False
        cosigned = log.checkpoint
        if cosigned is not None:  # a state written by an earlier version holds the note as it was sent
            with contextlib.suppress(MalformedInputError):
                cosigned = _log_signed_note(*note.open_note(cosigned.encode("utf-8")), log_key).decode("utf-8")
        record = {
            "kind": "fork",
            "witness": self.name,
            "origin": checkpoint.origin,
            "log_vkey": log.vkey,
            "recorded_at": _timestamp(now),
            "cosigned": {"size": log.size, "root": b64encode(log.root or b""), "checkpoint": cosigned},
            "refused": {
                "size": checkpoint.size,
                "root": b64encode(checkpoint.root),
                "checkpoint": signed.decode("utf-8"),
            },
        }
        data = (json.dumps(record, indent=2, ensure_ascii=False) + "\n").encode("utf-8")
        files, used = self._evidence_usage(directory)
        if files >= self.max_evidence_files or used + len(data) > self.max_evidence_bytes:
            if not _store_full_warned.is_set():
                _store_full_warned.set()
                logger.warning(
                    "evidence store %s is full (%d files, %d bytes; limits %d files, %d bytes): forks are"
                    " still refused but no longer recorded; move the files elsewhere to record more",
                    directory, files, used, self.max_evidence_files, self.max_evidence_bytes,
                )
            return None, False
        write_atomic(path, data)
        _store_full_warned.clear()  # warn again if the store fills up again after being emptied
        logger.warning(
            "fork of %s at size %d refused: a second root signed by the log key; evidence kept in %s",
            checkpoint.origin, checkpoint.size, path,
        )
        return path, True

    @staticmethod
    def _evidence_usage(directory: Path) -> tuple[int, int]:
        """(entries, total bytes of the files) in the evidence directory."""
        files = used = 0
        with os.scandir(directory) as entries:
            for entry in entries:
                files += 1
                with contextlib.suppress(OSError):  # removed meanwhile by an operator
                    if entry.is_file(follow_symlinks=False):
                        used += entry.stat(follow_symlinks=False).st_size
        return files, used


__all__ = [
    "MAX_EVIDENCE_BYTES",
    "MAX_EVIDENCE_FILES",
    "LogState",
    "Witness",
    "WitnessBadProof",
    "WitnessConfigError",
    "WitnessConflict",
    "WitnessError",
    "WitnessForbidden",
    "WitnessFork",
    "WitnessMalformed",
    "WitnessState",
    "WitnessUnknownLog",
    "write_atomic",
]
