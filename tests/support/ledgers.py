"""Constants and a fake clock shared by the fixtures (tests/conftest.py) and the tests."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta

PG_ADMIN_URL = os.environ.get("EVIDENCE_LEDGER_TEST_PG_ADMIN", "postgresql://postgres@127.0.0.1:5432/test")


ORIGIN = "test.cambridgema.gov/evidence-ledger"


class FakeClock:
    """A controllable UTC clock."""

    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or datetime(2026, 2, 5, 17, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        self.now += timedelta(milliseconds=1)
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)

