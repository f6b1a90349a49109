"""The transparency log: checkpoints and their RFC 3161 time-stamps, the verifier key, leaves, proofs (public)
and envelopes for replay."""

from __future__ import annotations

import base64
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from starlette.responses import PlainTextResponse, Response

from api import schemas
from api.access import Access, audited
from api.appending import json_response, runtime_of
from api.errors import UnavailableError, problems
from api.reads import Reading, reading
from domain.errors import MalformedInputError, NotFoundError
from ledger.log.proof_json import consistency_proof_json, inclusion_proof_json
from ledger.log.timestamping import stored_tokens
from ledger.storage.replica import Route

router = APIRouter(prefix="/v1/log", tags=["log"])

MAX_INDEX = 2**53
TEXT = {"text/plain": {"schema": {"type": "string"}}}
Size = Annotated[int, Query(ge=1, le=MAX_INDEX)]
Replayer = Annotated[Access, Depends(audited("log.envelopes", "auditor", "supervisor", "admin"))]


def _note(checkpoint: object) -> Response:
    if checkpoint is None:
        raise NotFoundError("the log has no checkpoint yet", code="NO_CHECKPOINT")
    note = checkpoint.with_cosignatures()  # type: ignore[attr-defined]
    return Response(note, media_type="text/plain; charset=utf-8")


def published(ledger: Any) -> Any:
    """The newest published checkpoint; 503 NOT_WITNESSED while a production ledger has none yet."""
    checkpoint = ledger.published_checkpoint()
    if checkpoint is None and ledger.production and ledger.log_size() > 0:
        raise UnavailableError(
            f"no checkpoint has been cosigned by {ledger.config.min_witnesses} witnesses in other trust domains"
            " yet: none is published (docs/witness.md)",
            code="NOT_WITNESSED",
        )
    return checkpoint


@router.get(
    "/checkpoint",
    summary="The latest published checkpoint (C2SP signed note, with witness cosignatures)",
    description="Standard profile: the newest signed checkpoint. Production profile: the newest one cosigned"
    " by the ledger's min_witnesses witnesses in other trust domains (503 NOT_WITNESSED before there is one).",
    response_class=PlainTextResponse,
    responses={200: {"content": TEXT}, **problems(404, 503)},
)
def latest_checkpoint(request: Request) -> Response:
    return _note(published(runtime_of(request).ledger))


@router.get(
    "/checkpoints/{size}",
    summary="The checkpoint signed for exactly this tree size",
    description="Production profile: only a published checkpoint (enough witness cosignatures); a size that"
    " was signed but not cosigned by enough witnesses is 404 NOT_WITNESSED.",
    response_class=PlainTextResponse,
    responses={200: {"content": TEXT}, **problems(400, 404, 503)},
)
def checkpoint_at(request: Request, size: Annotated[int, Path(ge=1, le=MAX_INDEX)]) -> Response:
    read = reading(request, at_least=size)
    ledger = read.ledger
    try:
        checkpoint = ledger.checkpoint_at(size)
        on_primary = read.route.source == "replica" and not ledger.is_published(checkpoint)
    except NotFoundError:
        if read.route.source != "replica":
            raise
        on_primary = True  # routing counts entries; a checkpoint row is committed after its entries
    if on_primary:
        # the replica may not have replayed the checkpoint row, or a cosignature that came after it:
        # the primary says whether it exists and is published by now
        primary = runtime_of(request).ledger
        read = Reading(primary, Route("primary", "behind", size, primary.log_size()), read.routed, read.metrics)
        ledger = read.ledger
        checkpoint = ledger.checkpoint_at(size)
    if not ledger.is_published(checkpoint):
        raise NotFoundError(
            f"the checkpoint of this size was signed but not cosigned by {ledger.config.min_witnesses} witnesses"
            " in other trust domains: it is not published (the published one: GET /v1/log/checkpoint)",
            code="NOT_WITNESSED",
            size=size,
        )
    return read.stamp(_note(checkpoint))


@router.get(
    "/checkpoints/{size}/timestamps",
    summary="RFC 3161 time-stamp tokens over the checkpoint of this size, one per TSA, by TSA name",
    response_model=schemas.CheckpointTimestampPage,
    responses=problems(400, 404, 503),
)
def checkpoint_timestamps(
    request: Request,
    size: Annotated[int, Path(ge=1, le=MAX_INDEX)],
    after: Annotated[
        str | None, Query(min_length=1, max_length=64, description="cursor: the last TSA name seen (omit: from the first)")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000, description="page size")] = 100,
) -> Response:
    ledger = runtime_of(request).ledger
    checkpoint = ledger.checkpoint_at(size)  # 404 NO_CHECKPOINT for a size never signed
    held = [row for row, _ in stored_tokens(ledger, checkpoint) if after is None or row.tsa > after]
    items = [{"tsa": row.tsa, "token": base64.b64encode(row.token).decode("ascii")} for row in held[:limit]]
    return json_response({"items": items, "next": items[-1]["tsa"] if len(held) > limit else None})


