"""Cases: append a signed event, list and read cases, their stored envelopes, timelines and chains of
custody."""

from __future__ import annotations

import shutil
import tempfile
import zipfile
from pathlib import Path
from typing import IO, Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi import Path as PathParam
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from api import schemas
from api.access import Access, audited
from api.appending import append_envelope, json_response, refuse_registry_stream, runtime_of, visible_case
from api.auth import CaseWriter, may_see_case
from api.errors import UnavailableError, problems
from api.reads import reading
from api.routes.evidence import PURPOSE_PATTERN
from api.streaming import FileStreamResponse
from ledger.evidence.bundle import BundleInfo, NotCheckpointed, NotWitnessed, export_bundle
from ledger.log.access_entry import ITEM_PATTERN

router = APIRouter(prefix="/v1/cases", tags=["cases"])

UUID_PATTERN = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
MAX_SEQ = 2**53
PAGE_MAX = 1000
MAX_SCANS = 20

CaseId = Annotated[str, PathParam(pattern=UUID_PATTERN, description="case UUID (lowercase, hyphenated)")]
Limit = Annotated[int, Query(ge=1, le=PAGE_MAX, description="page size")]
AfterSeq = Annotated[int, Query(ge=0, le=MAX_SEQ, description="return entries with seq greater than this")]
AfterStep = Annotated[int, Query(ge=0, le=MAX_SEQ, description="return links with step greater than this")]
FootageId = Annotated[str, PathParam(pattern=r"^[A-Za-z0-9._:-]{1,128}$", description="the footage id in the case")]
Word = Annotated[str | None, Query(pattern=r"^[a-z_]{1,64}$")]
CaseLister = Annotated[Access, Depends(audited("cases.list"))]
CaseReader = Annotated[Access, Depends(audited("case.read"))]
EventsReader = Annotated[Access, Depends(audited("case.events"))]
TimelineReader = Annotated[Access, Depends(audited("case.timeline"))]
CustodyReader = Annotated[Access, Depends(audited("case.custody"))]
BundleReader = Annotated[Access, Depends(audited("case.bundle", "prosecutor", "auditor", "supervisor"))]


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
    access: CaseLister,
    status: Word = None,
    category: Word = None,
    number: Annotated[
        str | None, Query(pattern=r"^[A-Za-z0-9._:-]{1,128}$", description="only the case opened with this case number")
    ] = None,
    after: Annotated[str | None, Query(pattern=UUID_PATTERN, description="cursor: the last case_id seen")] = None,
    limit: Limit = 50,
) -> Response:
    read = reading(request)
    with access.guard():
        page = _list_page(read.ledger, access, status, category, number, after, limit)
    return read.stamp(json_response(page))


def _list_page(
    ledger: Any,
    access: Access,
    status: str | None,
    category: str | None,
    number: str | None,
    after: str | None,
    limit: int,
) -> dict[str, Any]:
    principal = access.caller
    collected: list[dict[str, Any]] = []
    cursor = after
    for _ in range(MAX_SCANS):
        page = ledger.list_cases(status=status, category=category, number=number, after=cursor, limit=limit)
        for view in page:
            cursor = view["case_id"]
            if may_see_case(principal, view):
                collected.append(view)
                if len(collected) == limit:
                    return {"items": collected, "next": cursor}
        if len(page) < limit:
            return {"items": collected, "next": None}
    return {"items": collected, "next": cursor}


@router.get(
    "/{case_id}",
    summary="One case (its projection: no narratives, locations or reporter data), now or at a past point",
    response_model=schemas.CaseView,
    responses=problems(400, 401, 403, 404, 500, 503),
)
def get_case(
    request: Request,
    case_id: CaseId,
    access: CaseReader,
    as_of: Annotated[
        str | None,
        Query(min_length=1, max_length=64, description="the case as the ledger knew it at this RFC 3339 time"),
    ] = None,
    at_index: Annotated[
        int | None, Query(ge=0, le=MAX_SEQ, description="the case as the ledger knew it after this leaf index")
    ] = None,
) -> Response:
    runtime = runtime_of(request)
    read = reading(request, at_least=0 if at_index is None else at_index + 1)
    ledger = read.ledger
    with access.guard(case_id=case_id):
        if as_of is None and at_index is None and access.caller.role != "prosecutor":
            # Everyone but a prosecutor may see every case: serve the stored projection bytes as they are.
            response = Response(ledger.case_view_json(case_id), media_type="application/json")
        else:
            view = visible_case(runtime, access.caller, case_id, ledger)
            if as_of is None and at_index is None:
                response = json_response(view)
            else:
                response = json_response(ledger.case_at(case_id, as_of=as_of, at_index=at_index))
    return read.stamp(response)


@router.get(
    "/{case_id}/events",
    summary="The case's stored envelopes in seq order, exactly as stored",
    response_model=schemas.EnvelopePage,
    responses=problems(400, 401, 403, 404, 503),
)
def get_events(
    request: Request, case_id: CaseId, access: EventsReader, after: AfterSeq = 0, limit: Limit = 100
) -> Response:
    runtime = runtime_of(request)
    read = reading(request)
    with access.guard(case_id=case_id):
        visible_case(runtime, access.caller, case_id, read.ledger)
    raws = read.ledger.case_envelopes(case_id, after=after, limit=limit + 1)
    items = [{"seq": after + i + 1, "envelope": raw.decode("utf-8")} for i, raw in enumerate(raws[:limit])]
    return read.stamp(json_response({"items": items, "next": items[-1]["seq"] if len(raws) > limit else None}))


