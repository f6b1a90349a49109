"""The only place that maps :mod:`domain.errors` to HTTP: RFC 9457 ``application/problem+json``.

Every problem has a stable ``type`` (``urn:evidence-ledger:problem:<code in kebab case>``), a
``title`` per status, the error's ``detail`` message and ``code``, its non-personal ``refs`` and
the ``request_id``. Submitted values are never echoed: validation errors keep only where and why.
"""

from __future__ import annotations

import json
import math
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from domain.errors import (
    AuthorizationError,
    ConflictError,
    DomainError,
    LedgerError,
    MalformedInputError,
    NotFoundError,
    VerificationError,
)
from ledger.settings import ConfigurationError
from ledger.storage.sql import StorageError

PROBLEM_TYPE = "urn:evidence-ledger:problem:"
PROBLEM_MEDIA_TYPE = "application/problem+json"
REQUEST_ID_SCOPE_KEY = "evidence_ledger.request_id"


class UnauthenticatedError(AuthorizationError):
    """No valid credential (maps to 401)."""

    code = "UNAUTHENTICATED"


class PayloadTooLargeError(MalformedInputError):
    """The request body exceeds the configured limit (maps to 413)."""

    code = "PAYLOAD_TOO_LARGE"


class UnavailableError(LedgerError):
    """The service is starting, stopping or not ready (maps to 503)."""

    code = "UNAVAILABLE"


_STATUS_BY_CLASS: tuple[tuple[type[LedgerError], int], ...] = (
    (UnauthenticatedError, 401),
    (PayloadTooLargeError, 413),
    (StorageError, 503),
    (UnavailableError, 503),
    (ConfigurationError, 503),
    (MalformedInputError, 400),
    (VerificationError, 400),
    (DomainError, 422),
    (AuthorizationError, 403),
    (NotFoundError, 404),
    (ConflictError, 409),
)
_STATUS_BY_CODE = {
    "TOO_LARGE": 413,
    "EVIDENCE_TOO_LARGE": 413,
    "DIGEST_MISMATCH": 422,
    "INTEGRITY_FAILURE": 500,
    "SHREDDED": 410,  # the sealed record's key was destroyed: gone for good  # the stored history does not verify: the server's fault, not the request's
}
ROLLBACK_CODE = "ROLLBACK_DETECTED"
OPERATOR_CODES = (ROLLBACK_CODE, "STATE_TAMPERED")  # 503s that wait for an operator, not for a retry
DEFAULT_RETRY_AFTER = "1"
NOT_WITNESSED = "NOT_WITNESSED"  # production profile: no checkpoint cosigned by enough witnesses yet

TITLES = {
    400: "Bad request",
    401: "Authentication required",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    410: "Gone",
    413: "Payload too large",
    422: "Rule violation",
    500: "Internal error",
    503: "Service unavailable",
}
DESCRIPTIONS = {
    400: "Malformed request, body, envelope or signature; binding or clock mismatch",
    401: "Missing, unknown, expired or revoked bearer token",
    403: "The caller's role or signing key may not do this",
    404: "No such resource (or not visible to the caller)",
    409: "Version conflict or reused event id",
    410: "The sealed record was shredded: it can never be unsealed (SHREDDED)",
    413: "Request body larger than the configured limit",
    422: "A rule of the case or of the executive order refused the event, or the upload's digest differs",
    500: "Internal error, or the stored history does not verify (INTEGRITY_FAILURE)",
    503: "Database unavailable, service not ready, writes refused (rollback detected), or (production) no"
    " checkpoint cosigned by enough witnesses yet (NOT_WITNESSED)",
}


def status_for(exc: LedgerError) -> int:
    if exc.code in _STATUS_BY_CODE:
        return _STATUS_BY_CODE[exc.code]
    for cls, status in _STATUS_BY_CLASS:
        if isinstance(exc, cls):
            return status
    return 500


def problem_type(code: str) -> str:
    return PROBLEM_TYPE + code.lower().replace("_", "-")


def _safe_ref(value: object) -> Any:
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, list | tuple):
        return [_safe_ref(v) for v in value[:20]]
    return str(value)[:200]


