"""Concurrent signing clients for the crash harness (async httpx, loopback only).

Each client appends to its own cases only: a ``CaseOpened``, a ``FootageCaptured``, then a chain of
``CustodyTransferred`` events handing the footage back and forth, and a new case every 15-25 events.
``prev`` is computed locally as the SHA-256 of the envelope the client itself sent and got
acknowledged, so the client never asks the server where its chain stands — except after an
indeterminate request (the answer was lost: connection reset, timeout, 5xx). Then it reads the case
(``GET /v1/cases/{id}`` → ``version``/``head_sha256``) and classifies the request as present or
absent before going on: a present one is resubmitted (the same bytes must come back ``200`` with the
original receipt); an absent one is either resubmitted (``201``) or, at random, abandoned and replaced
by a different envelope for the same position — so its bytes must never show up in the ledger.

Every loop is bounded by a count and by the run's deadline.

The clients stay on ``httpx.AsyncClient`` (hundreds of requests in flight on one event loop) and do
not go through :class:`ledger.client.Transport`: they must tell a refused connection (not sent) from
a timeout or a reset (maybe sent), which one ``SERVER_UNREACHABLE`` would hide. Problem answers are
read with :func:`ledger.client.problem_code`, as every other client of the API reads them.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from domain.errors import LedgerError
from ledger.client import problem_code
from ledger.envelope.dsse import sha256_hex
from ledger.envelope.signing import build_envelope
from ledger.log import note
from ops.crash.record import Ack, Indeterminate, RunRecord

REQUEST_TIMEOUT = 15.0  # seconds; a kill resets connections at once, so timeouts mean a hung server
RECONCILE_SECONDS = 90.0  # how long one client keeps trying to learn the fate of one request
RETRY_SLEEP = 0.1
MAX_RETRIES = int(RECONCILE_SECONDS / RETRY_SLEEP) + 1
ABANDON_PROBABILITY = 0.5  # of an absent request being replaced rather than resubmitted
CHECKPOINT_POLL_SECONDS = 0.2
CUSTODIANS = ("CPD Evidence Unit", "CPD Forensics Lab")


class Budget:
    """A shared cap on new appends (reconciliation requests are bounded separately)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0

    def take(self) -> bool:
        if self.used >= self.limit:
            return False
        self.used += 1
        return True


@dataclass
class Chain:
    """One case owned by one client, as far as the client knows (only acknowledged events count)."""

    case_id: str
    length: int
    version: int = 0
    head: str | None = None
    custodian: str = CUSTODIANS[0]


@dataclass(frozen=True)
class Planned:
    raw: bytes
    event_id: str
    seq: int
    sha256: str
    custodian_after: str


