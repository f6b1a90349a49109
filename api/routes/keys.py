"""The key registry (read by any caller, appended by admins) and sealing personal data."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from api import schemas
from api.appending import append_envelope, json_response, refuse_if_blocked, runtime_of, strict_json_body
from api.auth import Admin, Reader, Sealer
from api.errors import problems
from ledger.envelope.dsse import REGISTRY_CASE_ID
from ledger.evidence.sealed import SealedReference

router = APIRouter(tags=["keys"])


@router.get(
    "/v1/keys",
    summary="The key registry: every registered public key, its actor, role and status",
    response_model=schemas.KeyRegistry,
    responses=problems(401, 403, 503),
)
def list_keys(request: Request, principal: Reader) -> Response:
    ledger = runtime_of(request).ledger
    state = ledger.registry_state()
    version, head = ledger.case_head(REGISTRY_CASE_ID)
    keys = [] if state is None else [k.to_json() for k in state.keys]
    root = None if state is None else state.root_key_id
    return json_response({"root_key_id": root, "version": version, "head_sha256": head, "keys": keys})


@router.post(
    "/v1/keys",
    summary="Append a signed KeyRegistered or KeyRevoked envelope to the registry stream (admin)",
    status_code=201,
    responses={
        200: {"model": schemas.WaitedReceipt, "description": "This exact envelope was already accepted"},
        201: {"model": schemas.WaitedReceipt, "description": "Accepted and durably committed"},
        **problems(400, 401, 403, 409, 413, 422, 503),
    },
    openapi_extra=schemas.json_body(
        schemas.ENVELOPE_SCHEMA, f"one DSSE envelope for the registry stream (case_id {REGISTRY_CASE_ID})"
    ),
)
async def post_key_event(
    request: Request,
    principal: Admin,
    wait: Annotated[bool, Query(description="also return a checkpoint and an inclusion proof")] = False,
) -> Response:
    return await append_envelope(request, principal, case_id=REGISTRY_CASE_ID, wait=wait)


@router.post(
    "/v1/sealed",
    summary="Seal personal data outside the log; returns the reference and commitment to put in an event",
    status_code=201,
    tags=["sealed"],
    responses={201: {"model": schemas.SealedRef, "description": "Sealed"}, **problems(400, 401, 403, 413, 503)},
    openapi_extra=schemas.json_body({"description": "any JSON value (at most 64 KiB canonical)"}, "personal data"),
)
async def seal(request: Request, principal: Sealer) -> Response:
    runtime = runtime_of(request)
    refuse_if_blocked(runtime)
    data = await strict_json_body(request)
    ledger = runtime.ledger

    def seal_now() -> SealedReference:
        ledger.require_writable()  # the authoritative rollback check (503 ROLLBACK_DETECTED)
        return ledger.sealed_store().seal(data, now=runtime.clock())

    ref = await run_in_threadpool(seal_now)
    return json_response(ref.to_json(), 201)
