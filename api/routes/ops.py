"""Public and operational endpoints: the public release log and statistics, health, readiness, metrics."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from starlette.responses import PlainTextResponse, Response

from api import schemas
from api.appending import json_response, runtime_of
from api.errors import UnavailableError, problems
from api.reads import reading
from domain.projections import PUBLIC_CURSOR_PATTERN

router = APIRouter()
PAGE_MAX = 1000


@router.get(
    "/v1/public/releases",
    summary="Every release of footage: the released file's SHA-256, time, basis, channel and URL; public"
    " (cursor pagination)",
    description="Oldest release first. Nothing about footage that was not released, held or not. See docs/api.md.",
    tags=["public"],
    response_model=schemas.PublicReleasePage,
    responses=problems(400, 503),
)
def public_releases(
    request: Request,
    after: Annotated[
        str | None,
        Query(max_length=200, pattern=PUBLIC_CURSOR_PATTERN, description="cursor: the `next` of the previous page"),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=PAGE_MAX, description="page size")] = 100,
) -> Response:
    read = reading(request)
    return read.stamp(json_response(read.ledger.public_releases_page(after=after, limit=limit)))


@router.get(
    "/v1/public/statistics",
    summary="Monthly counts of footage released, withheld under investigation and awaiting decision; public",
    description="By month of capture, closed months only, each count as a range (docs/api.md).",
    tags=["public"],
    response_model=schemas.PublicStatistics,
    responses=problems(503),
)
def public_statistics(request: Request) -> Response:
    read = reading(request)
    return read.stamp(json_response(read.ledger.public_statistics(runtime_of(request).clock())))


@router.get("/healthz", summary="Liveness", tags=["ops"], response_model=schemas.Health)
def healthz() -> Response:
    return json_response({"status": "ok"})


@router.get(
    "/readyz",
    summary="Readiness: database reachable, durability settings safe, writer running, no rollback detected,"
    " a key registry to check signers against",
    tags=["ops"],
    response_model=schemas.Readiness,
    responses=problems(503),
)
def readyz(request: Request) -> Response:
    runtime = runtime_of(request)
    if not runtime.ready:
        raise UnavailableError("the service is not running", code="NOT_READY")
    problems_found = runtime.durability_problems()
    if problems_found:
        raise UnavailableError("; ".join(problems_found), code="UNSAFE_DURABILITY")
    runtime.ledger.require_writable()  # 503 ROLLBACK_DETECTED with the reason while writes are refused
    if runtime.ledger.registry_state() is None:
        raise UnavailableError(
            "the key registry has no trust root yet: submit the genesis the admin signed (`keys submit`)",
            code="NOT_READY",
        )
    ledger = runtime.ledger
    replica = runtime.replica_status()  # reported, never a reason to be unready: the primary serves reads
    return json_response({
        "status": "ready",
        "admin_key_on_server": ledger.admin_key_on_server,
        "keystore_in_data_dir": ledger.keystore_in_data_dir,
        "profile": ledger.config.profile,
        "min_witnesses": ledger.config.min_witnesses,
        "witnessed_size": 0 if runtime.checkpointer is None else runtime.checkpointer.witnessed_size,
        **({} if runtime.tiles is None else {"tiles": runtime.tiles.state()}),
        **({} if replica is None else {"replica": replica}),
    })


@router.get(
    "/metrics",
    summary="Prometheus metrics (text exposition format)",
    tags=["ops"],
    response_class=PlainTextResponse,
    responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}},
)
def metrics(request: Request) -> Response:
    body = runtime_of(request).metrics.render()
    return Response(body, media_type="text/plain; version=0.0.4; charset=utf-8")
