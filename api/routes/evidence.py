"""Evidence files: streaming upload into the content-addressed footage store, recorded download.

``POST /v1/evidence`` hashes the body while it streams into a temporary file of the store (the
JSON body limit does not apply; the evidence cap does, counted while reading) and installs it under
its SHA-256 only once complete: an interrupted, oversized or mismatching upload leaves nothing.

``GET /v1/evidence/{sha256}?case_id=`` records the download in the access log (``api/access.py``)
before the first byte is sent: no byte leaves without a trace. Nothing is appended to the case.
"""

from __future__ import annotations

import os
from typing import IO, Annotated, Any

from fastapi import APIRouter, Depends, Header, Path, Query, Request
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect
from starlette.responses import Response

from api import schemas
from api.access import Access, audited
from api.appending import json_response, refuse_if_blocked, runtime_of, visible_case
from api.auth import Principal, require
from api.errors import UnavailableError, problems
from api.runtime import Runtime
from api.streaming import CHUNK, FileStreamResponse
from domain.errors import MalformedInputError
from ledger.evidence.footage import FootageStore, FootageWriter, check_sha256, require_evidence

router = APIRouter(prefix="/v1/evidence", tags=["evidence"])

UUID_PATTERN = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
# The former EvidenceAccessed.purpose: 1-2000 characters, no control characters except tab and line breaks
PURPOSE_PATTERN = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]+$"
SHA256_PATTERN = "^[0-9a-f]{64}$"
BINARY = {"schema": {"type": "string", "format": "binary"}}

Uploader = Annotated[Principal, Depends(require("investigator", "supervisor"))]
EvidenceReader = Annotated[
    Access, Depends(audited("evidence.download", "investigator", "supervisor", "auditor", "prosecutor"))
]
Purpose = Annotated[
    str | None,
    Query(
        min_length=1, max_length=2000, pattern=PURPOSE_PATTERN,
        description="accepted for compatibility, never recorded: access entries carry no free text",
    ),
]


def _store(runtime: Runtime) -> FootageStore:
    if runtime.footage is None:
        raise UnavailableError("the service is not started")
    return runtime.footage


def _writer(runtime: Runtime, expected: str | None) -> FootageWriter:
    runtime.ledger.require_writable()  # the authoritative rollback check, before anything is written
    return _store(runtime).writer(expected_sha256=expected)


@router.post(
    "",
    summary="Upload one evidence file (streamed, hashed while it arrives) into the content-addressed store",
    status_code=201,
    responses={
        200: {"model": schemas.StoredEvidence, "description": "A file with these bytes was already stored"},
        201: {"model": schemas.StoredEvidence, "description": "Stored (fsynced) under its SHA-256"},
        **problems(400, 401, 403, 413, 422, 503),
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "description": "the file's bytes (any size up to the evidence cap, 20 GiB by default)",
            "content": {"application/octet-stream": BINARY},
        }
    },
)
async def upload_evidence(
    request: Request,
    principal: Uploader,
    expected_sha256: Annotated[
        str | None,
        Header(
            alias="X-Expected-SHA256",
            description="the SHA-256 (64 lowercase hex) the client computed; 422 DIGEST_MISMATCH if the bytes differ",
        ),
    ] = None,
) -> Response:
    runtime = runtime_of(request)
    refuse_if_blocked(runtime)
    expected = None if expected_sha256 is None else check_sha256(expected_sha256)
    writer = await run_in_threadpool(_writer, runtime, expected)
    try:
        buffered = bytearray()
        async for chunk in request.stream():
            buffered += chunk
            if len(buffered) >= CHUNK:
                await run_in_threadpool(writer.write, buffered)
                buffered = bytearray()
        if buffered:
            await run_in_threadpool(writer.write, buffered)
        sha, size, created = await run_in_threadpool(writer.commit)
    except ClientDisconnect:
        writer.abort()
        raise MalformedInputError("the upload ended before its last byte", code="UPLOAD_INCOMPLETE") from None
    except BaseException:
        writer.abort()  # synchronous on purpose: it must also run when the request is cancelled
        raise
    return json_response({"sha256": sha, "size_bytes": size}, 201 if created else 200)


def _open(runtime: Runtime, access: Access, case_id: str, sha256: str) -> tuple[IO[bytes], int, int]:
    """Check, record (before anything is opened), open: (file, size, access entry index)."""
    store = _store(runtime)
    with access.guard(case_id=case_id, item=sha256) as recorded:
        visible_case(runtime, access.caller, case_id)
        require_evidence(runtime.ledger, store, case_id, sha256)
    assert recorded.index is not None
    handle = store.open(sha256)
    return handle, os.fstat(handle.fileno()).st_size, recorded.index


@router.get(
    "/{sha256:path}",
    summary="Download an evidence file of a case; the download is recorded in the access log before the first byte",
    response_class=Response,
    responses={
        200: {
            "content": {"application/octet-stream": BINARY},
            "description": "The file, exactly as stored",
            "headers": {
                "X-Access-Entry-Index": {"description": "index of this download's entry in the access log",
                                         "schema": {"type": "integer"}},
            },
        },
        **problems(400, 401, 403, 404, 503),
    },
)
async def download_evidence(
    request: Request,
    sha256: Annotated[str, Path(description="the file's SHA-256 (64 lowercase hex)")],
    access: EvidenceReader,
    case_id: Annotated[str, Query(pattern=UUID_PATTERN, description="the case that records the file")],
    purpose: Purpose = None,
) -> Response:
    check_sha256(sha256)
    runtime = runtime_of(request)
    handle, size, index = await run_in_threadpool(_open, runtime, access, case_id, sha256)
    headers: dict[str, Any] = {
        "Content-Disposition": f'attachment; filename="{sha256}"',
        "Cache-Control": "no-store",
        "X-Content-Type-Options": "nosniff",
        "X-Access-Entry-Index": str(index),
    }
    return FileStreamResponse(handle, size, media_type="application/octet-stream", headers=headers)
