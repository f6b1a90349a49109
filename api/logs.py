"""Structured JSON log lines (structlog) with an allow-list of fields.

Only the keys in :data:`ALLOWED_KEYS` reach the output; anything else a caller binds is dropped,
so a body, a token or a personal value passed to a logger by mistake never leaves the process.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from typing import Any, TextIO

import structlog

ALLOWED_KEYS = frozenset(
    {
        "event", "level", "timestamp", "logger",
        "request_id", "method", "route", "status", "latency_ms", "actor", "role", "code", "error_type",
        "batch_size", "accepted", "refused", "commit_ms", "size", "host", "port", "origin", "backend",
    }
)
LOGGER_NAME = "evidence_ledger.api"


def allow_list(_logger: Any, _name: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    for key in [k for k in event_dict if k not in ALLOWED_KEYS]:
        del event_dict[key]
    return event_dict


def configure_logging(stream: TextIO | None = None, level: int = logging.INFO) -> None:
    """JSON lines on ``stream`` (default stderr); call once per process (serve, tests)."""
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            allow_list,
            structlog.processors.JSONRenderer(sort_keys=True),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(file=stream or sys.stderr),
        cache_logger_on_first_use=True,  # loggers are made per app (tests reconfigure between apps)
    )


def get_logger() -> Any:
    return structlog.get_logger(LOGGER_NAME)
