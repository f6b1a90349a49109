"""What a bundle verification is given (options) and what it produces (steps, findings, facts)."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ledger.log import note
from ledger.log.timestamp import TsaTrust
from ledger.verify.bundle_files import Manifest
from ledger.verify.findings import Finding
from ledger.verify.memory import CheckpointMemory, ProofSource
from ledger.verify.trust import PinFile

VERIFIED, UNPINNED, FAILED = "verified", "unpinned", "failed"
EXIT_CODES = {VERIFIED: 0, FAILED: 1, UNPINNED: 4}  # 4: verified, not anchored to a trust root
PIN_FILE = "pin file"


@dataclass(frozen=True)
class VerifyOptions:
    """Keys and policy given by the verifier. ``pins``: a pin file whose entry for the bundle's origin
    fills whatever these options leave unset (see :meth:`pinned_for`)."""

    vkey: note.VerifierKey | None = None
    witnesses: tuple[note.VerifierKey, ...] = ()
    min_witnesses: int | None = None
    media_dir: Path | None = None
    trust_root: str | None = None
    workers: int = field(default_factory=lambda: os.cpu_count() or 1)  # processes, this one included
    pins: PinFile | None = None
    vkey_source: str = "--vkey"
    trust_root_source: str = "--trust-root"
    witness_source: str = "--witness"
    #: the client's memory of each log: a VERIFIED bundle's checkpoint is compared with it (None: not)
    memory: CheckpointMemory | None = None
    #: consistency proofs from a log server (``--server``), given the origin; None: offline
    consistency: Callable[[str], ProofSource] | None = None
    tsa_certs: tuple[TsaTrust, ...] = ()  # a bundle's checkpoint must carry a token verifying under one
    tsa_source: str = "--tsa-cert"
    #: the log published as tlog-tiles (``--tiles``): reads ``checkpoint`` and ``tile/...``; None: not given
    tiles: Callable[[str], bytes] | None = None
    tiles_source: str = ""

    def pinned_for(self, origin: str) -> VerifyOptions:
        """These options completed by the pin file's entry for ``origin``: each option given here
        wins; the pinned witnesses come with their ``min_witnesses`` unless --witness is given (a
        production pin's minimum is a floor all the same); the
        pinned TSA certificates apply unless --tsa-cert is given."""
        pin = None if self.pins is None else self.pins.get(origin)
        if pin is None:
            return self
        changes: dict[str, Any] = {}
        if self.vkey is None:
            changes.update(vkey=pin.vkey, vkey_source=PIN_FILE)
        if self.trust_root is None and pin.trust_root is not None:
            changes.update(trust_root=pin.trust_root, trust_root_source=PIN_FILE)
        if not self.witnesses:
            if pin.witnesses:
                changes.update(witnesses=pin.witnesses, witness_source=PIN_FILE)
            required = pin.required_witnesses(self.min_witnesses)  # a production pin's minimum is a floor
            if required is not None:
                changes["min_witnesses"] = required
        else:  # --witness replaces the pinned keys, never a production pin's floor
            changes["min_witnesses"] = pin.required_with_own(len(self.witnesses), self.min_witnesses)
        if not self.tsa_certs and pin.tsa_certs:
            assert self.pins is not None
            changes.update(tsa_certs=pin.tsa_trusts(self.pins.path), tsa_source=PIN_FILE)
        return replace(self, **changes)


@dataclass(frozen=True)
class Step:
    number: int
    title: str
    status: str  # passed | failed | not applicable | not run
    detail: str


@dataclass
class BundleVerification:
    bundle: str
    bundle_sha256: str
    manifest: Manifest
    findings: list[Finding] = field(default_factory=list)
    steps: list[Step] = field(default_factory=list)
    timeline: list[dict[str, Any]] = field(default_factory=list)
    registry: list[dict[str, Any]] = field(default_factory=list)
    keys: list[dict[str, Any]] = field(default_factory=list)
    checkpoint: dict[str, Any] = field(default_factory=dict)
    media: list[dict[str, Any]] = field(default_factory=list)
    case_state: dict[str, Any] | None = None
    caveats: list[str] = field(default_factory=list)
    trust_root: str | None = None
    trust_root_pinned: bool = False
    trust_root_source: str | None = None  # "--trust-root" | "pin file" | None (not pinned)
    log_key_pinned: bool = False
    log_key_source: str | None = None  # "--vkey" | "pin file" | None (not pinned)
    pin_file: str | None = None
    counts: dict[int, str] = field(default_factory=dict)
    log_key: note.VerifierKey | None = None  # the key the checkpoint was checked with (check 8)
    access_checkpoint: dict[str, Any] = field(default_factory=dict)
    access: list[dict[str, Any]] = field(default_factory=list)  # the case's access entries (ids only)

    @property
    def verified(self) -> bool:
        """No finding. This alone is not the verdict: see :attr:`verdict`, which also needs the pins."""
        return not self.findings

    @property
    def missing_pins(self) -> list[str]:
        """The options whose pins are missing, e.g. ``["--vkey", "--trust-root"]``."""
        return [
            option
            for option, pinned in (("--vkey", self.log_key_pinned), ("--trust-root", self.trust_root_pinned))
            if not pinned
        ]

    @property
    def verdict(self) -> str:
        """``failed`` with any finding; else ``verified`` only when both the log key and the trust
        root were pinned (given, or read from a pin file); else ``unpinned``."""
        if self.findings:
            return FAILED
        return UNPINNED if self.missing_pins else VERIFIED

    def find(self, code: str, step: int, message: str, **where: Any) -> None:
        located = {k: where.pop(k) for k in ("leaf_index", "case_id", "seq") if k in where}
        self.findings.append(Finding(code, step, message, evidence=where, **located))
