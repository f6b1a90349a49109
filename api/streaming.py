"""Streaming an open file to the client without holding it in memory, and always closing it.

The file is read in a worker thread, one chunk at a time, and closed (``cleanup`` run) however the
response ends: sent in full, the client gone, the task cancelled.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping
from typing import IO, Any

from starlette.concurrency import run_in_threadpool
from starlette.responses import StreamingResponse

CHUNK = 1024 * 1024


class FileStreamResponse(StreamingResponse):
    def __init__(
        self,
        handle: IO[bytes],
        size: int,
        *,
        media_type: str,
        headers: Mapping[str, str] | None = None,
        cleanup: Callable[[], None] | None = None,
    ) -> None:
        self.handle = handle
        self.cleanup = cleanup
        super().__init__(
            self._chunks(), media_type=media_type, headers={**(headers or {}), "Content-Length": str(size)}
        )

    async def _chunks(self) -> AsyncIterator[bytes]:
        while True:
            chunk = await run_in_threadpool(self.handle.read, CHUNK)
            if not chunk:
                return
            yield chunk

    def close(self) -> None:
        try:
            self.handle.close()
        finally:
            if self.cleanup is not None:
                self.cleanup()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self.close()  # sync on purpose: close/unlink are quick and must run even when cancelled
