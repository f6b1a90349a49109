"""Evidence files: streaming upload into the content-addressed footage store, recorded download.

``POST /v1/evidence`` hashes the body while it streams into a temporary file of the store (the
JSON body limit does not apply; the evidence cap does, counted while reading) and installs it under
its SHA-256 only once complete: an interrupted, oversized or mismatching upload leaves nothing.

``GET /v1/evidence/{sha256}?case_id=&purpose=`` appends a signed ``EvidenceAccessed`` (service key)
to the case before the first byte is sent: no byte leaves without a trace in the ledger.
"""

from __future__ import annotations

from typing import IO, Annotated, Any

from fastapi import APIRouter, Depends, Header, Path, Query, Request
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect
from starlette.responses import Response

from api import schemas
from api.appending import json_response, refuse_if_blocked, runtime_of, visible_case
from api.auth import Principal, require
from api.errors import UnavailableError, problems
from api.runtime import Runtime
from api.streaming import CHUNK, FileStreamResponse
from domain.errors import MalformedInputError
from ledger.append import Receipt
from ledger.evidence.footage import FootageStore, FootageWriter, check_sha256, open_evidence

router = APIRouter(prefix="/v1/evidence", tags=["evidence"])

UUID_PATTERN = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
# EvidenceAccessed.purpose: 1-2000 characters, no control characters except tab and line breaks
PURPOSE_PATTERN = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]+$"
SHA256_PATTERN = "^[0-9a-f]{64}$"
BINARY = {"schema": {"type": "string", "format": "binary"}}

Uploader = Annotated[Principal, Depends(require("investigator", "supervisor"))]
EvidenceReader = Annotated[Principal, Depends(require("investigator", "supervisor", "auditor", "prosecutor"))]
Purpose = Annotated[
    str,
    Query(
        min_length=1, max_length=2000, pattern=PURPOSE_PATTERN,
        description="why the file is opened; recorded in the signed EvidenceAccessed event",
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


def _open(
    runtime: Runtime, principal: Principal, case_id: str, sha256: str, purpose: str
) -> tuple[IO[bytes], int, Receipt]:
    visible_case(runtime, principal, case_id)
    with runtime.access_lock(case_id):
        return open_evidence(
            runtime.ledger, _store(runtime), case_id, sha256, actor=principal.actor, purpose=purpose,
            append=runtime.append_one,
        )


@router.get(
    "/{sha256:path}",
    summary="Download an evidence file of a case; a signed EvidenceAccessed is appended before the first byte",
    response_class=Response,
    responses={
        200: {
            "content": {"application/octet-stream": BINARY},
            "description": "The file, exactly as stored",
            "headers": {
                "X-Access-Event-Id": {"description": "event id of the EvidenceAccessed appended for this download",
                                      "schema": {"type": "string"}},
                "X-Access-Leaf-Index": {"description": "its leaf index in the log", "schema": {"type": "integer"}},
            },
        },
        **problems(400, 401, 403, 404, 409, 422, 503),
    },
)
async def download_evidence(
    request: Request,
    sha256: Annotated[str, Path(description="the file's SHA-256 (64 lowercase hex)")],
    principal: EvidenceReader,
    case_id: Annotated[str, Query(pattern=UUID_PATTERN, description="the case that records the file")],
    purpose: Purpose,
) -> Response:
    check_sha256(sha256)
    runtime = runtime_of(request)
    refuse_if_blocked(runtime)
    handle, size, receipt = await run_in_threadpool(_open, runtime, principal, case_id, sha256, purpose)
    headers: dict[str, Any] = {
        "Content-Disposition": f'attachment; filename="{sha256}"',
        "Cache-Control": "no-store",
        "X-Content-Type-Options": "nosniff",
        "X-Access-Event-Id": receipt.event_id,
        "X-Access-Leaf-Index": str(receipt.leaf_index),
    }
    return FileStreamResponse(handle, size, media_type="application/octet-stream", headers=headers)
