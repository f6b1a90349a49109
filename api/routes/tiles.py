"""The case log as C2SP tlog-tiles (https://c2sp.org/tlog-tiles), served from the tiles directory the
checkpointer writes (``EVIDENCE_LEDGER_TILES_DIR``; docs/formats.md, Tiled log). Public, read-only."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from api.appending import runtime_of
from api.errors import problems
from domain.errors import LedgerError, NotFoundError
from ledger.log import tiles

router = APIRouter(prefix="/tiles", tags=["log"])

# One caching policy, also ops/proxy/nginx.conf's and docs/tiles.md's (tests/ops/test_units.py compares
# them): full tiles never change; a partial tile never changes either but is superseded by the full one
# (and may be deleted then); the checkpoint changes every checkpoint interval: revalidated each time.
IMMUTABLE = "public, max-age=31536000, immutable"
PARTIAL = "public, max-age=60"
CHECKPOINT = "no-cache"
PUBLIC = {"Access-Control-Allow-Origin": "*"}  # public data, read by browsers too
BINARY = {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}


def _read(request: Request, path: str) -> bytes:
    directory = runtime_of(request).settings.tiles_path
    try:
        return (directory / path).read_bytes()
    except OSError:
        raise NotFoundError(f"{path} is not published (yet)", code="NO_TILE") from None


@router.get(
    "/checkpoint",
    summary="The published checkpoint of the tiled log (C2SP signed note, with witness cosignatures)",
    response_class=Response,
    responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}, **problems(404)},
)
def checkpoint(request: Request) -> Response:
    body = _read(request, tiles.CHECKPOINT)
    return Response(body, media_type="text/plain; charset=utf-8", headers={"Cache-Control": CHECKPOINT, **PUBLIC})


@router.get(
    "/tile/{path:path}",
    summary="A hash tile tile/<L>/<N>[.p/<W>] or an entry bundle tile/entries/<N>[.p/<W>]",
    description="Full tiles never change (cached for a year); partial ones (.p/W) for a minute.",
    response_class=Response,
    responses={200: {"content": BINARY}, **problems(404)},
)
def tile(request: Request, path: str) -> Response:
    try:
        parsed = tiles.parse_path("tile/" + path)
    except LedgerError:
        raise NotFoundError("not a tile path (tile/<L>/<N>[.p/<W>] or tile/entries/<N>[.p/<W>])", code="NO_TILE") from None
    body = _read(request, parsed.path)
    cache = IMMUTABLE if parsed.full else PARTIAL
    return Response(body, media_type="application/octet-stream", headers={"Cache-Control": cache, **PUBLIC})
