"""A bounded, closed-loop HTTP load generator for loopback benchmarks and harnesses (httpx + asyncio)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import httpx


@dataclass
class LoadResult:
    latencies_ms: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    errors: int = 0
    seconds: float = 0.0

    @property
    def ok(self) -> int:
        return sum(n for status, n in self.statuses.items() if 200 <= status < 300)

    @property
    def rate(self) -> float:
        return self.ok / self.seconds if self.seconds else 0.0


async def _run(
    base_url: str, requests: Sequence[tuple[str, bytes]], clients: int, token: str | None
) -> LoadResult:
    result = LoadResult()
    queue: asyncio.Queue[tuple[str, bytes]] = asyncio.Queue()
    for item in requests:
        queue.put_nowait(item)
    headers = {"content-type": "application/json"}
    if token:
        headers["authorization"] = f"Bearer {token}"
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=base_url, headers=headers, limits=limits, timeout=30.0) as client:

        async def worker() -> None:
            while True:
                try:
                    path, body = queue.get_nowait()
                except asyncio.QueueEmpty:
                    return
                started = time.perf_counter()
                try:
                    response = await client.post(path, content=body)
                except httpx.HTTPError:
                    result.errors += 1
                    continue
                result.latencies_ms.append((time.perf_counter() - started) * 1000)
                result.statuses[response.status_code] = result.statuses.get(response.status_code, 0) + 1

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(clients)))
        result.seconds = time.perf_counter() - started
    return result


def run_load(
    base_url: str, requests: Sequence[tuple[str, bytes]], clients: int, token: str | None = None
) -> LoadResult:
    """POST every (path, body) once, ``clients`` at a time; bounded by the request list."""
    return asyncio.run(_run(base_url, requests, clients, token))
