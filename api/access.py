"""Recording reads in the access log: the writer thread and what routes call (docs/access-log.md).

Every read route depends on :func:`audited` instead of a plain role check::

    CaseReading = Annotated[Access, Depends(audited("case.read"))]

    def get_thing(case_id: CaseId, access: CaseReading) -> Response:
        with access.guard(case_id=case_id, item=sha256):   # records before the block's result is used
            data = ...                                      # 401/403/404 raised here: recorded as denied
        return json_response(data)

The dependency records a missing or unknown token (401, actor ``anonymous``) and a role that may not
use the route (403) as denials before refusing. ``Access.guard`` records a 401/403/404 raised inside
its block as a denial with the problem's code, and otherwise records the read as allowed when the
block ends, before the caller returns anything. If the record cannot be written the request fails
closed: ``503 ACCESS_LOG_UNAVAILABLE`` and no data. Async routes use ``guard_async``; a route that
records outside a block calls ``access.allowed(...)`` / ``await access.allowed_async(...)`` itself.

:class:`AccessWriter` is the access log's group commit: one thread takes every waiting record and
writes them in one transaction (``ledger.access_log.append``), so a read costs a share of a commit,
not a commit. It never touches the case log: reads never take a case position.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from concurrent.futures import Future
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from typing import Annotated, Protocol

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials

from api.auth import Principal, bearer, current_principal
from api.batching import BatchWriter, resolve
from api.errors import UnauthenticatedError, request_id_of, status_for
from api.logs import get_logger
from domain.errors import AuthorizationError, LedgerError
from ledger.log.access import AccessLog, AccessLogUnavailable
from ledger.log.access_entry import ALLOWED, ANONYMOUS, DENIED, AccessRecord
from ledger.tokens import API_ROLES

DENIAL_STATUSES = (401, 403, 404)
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_SHA256 = re.compile(r"[0-9a-f]{64}")


class AccessRecorder(Protocol):
    """Writes access records; ``record`` returns the entry's index once it is durably stored and
    raises AccessLogUnavailable (503) when it cannot be."""

    def record(self, record: AccessRecord) -> int: ...

    async def record_async(self, record: AccessRecord) -> int: ...


def unavailable(exc: BaseException | None = None) -> AccessLogUnavailable:
    reason = "" if exc is None else f" ({getattr(exc, 'code', type(exc).__name__)})"
    return AccessLogUnavailable(
        f"the access log cannot record this read{reason}: nothing is returned until it can"
    )


@dataclass
class _Pending:
    record: AccessRecord
    future: Future[int] = field(default_factory=Future)


class AccessWriter(BatchWriter[_Pending]):
    """The access log's writer thread: batches of records, one transaction each."""

    thread_name = "access-log"

    def __init__(self, log: AccessLog, *, max_batch: int = 512) -> None:
        super().__init__(max_batch=max_batch)
        self.log = log
        self.logger = get_logger()

    def _not_accepting(self) -> Exception:
        return unavailable()

    def submit(self, record: AccessRecord) -> Future[int]:
        pending = _Pending(record)
        self._put(pending)
        return pending.future

    def record(self, record: AccessRecord) -> int:
        future = self.submit(record)
        try:
            return future.result()
        except LedgerError as exc:
            raise unavailable(exc) from None

    async def record_async(self, record: AccessRecord) -> int:
        future = self.submit(record)
        try:
            return await asyncio.wrap_future(future)
        except LedgerError as exc:
            raise unavailable(exc) from None

    def _commit(self, batch: list[_Pending]) -> None:
        if not batch:
            return
        try:
            indexes = self.log.append([p.record for p in batch])
        except Exception as exc:  # every waiter is refused; the thread lives on
            self.logger.error(
                "access log write failed", batch_size=len(batch), code=getattr(exc, "code", type(exc).__name__)
            )
            failure = exc if isinstance(exc, LedgerError) else unavailable(exc)
            for pending in batch:
                resolve(pending.future, failure)
            return
        for pending, index in zip(batch, indexes, strict=True):
            resolve(pending.future, index)


# --- what routes use ------------------------------------------------------------------------------


@dataclass
class Recorded:
    """The access entry a guarded block produced (its index once recorded)."""

    index: int | None = None


