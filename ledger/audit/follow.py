"""The continuous monitor (`evidence-ledger audit --follow`): verify every new entry and checkpoint.

Incremental, not a re-audit per poll. The monitor keeps a small persisted state (:class:`MonitorState`,
one JSON file written atomically) and, on each poll, reads only what is new:

1. the latest signed checkpoint (read first, so that the entries read next cover it);
2. the entries after the last one verified, page by page: each leaf must be rebuilt byte for byte
   from its envelope (``ledger.log.leaf``), each envelope must verify against the key registry as
   of its position and continue its case's chain (seq + 1, prev = hash of the previous envelope) —
   the shared engine (``ledger.verify.EntryChecker``) with the registry's own events applied and
   the case rules left to the one-shot audit; the leaf hashes are appended to the tree;
3. the checkpoint: signed by the trusted log key (``BAD_CHECKPOINT``); smaller than the last one
   verified: ``ROLLBACK``; the same size with another root: ``EQUIVOCATION``; larger: its root must
   be the root of every leaf seen up to its size (computed from the compact range kept at the last
   verified checkpoint and the leaf hashes since), which proves it consistent with everything
   verified before without a proof from the server. On a mismatch the source is asked for an RFC
   6962 consistency proof from the last verified checkpoint: if it verifies, the log is consistent
   and the entries served are what is wrong (``ROOT_MISMATCH``); if not, the log signed a tree that
   does not extend the one it showed (``EQUIVOCATION``, a fork); larger than the entries the
   source shows: ``TRUNCATED``; cosignatures short of the witness policy (after ``witness_grace``,
   witnesses cosign a moment after the log signs): ``WITNESS_POLICY``.

The state holds: the entries verified, the compact range (frontier) at the last verified checkpoint
and the leaf hashes after it, that checkpoint's note, each case's chain head (seq, envelope hash),
the registry's own entries (replayed into the engine on start: the registry is small), and the
findings already reported (each is reported once, not at every poll). Entries verified earlier are
not read again: rows edited after the monitor saw them are the one-shot audit's to find (the next
checkpoint's root still covers their leaves).

A source that cannot be reached (``SERVER_UNREACHABLE``, ``BAD_RESPONSE``, ``STORAGE_UNAVAILABLE``,
a 5xx) is not a finding: :func:`follow` retries with bounded backoff and keeps its state. A server
that refuses with 503 ``STATE_TAMPERED`` or ``ROLLBACK_DETECTED`` (its own integrity checks failed)
is a finding under the server's code.
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import httpx

from domain.errors import LedgerError, MalformedInputError, VerificationError
from ledger.audit.source import AuditInputError, LogItem, read_checkpoint, read_log_page
from ledger.durable import write_atomic
from ledger.envelope.dsse import REGISTRY_CASE_ID, UnverifiedEnvelope
from ledger.log import merkle, note, tlog
from ledger.log.leaf import leaf_bytes
from ledger.log.proof_json import parse_consistency_proof
from ledger.storage.sql import Database
from ledger.transport import Transport, error_from_response, problem_code
from ledger.verify import CaseTrack, Entry, EntryChecker, Finding

STATE_VERSION = 1
PAGE = 1000
MAX_BACKOFF = 60.0
REPORTED_KEEP = 1000  # findings remembered so that none is reported twice (oldest forgotten first)
#: a server's own integrity refusals (503): findings, not outages
SERVER_ALARMS = ("STATE_TAMPERED", "ROLLBACK_DETECTED")
UNAVAILABLE = ("SERVER_UNREACHABLE", "BAD_RESPONSE", "STORAGE_UNAVAILABLE")


class Unavailable(LedgerError):
    """The source did not answer (or answered 5xx): retry later, keep the state."""

    code = "SERVER_UNREACHABLE"


class ServerAlarm(LedgerError):
    """The server refused with one of its integrity codes (``SERVER_ALARMS``)."""


class StateFileError(LedgerError):
    """The monitor's state file cannot be used (exit 2)."""

    code = "UNUSABLE_INPUT"


def _b64(value: bytes) -> str:
    return base64.b64encode(value).decode("ascii")


def _unb64(value: Any) -> bytes:
    if not isinstance(value, str):
        raise ValueError("not base64 text")
    return base64.b64decode(value, validate=True)


def now_text() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


# --- sources ------------------------------------------------------------------------------------


