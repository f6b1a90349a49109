"""The baselines of the HTTP benchmarks and the simulation: empty FastAPI handlers under the same server settings.

Each reads what the ledger must (the POST its body) and answers with a small JSON object, nothing else.
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


@app.get("/v1/log/proof/inclusion")
async def empty_proof(index: int, size: int) -> JSONResponse:
    """The state-wide simulation's proof-read baseline (``ops.sim``): a small JSON answer, no proof."""
    return JSONResponse({"leaf_index": index, "tree_size": size, "hashes": []})
