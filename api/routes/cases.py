"""Cases: append a signed event, list and read cases, their stored envelopes and timelines."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from starlette.responses import Response

from api import schemas
from api.appending import append_envelope, json_response, refuse_registry_stream, runtime_of, visible_case
from api.auth import CaseWriter, Reader, may_see_case
from api.errors import problems

router = APIRouter(prefix="/v1/cases", tags=["cases"])

UUID_PATTERN = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
MAX_SEQ = 2**53
PAGE_MAX = 1000
MAX_SCANS = 20

CaseId = Annotated[str, Path(pattern=UUID_PATTERN, description="case UUID (lowercase, hyphenated)")]
Limit = Annotated[int, Query(ge=1, le=PAGE_MAX, description="page size")]
AfterSeq = Annotated[int, Query(ge=0, le=MAX_SEQ, description="return entries with seq greater than this")]
Word = Annotated[str | None, Query(pattern=r"^[a-z_]{1,64}$")]


@router.post(
    "/{case_id}/events",
    summary="Append one signed event (a DSSE envelope) to a case",
    status_code=201,
    responses={
        200: {"model": schemas.WaitedReceipt, "description": "This exact envelope was already accepted; nothing written"},
        201: {"model": schemas.WaitedReceipt, "description": "Accepted and durably committed"},
        **problems(400, 401, 403, 404, 409, 413, 422, 503),
    },
    openapi_extra=schemas.json_body(schemas.ENVELOPE_SCHEMA, "one DSSE envelope, exactly as signed"),
)
async def post_event(
    request: Request,
    case_id: CaseId,
    principal: CaseWriter,
    wait: Annotated[bool, Query(description="also return a checkpoint and an inclusion proof")] = False,
) -> Response:
    refuse_registry_stream(case_id)
    return await append_envelope(request, principal, case_id=case_id, wait=wait)


@router.get(
    "",
    summary="List cases (cursor pagination)",
    response_model=schemas.CasePage,
    responses=problems(400, 401, 403, 503),
)
def list_cases(
    request: Request,
    principal: Reader,
    status: Word = None,
    category: Word = None,
    after: Annotated[str | None, Query(pattern=UUID_PATTERN, description="cursor: the last case_id seen")] = None,
    limit: Limit = 50,
) -> Response:
    ledger = runtime_of(request).ledger
    collected: list[dict[str, Any]] = []
    cursor = after
    for _ in range(MAX_SCANS):
        page = ledger.list_cases(status=status, category=category, after=cursor, limit=limit)
        for view in page:
            cursor = view["case_id"]
            if may_see_case(principal, view):
                collected.append(view)
                if len(collected) == limit:
                    return json_response({"items": collected, "next": cursor})
        if len(page) < limit:
            return json_response({"items": collected, "next": None})
    return json_response({"items": collected, "next": cursor})


@router.get(
    "/{case_id}",
    summary="One case (its projection: no narratives, locations or reporter data)",
    response_model=schemas.CaseView,
    responses=problems(400, 401, 403, 404, 503),
)
def get_case(request: Request, case_id: CaseId, principal: Reader) -> Response:
    return json_response(visible_case(runtime_of(request), principal, case_id))


@router.get(
    "/{case_id}/events",
    summary="The case's stored envelopes in seq order, exactly as stored",
    response_model=schemas.EnvelopePage,
    responses=problems(400, 401, 403, 404, 503),
)
def get_events(request: Request, case_id: CaseId, principal: Reader, after: AfterSeq = 0, limit: Limit = 100) -> Response:
    runtime = runtime_of(request)
    visible_case(runtime, principal, case_id)
    raws = runtime.ledger.case_envelopes(case_id, after=after, limit=limit + 1)
    items = [{"seq": after + i + 1, "envelope": raw.decode("utf-8")} for i, raw in enumerate(raws[:limit])]
    return json_response({"items": items, "next": items[-1]["seq"] if len(raws) > limit else None})


@router.get(
    "/{case_id}/timeline",
    summary="The case's timeline: one non-personal line per event",
    response_model=schemas.TimelinePage,
    responses=problems(400, 401, 403, 404, 503),
)
def get_timeline(
    request: Request, case_id: CaseId, principal: Reader, after: AfterSeq = 0, limit: Limit = 100
) -> Response:
    runtime = runtime_of(request)
    visible_case(runtime, principal, case_id)
    entries = runtime.ledger.timeline(case_id, after=after, limit=limit + 1)
    page = entries[:limit]
    return json_response({"items": page, "next": page[-1]["seq"] if len(entries) > limit else None})
