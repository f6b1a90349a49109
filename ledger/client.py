"""A small HTTP client: sign events locally and append them to a remote ledger.

The private key never leaves the caller. The client reads the case head (``version``,
``head_sha256``) from the server, signs the statement for the next position with
:func:`ledger.signing.build_envelope` and posts the envelope. Refusals come back as the matching
:mod:`domain.errors` exception carrying the server's code, message and refs.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from domain.errors import (
    AuthorizationError,
    ConflictError,
    DomainError,
    LedgerError,
    MalformedInputError,
    NotFoundError,
)
from ledger.envelope.dsse import REGISTRY_CASE_ID
from ledger.envelope.keys import load_private_key
from ledger.envelope.signing import build_envelope
from ledger.storage.sql import StorageError

_ERROR_BY_STATUS: dict[int, type[LedgerError]] = {
    400: MalformedInputError,
    401: AuthorizationError,
    403: AuthorizationError,
    404: NotFoundError,
    409: ConflictError,
    413: MalformedInputError,
    422: DomainError,
    503: StorageError,
}


def error_from_response(response: httpx.Response) -> LedgerError:
    """The LedgerError a problem response stands for (code, message and refs from the server)."""
    try:
        problem = response.json()
    except ValueError:
        problem = {}
    if not isinstance(problem, dict):
        problem = {}
    cls = _ERROR_BY_STATUS.get(response.status_code, LedgerError)
    code = str(problem.get("code") or f"HTTP_{response.status_code}")
    message = str(problem.get("detail") or response.reason_phrase or "request refused")
    refs = problem.get("refs")
    safe_refs = {str(k): v for k, v in refs.items()} if isinstance(refs, dict) else {}
    return cls(message, code=code, **safe_refs)


class RemoteLedger:
    """One server, one bearer token. Pass ``client`` to reuse an httpx.Client (or a TestClient)."""

    def __init__(
        self,
        server: str = "",
        token: str | None = None,
        *,
        timeout: float = 30.0,
        client: httpx.Client | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.clock = clock
        self.client = client or httpx.Client(base_url=server.rstrip("/"), timeout=timeout)
        self._owns_client = client is None
        self.headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._origin: str | None = None

    def close(self) -> None:
        if self._owns_client:
            self.client.close()

    def __enter__(self) -> RemoteLedger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = {**self.headers, **kwargs.pop("headers", {})}
        try:
            response = self.client.request(method, path, headers=headers, **kwargs)
        except httpx.HTTPError as exc:
            raise LedgerError(f"cannot reach the server: {type(exc).__name__}", code="SERVER_UNREACHABLE") from exc
        if response.status_code >= 400:
            raise error_from_response(response)
        return response

    def origin(self) -> str:
        """The ledger origin, from the first line of the latest signed checkpoint."""
        if self._origin is None:
            self._origin = self._request("GET", "/v1/log/checkpoint").text.split("\n", 1)[0]
        return self._origin

    def case_head(self, case_id: str) -> tuple[int, str | None]:
        """(version, hash of the last envelope) of a case or the registry; (0, None) for a new case."""
        if case_id == REGISTRY_CASE_ID:
            registry = self._request("GET", "/v1/keys").json()
            return int(registry["version"]), registry["head_sha256"]
        try:
            view = self._request("GET", f"/v1/cases/{case_id}").json()
        except NotFoundError:
            return 0, None
        return int(view["version"]), str(view["head_sha256"])

    def post_envelope(self, case_id: str, raw: bytes, *, wait: bool = False) -> dict[str, Any]:
        path = "/v1/keys" if case_id == REGISTRY_CASE_ID else f"/v1/cases/{case_id}/events"
        params = {"wait": "true"} if wait else None
        response = self._request(
            "POST", path, content=raw, params=params, headers={"Content-Type": "application/json"}
        )
        result: dict[str, Any] = response.json()
        return result

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


def append_remote(
    server: str, token: str, case_id: str, event_type: str, body: dict[str, Any], key: Ed25519PrivateKey | Path | str
) -> dict[str, Any]:
    """What ``evidence-ledger append --server URL --token T`` calls; raises LedgerError subclasses."""
    signer = key if isinstance(key, Ed25519PrivateKey) else load_private_key(Path(key))
    with RemoteLedger(server, token) as remote:
        return remote.append(case_id, event_type, body, signer)