class Source(Protocol):
    name: str

    def checkpoint(self, size: int | None = None) -> bytes | None: ...

    def entries(self, after: int | None, limit: int) -> list[LogItem]: ...

    def consistency(self, first: int, second: int) -> list[bytes] | None: ...


class ServerSource:
    """A running server, through its API: ``/v1/log/checkpoint``, ``/v1/log/checkpoints/{size}``,
    ``/v1/log/envelopes`` (bearer token of an auditor) and ``/v1/log/entries/{index}``."""

    def __init__(self, url: str, token: str, *, client: httpx.Client | None = None) -> None:
        self.name = f"server {url}"
        self.http = Transport(url, headers={"Authorization": f"Bearer {token}"}, client=client)

    def close(self) -> None:
        self.http.close()

    def _get(self, path: str, **params: Any) -> httpx.Response | None:
        """The 200 answer; None for a 404; raises Unavailable, ServerAlarm or AuditInputError."""
        try:
            response = self.http.request("GET", path, params=params or None)
        except LedgerError as exc:  # ServerUnreachable, BadResponse
            raise Unavailable(exc.message, code=exc.code) from None
        if response.status_code == 200:
            return response
        if response.status_code == 404:
            return None
        code = problem_code(response)
        if code in SERVER_ALARMS:
            raise ServerAlarm(error_from_response(response).message, code=code)
        if response.status_code >= 500:
            raise Unavailable(f"GET {path} answered {response.status_code} ({code or 'no code'})")
        refused = error_from_response(response)
        raise AuditInputError(
            f"GET {path} answered {response.status_code} ({refused.code}: {refused.message}); "
            "check --server and --token (an auditor's token)"
        )

    def checkpoint(self, size: int | None = None) -> bytes | None:
        response = self._get("/v1/log/checkpoint" if size is None else f"/v1/log/checkpoints/{size}")
        return None if response is None else response.content

    def entries(self, after: int | None, limit: int) -> list[LogItem]:
        params: dict[str, Any] = {"limit": min(limit, PAGE)}
        if after is not None:
            params["after"] = after
        response = self._get("/v1/log/envelopes", **params)
        data = None if response is None else _json(response)
        items = data.get("items") if isinstance(data, dict) else None
        if not isinstance(items, list) or not all(_item_ok(d) for d in items):
            raise AuditInputError(
                "GET /v1/log/envelopes did not return a page {items: [{leaf_index, case_id, seq, envelope, leaf}]}"
            )
        out = []
        for d in items:
            leaf = d.get("leaf")
            raw = leaf.encode("ascii") if isinstance(leaf, str) else self._leaf(d["leaf_index"])
            envelope = d.get("envelope")
            out.append(
                LogItem(d["leaf_index"], d["case_id"], d["seq"], None if envelope is None else envelope.encode(), raw)
            )
        return out

    def consistency(self, first: int, second: int) -> list[bytes] | None:
        """The server's RFC 6962 consistency proof between two sizes (None: none given, or unreadable)."""
        if first == 0:
            return []
        response = self._get("/v1/log/proof/consistency", first=first, second=second)
        if response is None:
            return None
        try:
            return parse_consistency_proof(response.content, first=first, second=second)
        except (MalformedInputError, VerificationError):
            return None

    def _leaf(self, index: int) -> bytes | None:
        """Exact leaf bytes that could not travel in the JSON page (not ASCII: a tampered row)."""
        response = self._get(f"/v1/log/entries/{index}")
        return None if response is None else response.content


def _json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _item_ok(d: Any) -> bool:
    return (
        isinstance(d, dict)
        and type(d.get("leaf_index")) is int
        and isinstance(d.get("case_id"), str)
        and type(d.get("seq")) is int
        and (d.get("envelope") is None or isinstance(d.get("envelope"), str))
        and (d.get("leaf") is None or isinstance(d.get("leaf"), str))
    )


