"""The append endpoint's work: read the envelope, check its binding, hand it to the group committer.

The raw bytes go to ``ledger.append`` unchanged (it parses strictly, checks canonical form and the
signature itself). Here the envelope is parsed once more, only to refuse early what must never
reach the writer: an envelope for another ledger or another case than the URL, a statement from
more than ``max_clock_skew_seconds`` in the future.
"""

from __future__ import annotations

import asyncio
import json
import time
from datetime import datetime, timedelta
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from api.auth import Principal, may_see_case
from api.errors import UnavailableError
from api.runtime import Runtime
from domain.errors import MalformedInputError, case_not_found
from ledger.append import Receipt
from ledger.envelope.canonical import parse_strict, parse_time
from ledger.envelope.dsse import REGISTRY_CASE_ID, UnverifiedEnvelope, parse_envelope
from ledger.log.proof_json import inclusion_proof_json
from ledger.store import Ledger


def runtime_of(request: Request) -> Runtime:
    runtime = request.app.state.runtime
    assert isinstance(runtime, Runtime)
    return runtime


async def strict_json_body(request: Request) -> Any:
    """The request body parsed as strict I-JSON (duplicate keys, NaN, huge numbers → 400)."""
    return parse_strict(await request.body())


def json_response(data: Any, status_code: int = 200) -> Response:
    content = json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return Response(content, status_code=status_code, media_type="application/json")


def check_binding(
    raw: bytes, *, origin: str, case_id: str, now: datetime, max_skew: timedelta
) -> UnverifiedEnvelope:
    envelope = parse_envelope(raw)
    statement = envelope.statement
    if statement.ledger != origin:
        raise MalformedInputError("statement is for another ledger origin", code="BINDING_MISMATCH")
    if statement.case_id != case_id:
        raise MalformedInputError(
            "statement case_id differs from the case in the URL", code="BINDING_MISMATCH", case_id=case_id
        )
    if parse_time(statement.occurred_at, field="occurred_at") > now + max_skew:
        raise MalformedInputError(
            f"statement occurred_at is more than {int(max_skew.total_seconds())} s ahead of the server clock",
            code="CLOCK_SKEW",
        )
    return envelope


def refuse_if_blocked(runtime: Runtime) -> None:
    """503 ROLLBACK_DETECTED at once (before any body is read) while the rollback guard blocks writes.

    O(1): the state the runtime last saw. The ledger checks again inside every write."""
    blocked = runtime.write_block
    if blocked is not None:
        raise blocked


def visible_case(runtime: Runtime, principal: Principal, case_id: str, ledger: Ledger | None = None) -> dict[str, Any]:
    """The case view, or the same 404 as for a missing case when the caller may not see it; read from
    ``ledger`` (a routed read's view, api/reads.py) or else the runtime's."""
    view = (ledger or runtime.ledger).case_view(case_id)
    if not may_see_case(principal, view):
        raise case_not_found(case_id)
    return view


async def append_envelope(
    request: Request, principal: Principal, *, case_id: str, wait: bool
) -> Response:
    runtime = runtime_of(request)
    started = time.perf_counter()
    refuse_if_blocked(runtime)
    raw = await request.body()
    check_binding(
        raw, origin=runtime.ledger.origin, case_id=case_id, now=runtime.clock(),
        max_skew=timedelta(seconds=runtime.settings.max_clock_skew_seconds),
    )
    if principal.role == "prosecutor":
        await run_in_threadpool(visible_case, runtime, principal, case_id)
    if runtime.committer is None:
        raise UnavailableError("the service is not started")
    future = runtime.committer.submit(raw, actor=principal.actor)
    receipt: Receipt = runtime.ledger.with_receipt(await asyncio.wrap_future(future))  # signed here, not
    # in the committer's thread: the next batch's transaction goes on meanwhile
    runtime.metrics.observe_append(time.perf_counter() - started)
    body: dict[str, Any] = {**receipt.to_json(), "duplicate": receipt.duplicate}
    if wait:
        body.update(await run_in_threadpool(proof_for, runtime, receipt))
    return json_response(body, 200 if receipt.duplicate else 201)


def proof_for(runtime: Runtime, receipt: Receipt) -> dict[str, Any]:
    """A checkpoint covering the receipt's entry and the entry's inclusion proof in it, from the
    checkpointer (the one signer; asked to sign now). If none comes within ``wait_timeout`` the
    answer is 503: the entry is committed, and resubmitting the same envelope returns its receipt
    (200) with the proof once a checkpoint covers it."""
    checkpointer = runtime.checkpointer
    checkpoint = None
    if checkpointer is not None:
        checkpoint = checkpointer.wait_for(receipt.leaf_index + 1, runtime.api_settings.wait_timeout)
    ledger = runtime.ledger
    if ledger.production and checkpoint is not None:
        checkpoint = ledger.published_checkpoint()
        if checkpoint is None or checkpoint.size <= receipt.leaf_index:
            raise UnavailableError(
                f"the entry is committed and signed into a checkpoint, but no checkpoint covering it was cosigned"
                f" by {ledger.config.min_witnesses} witnesses in other trust domains in time: it is not published"
                " yet; resubmit the same envelope for its receipt and proof",
                code="NOT_WITNESSED",
                leaf_index=receipt.leaf_index,
            )
    if checkpoint is None or checkpoint.size <= receipt.leaf_index:
        raise UnavailableError(
            "the entry is committed but no checkpoint covered it in time; resubmit the same envelope "
            "for its receipt and proof",
            code="NOT_CHECKPOINTED",
            leaf_index=receipt.leaf_index,
        )
    path = runtime.ledger.inclusion_proof(receipt.leaf_index, checkpoint.size)
    return {
        "checkpoint": checkpoint.with_cosignatures().decode("utf-8"),
        "inclusion_proof": inclusion_proof_json(receipt.leaf_index, path, tree_size=checkpoint.size),
    }


def refuse_registry_stream(case_id: str) -> None:
    if case_id == REGISTRY_CASE_ID:
        raise MalformedInputError(
            "the key registry stream is appended through POST /v1/keys", code="WRONG_STREAM", case_id=case_id
        )