class Client:
    def __init__(
        self,
        number: int,
        http: httpx.AsyncClient,
        *,
        origin: str,
        key: Ed25519PrivateKey,
        rng: random.Random,
        record: RunRecord,
        budget: Budget,
        stop: asyncio.Event,
        deadline: float,
    ) -> None:
        self.number = number
        self.http = http
        self.origin = origin
        self.key = key
        self.rng = rng
        self.record = record
        self.budget = budget
        self.stop = stop
        self.deadline = deadline

    # -- the loop ------------------------------------------------------------------------------

    async def run(self) -> None:
        chain: Chain | None = None
        for _ in range(self.budget.limit):
            if self.stop.is_set() or time.monotonic() > self.deadline:
                return
            if chain is None or chain.version >= chain.length:
                chain = Chain(str(uuid.uuid4()), self.rng.randint(15, 25))
            planned = self._plan(chain)
            if not self.budget.take():
                return
            outcome = await self._append(chain, planned)
            if outcome == "stopped":
                return
            if outcome == "broken":
                chain = None  # never write to a case whose state we no longer know

    def _plan(self, chain: Chain) -> Planned:
        seq = chain.version + 1
        footage_id = "ftg-1"
        custodian_after = chain.custodian
        body: dict[str, Any]
        if seq == 1:
            event_type = "CaseOpened"
            body = {
                "case_number": f"CPD-CRASH-{self.number:02d}-{chain.case_id[:8]}",
                "category": "violence",
                "summary": "Crash-harness case: appends while the server is killed at random",
            }
        elif seq == 2:
            event_type = "FootageCaptured"
            custodian_after = CUSTODIANS[0]
            body = {
                "footage_id": footage_id,
                "source": "body_worn_camera",
                "device_id": f"BWC-{self.number:04d}",
                "recorded_from": "2026-02-05T16:58:00Z",
                "recorded_to": "2026-02-05T17:06:00Z",
                "sha256": sha256_hex(chain.case_id.encode("ascii")),
                "size_bytes": 1024,
                "media_type": "video/mp4",
                "depicts": ["property_damage_by_federal_officials"],
                "custodian": custodian_after,
                "stored": False,
            }
        else:
            event_type = "CustodyTransferred"
            custodian_after = CUSTODIANS[1] if chain.custodian == CUSTODIANS[0] else CUSTODIANS[0]
            body = {
                "footage_id": footage_id,
                "from_custodian": chain.custodian,
                "to_custodian": custodian_after,
                "purpose": f"crash-harness hand-over {seq}",
            }
        event_id = str(uuid.uuid4())
        raw = build_envelope(
            origin=self.origin,
            case_id=chain.case_id,
            event_type=event_type,
            body=body,
            key=self.key,
            seq=seq,
            prev=chain.head,
            occurred_at=datetime.now(UTC),
            event_id=event_id,
        )
        return Planned(raw, event_id, seq, sha256_hex(raw), custodian_after)

    # -- one append --------------------------------------------------------------------------

    async def _post(self, chain: Chain, planned: Planned) -> httpx.Response:
        self.record.requests += 1
        return await self.http.post(f"/v1/cases/{chain.case_id}/events", content=planned.raw)

    async def _append(self, chain: Chain, planned: Planned) -> str:
        try:
            response = await self._post(chain, planned)
        except httpx.TransportError as exc:
            return await self._reconcile(
                chain,
                planned,
                error=type(exc).__name__,
                sent=not isinstance(exc, httpx.ConnectError),
                timed_out=isinstance(exc, httpx.TimeoutException),
            )
        if response.status_code >= 500:
            return await self._reconcile(
                chain,
                planned,
                error=f"HTTP {response.status_code} {problem_code(response)}",
                sent=True,
                timed_out=False,
            )
        return self._answered(chain, planned, response, expect={201})

    def _answered(self, chain: Chain, planned: Planned, response: httpx.Response, *, expect: set[int]) -> str:
        where = f"client {self.number} case {chain.case_id} seq {planned.seq}"
        if response.status_code not in (200, 201):
            self.record.anomaly(f"{where}: HTTP {response.status_code} {problem_code(response)}")
            return "broken"
        receipt = response.json()
        if response.status_code not in expect:
            self.record.anomaly(f"{where}: HTTP {response.status_code}, expected {sorted(expect)}")
        expected = {
            "event_id": planned.event_id,
            "case_id": chain.case_id,
            "seq": planned.seq,
            "envelope_sha256": planned.sha256,
        }
        wrong = {k: receipt.get(k) for k, v in expected.items() if receipt.get(k) != v}
        if wrong:
            self.record.anomaly(f"{where}: receipt disagrees with the envelope sent: {wrong}")
            return "broken"
        self.record.acks.append(
            Ack(
                event_id=planned.event_id,
                case_id=chain.case_id,
                seq=planned.seq,
                envelope=planned.raw,
                envelope_sha256=planned.sha256,
                leaf_index=int(receipt["leaf_index"]),
                leaf_hash=str(receipt["leaf_hash"]),
                status=response.status_code,
                at=time.monotonic(),
            )
        )
        chain.version, chain.head, chain.custodian = planned.seq, planned.sha256, planned.custodian_after
        return "ok"

    # -- after a lost answer -------------------------------------------------------------------

    async def _reconcile(
        self, chain: Chain, planned: Planned, *, error: str, sent: bool, timed_out: bool
    ) -> str:
        ind = Indeterminate(
            planned.event_id, chain.case_id, planned.seq, planned.raw, planned.sha256, error, sent
        )
        self.record.indeterminate.append(ind)
        where = f"client {self.number} case {chain.case_id} seq {planned.seq}"
        head = await self._read_head(chain.case_id)
        if head is None:
            self.record.anomaly(f"{where}: the case could not be read within {RECONCILE_SECONDS:.0f} s")
            return "stopped"
        version, head_sha = head
        if version == planned.seq and head_sha == planned.sha256:
            ind.resolution = "present"
        elif version == planned.seq - 1 and head_sha == chain.head:
            ind.resolution = "absent"
        else:
            self.record.anomaly(
                f"{where}: after a lost answer the case is at version {version} head {head_sha}; "
                f"expected version {planned.seq - 1} (head {chain.head}) or {planned.seq} (head {planned.sha256})"
            )
            return "broken"
        if ind.resolution == "absent" and not timed_out and self.rng.random() < ABANDON_PROBABILITY:
            ind.action = "abandoned"  # the next _plan signs a different envelope for this position
            return "abandoned"
        ind.action = "resubmitted"
        response, retried = await self._post_until_answered(chain, planned)
        if response is None:
            self.record.anomaly(f"{where}: no answer to the resubmission within {RECONCILE_SECONDS:.0f} s")
            return "stopped"
        if ind.resolution == "present":
            expect = {200}
        elif retried or timed_out:
            expect = {200, 201}  # the resubmission itself may have committed before losing its answer
        else:
            expect = {201}  # the server said absent and nothing was lost since: it must be written now
        return self._answered(chain, planned, response, expect=expect)

    async def _read_head(self, case_id: str) -> tuple[int, str | None] | None:
        """(version, head_sha256) of the case once the server answers; (0, None) if it does not exist."""
        until = min(time.monotonic() + RECONCILE_SECONDS, self.deadline)
        for _ in range(MAX_RETRIES):
            if time.monotonic() > until:
                return None
            self.record.requests += 1
            try:
                response = await self.http.get(f"/v1/cases/{case_id}")
            except httpx.TransportError:
                await asyncio.sleep(RETRY_SLEEP)
                continue
            if response.status_code == 404 and problem_code(response) == "CASE_NOT_FOUND":
                return 0, None
            if response.status_code == 200:
                view = response.json()
                return int(view["version"]), str(view["head_sha256"])
            if response.status_code >= 500:
                await asyncio.sleep(RETRY_SLEEP)
                continue
            self.record.anomaly(f"client {self.number}: GET case {case_id}: HTTP {response.status_code}")
            return None
        return None

    async def _post_until_answered(
        self, chain: Chain, planned: Planned
    ) -> tuple[httpx.Response | None, bool]:
        """Post the same bytes until an answer arrives (safe: appends are idempotent)."""
        until = min(time.monotonic() + RECONCILE_SECONDS, self.deadline)
        retried = False
        for _ in range(MAX_RETRIES):
            if time.monotonic() > until:
                break
            try:
                response = await self._post(chain, planned)
            except httpx.TransportError:
                retried = True
                await asyncio.sleep(RETRY_SLEEP)
                continue
            if response.status_code >= 500:
                retried = True
                await asyncio.sleep(RETRY_SLEEP)
                continue
            return response, retried
        return None, retried


def checkpoint_size(raw: bytes) -> int:
    return note.parse_checkpoint_body(note.open_note(raw)[0]).size


async def poll_checkpoints(
    http: httpx.AsyncClient, record: RunRecord, stop: asyncio.Event, deadline: float
) -> None:
    """Fetch the latest checkpoint now and then; its size must never go down across restarts."""
    seen: set[bytes] = set()
    largest = 0
    for _ in range(int((deadline - time.monotonic()) / CHECKPOINT_POLL_SECONDS) + 2):
        if stop.is_set() or time.monotonic() > deadline:
            return
        try:
            record.requests += 1
            response = await http.get("/v1/log/checkpoint")
        except httpx.TransportError:
            response = None
        if response is not None and response.status_code == 200 and response.content not in seen:
            raw = response.content
            seen.add(raw)
            record.checkpoints.append(raw)
            try:
                size = checkpoint_size(raw)
            except LedgerError as exc:
                record.anomaly(f"the server served an unreadable checkpoint: {exc.message}")
                size = largest
            if size < largest:
                record.anomaly(f"the latest checkpoint went back from size {largest} to {size}")
            largest = max(largest, size)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), CHECKPOINT_POLL_SECONDS)