class DatabaseSource:
    """The database, read through the audit's storage reader (``ledger.audit.source``)."""

    def __init__(self, db: Database, name: str = "database") -> None:
        self.db = db
        self.name = name

    def _read(self, fn: Callable[[], Any]) -> Any:
        try:
            return fn()
        except LedgerError as exc:
            if exc.code in UNAVAILABLE:
                raise Unavailable(exc.message, code=exc.code) from None
            raise

    def checkpoint(self, size: int | None = None) -> bytes | None:
        result: bytes | None = self._read(lambda: read_checkpoint(self.db, size))
        return result

    def entries(self, after: int | None, limit: int) -> list[LogItem]:
        result: list[LogItem] = self._read(lambda: read_log_page(self.db, after, limit))
        return result

    def consistency(self, first: int, second: int) -> list[bytes] | None:
        """The proof from the stored tree nodes (None when a node it needs is missing)."""
        if first == 0:
            return []

        def prove() -> list[bytes]:
            with self.db.read() as tx:
                return tlog.consistency_proof(tx, first, second)

        try:
            proof: list[bytes] = self._read(prove)
        except (KeyError, ValueError):
            return None
        return proof


# --- the state ----------------------------------------------------------------------------------


@dataclass
class MonitorState:
    """What the monitor has verified so far (persisted as JSON between polls and runs)."""

    origin: str
    log_key: str  # the verifier key the state was verified under
    size: int = 0  # entries verified: the next leaf index expected
    checkpoint: bytes | None = None  # the last verified checkpoint note
    checkpoint_size: int = 0
    checkpoint_root: bytes = merkle.EMPTY_ROOT
    frontier: dict[tuple[int, int], bytes] = field(default_factory=dict)  # at checkpoint_size
    tail: list[bytes] = field(default_factory=list)  # leaf hashes from checkpoint_size to size
    chains: dict[str, tuple[int, str | None]] = field(default_factory=dict)  # case -> (seq, head hash)
    registry: list[tuple[int, bytes, bytes | None]] = field(default_factory=list)  # (index, envelope, leaf)
    reported: list[str] = field(default_factory=list)
    pending_witness: dict[str, Any] | None = None  # {"size", "since"}: a checkpoint awaiting cosignatures

    def to_json(self) -> dict[str, Any]:
        return {
            "version": STATE_VERSION,
            "origin": self.origin,
            "log_key": self.log_key,
            "size": self.size,
            "checkpoint": None if self.checkpoint is None else self.checkpoint.decode("utf-8"),
            "checkpoint_size": self.checkpoint_size,
            "checkpoint_root": _b64(self.checkpoint_root),
            "frontier": [[lvl, idx, _b64(h)] for (lvl, idx), h in sorted(self.frontier.items())],
            "tail": [_b64(h) for h in self.tail],
            "chains": {c: [seq, head] for c, (seq, head) in sorted(self.chains.items())},
            "registry": [
                [i, _b64(env), None if leaf is None else _b64(leaf)] for i, env, leaf in self.registry
            ],
            "reported": self.reported,
            "pending_witness": self.pending_witness,
        }

    @classmethod
    def from_json(cls, data: Any) -> MonitorState:
        if not isinstance(data, dict) or data.get("version") != STATE_VERSION:
            raise ValueError(f"not a version-{STATE_VERSION} monitor state")
        state = cls(str(data["origin"]), str(data["log_key"]))
        state.size = _nat(data["size"])
        cp = data["checkpoint"]
        state.checkpoint = None if cp is None else str(cp).encode("utf-8")
        state.checkpoint_size = _nat(data["checkpoint_size"])
        state.checkpoint_root = _unb64(data["checkpoint_root"])
        state.frontier = {(_nat(lvl), _nat(idx)): _unb64(h) for lvl, idx, h in data["frontier"]}
        state.tail = [_unb64(h) for h in data["tail"]]
        state.chains = {
            str(c): (_nat(seq), None if head is None else str(head)) for c, (seq, head) in data["chains"].items()
        }
        state.registry = [
            (_nat(i), _unb64(env), None if leaf is None else _unb64(leaf)) for i, env, leaf in data["registry"]
        ]
        state.reported = [str(k) for k in data["reported"]]
        pending = data.get("pending_witness")
        state.pending_witness = pending if isinstance(pending, dict) else None
        # the tree must add up: the frontier describes checkpoint_size, the tail the rest
        tree = merkle.CompactRange(state.checkpoint_size, state.frontier)
        if tree.root() != state.checkpoint_root or state.checkpoint_size + len(state.tail) != state.size:
            raise ValueError("the kept tree does not add up (frontier, root and tail disagree)")
        return state


def _nat(value: Any) -> int:
    if type(value) is not int or value < 0:
        raise ValueError("a count or index is not a non-negative integer")
    return value