def problem_body(status: int, code: str, detail: str, *, refs: dict[str, object] | None = None,
                 request_id: str | None = None, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": problem_type(code),
        "title": TITLES.get(status, "Error"),
        "status": status,
        "detail": detail,
        "code": code,
        "refs": {str(k): _safe_ref(v) for k, v in (refs or {}).items()},
    }
    if request_id is not None:
        body["request_id"] = request_id
    body.update(extra)
    return body


def problem_response(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> Response:
    content = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return Response(content, status_code=status, media_type=PROBLEM_MEDIA_TYPE, headers=headers)


def ledger_error_response(
    exc: LedgerError, request_id: str | None, *, retry_after: str = DEFAULT_RETRY_AFTER
) -> Response:
    status = status_for(exc)
    headers: dict[str, str] = {}
    if status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="evidence-ledger"'
    if status == 503:
        headers["Retry-After"] = retry_after
    body = problem_body(status, exc.code, exc.message, refs=exc.refs, request_id=request_id)
    return problem_response(status, body, headers)


def request_id_of(request: Request) -> str | None:
    value = request.scope.get(REQUEST_ID_SCOPE_KEY)
    return value if isinstance(value, str) else None


async def _ledger_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, LedgerError)
    request.scope["evidence_ledger.error_code"] = exc.code
    retry_after = DEFAULT_RETRY_AFTER
    if exc.code in OPERATOR_CODES:  # an operator must restore or rebuild: no point in retrying at once
        runtime = getattr(request.app.state, "runtime", None)
        retry_after = str(getattr(getattr(runtime, "api_settings", None), "rollback_retry_after", 60))
    elif exc.code == NOT_WITNESSED:  # the witnesses are asked once per checkpoint: about a round later
        runtime = getattr(request.app.state, "runtime", None)
        interval = getattr(getattr(runtime, "settings", None), "checkpoint_interval", 1.0)
        timeout = getattr(getattr(runtime, "api_settings", None), "witness_timeout", 2.0)
        retry_after = str(max(1, math.ceil(interval + 2 * timeout)))
    return ledger_error_response(exc, request_id_of(request), retry_after=retry_after)


async def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    errors = [
        {"loc": [str(p) for p in e.get("loc", ())], "msg": str(e.get("msg", "")), "type": str(e.get("type", ""))}
        for e in exc.errors()[:20]
    ]  # 'input' and 'ctx' are dropped: they may hold personal data
    request.scope["evidence_ledger.error_code"] = "INVALID_REQUEST"
    body = problem_body(
        400, "INVALID_REQUEST", "request parameters are invalid", request_id=request_id_of(request), errors=errors
    )
    return problem_response(400, body)


def allowed_methods(request: Request) -> list[str]:
    """Every method some route accepts for this path (for a complete ``Allow`` header)."""
    table = getattr(request.app.state, "route_table", None)
    return [] if table is None else table.methods_for(request.url.path)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    status = exc.status_code
    code = {404: "ROUTE_NOT_FOUND", 405: "METHOD_NOT_ALLOWED"}.get(status, f"HTTP_{status}")
    detail = {404: "no such endpoint", 405: "method not allowed for this endpoint"}.get(status, "request refused")
    headers = dict(exc.headers or {})
    if status == 405:
        headers["Allow"] = ", ".join(allowed_methods(request))
    request.scope["evidence_ledger.error_code"] = code
    return problem_response(status, problem_body(status, code, detail, request_id=request_id_of(request)), headers)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(LedgerError, _ledger_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)


# -- OpenAPI --------------------------------------------------------------------------------------

PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "Problem",
    "type": "object",
    "description": "RFC 9457 problem details",
    "required": ["type", "title", "status", "detail", "code", "refs"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "code": {"type": "string"},
        "refs": {"type": "object"},
        "request_id": {"type": "string"},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "loc": {"type": "array", "items": {"type": "string"}},
                    "msg": {"type": "string"},
                    "type": {"type": "string"},
                },
            },
        },
    },
}


def problems(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """``responses=`` entries documenting problem+json answers with the given statuses."""
    return {
        status: {
            "description": DESCRIPTIONS.get(status, TITLES.get(status, "Error")),
            "content": {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}},
        }
        for status in statuses
    }
