"""The project's HTTP transport: the one place that builds ``httpx.Client`` objects and sends requests.

Every client built here (or handed in) runs with the same rules:

* bounded timeouts (``timeout`` seconds per connect/read/write/pool wait, and optionally a
  ``deadline`` for a whole request, body included);
* no redirects: a 3xx is an answer like any other, never followed;
* ``Accept-Encoding: identity``, and an answer in any other encoding is refused unread, so the
  response cap counts the real bytes;
* a response cap (``max_response`` bytes), enforced while the body streams in;
* any transport failure (refused connection, DNS, timeout, reset, protocol error) becomes one
  :class:`ServerUnreachable` (``SERVER_UNREACHABLE``) naming the URL.

``Transport.call`` also turns an error answer (any status but 2xx; an RFC 9457 problem document) into the
matching :mod:`domain.errors` exception via :func:`error_from_response`. ``Transport.request``
returns every answer as it is, for protocols that are not problem+json (the c2sp tlog-witness
client in :mod:`ledger.log.witnessing`) or callers that judge statuses themselves (the audit's
reader in :mod:`ledger.audit.source`).

:mod:`ledger.client` is the client module callers use (``RemoteLedger`` and everything here); the
transport is a module of its own only so that the witness client in ``ledger.log``, a lower layer
than ``ledger.client``, can use it too.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import httpx

from domain.errors import (
    AuthorizationError,
    ConflictError,
    DomainError,
    LedgerError,
    MalformedInputError,
    NotFoundError,
)
from ledger.storage.sql import StorageError

DEFAULT_TIMEOUT = 30.0
MAX_RESPONSE = 256 * 1024 * 1024  # an audit page holds up to 1000 envelopes and their leaves
IDENTITY = "identity"

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


class ServerUnreachable(LedgerError):
    """No answer from the server: refused connection, name resolution, timeout, reset, bad HTTP."""

    code = "SERVER_UNREACHABLE"


class BadResponse(LedgerError):
    """An answer the client will not read: too large, too slow, or in an encoding it did not ask for."""

    code = "BAD_RESPONSE"


def _problem(response: httpx.Response) -> dict[str, Any]:
    try:
        problem = response.json()
    except ValueError:
        return {}
    return problem if isinstance(problem, dict) else {}


def problem_code(response: httpx.Response) -> str:
    """The ``code`` of a problem answer, or "" when the answer carries none."""
    return str(_problem(response).get("code") or "")


def error_from_response(response: httpx.Response) -> LedgerError:
    """The LedgerError a problem response stands for (code, message and refs from the server)."""
    problem = _problem(response)
    cls = _ERROR_BY_STATUS.get(response.status_code, LedgerError)
    code = str(problem.get("code") or f"HTTP_{response.status_code}")
    message = str(problem.get("detail") or response.reason_phrase or "request refused")
    refs = problem.get("refs")
    safe_refs = {str(k): v for k, v in refs.items()} if isinstance(refs, dict) else {}
    return cls(message, code=code, **safe_refs)


def _named(url: httpx.URL) -> str:
    """The URL for an error message: scheme, host, port and path (no credentials, query or fragment)."""
    return str(url.copy_with(username=None, password=None, query=None, fragment=None))


def _reason(exc: httpx.HTTPError, timeout: float) -> str:
    """Why no answer came, in words: refused, timed out, name not resolved, reset, or the error's kind."""
    text = str(exc).lower()
    if isinstance(exc, httpx.TimeoutException):
        return f"timed out after {timeout:g} s"
    if isinstance(exc, httpx.ConnectError):
        if "refused" in text:
            return "connection refused"
        if "name or service" in text or "nodename" in text or "getaddrinfo" in text or "resolution" in text:
            return "the host name does not resolve"
        return f"cannot connect: {str(exc)[:120]}"
    if "reset" in text:
        return "connection reset"
    return f"{type(exc).__name__}: {str(exc)[:120]}"


class Transport:
    """Requests to one server (``base_url``) or to absolute URLs, with the project's defaults.

    Pass ``client`` to send through an existing ``httpx.Client`` (a TestClient, a mock transport);
    the rules above still apply per request, and the caller keeps ownership of that client."""

    def __init__(
        self,
        base_url: str = "",
        *,
        timeout: float = DEFAULT_TIMEOUT,
        max_response: int = MAX_RESPONSE,
        headers: Mapping[str, str] | None = None,
        client: httpx.Client | None = None,
    ) -> None:
        self.timeout = timeout
        self.max_response = max_response
        self.headers = dict(headers or {})
        self.client = client or httpx.Client(
            base_url=base_url.rstrip("/"), timeout=timeout, follow_redirects=False
        )
        self._owns_client = client is None

    def close(self) -> None:
        if self._owns_client:
            self.client.close()

    def __enter__(self) -> Transport:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def url(self, path: str) -> str:
        """The absolute URL a request for ``path`` goes to, as error messages name it."""
        return _named(self.client.build_request("GET", path).url)

    def request(self, method: str, path: str, *, deadline: float | None = None, **kwargs: Any) -> httpx.Response:
        """Send one request and read the whole answer, whatever its status.

        ``deadline`` bounds the whole request in seconds (the per-operation timeout still applies).
        Raises ServerUnreachable when no answer arrives, BadResponse when the answer is refused."""
        headers = {**self.headers, **kwargs.pop("headers", {}), "Accept-Encoding": IDENTITY}
        kwargs.setdefault("timeout", self.timeout)
        until = None if deadline is None else time.monotonic() + deadline
        try:
            with self.client.stream(
                method, path, headers=headers, follow_redirects=False, **kwargs
            ) as response:
                encoding = response.headers.get("Content-Encoding", "").strip().lower() or IDENTITY
                if encoding != IDENTITY:
                    raise BadResponse(
                        f"{self.url(path)} answered in the {encoding!r} encoding", url=self.url(path)
                    )
                body = self._read(response, path, until)
        except httpx.HTTPError as exc:
            raise ServerUnreachable(
                f"cannot reach {self.url(path)} ({_reason(exc, self.timeout)}); is the server running? check the URL"
                " (--server)",
                url=self.url(path),
            ) from exc
        return httpx.Response(
            response.status_code,
            headers=response.headers,
            content=body,
            request=response.request,
            extensions=response.extensions,
        )

    def _read(self, response: httpx.Response, path: str, until: float | None) -> bytes:
        # An answer built in memory (a mock transport) arrives already read; a real one streams.
        stream = [response.content] if response.is_stream_consumed else response.iter_raw()
        chunks: list[bytes] = []
        total = 0
        for chunk in stream:
            total += len(chunk)
            if total > self.max_response:
                raise BadResponse(
                    f"{self.url(path)} answered with more than {self.max_response} bytes", url=self.url(path)
                )
            if until is not None and time.monotonic() > until:
                raise BadResponse(f"{self.url(path)} answered too slowly", url=self.url(path))
            chunks.append(chunk)
        return b"".join(chunks)

    def call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """Like :meth:`request`, but an answer that is not 2xx (an error, or a redirect, which is never
        followed) is raised as its domain.errors class."""
        response = self.request(method, path, **kwargs)
        if response.status_code >= 300:
            raise error_from_response(response)
        return response


__all__ = [
    "DEFAULT_TIMEOUT",
    "MAX_RESPONSE",
    "BadResponse",
    "ServerUnreachable",
    "Transport",
    "error_from_response",
    "problem_code",
]