def load_state(path: Path, origin: str, log_key: str) -> MonitorState:
    """The state kept at ``path`` for this log, or a fresh one when there is none."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return MonitorState(origin, log_key)
    except OSError as exc:
        raise StateFileError(f"cannot read the monitor state {path}: {exc.strerror}") from None
    try:
        state = MonitorState.from_json(json.loads(raw))
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise StateFileError(
            f"the monitor state {path} is not usable ({exc}); move it away to start over (--state FILE)"
        ) from None
    if state.origin != origin or state.log_key != log_key:
        raise StateFileError(
            f"the monitor state {path} belongs to another log or log key; use another --state FILE"
        )
    return state


def save_state(path: Path, state: MonitorState, *, unless: bytes | None = None) -> bytes:
    """Write the state atomically (mode 0600); skipped when it serialises to ``unless`` (what was
    written last: a quiet poll costs no disk write). Returns what the file now holds."""
    data = json.dumps(state.to_json(), sort_keys=True).encode("utf-8") + b"\n"
    if data != unless:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, data, mode=0o600)
    return data


# --- the checks ---------------------------------------------------------------------------------


class _Checker(EntryChecker):
    """The engine's entry checks (form, leaf, chain, signer and signature against the registry as of
    the position) with only the registry's own events applied: the case rules (check 10) and the
    read models are the one-shot audit's. Keeps no per-entry history (it runs for months)."""

    def _apply(self, envelope: UnverifiedEnvelope, track: CaseTrack, result: Any, signer: Any) -> None:
        if envelope.statement.case_id == REGISTRY_CASE_ID:
            super()._apply(envelope, track, result, signer)
            track.events.clear()


@dataclass
class MonitorOptions:
    log_key: note.VerifierKey
    origin: str
    trust_root: str | None = None
    witnesses: list[note.VerifierKey] = field(default_factory=list)
    min_witnesses: int | None = None
    witness_grace: float = 60.0  # seconds a new checkpoint may wait for its cosignatures
    conflicts: Path | None = None  # where both notes of a ROLLBACK / EQUIVOCATION are kept


@dataclass
class PollResult:
    findings: list[dict[str, Any]] = field(default_factory=list)
    verified: int = 0  # entries verified in this poll
    size: int = 0
    checkpoint_size: int = 0