@router.get(
    "/{case_id}/timeline",
    summary="The case's timeline: one non-personal line per event",
    response_model=schemas.TimelinePage,
    responses=problems(400, 401, 403, 404, 503),
)
def get_timeline(
    request: Request, case_id: CaseId, access: TimelineReader, after: AfterSeq = 0, limit: Limit = 100
) -> Response:
    runtime = runtime_of(request)
    read = reading(request)
    with access.guard(case_id=case_id):
        visible_case(runtime, access.caller, case_id, read.ledger)
        entries = read.ledger.timeline(case_id, after=after, limit=limit + 1)
    page = entries[:limit]
    return read.stamp(json_response({"items": page, "next": page[-1]["seq"] if len(entries) > limit else None}))


@router.get(
    "/{case_id}/footage/{footage_id}/custody",
    summary="A footage item's chain of custody: one link per capture or transfer, oldest first",
    response_model=schemas.CustodyPage,
    responses=problems(400, 401, 403, 404, 503),
)
def get_custody(
    request: Request, case_id: CaseId, footage_id: FootageId, access: CustodyReader, after: AfterStep = 0,
    limit: Limit = 100,
) -> Response:
    runtime = runtime_of(request)
    item = footage_id if ITEM_PATTERN.fullmatch(footage_id) else None
    read = reading(request)
    with access.guard(case_id=case_id, item=item):
        visible_case(runtime, access.caller, case_id, read.ledger)
        links = read.ledger.custody(case_id, footage_id, after=after, limit=limit + 1)
    page = links[:limit]
    return read.stamp(json_response({"items": page, "next": page[-1]["step"] if len(links) > limit else None}))


MEDIA_PREFIX = "media/"


@router.get(
    "/{case_id}/bundle",
    summary="The case's self-contained evidence bundle (zip), checkable offline with `evidence-ledger verify`",
    response_class=Response,
    responses={
        200: {
            "content": {"application/zip": {"schema": {"type": "string", "format": "binary"}}},
            "description": "The bundle (format evidence-ledger-bundle/1)",
            "headers": {"X-Bundle-SHA256": {"description": "SHA-256 of the zip", "schema": {"type": "string"}}},
        },
        **problems(400, 401, 403, 404, 409, 503),
    },
)
async def get_bundle(
    request: Request,
    case_id: CaseId,
    access: BundleReader,
    with_media: Annotated[
        bool, Query(description="include the case's footage and derivatives held in the store")
    ] = False,
    purpose: Annotated[
        str | None,
        Query(
            min_length=1, max_length=2000, pattern=PURPOSE_PATTERN,
            description="accepted for compatibility, never recorded: access entries carry no free text",
        ),
    ] = None,
) -> Response:
    runtime = runtime_of(request)
    handle, info = await run_in_threadpool(_build_bundle, runtime, access, case_id, with_media)
    headers = {
        "X-Bundle-SHA256": info.sha256,
        "Content-Disposition": f'attachment; filename="case-{case_id}.zip"',
        "Cache-Control": "no-store",
    }
    return FileStreamResponse(handle, info.size, media_type="application/zip", headers=headers)


def _build_bundle(runtime: Any, access: Access, case_id: str, with_media: bool) -> tuple[IO[bytes], BundleInfo]:
    """Export into a private temporary folder, open the zip, delete the folder (the open file stays
    readable until it is closed, so nothing is left behind even if the process dies mid-stream).

    The export is recorded first, then an access checkpoint is signed, so the bundle carries the
    record of its own export among its case's access entries. With TSAs configured the checkpointer
    is asked for time-stamps over the bundle's checkpoint and waited for up to ``wait_timeout``
    seconds; a TSA that is down or slow leaves the bundle without its token (it still verifies;
    a verifier pinning that TSA reports TIMESTAMP_MISSING)."""
    ledger = runtime.ledger
    with access.guard(case_id=case_id):
        visible_case(runtime, access.caller, case_id)
    checkpoint = None
    if runtime.checkpointer is not None:  # the checkpointer signs (the writer); the export only reads
        runtime.checkpointer.wait_for(ledger.log_size(), runtime.api_settings.wait_timeout)
        checkpoint = ledger.published_checkpoint()  # the bundle's checkpoint
        if checkpoint is not None:  # its time-stamps (with TSAs configured), waited for a bounded time
            runtime.checkpointer.timestamp_for(checkpoint.size, runtime.api_settings.wait_timeout)
    ledger.access_log.checkpoint()
    folder = tempfile.mkdtemp(prefix="el-bundle-", dir=runtime.api_settings.tmp_dir)
    try:
        try:
            info = export_bundle(ledger, case_id, Path(folder) / "bundle.zip", with_media=with_media,
                                 store=runtime.footage, checkpoint_size=None if checkpoint is None else checkpoint.size)
        except NotCheckpointed as exc:
            raise UnavailableError(exc.message, code="NOT_CHECKPOINTED") from None
        except NotWitnessed as exc:
            raise UnavailableError(exc.message, code="NOT_WITNESSED") from None
        handle = open(info.path, "rb")  # noqa: SIM115 - closed by the response
        try:
            if with_media:
                _record_media_access(access, case_id, handle)
            handle.seek(0)
        except BaseException:
            handle.close()
            raise
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return handle, info


def _record_media_access(access: Access, case_id: str, handle: IO[bytes]) -> None:
    """One access entry (``evidence.download``) per media file in the bundle, before any byte is sent."""
    with zipfile.ZipFile(handle) as zf:
        hashes = sorted(n[len(MEDIA_PREFIX):] for n in zf.namelist() if n.startswith(MEDIA_PREFIX))
    for sha in hashes:
        access.allowed_as("evidence.download", case_id=case_id, item=sha)
