"""What a bundle verification is given (options) and what it produces (steps, findings, facts)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ledger import note
from ledger.verify import bundle_files as bf
from ledger.verify.findings import Finding


@dataclass(frozen=True)
class VerifyOptions:
    vkey: note.VerifierKey | None = None
    witnesses: tuple[note.VerifierKey, ...] = ()
    min_witnesses: int | None = None
    media_dir: Path | None = None
    trust_root: str | None = None
    workers: int = 1


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
    manifest: bf.Manifest
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
    counts: dict[int, str] = field(default_factory=dict)

    @property
    def verified(self) -> bool:
        return not self.findings

    def find(self, code: str, step: int, message: str, **where: Any) -> None:
        located = {k: where.pop(k) for k in ("leaf_index", "case_id", "seq") if k in where}
        self.findings.append(Finding(code, step, message, evidence=where, **located))
