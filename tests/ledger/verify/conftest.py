"""Fixtures of the verifier's tests: a bundle of the Cambridge scenario, made on SQLite."""

from __future__ import annotations

from pathlib import Path

import pytest

from ledger.store import Ledger
from tests.support.bundles import Exported, export_scenario


@pytest.fixture
def backend() -> str:
    """The verifier reads bundles, never a database: SQLite ledgers make them here, and
    tests/ledger/evidence/test_bundle.py verifies one exported from each backend."""
    return "sqlite"


@pytest.fixture
def exported(ledger: Ledger, tmp_path: Path) -> Exported:
    return export_scenario(ledger, tmp_path / "case.zip")