class Monitor:
    """One log's monitor: ``poll()`` reads what is new from ``source`` and returns the findings."""

    def __init__(self, source: Source, state: MonitorState, options: MonitorOptions,
                 clock: Callable[[], float] = time.time) -> None:
        self.source = source
        self.state = state
        self.options = options
        self.clock = clock
        self.checker = self._restore()
        self.unreported: list[dict[str, Any]] = []  # finding lines not yet handed out

    def drain(self) -> list[dict[str, Any]]:
        """The finding lines made since the last call (also those of a poll cut short by an outage)."""
        lines, self.unreported = self.unreported, []
        return lines

    def _restore(self) -> _Checker:
        checker = _Checker(origin=self.options.origin, trust_root=self.options.trust_root)
        for index, envelope, leaf in self.state.registry:
            checker.check(Entry(index, envelope, leaf))  # findings were reported when first seen
        checker.findings.clear()
        checker.checked.clear()
        checker.envelope_hashes.clear()
        for case_id, (seq, head) in self.state.chains.items():
            track = checker.cases.setdefault(case_id, CaseTrack())
            track.version, track.head = seq, head
        return checker

    # -- one poll ------------------------------------------------------------------------------

    def poll(self, stop: threading.Event | None = None) -> PollResult:
        result = PollResult()
        start = self.state.size
        try:
            latest = self.source.checkpoint()
            while stop is None or not stop.is_set():
                page = self.source.entries(self.state.size - 1 if self.state.size else None, PAGE)
                if not page or not self._entries(page, result):
                    break
            if latest is not None:
                self._checkpoint(latest, result)
            self._witness_pending(result)
            self._alarm_cleared()
        except ServerAlarm as exc:
            self._report(result, _finding(exc.code, 8, f"the server refuses to serve its log: {exc.message}",
                                          source=self.source.name), key=f"alarm:{exc.code}")
        result.verified = self.state.size - start
        return self._done(result)

    def _done(self, result: PollResult) -> PollResult:
        result.findings = self.drain()
        result.size, result.checkpoint_size = self.state.size, self.state.checkpoint_size
        return result

    def _alarm_cleared(self) -> None:
        self.state.reported = [k for k in self.state.reported if not k.startswith("alarm:")]

    def _report(self, result: PollResult, finding: Finding, *, key: str | None = None) -> None:
        if key is not None:
            if key in self.state.reported:
                return
            self.state.reported = [*self.state.reported, key][-REPORTED_KEEP:]
        line: dict[str, Any] = {"time": now_text(), "code": finding.code, "step": finding.step,
                                "message": finding.message}
        for name in ("leaf_index", "case_id", "seq"):
            if getattr(finding, name) is not None:
                line[name] = getattr(finding, name)
        if "size" in finding.evidence:
            line["size"] = finding.evidence["size"]
        if finding.evidence:
            line["evidence"] = finding.evidence
        self.unreported.append(line)

    # -- entries -------------------------------------------------------------------------------

    def _entries(self, page: list[LogItem], result: PollResult) -> bool:
        """Verify a page in order; False when the log cannot be followed further now (a gap, or a page
        with nothing new: a source that repeats itself is not read in a loop)."""
        before = self.state.size
        for item in page:
            if item.leaf_index < self.state.size:
                continue  # a source that repeats itself: nothing new here
            if item.leaf_index > self.state.size or item.leaf is None:
                missing = self.state.size
                what = "has no log entry (the index has a gap)" if item.leaf_index > missing else "has no leaf"
                self._report(result, Finding("MISSING_ENTRY", 6, f"leaf index {missing} {what}: the monitor "
                                             "waits at this position", missing), key=f"gap:{missing}")
                return False
            self._entry(item, result)
        return self.state.size > before

    def _entry(self, item: LogItem, result: PollResult) -> None:
        state, checker = self.state, self.checker
        assert item.leaf is not None
        if item.envelope is None:
            found = [Finding("MISSING_ENTRY", 6, "no stored event holds the envelope of this log entry "
                             "(event row deleted)", item.leaf_index, item.case_id, item.seq)]
        else:
            before = len(checker.findings)
            checked = checker.check(Entry(item.leaf_index, item.envelope, item.leaf))
            found = checker.findings[before:]
            if checked.integrated_at is not None and not any(f.code == "LEAF_MISMATCH" for f in found):
                rebuilt = leaf_bytes(hashlib.sha256(item.envelope).hexdigest(), item.leaf_index, checked.integrated_at)
                if rebuilt != item.leaf:
                    found.append(Finding("LEAF_MISMATCH", 5, "the leaf is not the bytes rebuilt from its envelope",
                                         item.leaf_index, checked.case_id, checked.seq))
            if checked.case_id == REGISTRY_CASE_ID:
                state.registry.append((item.leaf_index, item.envelope, item.leaf))
            if checked.case_id is not None:
                track = checker.cases[checked.case_id]
                state.chains[checked.case_id] = (track.version, track.head)
            checker.findings.clear()
            checker.checked.clear()
            checker.envelope_hashes.clear()
        for f in found:
            self._report(result, f)
        state.tail.append(merkle.leaf_hash(item.leaf))
        state.size += 1

    # -- checkpoints ---------------------------------------------------------------------------

    def _checkpoint(self, raw: bytes, result: PollResult) -> None:
        state, options = self.state, self.options
        try:
            verified = note.verify_checkpoint(raw, options.log_key, origin=options.origin).checkpoint
        except (VerificationError, MalformedInputError) as exc:
            digest = hashlib.sha256(raw).hexdigest()
            self._report(result, _finding("BAD_CHECKPOINT", 8, f"the latest checkpoint does not verify under the "
                                          f"trusted log key: {exc.code}: {exc.message}", source=self.source.name),
                         key=f"bad:{digest}")
            return
        size, root = verified.size, verified.root
        key = f"{size}:{_b64(root)}"
        if size < state.checkpoint_size:
            self._conflict(result, "ROLLBACK", raw, f"{state.checkpoint_size}",
                           f"the log shows a tree of {size} entries, smaller than the {state.checkpoint_size} "
                           "already verified: an older copy is being served",
                           size=size, verified_size=state.checkpoint_size, missing=state.checkpoint_size - size)
            return
        if size == state.checkpoint_size:
            if root != state.checkpoint_root and state.checkpoint is not None:
                self._conflict(result, "EQUIVOCATION", raw, key,
                               f"the log signed another root for size {size} than the one already verified",
                               size=size, verified_root=_b64(state.checkpoint_root), root=_b64(root))
                return
            if state.checkpoint is None:
                state.checkpoint = raw
            self._witnesses(raw, size, root, result)
            return
        if size > state.size:
            self._report(result, _finding("TRUNCATED", 7, f"the latest checkpoint covers {size} entries but the "
                                          f"source shows {state.size}: {size - state.size} entries are missing",
                                          size=size, log_size=state.size, missing=size - state.size),
                         key=f"truncated:{key}")
            return
        tree = merkle.CompactRange(state.checkpoint_size, state.frontier)
        for leaf in state.tail[: size - state.checkpoint_size]:
            tree.append(leaf)
        if tree.root() != root:
            if state.checkpoint is None or self._consistent(size, root):
                self._report(result, _finding("ROOT_MISMATCH", 7, f"the entries served do not give the signed root of "
                                              f"the checkpoint of size {size}, which "
                                              + ("is the first one seen" if state.checkpoint is None else
                                                 "does extend the tree already verified (consistency proof)")
                                              + ": the served entries were altered", size=size,
                                              signed_root=_b64(root), leaves_root=_b64(tree.root())),
                             key=f"root:{state.checkpoint_size}")
            else:
                self._conflict(result, "EQUIVOCATION", raw, f"{state.checkpoint_size}+",
                               f"the checkpoint of size {size} does not extend the tree already verified "
                               f"(size {state.checkpoint_size}): no valid consistency proof, the log forked",
                               size=size, verified_size=state.checkpoint_size, root=_b64(root),
                               leaves_root=_b64(tree.root()))
            return
        state.tail = state.tail[size - state.checkpoint_size :]
        state.frontier, state.checkpoint_size, state.checkpoint_root = tree.frontier, size, root
        state.checkpoint = raw
        self._witnesses(raw, size, root, result)

    def _consistent(self, size: int, root: bytes) -> bool:
        """Whether the source proves the tree of ``size`` (``root``) extends the one verified last."""
        state = self.state
        proof = self.source.consistency(state.checkpoint_size, size)
        if proof is None:
            return False
        try:
            merkle.verify_consistency(state.checkpoint_size, size, proof, state.checkpoint_root, root)
        except (VerificationError, MalformedInputError):
            return False
        return True

    def _conflict(self, result: PollResult, code: str, raw: bytes, key: str, message: str, **evidence: Any) -> None:
        if f"{code}:{key}" in self.state.reported:
            return
        kept = self._keep_notes(code, raw)
        if kept is not None:
            evidence["kept"] = kept
        self._report(result, _finding(code, 8, message, source=self.source.name, **evidence), key=f"{code}:{key}")

    def _keep_notes(self, code: str, served: bytes) -> str | None:
        """Both notes (the verified one and the one served) under ``conflicts/``, for the operator."""
        where = self.options.conflicts
        if where is None:
            return None
        where.mkdir(parents=True, exist_ok=True)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        base = where / f"{stamp}-{code}"
        write_atomic(base.with_name(base.name + "-verified.note"), self.state.checkpoint or b"")
        write_atomic(base.with_name(base.name + "-served.note"), served)
        return str(base) + "-{verified,served}.note"

    # -- witnesses -----------------------------------------------------------------------------

    def _policy_error(self, raw: bytes) -> VerificationError | MalformedInputError | None:
        options = self.options
        try:
            note.verify_checkpoint(raw, options.log_key, options.witnesses, options.min_witnesses,
                                   origin=options.origin)
        except (VerificationError, MalformedInputError) as exc:
            return exc
        return None

    def _witnesses(self, raw: bytes, size: int, root: bytes, result: PollResult) -> None:
        if not self.options.witnesses:
            return
        error = self._policy_error(raw)
        pending = self.state.pending_witness
        if error is None:
            if pending is not None and pending.get("size") == size:
                self.state.pending_witness = None
            return
        if pending is not None and pending.get("size") != size:
            self._judge_pending(result)  # superseded: judged now, on its own checkpoint
        if self.state.pending_witness is None:
            self.state.pending_witness = {"size": size, "root": _b64(root), "since": self.clock()}

    def _witness_pending(self, result: PollResult) -> None:
        pending = self.state.pending_witness
        if pending is None or self.clock() - float(pending.get("since", 0)) < self.options.witness_grace:
            return
        self._judge_pending(result)

    def _judge_pending(self, result: PollResult) -> None:
        """The pending checkpoint as the source shows it now (cosignatures may have come since)."""
        pending, self.state.pending_witness = self.state.pending_witness, None
        if pending is None:
            return
        size = int(pending["size"])
        raw = self.source.checkpoint(size)
        if raw is None and size == self.state.checkpoint_size:
            raw = self.state.checkpoint
        if raw is not None and self._other_root(raw, pending):
            self._conflict(result, "EQUIVOCATION", raw, f"witness:{size}",
                           f"the log serves for size {size} another checkpoint than the one verified (another "
                           "size or root): the tree the monitor was shown is not the one the witnesses were shown",
                           size=size, verified_root=pending.get("root"))
            return
        error = None if raw is None else self._policy_error(raw)
        if error is None:
            return
        code = error.code if error.code in ("BAD_COSIGNATURE", "BAD_CHECKPOINT") else "WITNESS_POLICY"
        if isinstance(error, MalformedInputError):
            code = "BAD_CHECKPOINT"
        self._report(result, _finding(code, 8, f"checkpoint of size {size}: {error.message}", size=size,
                                      source=self.source.name), key=f"witness:{size}")


    def _other_root(self, raw: bytes, pending: dict[str, Any]) -> bool:
        """Whether ``raw``, signed by the log, names another root for the pending size than the one the
        monitor verified, or is of another size (a state written before the root was kept has no root to
        compare)."""
        expected = pending.get("root")
        try:
            served = note.verify_checkpoint(raw, self.options.log_key, origin=self.options.origin).checkpoint
        except (VerificationError, MalformedInputError):
            return False  # not the log's: the policy check says so
        return served.size != int(pending["size"]) or (isinstance(expected, str) and _b64(served.root) != expected)


