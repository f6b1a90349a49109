"""The HTTP client: sign events locally and append them to a remote ledger, over the one transport.

The private key never leaves the caller. :class:`RemoteLedger` reads the case head (``version``,
``head_sha256``) from the server, signs the statement for the next position with
:func:`ledger.envelope.signing.build_envelope` and posts the envelope. Refusals come back as the
matching :mod:`domain.errors` exception carrying the server's code, message and refs.

Every request of the project's clients (this one, the audit's server reader, the witness client)
goes through :class:`ledger.transport.Transport`, re-exported here with its errors: bounded
timeouts, no redirects, identity encoding, a response cap, one ``SERVER_UNREACHABLE`` error naming
the URL for every transport failure, and problem+json refusals mapped by :func:`error_from_response`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from domain.errors import NotFoundError, VerificationError
from ledger.envelope.dsse import REGISTRY_CASE_ID
from ledger.envelope.keys import load_private_key
from ledger.envelope.signing import build_envelope
from ledger.log import note
from ledger.transport import (
    DEFAULT_TIMEOUT,
    MAX_RESPONSE,
    BadResponse,
    ServerUnreachable,
    Transport,
    error_from_response,
    problem_code,
)

#: the request header stating how many log entries the client has seen: the size of the newest checkpoint
#: it holds, or more after its own appends (api/reads.py: a read must reflect at least that many entries)
HELD_CHECKPOINT_HEADER = "Evidence-Ledger-Checkpoint-Size"


def held_size(raw: bytes | None) -> int:
    """The tree size on the second line of a remembered checkpoint note (verified when it was
    remembered); 0 for none or for bytes that do not have one."""
    if not raw:
        return 0
    lines = raw.split(b"\n", 2)
    if len(lines) < 2 or not lines[1].isdigit() or len(lines[1]) > 16:
        return 0
    return int(lines[1])


class RemoteLedger:
    """One server, one bearer token. Pass ``client`` to reuse an httpx.Client (or a TestClient)."""

    def __init__(
        self,
        server: str = "",
        token: str | None = None,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        client: httpx.Client | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.clock = clock
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.transport = Transport(server, timeout=timeout, headers=headers, client=client)
        self.client = self.transport.client
        self._origin: str | None = None
        self._seen = 0  # the log size the client has seen: held checkpoint, own appends (leaf_index + 1)

    def close(self) -> None:
        self.transport.close()

    def __enter__(self) -> RemoteLedger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def origin(self) -> str:
        """The ledger origin, from the first line of the latest signed checkpoint."""
        if self._origin is None:
            self._origin = self.checkpoint_note().decode("utf-8", "replace").split("\n", 1)[0]
        return self._origin

    def checkpoint_note(self) -> bytes:
        """The latest signed checkpoint as the server states it (``GET /v1/log/checkpoint``), unverified."""
        return self.transport.call("GET", "/v1/log/checkpoint").content

    def log_key(self) -> str:
        """The log's verifier key as the server states it (``GET /v1/log/key``): no independent anchor."""
        return self.transport.call("GET", "/v1/log/key").text.strip()

    def consistency_proof(self, first: int, second: int) -> bytes:
        """The RFC 6962 consistency proof document between tree sizes ``first`` and ``second``
        (``GET /v1/log/proof/consistency``), unparsed and unverified."""
        params = {"first": first, "second": second}
        return self.transport.call("GET", "/v1/log/proof/consistency", params=params).content

    def check(self, guard: Callable[[RemoteLedger], object] | None) -> None:
        """Run ``guard`` (the command line's check of the log against what the client remembers,
        ``ledger.cli.remembered.check_log``) before any other request of a command."""
        if guard is not None:
            guard(self)
        self.state_held_checkpoint()

    def state_held_checkpoint(self) -> int:
        """Send the size of the newest checkpoint the client remembers for this log with every later
        request (``Evidence-Ledger-Checkpoint-Size``): a server reading from a replica never answers
        from a state older than that (docs/scaling-reads.md). 0 (nothing sent) when none is remembered
        or the log's origin is not known yet (no request is made to learn it)."""
        from ledger.verify import CheckpointMemory

        memory = CheckpointMemory.default()
        raw = None if memory is None or self._origin is None else memory.latest(self._origin)
        size = held_size(raw)
        self.read_at_least(size)
        return size

    def read_at_least(self, size: int) -> None:
        """Every later request's reads must reflect at least ``size`` log entries (the header only grows):
        after an append, its leaf index + 1, so a read right after it sees it (read-your-writes)."""
        if size > self._seen:
            self._seen = size
            self.transport.headers[HELD_CHECKPOINT_HEADER] = str(size)

    def case_head(self, case_id: str) -> tuple[int, str | None]:
        """(version, hash of the last envelope) of a case or the registry; (0, None) for a new case."""
        if case_id == REGISTRY_CASE_ID:
            registry = self.transport.call("GET", "/v1/keys").json()
            return int(registry["version"]), registry["head_sha256"]
        try:
            view = self.transport.call("GET", f"/v1/cases/{case_id}").json()
        except NotFoundError:
            return 0, None
        return int(view["version"]), str(view["head_sha256"])

    def receipt_key(self, origin: str) -> note.VerifierKey:
        """The key the log's receipts must be signed by: pinned, else recorded on first use for the origin
        (``ledger.verify.receipt_store.receipt_key``), else the key the server states, recorded now (trust
        on first use, as ``ledger.cli.remembered.check_log`` does)."""
        from ledger.verify import CheckpointMemory, receipt_key

        key = receipt_key(origin)
        if key is not None:
            return key
        stated = note.parse_verifier_key(self.log_key())
        if stated.type != note.SIG_TYPE_ED25519:
            raise VerificationError(
                f"the server states a key of type {stated.type:#04x} for {origin}, not a log key: its receipts "
                "cannot be checked; obtain the log's key independently and pin it (`evidence-ledger trust pin`)",
                code="BAD_RECEIPT",
            )
        memory = CheckpointMemory.default()
        try:
            if memory is not None:
                memory.record_key(origin, stated)
        except OSError as exc:
            from ledger.verify import warn_once

            warn_once(f"cannot write to the client state directory ({exc.strerror or exc}): the log key of "
                      f"{origin} was not recorded")
        return stated

    def post_envelope(self, case_id: str, raw: bytes, *, wait: bool = False) -> dict[str, Any]:
        """Append ``raw``; the answer, its receipt fields (``leaf_index``, ``leaf_hash``,
        ``envelope_sha256``, ``integrated_at``) taken from the signed receipt once it is verified
        (:meth:`receipt_key`; for ``raw``; the same as the answer states: BAD_RECEIPT otherwise, also
        when the answer carries no receipt). The receipt is kept in the client state directory
        (``ledger.verify.receipt_store``): EQUIVOCATION if another receipt for the same leaf index names
        another entry."""
        from ledger.verify import check_append_receipt, keep_receipt

        path = "/v1/keys" if case_id == REGISTRY_CASE_ID else f"/v1/cases/{case_id}/events"
        params = {"wait": "true"} if wait else None
        response = self.transport.call(
            "POST", path, content=raw, params=params, headers={"Content-Type": "application/json"}
        )
        try:
            result = response.json()
        except ValueError:
            result = None
        signed = result.get("receipt") if isinstance(result, dict) else None
        if not isinstance(result, dict) or not isinstance(signed, str) or not signed:
            raise VerificationError(
                f"the server accepted the append (HTTP {response.status_code}: the entry is committed), but its "
                f"answer carries no signed receipt, so the log promised nothing verifiable (envelope SHA-256 "
                f"{hashlib.sha256(raw).hexdigest()}); resubmit the same envelope to {path}: the server answers an "
                "envelope it already holds with that entry's receipt",
                code="BAD_RECEIPT",
            )
        data = signed.encode("utf-8")
        receipt = check_append_receipt(data, self.receipt_key(self.origin()), envelope=raw, answer=result)
        keep_receipt(data, envelope=raw)
        self.read_at_least(receipt.index + 1)  # the next case head read must show this entry
        return {
            **result,
            "leaf_index": receipt.index,
            "leaf_hash": receipt.leaf_hash.hex(),
            "envelope_sha256": receipt.envelope_sha256,
            "integrated_at": receipt.integrated_at,
        }

    def append(
        self, case_id: str, event_type: str, body: dict[str, Any], key: Ed25519PrivateKey, *, wait: bool = False
    ) -> dict[str, Any]:
        """Sign ``body`` for the next position of the case and append it; returns the receipt JSON."""
        version, prev = self.case_head(case_id)
        raw = build_envelope(
            origin=self.origin(), case_id=case_id, event_type=event_type, body=body, key=key,
            seq=version + 1, prev=prev, occurred_at=self.clock(),
        )
        return self.post_envelope(case_id, raw, wait=wait)


