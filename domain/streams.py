"""One entry point for both kinds of stream: the key registry and cases."""

from __future__ import annotations

from typing import Any

from domain.case import apply
from domain.context import REGISTRY_STREAM_ID, DomainConfig, EventContext
from domain.events import Event
from domain.registry import apply_registry


def apply_to_stream(state: Any, event: Event, ctx: EventContext, config: DomainConfig | None = None) -> Any:
    """The next state of the stream ``ctx.case_id`` after ``event``; raises the domain's errors."""
    if ctx.case_id == REGISTRY_STREAM_ID:
        return apply_registry(state, event, ctx, config)
    return apply(state, event, ctx, config)
