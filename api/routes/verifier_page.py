"""The in-browser bundle verifier (``ledger/verify/web/verify.html``), served at ``GET /verify``; public.

The page checks a bundle the user chooses entirely in the browser. The response forbids it every
connection with the page's own Content-Security-Policy (``connect-src 'none'``, the inline script
allowed only by its hash), sent here as a header too.
"""

from __future__ import annotations

from fastapi import APIRouter
from starlette.responses import Response

from ledger.verify import web

router = APIRouter()


@router.get(
    "/verify",
    summary="The in-browser bundle verifier: one self-contained HTML page that connects nowhere; public",
    description="Choose or drop a bundle on it; see docs/verification.md, 'In the browser'.",
    tags=["public"],
    response_class=Response,
    responses={200: {"content": {"text/html": {}}, "description": "The page"}},
)
def verifier_page() -> Response:
    return Response(
        web.page_bytes(),
        media_type="text/html; charset=utf-8",
        headers={
            # the page's own policy, and what only a header can say: no framing (clickjacking)
            "Content-Security-Policy": web.content_security_policy() + "; frame-ancestors 'none'",
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer",
            "Cache-Control": "no-cache",
        },
    )
