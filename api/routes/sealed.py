"""Disclosing a sealed record: the one endpoint that returns personal data (docs/privacy.md).

Requests and approvals are ordinary signed envelopes (``POST /v1/cases/{id}/events``). The
disclosure itself is the requester's signed ``SealedRecordDisclosed`` envelope posted here: it goes
through the service's one writer like any other envelope (the signer must be the caller), and only
once it is committed is the record decrypted and returned, to this caller, in this response.
Refused attempts are recorded in the case by the ledger (``ledger.evidence.disclosure``). Every
attempt, refused or not, is also recorded in the access log (action ``sealed.read``, item = the
sealed_ref) before the data is returned; if that record cannot be written the answer is 503 and
the data is not returned (the disclosure stays in the case log: a new request is needed).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from api import schemas
from api.access import Access, audited
from api.appending import check_binding, json_response, refuse_if_blocked, runtime_of
from api.errors import UnavailableError, problems
from ledger.append import Receipt
from ledger.envelope.dsse import parse_envelope
from ledger.evidence.disclosure import Disclosure, disclose
from ledger.log.access_entry import ITEM_PATTERN, UUID_PATTERN

router = APIRouter(tags=["sealed"])

Discloser = Annotated[Access, Depends(audited("sealed.read", "investigator", "supervisor", "counsel"))]
SealedRefPath = Path(pattern=r"^[A-Za-z0-9._:-]{1,128}$", description="the sealed record's reference")


@router.post(
    "/v1/sealed/{sealed_ref}/disclosure",
    summary="Disclose a sealed record: append the requester's signed SealedRecordDisclosed, receive the data",
    status_code=200,
    responses={
        200: {"model": schemas.Disclosure, "description": "Disclosure recorded; the record, for this caller only"},
        **problems(400, 401, 403, 404, 409, 410, 413, 422, 503),
    },
    openapi_extra=schemas.json_body(
        schemas.ENVELOPE_SCHEMA, "the requester's signed SealedRecordDisclosed envelope for this record's case"
    ),
)
async def post_disclosure(request: Request, access: Discloser, sealed_ref: str = SealedRefPath) -> Response:
    runtime = runtime_of(request)
    principal = access.caller
    item = sealed_ref if ITEM_PATTERN.fullmatch(sealed_ref) else None
    async with access.guard_async(item=item, every_refusal=True):
        refuse_if_blocked(runtime)
        raw = await request.body()
        case_id = parse_envelope(raw).statement.case_id
        access.case_id = case_id if UUID_PATTERN.fullmatch(case_id) else None
        check_binding(
            raw, origin=runtime.ledger.origin, case_id=case_id, now=runtime.clock(),
            max_skew=timedelta(seconds=runtime.settings.max_clock_skew_seconds),
        )
        committer = runtime.committer
        if committer is None:
            raise UnavailableError("the service is not started")

        def append(envelope: bytes) -> Receipt:
            receipt: Receipt = committer.submit(envelope, actor=principal.actor).result()
            return runtime.ledger.with_receipt(receipt)

        done: Disclosure = await run_in_threadpool(
            disclose, runtime.ledger, raw, sealed_ref=sealed_ref, append=append
        )
    response = json_response({
        "sealed_ref": sealed_ref,
        "data": done.data,
        "commitment": done.commitment,
        "receipt": {**done.receipt.to_json(), "duplicate": done.receipt.duplicate},
    })
    response.headers["Cache-Control"] = "no-store"
    return response
