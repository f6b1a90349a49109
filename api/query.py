"""Unknown query parameters are refused, not ignored.

A misspelt parameter must not silently change the answer: ``GET /v1/cases/{id}?asof=…`` would
otherwise return today's case instead of the case as it was. Every route gets this check as an
app-wide dependency; the refusal is the usual ``400 INVALID_REQUEST`` with ``errors[].loc``.
"""

from __future__ import annotations

import re

from fastapi import Request
from fastapi.dependencies.models import Dependant
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute

# A parameter name is echoed only when it cannot be anything but a name (never free text).
SAFE_NAME = re.compile(r"[a-z][a-z0-9_]{0,31}")
_known: dict[int, frozenset[str]] = {}


def _query_names(dependant: Dependant) -> set[str]:
    names = {p.alias for p in dependant.query_params}
    for sub in dependant.dependencies:
        names |= _query_names(sub)
    return names


def _known_parameters(route: APIRoute) -> frozenset[str]:
    known = _known.get(id(route))
    if known is None:
        known = _known[id(route)] = frozenset(_query_names(route.dependant))
    return known


async def reject_unknown_query_parameters(request: Request) -> None:
    route = request.scope.get("route")
    if not request.query_params or not isinstance(route, APIRoute):
        return
    unknown = sorted(set(request.query_params) - _known_parameters(route))
    if unknown:
        raise RequestValidationError([
            {
                "loc": ("query", name) if SAFE_NAME.fullmatch(name) else ("query",),
                "msg": "unknown query parameter",
                "type": "extra_forbidden",
            }
            for name in unknown[:20]
        ])
