"""The witness over HTTP (c2sp.org/tlog-witness): an ASGI app served by uvicorn, like the API.

The protocol is decided in ``ledger.witness.server`` (request parsing, statuses, one-line bodies)
and ``ledger.witness.cosigner`` (the ``Witness``); this module only carries it over HTTP:

* ``POST /add-checkpoint``: 411 without a Content-Length (or with a chunked body), then the body is
  read — within ``BODY_TIMEOUT`` seconds, else 408 and the connection is closed — and handed to
  ``add_checkpoint`` in a worker thread (the witness takes its locks and fsyncs there, never on the
  event loop); ``GET /healthz``: ``ok``; any other path 404, any other method 405.
* The body limit is the API's ``BodyLimitMiddleware`` with the witness's cap (``MAX_BODY``, 64 KiB):
  a larger Content-Length is refused with 413 before anything is read. Its problem documents are
  turned into the witness's one-line plain-text bodies (``PlainTextErrors``).
* uvicorn runs it with no ``Server`` header, no access log, a bounded graceful shutdown and the
  connection limits of ``api.connections`` (header and body timeouts, overall and per-address
  connection caps, keep-alive), read from ``EVIDENCE_LEDGER_WITNESS_*`` (``WitnessLimits``). A slow
  client holds one connection, never a thread, and not for long: other requests go on.

Every answer carries ``Cache-Control: no-store``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

import uvicorn
from pydantic_settings import SettingsConfigDict
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route

from api.connections import ConnectionSettings, uvicorn_options
from api.errors import PROBLEM_MEDIA_TYPE, status_for
from api.middleware import BodyLimitMiddleware, Message, Scope
from domain.errors import LedgerError
from ledger.witness.cosigner import Witness
from ledger.witness.server import (
    ADD_CHECKPOINT,
    HEALTHZ,
    MAX_BODY,
    TEXT_CONTENT_TYPE,
    Reply,
    add_checkpoint,
    error_line,
    length_refusal,
    text,
)

BODY_TIMEOUT = 10.0  # seconds for the whole body once the headers are in
GRACEFUL_SHUTDOWN_TIMEOUT = 10  # seconds open connections get to finish when the server stops
DEFAULT_PORT = 7380

logger = logging.getLogger("ledger.witness.server")


class WitnessLimits(ConnectionSettings):
    """The witness server's connection limits, from ``EVIDENCE_LEDGER_WITNESS_*`` (same defaults as the API)."""

    model_config = SettingsConfigDict(env_prefix="EVIDENCE_LEDGER_WITNESS_", extra="ignore")


def _response(reply: Reply, **headers: str) -> Response:
    """The reply with its content type exactly as given (no charset added) and ``no-store``."""
    return Response(
        reply.body,
        status_code=reply.status,
        headers={"Content-Type": reply.content_type, "Cache-Control": "no-store", **reply.headers, **headers},
    )


