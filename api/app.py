"""The FastAPI application: ``create_app(settings)`` for ``evidence-ledger serve`` and for tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import structlog
from fastapi import Depends, FastAPI
from starlette.concurrency import run_in_threadpool

from api.access import AccessRecorder
from api.auth import Authenticator
from api.errors import PROBLEM_SCHEMA, install_error_handlers
from api.event_docs import add_event_schemas
from api.logs import configure_logging
from api.middleware import BodyLimitMiddleware, RequestContextMiddleware, RouteTable
from api.query import reject_unknown_query_parameters
from api.routes import (
    access_log,
    api_docs,
    cases,
    evidence,
    keys,
    log,
    ops,
    public_pages,
    sealed,
    tiles,
    verifier_page,
)
from api.runtime import Runtime
from api.settings import ApiSettings
from ledger.evidence.footage import EvidenceTooLarge
from ledger.settings import Settings
from ledger.store import Ledger

DESCRIPTION = """\
An independent, signed, append-only evidence record for the Cambridge (MA) police under the City's
executive order on federal-officer misconduct. Appends are DSSE envelopes signed by a registered key of
the calling actor; every accepted envelope becomes a leaf of an RFC 6962 transparency log whose signed
checkpoints, leaves and proofs are public. Errors are RFC 9457 problem documents. See docs/api.md.
"""


def create_app(
    settings: Settings | None = None,
    *,
    api_settings: ApiSettings | None = None,
    ledger: Ledger | None = None,
    authenticator: Authenticator | None = None,
    access_recorder: AccessRecorder | None = None,
) -> FastAPI:
    """Build the app. With ``ledger`` the caller keeps ownership of it (tests); otherwise it is opened
    from ``settings`` at startup and closed at shutdown. ``access_recorder`` replaces the access log's
    writer (tests, benchmarks); by default every read is recorded in the ledger's access log."""
    if not structlog.is_configured():
        configure_logging()
    settings = settings or (ledger.settings if ledger is not None else Settings())
    runtime = Runtime(
        settings, api_settings or ApiSettings(), ledger=ledger, authenticator=authenticator,
        access_recorder=access_recorder,
    )

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        await run_in_threadpool(runtime.start)
        try:
            yield
        finally:
            await run_in_threadpool(runtime.stop)

    app = FastAPI(
        title="Evidence ledger",
        version="1.0.0",
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url=None,  # /docs and /redoc from local assets: api_docs.install below
        redoc_url=None,
        dependencies=[Depends(reject_unknown_query_parameters)],
    )
    app.state.runtime = runtime
    routers = [
        module.router
        for module in (cases, evidence, keys, log, access_log, ops, public_pages, sealed, tiles, verifier_page)
    ]
    for router in routers:
        app.include_router(router)
    api_docs.install(app)
    app.state.route_table = RouteTable.of([*routers, app.router])
    install_error_handlers(app)
    evidence_cap = (runtime.api_settings.max_evidence_bytes, _evidence_too_large)
    app.add_middleware(
        BodyLimitMiddleware, limit=settings.max_json_body, overrides={("POST", "/v1/evidence"): evidence_cap}
    )
    app.add_middleware(RequestContextMiddleware, metrics=runtime.metrics, routes=app.state.route_table)
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    return app


def _evidence_too_large(limit: int) -> EvidenceTooLarge:
    return EvidenceTooLarge(f"evidence files are limited to {limit} bytes", limit=limit)


def _openapi(app: FastAPI) -> dict[str, Any]:
    """FastAPI's document without its 422 validation responses (ours are 400 problems)."""
    if app.openapi_schema is not None:
        return app.openapi_schema
    from fastapi.openapi.utils import get_openapi

    schema = get_openapi(
        title=app.title, version=app.version, description=app.description, routes=app.routes
    )
    for path_item in schema.get("paths", {}).values():
        for operation in path_item.values():
            responses = operation.get("responses", {})
            declared_422 = responses.get("422", {}).get("content", {})
            if "application/json" in declared_422:
                del responses["422"]
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components.pop("HTTPValidationError", None)
    components.pop("ValidationError", None)
    components["Problem"] = PROBLEM_SCHEMA
    add_event_schemas(schema)  # every event type's body schema, statement schema and example
    app.openapi_schema = schema
    return schema


def app_from_env() -> FastAPI:
    """Factory for ``uvicorn --factory api.app:app_from_env`` and ``serve --workers N``: settings from env."""
    return create_app(Settings())
