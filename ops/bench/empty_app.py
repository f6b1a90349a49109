"""The baseline for the HTTP benchmark: an empty FastAPI POST handler under the same server settings.

It reads the body (as the ledger must) and answers 201 with a small JSON object, nothing else.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

app = FastAPI()


@app.post("/v1/cases/{case_id}/events", status_code=201)
async def empty(case_id: str, request: Request) -> JSONResponse:
    await request.body()
    return JSONResponse({"case_id": case_id}, status_code=201)


@app.get("/v1/cases/{case_id}")
async def empty_read(case_id: str) -> JSONResponse:
    """The read benchmark's load-generator check (``bench_access``): a GET that does nothing."""
    return JSONResponse({"case_id": case_id})
