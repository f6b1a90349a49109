"""The access log for auditors: entries (filtered, paginated), the signed access checkpoint, proofs.

Reading any of it is itself recorded in the access log. See docs/access-log.md.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from starlette.responses import PlainTextResponse, Response

from api import schemas
from api.access import Access, audited
from api.appending import json_response, runtime_of
from api.errors import problems
from domain.errors import MalformedInputError, NotFoundError
from ledger.log.access_entry import MAX_ACTOR
from ledger.log.proof_json import consistency_proof_json, inclusion_proof_json

router = APIRouter(prefix="/v1/access-log", tags=["access log"])

MAX_INDEX = 2**53
PAGE_MAX = 1000
UUID_PATTERN = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
TEXT = {"text/plain": {"schema": {"type": "string"}}}
Size = Annotated[int, Query(ge=1, le=MAX_INDEX)]
EntryReader = Annotated[Access, Depends(audited("access_log.read", "auditor"))]
CheckpointReader = Annotated[Access, Depends(audited("access_log.checkpoint", "auditor"))]
ProofReader = Annotated[Access, Depends(audited("access_log.proof", "auditor"))]


@router.get(
    "",
    summary="Access-log entries with their leaf index, oldest first (auditors; cursor pagination)",
    description="Page with `after` (the previous page's `next`); `cursor` is its deprecated name.",
    response_model=schemas.AccessLogPage,
    responses=problems(400, 401, 403, 503),
)
def entries(
    request: Request,
    access: EntryReader,
    case_id: Annotated[str | None, Query(pattern=UUID_PATTERN, description="only entries naming this case")] = None,
    actor: Annotated[
        str | None, Query(min_length=1, max_length=MAX_ACTOR, description="only entries of this actor")
    ] = None,
    after: Annotated[
        int | None, Query(ge=0, le=MAX_INDEX, description="cursor: the last leaf_index seen (the previous `next`)")
    ] = None,
    cursor: Annotated[
        int | None,
        Query(ge=0, le=MAX_INDEX, deprecated=True, description="deprecated name of `after` (same meaning)"),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=PAGE_MAX, description="page size")] = 100,
) -> Response:
    if after is not None and cursor is not None:
        raise MalformedInputError("give `after` only (`cursor` is its deprecated name)", code="BAD_ARGUMENT")
    deprecated = cursor is not None
    cursor = after if cursor is None else cursor
    access.allowed(case_id=case_id)
    log = runtime_of(request).ledger.access_log
    rows = log.entries(case_id=case_id, actor=actor, after=-1 if cursor is None else cursor, limit=limit + 1)
    items = [{"leaf_index": r.index, "entry": _parsed(r.entry), "leaf": r.entry.decode("utf-8", "replace")}
             for r in rows[:limit]]
    response = json_response({"items": items, "next": items[-1]["leaf_index"] if len(rows) > limit else None})
    if deprecated:  # RFC 9745: this request used a deprecated parameter
        response.headers["Deprecation"] = "true"
    return response


def _parsed(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return None


def _note(checkpoint: object) -> Response:
    if checkpoint is None:
        raise NotFoundError("the access log has no checkpoint yet", code="NO_CHECKPOINT")
    return Response(checkpoint.note, media_type="text/plain; charset=utf-8")  # type: ignore[attr-defined]


@router.get(
    "/checkpoint",
    summary="The latest signed access checkpoint (C2SP signed note, origin <origin>/access; auditors)",
    response_class=PlainTextResponse,
    responses={200: {"content": TEXT}, **problems(401, 403, 404, 503)},
)
def latest_checkpoint(request: Request, access: CheckpointReader) -> Response:
    access.allowed()
    return _note(runtime_of(request).ledger.access_log.latest_checkpoint())


@router.get(
    "/checkpoints/{size}",
    summary="The access checkpoint signed for exactly this size (auditors)",
    response_class=PlainTextResponse,
    responses={200: {"content": TEXT}, **problems(400, 401, 403, 404, 503)},
)
def checkpoint_at(
    request: Request, access: CheckpointReader, size: Annotated[int, Path(ge=1, le=MAX_INDEX)]
) -> Response:
    access.allowed()
    return _note(runtime_of(request).ledger.access_log.checkpoint_at(size))


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise MalformedInputError(message, code="BAD_ARGUMENT")


@router.get(
    "/proof/inclusion",
    summary="RFC 6962 inclusion proof of access entry INDEX in the access tree of SIZE (default: latest checkpoint)",
    response_model=schemas.InclusionProof,
    responses=problems(400, 401, 403, 404, 503),
)
def inclusion(
    request: Request, access: ProofReader, index: Annotated[int, Query(ge=0, le=MAX_INDEX)], size: Size | None = None
) -> Response:
    access.allowed()
    log = runtime_of(request).ledger.access_log
    if size is None:
        checkpoint = log.latest_checkpoint()
        if checkpoint is None:
            raise NotFoundError("the access log has no checkpoint yet", code="NO_CHECKPOINT")
        size = checkpoint.size
    _check(index < size, "index must be less than size")
    return json_response(inclusion_proof_json(index, log.inclusion_proof(index, size), tree_size=size))


@router.get(
    "/proof/consistency",
    summary="RFC 6962 consistency proof between access tree sizes FIRST and SECOND",
    response_model=schemas.ConsistencyProof,
    responses=problems(400, 401, 403, 404, 503),
)
def consistency(request: Request, access: ProofReader, first: Size, second: Size) -> Response:
    access.allowed()
    _check(first <= second, "first must not exceed second")
    path = runtime_of(request).ledger.access_log.consistency_proof(first, second)
    return json_response(consistency_proof_json(path, first=first, second=second))
