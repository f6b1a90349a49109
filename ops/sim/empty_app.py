"""The simulation's baselines: empty FastAPI handlers for the two requests it sends, under the ledger's
server settings (``python -m ops.bench.run_app ops.sim.empty_app:app``).

The append handler reads the body (as the ledger must) and answers 201; the proof handler answers 200
with a small JSON object. Driven by the same wrk script with the same request files, they give the load
generator's own ceiling on this machine, measured in the same run as the ledger's figures.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

app = FastAPI()


@app.post("/v1/cases/{case_id}/events", status_code=201)
async def empty_append(case_id: str, request: Request) -> JSONResponse:
    await request.body()
    return JSONResponse({"case_id": case_id}, status_code=201)


@app.get("/v1/log/proof/inclusion")
async def empty_proof(index: int, size: int) -> JSONResponse:
    return JSONResponse({"leaf_index": index, "tree_size": size, "hashes": []})