@router.get(
    "/key",
    summary="The log's verifier key (name+keyid+base64 Ed25519 key)",
    response_class=PlainTextResponse,
    responses={200: {"content": TEXT}, **problems(503)},
)
def verifier_key(request: Request) -> Response:
    return Response(runtime_of(request).verifier_key + "\n", media_type="text/plain; charset=utf-8")


@router.get(
    "/entries/{index}",
    summary="The exact bytes of leaf INDEX",
    response_class=Response,
    responses={
        200: {"content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}},
        **problems(400, 404, 503),
    },
)
def entry(request: Request, index: Annotated[int, Path(ge=0, le=MAX_INDEX)]) -> Response:
    read = reading(request, at_least=index + 1)
    return read.stamp(Response(read.ledger.leaf(index), media_type="application/octet-stream"))


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise MalformedInputError(message, code="BAD_ARGUMENT")


def _check_size(ledger: Any, size: int) -> None:
    if size > ledger.log_size():
        raise NotFoundError("the log has no tree of this size yet", code="UNKNOWN_TREE_SIZE", size=size)


@router.get(
    "/proof/inclusion",
    summary="RFC 6962 inclusion proof of leaf INDEX in the tree of SIZE (default: latest checkpoint)",
    response_model=schemas.InclusionProof,
    responses=problems(400, 404, 503),
)
def inclusion(
    request: Request, index: Annotated[int, Query(ge=0, le=MAX_INDEX)], size: Size | None = None
) -> Response:
    if size is None:  # the published checkpoint, from the primary (it raises the read floor to its size)
        checkpoint = published(runtime_of(request).ledger)
        if checkpoint is None:
            raise NotFoundError("the log has no checkpoint yet", code="NO_CHECKPOINT")
        size = checkpoint.size
    _check(index < size, "index must be less than size")
    read = reading(request, at_least=size)  # a lagging replica never answers "no tree of this size"
    ledger = read.ledger
    _check_size(ledger, size)
    return read.stamp(
        json_response(inclusion_proof_json(index, ledger.inclusion_proof(index, size), tree_size=size))
    )


@router.get(
    "/proof/consistency",
    summary="RFC 6962 consistency proof between tree sizes FIRST and SECOND",
    response_model=schemas.ConsistencyProof,
    responses=problems(400, 404, 503),
)
def consistency(request: Request, first: Size, second: Size) -> Response:
    _check(first <= second, "first must not exceed second")
    read = reading(request, at_least=second)
    ledger = read.ledger
    _check_size(ledger, second)
    path = ledger.consistency_proof(first, second)
    return read.stamp(json_response(consistency_proof_json(path, first=first, second=second)))


@router.get(
    "/envelopes",
    summary="Stored envelopes and their leaves in log order, for replay and audit (auditor, supervisor, admin)",
    response_model=schemas.LogEnvelopePage,
    responses=problems(400, 401, 403, 503),
)
def envelopes(
    request: Request,
    access: Replayer,
    after: Annotated[
        int | None, Query(ge=0, le=MAX_INDEX, description="cursor: the last leaf_index seen (omit: from leaf 0)")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000, description="page size")] = 500,
) -> Response:
    read = reading(request)
    access.allowed()  # every case's envelopes: recorded (no case id) before any is read
    entries = read.ledger.entries(0 if after is None else after + 1, limit + 1)
    items = [
        {
            "leaf_index": e.leaf_index,
            "case_id": e.case_id,
            "seq": e.seq,
            "envelope": e.envelope.decode("utf-8") if e.envelope else None,  # no event row: null
            "leaf": _ascii(e.leaf),
        }
        for e in entries[:limit]
    ]
    return read.stamp(
        json_response({"items": items, "next": items[-1]["leaf_index"] if len(entries) > limit else None})
    )


def _ascii(raw: bytes) -> str | None:
    """Leaves are ASCII canonical JSON; anything else (a tampered row) cannot travel exactly in JSON."""
    try:
        return raw.decode("ascii")
    except UnicodeDecodeError:
        return None
