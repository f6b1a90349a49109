"""Connection limits for the HTTP servers (the API and the witness): slow or abusive clients cannot
hold the service.

uvicorn (h11) times out idle keep-alive connections, but nothing times out a request head or body
that arrives slowly, and nothing bounds how many sockets one client holds: a client that sends part
of a request head and stops keeps its socket (one file descriptor) for ever, and about a thousand of
them exhaust the process's open files. ``guarded_protocol`` returns a subclass of uvicorn's
``H11Protocol`` (passed as ``uvicorn.Config(http=...)``, uvicorn's own extension point) that adds:

* **header timeout**: a connection that has not sent a complete request head ``header_timeout``
  seconds after it opened (or after its previous response) is closed;
* **body timeout**: while a request body is being read, ``body_timeout`` seconds without a byte
  answers 408 (or, once the response has started, closes the connection). Time the server itself
  stops reading (flow control, the app not consuming yet) does not count;
* **connection caps**: at most ``max_connections`` open connections and ``max_connections_per_address``
  from one client address. A connection over the per-address cap is answered 503 and closed at once,
  without reading it. At the overall cap the oldest connection that is only waiting for a request
  head (a slow or idle client: it holds no work) is closed to make room; when every connection is
  busy with a request, the new one is answered 503 and closed;
* **max requests per connection**: the connection is closed after the response to its
  ``max_requests_per_connection``-th request (so no client keeps one connection for ever).

Every limit is per server (per ``guarded_protocol`` call): the counters live on the returned class.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any, ClassVar

import h11
from pydantic import Field
from pydantic_settings import BaseSettings
from uvicorn.protocols.http.h11_impl import H11Protocol

REFUSED = b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\nRetry-After: 1\r\n\r\n"
ACCEPT_BACKLOG = 128
TIMED_OUT = b"HTTP/1.1 408 Request Timeout\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"


class ConnectionSettings(BaseSettings):
    """The limits every HTTP server of the project applies (see docs/design.md, "Slow clients")."""

    header_timeout: float = Field(
        default=10.0, gt=0, description="seconds a connection has to send a complete request head"
    )
    body_timeout: float = Field(
        default=30.0, gt=0, description="seconds without a body byte before a request is answered 408"
    )
    keep_alive_timeout: int = Field(default=5, ge=1, description="seconds an idle connection stays open")
    max_connections: int = Field(
        default=512, ge=1, description="open connections at once (keep it well below the open-file limit)"
    )
    max_connections_per_address: int = Field(
        default=64, ge=1, description="open connections from one client address (raise it behind a proxy)"
    )
    max_requests_per_connection: int = Field(default=1000, ge=1, description="requests on one connection")


class GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with the limits above; made per server by ``guarded_protocol``."""

    limits: ClassVar[ConnectionSettings]
    admitted: ClassVar[set[GuardedH11Protocol]]
    per_address: ClassVar[Counter[str]]
    waiting: ClassVar[dict[GuardedH11Protocol, None]]  # waiting for a request head, oldest first

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.address: str | None = None
        self.requests = 0
        self.timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        cls = type(self)
        address = self.client[0] if self.client else ""
        if cls.per_address[address] >= cls.limits.max_connections_per_address:
            self.refuse()
            return
        if len(cls.admitted) >= cls.limits.max_connections:
            if not cls.waiting:
                self.refuse()
                return
            oldest = next(iter(cls.waiting))
            oldest.drop()
        self.address = address
        cls.admitted.add(self)
        cls.per_address[address] += 1
        self.await_head()

    def connection_lost(self, exc: Exception | None) -> None:
        self.cancel_timer()
        cls = type(self)
        cls.waiting.pop(self, None)
        if self.address is not None:
            cls.admitted.discard(self)
            cls.per_address[self.address] -= 1
            if not cls.per_address[self.address]:
                del cls.per_address[self.address]
            self.address = None
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        self.after_events()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing() and self.conn.their_state is h11.IDLE:
            self.await_head()
        self.after_events()

    # the state machine: waiting for a head -> reading a body -> the app answers -> waiting again

    def after_events(self) -> None:
        """Called after h11 events were handled: move the timers to the connection's new state."""
        if self.address is None or self.transport.is_closing():
            return
        if self.conn.their_state is h11.IDLE:
            return  # still waiting for the head; its timer runs on
        if self in type(self).waiting:  # a head arrived: a new request
            del type(self).waiting[self]
            self.cancel_timer()
            self.requests += 1
            if self.requests >= type(self).limits.max_requests_per_connection and self.cycle is not None:
                # the last response says so (Connection: close), so a client never sends a request on a
                # connection that is about to close; a new list, as the default one is shared
                self.cycle.keep_alive = False
                self.cycle.default_headers = [*self.cycle.default_headers, (b"connection", b"close")]
        if self.conn.their_state is h11.SEND_BODY:
            self.cancel_timer()
            self.timer = self.loop.call_later(type(self).limits.body_timeout, self.body_timed_out)
        else:
            self.cancel_timer()

    def await_head(self) -> None:
        self.cancel_timer()
        type(self).waiting[self] = None
        self.timer = self.loop.call_later(type(self).limits.header_timeout, self.drop)

    def body_timed_out(self) -> None:
        self.timer = None
        if self.transport.is_closing() or self.conn.their_state is not h11.SEND_BODY:
            return
        if self.flow.read_paused:  # the server stopped reading, not the client: wait again
            self.timer = self.loop.call_later(type(self).limits.body_timeout, self.body_timed_out)
            return
        cycle = self.cycle
        if cycle is not None and not cycle.response_started:
            cycle.response_started = True  # the app's own answer (if any) is dropped
            self.transport.write(TIMED_OUT)
        self.drop()

    def cancel_timer(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None

    def refuse(self) -> None:
        self.transport.write(REFUSED)
        self.transport.close()

    def drop(self) -> None:
        """Close the connection; a request the app is reading sees a disconnect."""
        self.cancel_timer()
        type(self).waiting.pop(self, None)
        if self.cycle is not None and not self.cycle.response_complete:
            self.cycle.disconnected = True
            self.cycle.message_event.set()
        self.transport.close()


def guarded_protocol(limits: ConnectionSettings) -> type[GuardedH11Protocol]:
    """A protocol class for ``uvicorn.Config(http=...)`` with its own counters and ``limits``."""

    class Guarded(GuardedH11Protocol):
        pass

    Guarded.limits = limits
    Guarded.admitted = set()
    Guarded.per_address = Counter()
    Guarded.waiting = {}
    return Guarded


def uvicorn_options(limits: ConnectionSettings) -> dict[str, Any]:
    """The ``uvicorn.Config`` keyword arguments that apply ``limits``."""
    return {
        "http": guarded_protocol(limits),
        "timeout_keep_alive": limits.keep_alive_timeout,
        # asyncio accepts up to `backlog` connections per wake-up before any of them is seen (and
        # the cap applied); uvicorn's 2048 lets a burst take more descriptors than a default
        # 1024-file process has, however low max_connections is
        "backlog": ACCEPT_BACKLOG,
    }


__all__ = ["ConnectionSettings", "GuardedH11Protocol", "guarded_protocol", "uvicorn_options"]