#: what a command runs on the server's log before its own requests (see :meth:`RemoteLedger.check`)
Guard = Callable[[RemoteLedger], object]


def list_cases_remote(server: str, token: str, guard: Guard | None = None, **params: Any) -> dict[str, Any]:
    """``GET /v1/cases`` (``{items, next}``) with the given filters (None: not sent)."""
    with RemoteLedger(server, token) as remote:
        remote.check(guard)
        sent = {k: v for k, v in params.items() if v is not None}
        page: dict[str, Any] = remote.transport.call("GET", "/v1/cases", params=sent).json()
        return page


def case_remote(
    server: str, token: str, case_id: str, *, as_of: str | None = None, at_index: int | None = None,
    timeline: bool = False, guard: Guard | None = None,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """``GET /v1/cases/{id}`` (the case view, now or at a past point) and, with ``timeline``, its timeline
    up to the version shown (``GET /v1/cases/{id}/timeline``, page by page)."""
    with RemoteLedger(server, token) as remote:
        remote.check(guard)
        params = {k: v for k, v in (("as_of", as_of), ("at_index", at_index)) if v is not None}
        view: dict[str, Any] = remote.transport.call("GET", f"/v1/cases/{case_id}", params=params).json()
        lines: list[dict[str, Any]] = []
        after = 0
        while timeline and len(lines) < int(view["version"]):
            page = remote.transport.call(
                "GET", f"/v1/cases/{case_id}/timeline", params={"after": after, "limit": TIMELINE_PAGE}
            ).json()
            lines += page["items"]
            if page["next"] is None or not page["items"]:
                break
            after = page["next"]
        return view, lines[: int(view["version"])]


#: the timeline's page size asked of the server (its maximum page is larger)
TIMELINE_PAGE = 100


def append_remote(
    server: str, token: str, case_id: str, event_type: str, body: dict[str, Any], key: Ed25519PrivateKey | Path | str,
    guard: Guard | None = None,
) -> dict[str, Any]:
    """What ``evidence-ledger append --server URL --token T`` calls; raises LedgerError subclasses."""
    signer = key if isinstance(key, Ed25519PrivateKey) else load_private_key(Path(key))
    with RemoteLedger(server, token) as remote:
        remote.check(guard)
        return remote.append(case_id, event_type, body, signer)


__all__ = [
    "DEFAULT_TIMEOUT",
    "MAX_RESPONSE",
    "BadResponse",
    "Guard",
    "RemoteLedger",
    "ServerUnreachable",
    "Transport",
    "append_remote",
    "case_remote",
    "error_from_response",
    "list_cases_remote",
    "problem_code",
]
