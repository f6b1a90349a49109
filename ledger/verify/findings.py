"""Findings: what verification reports, with a stable code, the check that found it, and where."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

#: The numbered checks (docs/verification.md explains each).
CHECKS: dict[int, str] = {
    1: "bundle manifest: every file listed with its SHA-256, nothing unlisted",
    2: "every entry parses: envelope and statement well-formed and canonical",
    3: "every signature verifies against the key registry as of its position",
    4: "per-case chains: ledger origin and case bound, seq contiguous from 1, prev hashes",
    5: "every leaf rebuilt from its envelope (hash, index, version)",
    6: "log completeness: gapless leaf indexes, every stored event logged, commit order",
    7: "inclusion proofs / tree roots against the signed checkpoints",
    8: "checkpoint signatures, consistency between checkpoints, witness policy",
    9: "media files match their recorded SHA-256",
    10: "the case rules replayed from the events",
    11: "projections rebuilt from the events equal the stored read models",
    13: "access log: signed access checkpoint (origin <origin>/access), every access entry included and naming the case",
    14: "receipts: every leaf's signed receipt, by the log key, for its origin, index and leaf hash",
}


@dataclass(frozen=True)
class Finding:
    """One problem, located as exactly as the input allows."""

    code: str
    step: int
    message: str
    leaf_index: int | None = None
    case_id: str | None = None
    seq: int | None = None
    evidence: dict[str, Any] = field(default_factory=dict)

    def location(self) -> str:
        parts = []
        if self.leaf_index is not None:
            parts.append(f"leaf {self.leaf_index}")
        if self.case_id is not None:
            parts.append(f"case {self.case_id}")
        if self.seq is not None:
            parts.append(f"seq {self.seq}")
        return ", ".join(parts) or "ledger"

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "code": self.code,
            "step": self.step,
            "message": self.message,
            "leaf_index": self.leaf_index,
            "case_id": self.case_id,
            "seq": self.seq,
        }
        if self.evidence:
            data["evidence"] = self.evidence
        return data

    def __str__(self) -> str:
        return f"{self.code} at {self.location()}: {self.message}"