class PlainTextErrors:
    """Outermost: a problem document from the shared middleware (the body limit) becomes the
    witness's error body, one line of plain text (``CODE: detail``); other answers pass unchanged."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start: Message | None = None
        chunks: list[bytes] = []

        async def send_plain(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                content_type = dict(message.get("headers", [])).get(b"content-type", b"")
                if content_type.split(b";")[0].strip().decode("latin-1") == PROBLEM_MEDIA_TYPE:
                    start = message
                    return
            elif start is not None and message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))
                if message.get("more_body", False):
                    return
                body = _problem_line(b"".join(chunks)).encode("utf-8")
                kept = [
                    (k, v)
                    for k, v in start.get("headers", [])
                    if k.lower() not in (b"content-type", b"content-length", b"cache-control")
                ]
                headers = [
                    *kept,
                    (b"content-type", TEXT_CONTENT_TYPE.encode("ascii")),
                    (b"content-length", str(len(body)).encode("ascii")),
                    (b"cache-control", b"no-store"),
                ]
                await send({**start, "headers": headers})
                await send({"type": "http.response.body", "body": body})
                return
            await send(message)

        await self.app(scope, receive, send_plain)


def _problem_line(raw: bytes) -> str:
    try:
        problem = json.loads(raw)
    except ValueError:
        problem = {}
    if not isinstance(problem, dict):
        problem = {}
    return error_line(str(problem.get("code") or "ERROR"), str(problem.get("detail") or "request refused"))


async def _http_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    allow = (exc.headers or {}).get("Allow")
    if exc.status_code == 405 and allow:
        return _response(text(405, f"use {allow}\n", Allow=allow))
    if exc.status_code == 404:
        return _response(text(404, "not found\n"))
    return _response(text(exc.status_code, f"{exc.detail}\n"))


def create_witness_app(
    witness: Witness, *, clock: Callable[[], float] = time.time, body_timeout: float = BODY_TIMEOUT
) -> Starlette:
    """The ASGI app serving ``witness``; ``clock`` gives the cosignature time (POSIX seconds)."""

    async def healthz(_request: Request) -> Response:
        return _response(text(200, "ok\n"))

    async def add(request: Request) -> Response:
        refusal = length_refusal(request.headers.get("transfer-encoding"), request.headers.get("content-length"))
        if refusal is not None:
            return _response(refusal, Connection="close")
        try:
            body = await asyncio.wait_for(request.body(), body_timeout)
        except TimeoutError:
            logger.info("add-checkpoint refused: 408 the body did not arrive within %g s", body_timeout)
            return _response(text(408, f"the body did not arrive within {body_timeout:g} s\n"), Connection="close")
        except LedgerError as exc:  # the body limit, counting a body as it is read
            return _response(text(status_for(exc), error_line(exc.code, exc.message)), Connection="close")
        except ClientDisconnect:
            return _response(text(400, "the body is shorter than its Content-Length\n"), Connection="close")
        reply = await run_in_threadpool(add_checkpoint, witness, body, clock())
        return _response(reply)

    return Starlette(
        routes=[Route(HEALTHZ, healthz, methods=["GET"]), Route(ADD_CHECKPOINT, add, methods=["POST"])],
        middleware=[Middleware(PlainTextErrors), Middleware(BodyLimitMiddleware, limit=MAX_BODY)],
        exception_handlers={HTTPException: _http_error},
    )


def _bind(host: str, port: int) -> socket.socket:
    family, kind, proto, _, address = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(128)
    except OSError:
        sock.close()
        raise
    return sock


class WitnessServer:
    """A witness app bound to a listening socket (port 0 picks a free one), not yet serving.

    ``serve_forever`` runs uvicorn on that socket until ``shutdown`` (from another thread) or, in
    the main thread, SIGINT/SIGTERM; ``server_close`` closes the socket."""

    def __init__(
        self,
        witness: Witness,
        host: str = "127.0.0.1",
        port: int = DEFAULT_PORT,
        *,
        log_level: str = "info",
        limits: ConnectionSettings | None = None,
        **app_options: Any,
    ) -> None:
        self.app = create_witness_app(witness, **app_options)
        self.socket = _bind(host, port)
        bound = self.socket.getsockname()
        self.server_address: tuple[str, int] = (str(bound[0]), int(bound[1]))
        self.server = uvicorn.Server(
            uvicorn.Config(
                self.app,
                log_level=log_level,
                log_config=None,  # the process's own logging configuration applies
                access_log=False,
                server_header=False,
                lifespan="off",
                timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_TIMEOUT,
                **uvicorn_options(limits or WitnessLimits()),
            )
        )
        self._running = threading.Event()
        self._stopped = threading.Event()

    def serve_forever(self) -> None:
        self._running.set()
        try:
            self.server.run(sockets=[self.socket])
        finally:
            self._stopped.set()

    def shutdown(self, timeout: float = GRACEFUL_SHUTDOWN_TIMEOUT + 5) -> None:
        """Stop serving and wait (at most ``timeout`` seconds) for ``serve_forever`` to return."""
        self.server.should_exit = True
        if self._running.is_set():
            self._stopped.wait(timeout)

    def server_close(self) -> None:
        self.socket.close()


def make_server(witness: Witness, host: str = "127.0.0.1", port: int = 0, **options: Any) -> WitnessServer:
    """A bound (not yet serving) witness server for ``witness``; port 0 picks a free port."""
    return WitnessServer(witness, host, port, **options)


def serve(
    witness: Witness,
    host: str = "127.0.0.1",
    port: int = DEFAULT_PORT,
    *,
    on_ready: Callable[[str, int], None] | None = None,
) -> None:
    """Serve until SIGINT or SIGTERM; ``on_ready(host, port)`` is called once the socket listens."""
    server = make_server(witness, host, port)
    bound_host, bound_port = server.server_address
    logger.info("witness %s listening on %s:%s", witness.name, bound_host, bound_port)
    if on_ready is not None:
        on_ready(bound_host, bound_port)
    try:
        server.serve_forever()
    finally:
        server.server_close()


__all__ = ["BODY_TIMEOUT", "PlainTextErrors", "WitnessLimits", "WitnessServer", "create_witness_app", "make_server", "serve"]