@dataclass
class Access:
    """The caller of an audited route, and the recording of what it reads."""

    recorder: AccessRecorder
    action: str
    request_id: str | None
    case_id: str | None = None  # from the path or the query, when well-formed
    item: str | None = None
    principal: Principal | None = None

    @property
    def caller(self) -> Principal:
        assert self.principal is not None  # set by the dependency before any route sees it
        return self.principal

    def _record(
        self, case_id: str | None, item: str | None, code: str | None, action: str | None = None
    ) -> AccessRecord:
        p = self.principal
        return AccessRecord(
            action=action or self.action,
            actor=ANONYMOUS if p is None else p.actor,
            role=None if p is None else p.role,
            token_id=None if p is None else _token_id(p.subject_id),
            case_id=self.case_id if case_id is None else case_id,
            item=self.item if item is None else item,
            outcome=ALLOWED if code is None else DENIED,
            code=code,
            request_id=self.request_id,
        )

    def allowed(self, *, case_id: str | None = None, item: str | None = None) -> int:
        return self.recorder.record(self._record(case_id, item, None))

    def allowed_as(self, action: str, *, case_id: str | None = None, item: str | None = None) -> int:
        """Record another allowed read made by the same request (e.g. each media file of a bundle)."""
        return self.recorder.record(self._record(case_id, item, None, action))

    async def allowed_async(self, *, case_id: str | None = None, item: str | None = None) -> int:
        return await self.recorder.record_async(self._record(case_id, item, None))

    def denied(self, exc: LedgerError, *, case_id: str | None = None, item: str | None = None) -> None:
        """Record ``exc`` as a denial (if it is one: 401, 403, 404); raise 503 if it cannot be."""
        if status_for(exc) in DENIAL_STATUSES:
            self.recorder.record(self._record(case_id, item, exc.code))

    async def denied_async(self, exc: LedgerError, *, case_id: str | None = None, item: str | None = None) -> None:
        if status_for(exc) in DENIAL_STATUSES:
            await self.recorder.record_async(self._record(case_id, item, exc.code))

    @contextmanager
    def guard(self, *, case_id: str | None = None, item: str | None = None) -> Iterator[Recorded]:
        """Run the block; record a 401/403/404 it raises as a denial, otherwise the read as allowed
        (before the caller returns anything). Blocking: for routes that run in the threadpool."""
        recorded = Recorded()
        try:
            yield recorded
        except LedgerError as exc:
            self.denied(exc, case_id=case_id, item=item)
            raise
        recorded.index = self.allowed(case_id=case_id, item=item)

    @asynccontextmanager
    async def guard_async(
        self, *, case_id: str | None = None, item: str | None = None, every_refusal: bool = False
    ) -> AsyncIterator[Recorded]:
        """``guard`` for async routes; with ``every_refusal`` any refusal the block raises (a 409 or
        410 too, not only 401/403/404) is recorded as a denial: for routes whose every refusal matters."""
        recorded = Recorded()
        try:
            yield recorded
        except LedgerError as exc:
            if every_refusal:
                await self.recorder.record_async(self._record(case_id, item, exc.code))
            else:
                await self.denied_async(exc, case_id=case_id, item=item)
            raise
        recorded.index = await self.allowed_async(case_id=case_id, item=item)


def _token_id(subject: str | None) -> str | None:
    """The token id of a token-authenticated caller (an IdP's subject is not one: left out)."""
    return subject if subject is not None and re.fullmatch(r"[0-9a-f]{16}", subject) else None


def _well_formed(value: object, pattern: re.Pattern[str]) -> str | None:
    return value if isinstance(value, str) and pattern.fullmatch(value) else None


def recorder_of(request: Request) -> AccessRecorder:
    recorder = request.app.state.runtime.access
    if recorder is None:
        raise unavailable()
    return recorder


def audited(action: str, *roles: str) -> Callable[..., Awaitable[Access]]:
    """A dependency for a read route: authenticates the caller and checks the role like ``require``,
    recording a refusal (401, 403) as a denial first; returns the :class:`Access` the route records
    its read with. Without ``roles`` every API role may call the route."""
    allowed = roles or API_ROLES
    unknown = set(allowed) - set(API_ROLES)
    if unknown:
        raise ValueError(f"unknown roles {sorted(unknown)}")
    AccessRecord(action=action)  # refuse an unknown action at import, not at the first request

    async def dependency(
        request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
    ) -> Access:
        path, query = request.path_params, request.query_params
        access = Access(
            recorder_of(request),
            action,
            request_id_of(request),
            case_id=_well_formed(path.get("case_id", query.get("case_id")), _UUID),
            item=_well_formed(path.get("sha256"), _SHA256),
        )
        try:
            access.principal = await current_principal(request, credentials)
        except UnauthenticatedError as exc:
            await access.denied_async(exc)
            raise
        if access.principal.role not in allowed:
            refusal = AuthorizationError(
                f"role '{access.principal.role}' may not use this endpoint",
                code="ROLE_NOT_ALLOWED",
                role=access.principal.role,
            )
            await access.denied_async(refusal)
            raise refusal
        return access

    return dependency
