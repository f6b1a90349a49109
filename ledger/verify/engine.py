"""Re-verify stored envelopes in log order, trusting nothing but the bytes and the trust root.

`EntryChecker.check(entry)` is called once per entry in leaf order. It never stops at the first
problem: every finding is collected with its code, step and location, and checking goes on (a
refused event does not advance its case's state, but does advance the chain so that one bad row
produces one finding, not a cascade).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from domain.context import DomainConfig
from domain.errors import AuthorizationError, DomainError, LedgerError, MalformedInputError
from ledger.decide import Signer, decide, trust_root_signer
from ledger.envelope.dsse import PAYLOAD_TYPE, REGISTRY_CASE_ID, UnverifiedEnvelope, pae, parse_envelope
from ledger.log.leaf import parse_leaf
from ledger.verify.findings import Finding

_KEY_STATUS_CODES = {
    "unknown": "UNKNOWN_KEY",
    "not_yet_valid": "UNKNOWN_KEY",
    "revoked": "REVOKED_KEY",
    "compromised": "REVOKED_KEY",
}


@dataclass(frozen=True)
class Entry:
    """One position of the log as the verifier received it."""

    leaf_index: int
    envelope: bytes
    leaf: bytes | None = None


@dataclass
class CaseTrack:
    """What the verifier knows of one case (or of the registry) after the entries so far."""

    version: int = 0
    head: str | None = None
    state: Any = None
    events: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Checked:
    """The verdict on one entry, for reports."""

    leaf_index: int
    envelope_sha256: str
    case_id: str | None = None
    seq: int | None = None
    event_type: str | None = None
    signer: str | None = None
    actor: str | None = None
    role: str | None = None
    occurred_at: str | None = None
    integrated_at: str | None = None
    ok: bool = True


def _verify_one(item: tuple[bytes, bytes, bytes]) -> bool:
    public, sig, message = item
    try:
        Ed25519PublicKey.from_public_bytes(public).verify(sig, message)
    except (InvalidSignature, ValueError):
        return False
    return True


def _verify_many(items: list[tuple[bytes, bytes, bytes]]) -> list[bool]:
    return [_verify_one(item) for item in items]


def public_keys_in(envelopes: Iterable[UnverifiedEnvelope]) -> dict[str, bytes]:
    """key id → raw public key, from every KeyRegistered body (a key id names exactly one key)."""
    keys: dict[str, bytes] = {}
    for env in envelopes:
        body = env.statement.body
        if env.statement.type == "KeyRegistered" and isinstance(body.get("public_key"), str):
            try:
                raw = base64.b64decode(body["public_key"], validate=True)
            except (binascii.Error, ValueError):
                continue
            if hashlib.sha256(raw).hexdigest() == body.get("key_id"):
                keys[str(body["key_id"])] = raw
    return keys


def verify_signatures(envelopes: Sequence[UnverifiedEnvelope], *, workers: int = 1) -> dict[int, bool]:
    """Check every signature whose key appears anywhere in the input; position-free, so parallel.

    Returns index-in-sequence → verdict; envelopes whose key is not present are absent."""
    keys = public_keys_in(envelopes)
    positions, items = [], []
    for i, env in enumerate(envelopes):
        public = keys.get(env.keyid)
        if public is not None:
            positions.append(i)
            items.append((public, env.sig, pae(PAYLOAD_TYPE, env.payload)))
    if workers > 1 and len(items) >= 2000:
        chunk = max(500, len(items) // (workers * 4))
        chunks = [items[i : i + chunk] for i in range(0, len(items), chunk)]
        with ProcessPoolExecutor(max_workers=workers) as pool:
            verdicts = [v for part in pool.map(_verify_many, chunks) for v in part]
    else:
        verdicts = _verify_many(items)
    return dict(zip(positions, verdicts, strict=True))


class EntryChecker:
    """Checks 2-5 and 10 (see findings.CHECKS) over entries given in log order."""

    def __init__(
        self,
        *,
        origin: str | None,
        config: DomainConfig | None = None,
        trust_root: str | None = None,
        partial_registry: bool = False,
        signature_verdicts: dict[int, bool] | None = None,
        registry_at: Callable[[int], Any] | None = None,
        keep_events: bool = False,
    ) -> None:
        self.origin = origin
        self.config = config or DomainConfig()
        self.trust_root = trust_root
        self.partial_registry = partial_registry  # bundles carry only the registry events their signers need
        self.verdicts = signature_verdicts or {}
        self.findings: list[Finding] = []
        self.cases: dict[str, CaseTrack] = {}
        self.registry: Any = None
        # The registry as of a leaf index, when the registry's own entries were checked elsewhere
        # first (the audit checks cases in parallel, each against the registry of its positions).
        self.registry_at = registry_at
        # leaf index -> the event as the rules parsed it, for callers that project it further
        self.events: dict[int, Any] | None = {} if keep_events else None
        self.checked: list[Checked] = []
        self.envelope_hashes: set[str] = set()
        self._root_refused = False

    # -- entry point ---------------------------------------------------------------------------

    def check(self, entry: Entry, envelope: UnverifiedEnvelope | None = None) -> Checked:
        digest = hashlib.sha256(entry.envelope).hexdigest()
        result = Checked(entry.leaf_index, digest)
        self.checked.append(result)
        self.envelope_hashes.add(digest)
        if envelope is None:
            try:
                envelope = parse_envelope(entry.envelope)
            except LedgerError as exc:
                code = "NON_CANONICAL" if exc.code == "NON_CANONICAL" else "MALFORMED_ENTRY"
                self._find(result, code, 2, f"entry cannot be used: {exc.message}")
                self._check_leaf(entry, digest, result)
                return result
        st = envelope.statement
        result.case_id, result.seq, result.event_type = st.case_id, st.seq, st.type
        result.signer, result.occurred_at = st.signer, st.occurred_at
        result.integrated_at = integrated_at = self._check_leaf(entry, digest, result)
        if self.origin is not None and st.ledger != self.origin:
            self._find(result, "BINDING_MISMATCH", 4, f"statement is bound to ledger '{st.ledger}'")
        track = self.cases.setdefault(st.case_id, CaseTrack())
        self._check_chain(envelope, track, result, digest)
        if self.registry_at is not None:
            self.registry = self.registry_at(entry.leaf_index)
        signer = self._check_signer(envelope, result, integrated_at or st.occurred_at, entry.leaf_index)
        if signer is not None:
            self._apply(envelope, track, result, signer)
        track.version, track.head = st.seq, digest
        return result

    # -- checks --------------------------------------------------------------------------------

    def _find(self, result: Checked, code: str, step: int, message: str, **evidence: Any) -> None:
        result.ok = False
        self.findings.append(
            Finding(code, step, message, result.leaf_index, result.case_id, result.seq, dict(evidence))
        )

    def _check_leaf(self, entry: Entry, digest: str, result: Checked) -> str | None:
        if entry.leaf is None:
            return None
        try:
            leaf = parse_leaf(entry.leaf)
        except MalformedInputError as exc:
            self._find(result, "LEAF_MISMATCH", 5, f"stored leaf is not a valid leaf: {exc.message}")
            return None
        if leaf.envelope_sha256 != digest:
            self._find(
                result,
                "LEAF_MISMATCH",
                5,
                "leaf commits to other envelope bytes",
                leaf_envelope_sha256=leaf.envelope_sha256,
                envelope_sha256=digest,
            )
        if leaf.index != entry.leaf_index:
            self._find(result, "LEAF_MISMATCH", 5, f"leaf says index {leaf.index}", leaf_says=leaf.index)
        return leaf.integrated_at

    def _check_chain(
        self, envelope: UnverifiedEnvelope, track: CaseTrack, result: Checked, digest: str
    ) -> None:
        st = envelope.statement
        if self.partial_registry and st.case_id == REGISTRY_CASE_ID:
            return
        expected = track.version + 1
        if st.seq != expected:
            self._find(
                result, "SEQ_GAP", 4, f"expected seq {expected}, found {st.seq}", expected_seq=expected
            )
        elif st.prev != track.head:
            self._find(result, "CHAIN_BREAK", 4, "prev does not hash the case's previous envelope")

    def _signature_ok(self, envelope: UnverifiedEnvelope, public: bytes, leaf_index: int) -> bool:
        verdict = self.verdicts.get(leaf_index)
        if verdict is None:
            verdict = _verify_one((public, envelope.sig, pae(PAYLOAD_TYPE, envelope.payload)))
        return verdict

    def _check_signer(self, envelope: UnverifiedEnvelope, result: Checked, at: str, leaf_index: int) -> Any:
        st = envelope.statement
        if self.registry is None:
            if self._root_refused:
                result.ok = False  # unverifiable: the one finding at the failed trust root covers it
                return None
            signer = self._check_trust_root(envelope, result, leaf_index)
            self._root_refused = signer is None
            return signer
        info = self.registry.lookup(st.signer)
        status = "unknown" if info is None else self.registry.key_status_at(st.signer, at)
        if info is None or status != "active":
            self._find(result, _KEY_STATUS_CODES[status], 3, f"signer key is {status} at this position")
            return None
        result.actor, result.role = info.actor, info.role
        if not self._signature_ok(envelope, info.public_key, leaf_index):
            self._find(result, "BAD_SIGNATURE", 3, "envelope signature does not verify")
            return None
        return info

    def _check_trust_root(
        self, envelope: UnverifiedEnvelope, result: Checked, leaf_index: int
    ) -> Signer | None:
        st = envelope.statement
        signer = trust_root_signer(st)
        if signer is None:
            self._find(result, "UNKNOWN_KEY", 3, "the log does not start with a self-signed trust root")
            return None
        if self.trust_root is not None and st.signer != self.trust_root:
            self._find(
                result, "UNKNOWN_KEY", 3, "trust root differs from the pinned key id", pinned=self.trust_root
            )
            return None
        keys = public_keys_in([envelope])
        if st.signer not in keys or not self._signature_ok(envelope, keys[st.signer], leaf_index):
            self._find(result, "BAD_SIGNATURE", 3, "trust root signature does not verify")
            return None
        result.actor, result.role = signer.actor, signer.role
        return signer

    def _apply(self, envelope: UnverifiedEnvelope, track: CaseTrack, result: Checked, signer: Any) -> None:
        st = envelope.statement
        try:
            track.state, event, _ctx = decide(
                track.state, st, signer, self.config, leaf_index=result.leaf_index
            )
            if self.events is not None:
                self.events[result.leaf_index] = event
            if st.case_id == REGISTRY_CASE_ID:
                self.registry = track.state
            actor, role = signer.actor, signer.role
            track.events.append(
                {
                    "seq": st.seq,
                    "type": st.type,
                    "occurred_at": st.occurred_at,
                    "actor": actor,
                    "role": role,
                    "signer": st.signer,
                    "leaf_index": result.leaf_index,
                }
            )
        except AuthorizationError as exc:
            code = "ROLE_NOT_ALLOWED" if exc.code == "ROLE_NOT_ALLOWED" else "RULE_VIOLATION"
            self._find(result, code, 3 if code == "ROLE_NOT_ALLOWED" else 10, f"{exc.code}: {exc.message}")
        except DomainError as exc:
            self._find(
                result,
                "RULE_VIOLATION",
                10,
                f"{exc.code}: {exc.message}",
                rule=exc.code,
                refs={k: str(v) for k, v in exc.refs.items()},
            )


def check_entries(
    entries: Sequence[Entry],
    *,
    origin: str | None,
    config: DomainConfig | None = None,
    trust_root: str | None = None,
    partial_registry: bool = False,
    workers: int = 1,
    progress: Callable[[int], None] | None = None,
) -> EntryChecker:
    """Run the entry checks over entries in leaf order; signatures are verified up front (in
    parallel when ``workers`` > 1)."""
    parsed: dict[int, UnverifiedEnvelope] = {}
    for entry in entries:
        try:
            parsed[entry.leaf_index] = parse_envelope(entry.envelope)
        except LedgerError:
            continue  # reported by the checker with its exact reason
    order = list(parsed)
    verdicts_by_pos = verify_signatures([parsed[i] for i in order], workers=workers)
    verdicts = {order[pos]: ok for pos, ok in verdicts_by_pos.items()}
    checker = EntryChecker(
        origin=origin,
        config=config,
        trust_root=trust_root,
        partial_registry=partial_registry,
        signature_verdicts=verdicts,
    )
    for n, entry in enumerate(entries, 1):
        checker.check(entry, parsed.get(entry.leaf_index))
        if progress is not None and n % 1000 == 0:
            progress(n)
    return checker
