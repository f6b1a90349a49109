"""One set-up shared by the benchmarks and the crash harness: a fresh data dir with one signing key.

Each of them needs the same thing an operator does after ``init`` and ``keys register``: an
initialised ledger (SQLite, or the PostgreSQL database at ``database_url``) and an Ed25519 key
registered for one actor. The key is generated here and returned, never written to disk.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ledger.bootstrap import init_data_dir, register_key
from ledger.envelope.keys import raw_public_key
from ledger.settings import Settings, key_path
from ledger.store import Ledger


def prepare_ledger(
    data_dir: Path,
    database_url: str | None,
    *,
    origin: str,
    actor: str,
    role: str = "investigator",
) -> tuple[Settings, Ed25519PrivateKey]:
    """Initialise ``data_dir`` (demo admin key) and register a new key for ``actor``; the ledger is closed again."""
    settings = Settings(data_dir=data_dir, database_url=database_url)
    init_data_dir(data_dir, origin, settings, now=datetime.now(UTC))
    key = Ed25519PrivateKey.generate()
    with Ledger(settings) as ledger:
        register_key(
            ledger,
            key_path(data_dir, "admin"),
            raw_public_key(key),
            actor=actor,
            role=role,
            authority=None,
        )
    return settings, key
