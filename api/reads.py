"""Which database serves a read endpoint: the read replica when it is current enough, else the primary.

A client states how many log entries the read must reflect at least in the request header
``Evidence-Ledger-Checkpoint-Size``: the size of the newest checkpoint it holds, or more after its own
appends (the project's client sends the larger of its remembered checkpoint's size and the
``leaf_index + 1`` of its latest append, for read-your-writes); the route adds
what it needs itself (the tree size a proof or checkpoint is asked for). ``Ledger.reading`` then picks
the database (docs/scaling-reads.md). With a replica configured every routed response says where it was
read (``Evidence-Ledger-Read-From: replica|primary``) and the log size it reflects at least
(``Evidence-Ledger-Log-Size``); every routed read served is counted in ``evidence_ledger_reads_total``
by the database that served it and why, every read refused at routing as ``none``/``refused``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import Response

from api.appending import runtime_of
from api.metrics import Metrics
from domain.errors import MalformedInputError
from ledger.storage.replica import ReplicaBehind, Route
from ledger.store import Ledger

HELD_HEADER = "Evidence-Ledger-Checkpoint-Size"
SIZE_HEADER = "Evidence-Ledger-Log-Size"
SOURCE_HEADER = "Evidence-Ledger-Read-From"
MAX_SIZE = 2**53
_DIGITS = re.compile(r"[0-9]{1,16}")


@dataclass(frozen=True)
class Reading:
    """The ledger a route reads from, and the route the read took."""

    ledger: Ledger
    route: Route
    routed: bool  # a replica is configured: the response says where it was read
    metrics: Metrics | None = None

    def stamp(self, response: Response) -> Response:
        """Say where the response was read and what it reflects, and count the read (by the database
        that finally served it: a replica that failed mid-request counts as ``primary``/``failed``)."""
        if self.routed:
            source: str = self.route.source
            reason: str = self.route.reason
            if self.ledger.read_fell_back:
                source, reason = "primary", "failed"
            if self.metrics is not None:
                self.metrics.count_read(source, reason)
            response.headers[SOURCE_HEADER] = source
            if self.route.size is not None:  # a primary that took over reflects at least as much
                response.headers[SIZE_HEADER] = str(self.route.size)
        return response


def held_size(request: Request) -> int:
    """The log size the client says the read must reflect (its held checkpoint's size or its own appends';
    0 when it says nothing); 400 for a malformed value."""
    value = request.headers.get(HELD_HEADER)
    if value is None:
        return 0
    value = value.strip()
    if not _DIGITS.fullmatch(value) or int(value) > MAX_SIZE:
        raise MalformedInputError(
            f"the {HELD_HEADER} header must be a tree size (a decimal integer from 0 to 2^53)",
            code="BAD_ARGUMENT",
        )
    return int(value)


def reading(request: Request, *, at_least: int = 0) -> Reading:
    """Route a read that must reflect at least ``at_least`` entries and the client's checkpoint.
    Blocking (it may ask the replica or the primary for its log size): call it from threadpool routes."""
    runtime = runtime_of(request)
    needed = max(at_least, held_size(request))
    ledger = runtime.ledger
    if ledger.replica is None:
        return Reading(ledger, Route("primary", "current", needed, None), routed=False)
    try:
        view, route = ledger.reading(needed)
    except ReplicaBehind:
        runtime.metrics.count_read("none", "refused")
        raise
    return Reading(view, route, routed=True, metrics=runtime.metrics)
