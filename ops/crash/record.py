"""What the clients saw during a crash run: acknowledgements, indeterminate requests, checkpoints."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Ack:
    """One acknowledged append (HTTP 201, or 200 for an idempotent resubmission), as the client saw it."""

    event_id: str
    case_id: str
    seq: int
    envelope: bytes
    envelope_sha256: str
    leaf_index: int
    leaf_hash: str
    status: int
    at: float = 0.0  # time.monotonic() when the answer arrived


@dataclass
class Indeterminate:
    """An append whose answer was lost (connection reset, timeout, 5xx): the client cannot know
    whether it committed until it reconciles with the restarted server.

    ``sent`` is False for a connection that was refused outright (nothing reached the server).
    ``resolution``: present (the case's head was this envelope) | absent | unresolved.
    ``action``: resubmitted (the same bytes were posted again) | abandoned (a different envelope
    was signed for the same position, so these bytes must never appear in the ledger)."""

    event_id: str
    case_id: str
    seq: int
    envelope: bytes
    envelope_sha256: str
    error: str
    sent: bool
    resolution: str = "unresolved"
    action: str = ""


@dataclass
class RunRecord:
    acks: list[Ack] = field(default_factory=list)
    indeterminate: list[Indeterminate] = field(default_factory=list)
    checkpoints: list[bytes] = field(default_factory=list)  # distinct signed notes, in the order seen
    anomalies: list[str] = field(default_factory=list)  # client-side contradictions (each one fails the run)
    requests: int = 0

    def anomaly(self, message: str) -> None:
        if len(self.anomalies) < 1000:
            self.anomalies.append(message)
