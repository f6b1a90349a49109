"""The access benchmark's baseline: the real service, with an access recorder that records nothing.

Only ``ops/bench/bench_access.py`` starts it (``ops.bench.run_app --factory ops.bench.read_app:app``), to
measure what recording every read costs; the service itself has no way to turn recording off.
"""

from __future__ import annotations

from fastapi import FastAPI

from api.app import create_app
from ledger.log.access_entry import AccessRecord
from ledger.settings import Settings


class NotRecording:
    """An AccessRecorder (api/access.py) that writes nothing: the baseline of the benchmark only."""

    def record(self, record: AccessRecord) -> int:
        return 0

    async def record_async(self, record: AccessRecord) -> int:
        return 0


def app() -> FastAPI:
    return create_app(Settings(), access_recorder=NotRecording())
