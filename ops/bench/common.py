"""Shared set-up for benchmarks: throwaway ledgers on SQLite or PostgreSQL, pre-signed envelopes."""

from __future__ import annotations

import hashlib
import secrets
import statistics
import tempfile
import time
import uuid
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from ledger.envelope.dsse import PAYLOAD_TYPE, pae, parse_envelope
from ledger.envelope.signing import build_envelope
from ledger.settings import Settings
from ledger.store import Ledger
from ops.ledgers import prepare_ledger

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/test"
ORIGIN = "bench.cambridgema.gov/evidence-ledger"


@contextmanager
def database(backend: str) -> Iterator[str | None]:
    if backend == "sqlite":
        yield None
        return
    name = f"el_bench_{secrets.token_hex(4)}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{PG_ADMIN.rsplit('/', 1)[0]}/{name}"
    finally:
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@dataclass
class BenchLedger:
    ledger: Ledger
    investigator: Ed25519PrivateKey
    settings: Settings


@contextmanager
def bench_ledger(backend: str) -> Iterator[BenchLedger]:
    with tempfile.TemporaryDirectory(prefix="el-bench-") as tmp, database(backend) as url:
        settings, key = prepare_ledger(Path(tmp) / "data", url, origin=ORIGIN, actor="bench")
        ledger = Ledger(settings)
        try:
            yield BenchLedger(ledger, key, settings)
        finally:
            ledger.close()


def case_opened_envelopes(key: Ed25519PrivateKey, count: int) -> list[bytes]:
    """``count`` signed CaseOpened envelopes, each opening its own case (about 600 bytes each)."""
    start = datetime.now(UTC)
    return [
        build_envelope(
            origin=ORIGIN,
            case_id=str(uuid.uuid4()),
            event_type="CaseOpened",
            body={
                "case_number": f"CPD-BENCH-{i:07d}",
                "category": "violence",
                "summary": "Benchmark case opened to measure the append path " + "x" * 200,
            },
            key=key,
            seq=1,
            prev=None,
            occurred_at=start + timedelta(microseconds=i),
        )
        for i in range(count)
    ]


def signed_chain(
    key: Ed25519PrivateKey,
    case_id: str,
    events: Iterable[tuple[str, dict[str, Any]]],
    *,
    first_seq: int = 1,
    prev: str | None = None,
    start: datetime | None = None,
) -> list[bytes]:
    """Envelopes for consecutive positions of one case, each chained to the one before."""
    moment = start or datetime.now(UTC)
    raws = []
    for seq, (kind, body) in enumerate(events, first_seq):
        raw = build_envelope(
            origin=ORIGIN,
            case_id=case_id,
            event_type=kind,
            body=body,
            key=key,
            seq=seq,
            prev=prev,
            occurred_at=moment + timedelta(microseconds=seq),
        )
        prev = hashlib.sha256(raw).hexdigest()
        raws.append(raw)
    return raws


def signature_items(envelopes: Iterable[bytes], keys: dict[str, bytes]) -> list[tuple[Any, bytes, bytes]]:
    """(public key object, signature, signed message) of each envelope, ready to verify: the key
    objects and the DSSE pre-authentication encodings are made here, outside any timing."""
    objects = {key_id: Ed25519PublicKey.from_public_bytes(raw) for key_id, raw in keys.items()}
    items = []
    for raw in envelopes:
        env = parse_envelope(raw)
        items.append((objects[env.keyid], env.sig, pae(PAYLOAD_TYPE, env.payload)))
    return items


def bare_ed25519_rate(items: list[tuple[Any, bytes, bytes]], threads: int) -> float:
    """Ed25519 verifications per second of ``items`` on ``threads`` threads (contiguous slices, one
    per thread). ``cryptography`` releases the GIL while it verifies, so the threads run on as
    many cores; the Python left around each call is a loop step, so the harness does not cap the
    figure (compare the rate on one thread with the rate on all)."""

    def run(part: list[tuple[Any, bytes, bytes]]) -> None:
        for public, sig, message in part:
            public.verify(sig, message)

    size = -(-len(items) // threads)
    parts = [items[i : i + size] for i in range(0, len(items), size)]
    with ThreadPoolExecutor(max_workers=threads) as pool:
        pool.submit(run, items[:threads]).result()  # the threads exist before the clock starts
        started = time.perf_counter()
        for future in [pool.submit(run, part) for part in parts]:
            future.result()
        return len(items) / (time.perf_counter() - started)


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    rank = min(len(ordered) - 1, max(0, round(pct / 100 * (len(ordered) - 1))))
    return ordered[rank]


def median(values: list[float]) -> float:
    return statistics.median(values)
