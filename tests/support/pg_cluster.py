"""When the tests that make their own PostgreSQL clusters (``ops/pgcluster.py``) must run, not skip.

The rule of tests/conftest.py's ``postgres_required``: in CI (``CI`` set) or with
``EVIDENCE_LEDGER_TEST_POSTGRES=required`` a missing server binary or ``postgres`` OS user is a
failure, elsewhere a skip with a loud reason.
"""

from __future__ import annotations

import os

import pytest

from ops.pgcluster import unavailable


def required() -> bool:
    """The cluster tests must run, not skip."""
    return bool(os.environ.get("CI")) or os.environ.get("EVIDENCE_LEDGER_TEST_POSTGRES") == "required"


def available() -> str | None:
    """Why no cluster can be made here, or None."""
    return unavailable()


def skip_or_fail(tests: str) -> None:
    """Return when clusters can be made here; else skip ``tests`` (named in the reason), or fail them
    when they are :func:`required`."""
    reason = available()
    if reason is None:
        return
    if required():
        pytest.fail(f"{reason} — the {tests} must run here")
    pytest.skip(f"SKIPPING {tests.upper()}: {reason}")