def _finding(code: str, step: int, message: str, **evidence: Any) -> Finding:
    return Finding(code, step, message, evidence=dict(evidence))


# --- the loop -----------------------------------------------------------------------------------


Emit = Callable[[dict[str, Any]], None]


@dataclass
class FollowOptions:
    interval: float = 10.0
    once: bool = False
    fail_fast: bool = False


def backoff(failures: int, interval: float) -> float:
    """Seconds to wait after ``failures`` failed polls in a row: doubling from the interval, bounded."""
    return float(min(max(interval, 1.0) * 2 ** max(failures - 1, 0), max(MAX_BACKOFF, interval)))


def follow(
    monitor: Monitor,
    state_path: Path,
    options: FollowOptions,
    *,
    finding: Emit,
    status: Emit,
    stop: threading.Event,
) -> int:
    """Poll until ``stop`` is set (or once); returns the exit code: 1 when ``once``/``fail_fast`` saw a
    finding, 3 when ``once`` could not reach the source, else 0. The state is saved after every poll."""
    status({"time": now_text(), "status": "started", "source": monitor.source.name,
            "size": monitor.state.size, "checkpoint_size": monitor.state.checkpoint_size})
    failures, found, last, saved = 0, False, (-1, -1), None
    while True:
        try:
            result = monitor.poll(stop)
        except Unavailable as exc:
            saved = save_state(state_path, monitor.state, unless=saved)
            for line in monitor.drain():
                finding(line)
                found = True
            if found and options.fail_fast:
                status({"time": now_text(), "status": "stopped", "reason": "finding (--fail-fast)"})
                return 1
            failures += 1
            status({"time": now_text(), "status": "unreachable", "code": exc.code, "attempt": failures,
                    "source": monitor.source.name})
            if options.once:
                return 3
            if stop.wait(backoff(failures, options.interval)):
                break
            continue
        saved = save_state(state_path, monitor.state, unless=saved)
        if failures:
            status({"time": now_text(), "status": "reconnected", "source": monitor.source.name})
            failures = 0
        for line in result.findings:
            finding(line)
        found = found or bool(result.findings)
        if (result.size, result.checkpoint_size) != last or result.verified:
            status({"time": now_text(), "status": "caught_up", "size": result.size, "verified": result.verified,
                    "checkpoint_size": result.checkpoint_size})
            last = (result.size, result.checkpoint_size)
        if result.findings and options.fail_fast:
            status({"time": now_text(), "status": "stopped", "reason": "finding (--fail-fast)"})
            return 1
        if options.once:
            return 1 if found else 0
        if stop.wait(options.interval):
            break
    save_state(state_path, monitor.state, unless=saved)
    status({"time": now_text(), "status": "stopped", "reason": "signal", "size": monitor.state.size})
    return 0
