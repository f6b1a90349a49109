"""Pure ASGI middleware: request ids, access log and metrics, the last-resort 500, the body limit.

Both run before FastAPI reads anything. The body limit refuses an oversized ``Content-Length`` at
once and otherwise counts the bytes of every ``http.request`` message as the app reads them, so a
50 MB body costs at most the limit in memory before the 413. The evidence upload has its own limit
(the evidence cap) instead of the JSON body limit.
"""

from __future__ import annotations

import itertools
import re
import secrets
import time
from collections.abc import Callable, MutableMapping
from typing import Any

from api.auth import ACTOR_SCOPE_KEY
from api.errors import (
    REQUEST_ID_SCOPE_KEY,
    PayloadTooLargeError,
    ledger_error_response,
    problem_body,
    problem_response,
)
from api.logs import get_logger
from api.metrics import Metrics
from domain.errors import LedgerError, MalformedInputError

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
ASGIApp = Any

REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9._-]{8,64}$")
# Request ids: a random per-process prefix and a counter (32 hex characters, unique across processes).
# Not uuid4: its os.urandom system call drops the GIL on the event loop thread, and taking it back
# from a busy group-commit writer thread can cost up to a switch interval.
_ID_PREFIX = secrets.token_hex(8)
_ID_COUNTER = itertools.count(1)
UNMATCHED_ROUTE = "(unmatched)"
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT"})


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return bytes(value)
    return None


class RouteTable:
    """Path templates and methods of the app's routes, for log labels and ``Allow`` headers."""

    def __init__(self, routes: list[tuple[str, Any, set[str]]]) -> None:
        self.routes = routes  # (template, compiled path regex, methods)

    @classmethod
    def of(cls, routers: list[Any]) -> RouteTable:
        return cls(
            [
                (r.path, r.path_regex, set(getattr(r, "methods", None) or ()))  # a Mount has no methods
                for router in routers
                for r in router.routes
                if hasattr(r, "path_regex") and hasattr(r, "path")
            ]
        )

    def template_for(self, path: str) -> str:
        return next((t for t, regex, _ in self.routes if regex.match(path)), UNMATCHED_ROUTE)

    def methods_for(self, path: str) -> list[str]:
        return sorted({m for _, regex, methods in self.routes if regex.match(path) for m in methods})


def _route_template(scope: Scope, table: RouteTable | None) -> str:
    path = getattr(scope.get("route"), "path", None)
    if isinstance(path, str):
        return path
    return UNMATCHED_ROUTE if table is None else table.template_for(scope.get("path", ""))


class RequestContextMiddleware:
    """X-Request-ID on every response, one structured log line and one metric per request."""

    def __init__(self, app: ASGIApp, metrics: Metrics, routes: RouteTable | None = None) -> None:
        self.app = app
        self.metrics = metrics
        self.routes = routes
        self.log = get_logger()

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = (_header(scope, b"x-request-id") or b"").decode("latin-1")
        request_id = incoming if REQUEST_ID_RE.match(incoming) else f"{_ID_PREFIX}{next(_ID_COUNTER):016x}"
        scope[REQUEST_ID_SCOPE_KEY] = request_id
        state = {"status": 500, "started": False}
        started = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                state["status"], state["started"] = message["status"], True
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"x-request-id"]
                message = {**message, "headers": [*headers, (b"x-request-id", request_id.encode("ascii"))]}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception as exc:  # anything unmapped: a problem document, never a traceback or its text
            scope["evidence_ledger.error_type"] = type(exc).__name__
            if state["started"]:
                raise
            body = problem_body(500, "INTERNAL_ERROR", "internal error; quote the request id", request_id=request_id)
            await problem_response(500, body)(scope, receive, send_with_id)
        finally:
            self._record(scope, int(state["status"]), time.perf_counter() - started, request_id)

    def _record(self, scope: Scope, status: int, seconds: float, request_id: str) -> None:
        route = _route_template(scope, self.routes)
        method = scope["method"] if scope["method"] in KNOWN_METHODS else "OTHER"  # bounded label values
        self.metrics.count_request(route, method, status)
        principal = scope.get(ACTOR_SCOPE_KEY)
        fields: dict[str, Any] = {
            "request_id": request_id, "method": method, "route": route, "status": status,
            "latency_ms": round(seconds * 1000, 3),
        }
        if principal is not None:
            fields.update(actor=principal.actor, role=principal.role)
        if scope.get("evidence_ledger.error_code"):
            fields["code"] = scope["evidence_ledger.error_code"]
        if scope.get("evidence_ledger.error_type"):
            fields["error_type"] = scope["evidence_ledger.error_type"]
        level = "error" if status >= 500 else "info"
        getattr(self.log, level)("request", **fields)


LimitError = Callable[[int], LedgerError]


def _payload_too_large(limit: int) -> LedgerError:
    return PayloadTooLargeError(f"request body is larger than {limit} bytes", limit=limit)


class BodyLimitMiddleware:
    """413 for bodies above ``limit`` bytes, decided from Content-Length or while reading.

    ``overrides`` maps (method, exact path) to another limit and the error to raise, e.g. the
    evidence upload, whose cap (20 GiB by default) replaces the JSON body limit."""

    def __init__(
        self, app: ASGIApp, limit: int, overrides: dict[tuple[str, str], tuple[int, LimitError]] | None = None
    ) -> None:
        self.app = app
        self.limit = limit
        self.overrides = overrides or {}

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] not in BODY_METHODS:
            await self.app(scope, receive, send)  # no route reads a body for other methods
            return
        route = (scope["method"], scope.get("path", ""))
        limit, too_large = self.overrides.get(route, (self.limit, _payload_too_large))
        declared = _header(scope, b"content-length")
        if declared is not None and (not declared.isdigit() or len(declared) > 18 or int(declared) > limit):
            exc: LedgerError = (
                too_large(limit)
                if declared.isdigit()
                else MalformedInputError("Content-Length is not a number", code="BAD_CONTENT_LENGTH")
            )
            scope["evidence_ledger.error_code"] = exc.code
            response = ledger_error_response(exc, scope.get(REQUEST_ID_SCOPE_KEY))
            response.headers["Connection"] = "close"
            await response(scope, receive, send)
            return
        received = 0

        async def counting_receive() -> Message:
            nonlocal received
            message: Message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise too_large(limit)
            return message

        await self.app(scope, counting_receive, send)
