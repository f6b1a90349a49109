"""Offline bundle verification speed: a 1,000-event case, beside bare Ed25519 verification.

    python -m ops.bench.bench_verify [--events 1000] [--runs 7] [--workers W] [--profile]

Builds a case of N signed events on a throwaway SQLite ledger, exports its bundle, then times
``verify_bundle`` (median of R runs, the whole verification: zip, manifest hashes, parsing,
signatures, chains, leaves, inclusion proofs, checkpoint, rules, report facts) with W processes
(default: all cores) and with one, and in the same run the bare rate of Ed25519 verification of
the very same DSSE messages on W threads (``cryptography`` releases the GIL, so the threads use
every core; key objects and messages are made beforehand, only ``verify`` is timed) and on one.
Goal (issue 12, P7): <= 0.25 s for 1,000 events using every core.
``--profile`` prints where the time goes (cProfile, by cumulative and own time).
"""

from __future__ import annotations

import argparse
import cProfile
import hashlib
import io
import os
import pstats
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar
from zipfile import ZipFile

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ledger.envelope.dsse import parse_envelope
from ledger.evidence.bundle import export_bundle
from ledger.verify import VerifyOptions, bundle_format, public_keys_in, verify_bundle
from ops.bench.common import bare_ed25519_rate, bench_ledger, signature_items, signed_chain

T = TypeVar("T")


def _body(i: int) -> tuple[str, dict[str, object]]:
    if i % 20 == 0:
        return "FootageCaptured", {
            "footage_id": f"ftg-{i}",
            "source": "body_worn_camera",
            "device_id": f"BWC-{i:04d}",
            "recorded_from": "2026-02-05T16:58:00Z",
            "recorded_to": "2026-02-05T17:06:00Z",
            "sha256": hashlib.sha256(b"%d" % i).hexdigest(),
            "size_bytes": 1000 + i,
            "media_type": "video/mp4",
            "depicts": ["property_damage_by_federal_officials"],
            "custodian": "CPD Evidence Unit",
            "stored": False,
        }
    return "ReportReceived", {
        "report_id": f"rpt-{i}",
        "channel": "911_call",
        "received_at": "2026-02-05T17:02:00Z",
        "location": "Central Square (block level)",
        "observed_agency": "ICE",
        "narrative": f"Caller saw agents near a parked car; benchmark report number {i}.",
        "reporter": None,
    }


def signed_case(key: Ed25519PrivateKey, events: int) -> tuple[str, list[bytes]]:
    case_id = str(uuid.uuid4())
    opened = (
        "CaseOpened",
        {"case_number": "CPD-BENCH-1", "category": "property_damage", "summary": "Benchmark case"},
    )
    bodies = (opened if seq == 1 else _body(seq) for seq in range(1, events + 1))
    return case_id, signed_chain(key, case_id, bodies, start=datetime.now(UTC) - timedelta(seconds=10))


def exported_case(bench: Any, events: int, bundle: Path) -> str:
    """Append a case of ``events`` signed events to the bench ledger, sign a checkpoint and export the
    case's bundle to ``bundle``; returns the case id."""
    case_id, raws = signed_case(bench.investigator, events)
    for start in range(0, len(raws), 100):
        outcomes = bench.ledger.append(raws[start : start + 100])
        assert all(not isinstance(o, Exception) for o in outcomes), outcomes
    bench.ledger.checkpoint()
    export_bundle(bench.ledger, case_id, bundle)
    return case_id


def bundle_signatures(bundle: Path) -> list[tuple[Any, bytes, bytes]]:
    """The bundle's own envelopes, ready for the bare verify loop."""
    with ZipFile(bundle) as zf:
        names = sorted(n for n in zf.namelist() if n.startswith(bundle_format.ENVELOPES))
        raws = [zf.read(n) for n in names]
    keys = public_keys_in([parse_envelope(raw) for raw in raws])
    return signature_items(raws, keys)


def timed_runs(bundle: Path, options: VerifyOptions, runs: int) -> tuple[list[float], int]:
    verify_bundle(bundle, options)  # warm up imports and caches
    timings, entries = [], 0
    for _ in range(runs):
        started = time.perf_counter()
        result = verify_bundle(bundle, options)
        timings.append(time.perf_counter() - started)
        assert result.verified, [str(f) for f in result.findings]
        entries = len(result.timeline) + len(result.registry)
    return timings, entries


def _best(func: Callable[[], T], runs: int = 5) -> tuple[float, T]:
    timings, results = [], []
    for _ in range(runs):
        started = time.perf_counter()
        results.append(func())
        timings.append(time.perf_counter() - started)
    return min(timings), results[-1]


def breakdown(bundle: Path) -> list[tuple[str, float]]:
    """Best-of-5 seconds of each phase of verify_bundle, measured separately: the phases are the
    verifier's internal steps, so this (and only this) imports its internal modules."""
    from ledger.verify import bundle_files as bf
    from ledger.verify import check_entries, verify_signatures
    from ledger.verify.bundle_checks import collect_entries
    from ledger.verify.bundle_log import check_checkpoint, check_inclusion
    from ledger.verify.bundle_model import BundleVerification

    def read() -> tuple[bf.Manifest, bf.BundleFiles]:
        _, source = bf.load_bundle(bundle)
        with bf.open_bundle(source, bundle.name) as (zf, raw):
            return bf.parse_manifest(raw), bf.read_members(zf)

    t_read, (manifest, files) = _best(read)
    v = BundleVerification(bundle.name, "", manifest)
    entries = collect_entries(v, files)
    t_parse, parsed = _best(lambda: [parse_envelope(e.envelope) for e in entries])
    t_sigs, _ = _best(lambda: verify_signatures(parsed))
    t_entries, _ = _best(lambda: check_entries(entries, origin=manifest.origin, partial_registry=True))
    t_checkpoint, checkpoint = _best(lambda: check_checkpoint(v, files, VerifyOptions()))
    t_inclusion, _ = _best(lambda: check_inclusion(v, files, checkpoint))
    return [
        ("read zip, hash every member (check 1)", t_read),
        ("parse envelopes + statements, canonical check (2)", t_parse),
        ("Ed25519 signatures (3)", t_sigs),
        ("leaves, chains, keys, case rules replay (3-5, 10)", t_entries - t_parse - t_sigs),
        ("inclusion proofs (7)", t_inclusion),
        ("checkpoint and witnesses (8)", t_checkpoint),
    ]


def profile(bundle: Path, options: VerifyOptions) -> str:
    profiler = cProfile.Profile()
    profiler.enable()
    verify_bundle(bundle, options)
    profiler.disable()
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats("cumulative").print_stats(25)
    stats.sort_stats("tottime").print_stats(15)
    return out.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    with bench_ledger("sqlite") as bench, tempfile.TemporaryDirectory(prefix="el-bench-verify-") as tmp:
        bundle = Path(tmp) / "case.zip"
        exported_case(bench, args.events, bundle)
        trust_root = bench.ledger.config.admin_key_id
        # As for `evidence-ledger verify`, no ledger is open while verifying (a smaller process
        # to fork, no connection pool's threads).
        bench.ledger.close()
        items = bundle_signatures(bundle)
        bare_one = bare_ed25519_rate(items, 1)
        bare = bare_ed25519_rate(items, args.workers)
        options = VerifyOptions(workers=args.workers, trust_root=trust_root)
        timings, entries = timed_runs(bundle, options, args.runs)
        serial, _ = timed_runs(bundle, VerifyOptions(workers=1, trust_root=trust_root), args.runs)
        bare = (bare + bare_ed25519_rate(items, args.workers)) / 2
        seconds = statistics.median(timings)
        rate = entries / seconds
        print(
            f"bundle: {args.events} case events + {entries - args.events} registry entries, "
            f"{bundle.stat().st_size} bytes; {os.cpu_count()} cores"
        )
        print(
            f"verify_bundle, workers={args.workers}: median {seconds:.3f} s over {args.runs} runs "
            f"(min {min(timings):.3f} s)  [goal <= 0.25 s]"
        )
        print(
            f"verify_bundle, workers=1: median {statistics.median(serial):.3f} s (min {min(serial):.3f} s); "
            f"{args.workers} workers are {statistics.median(serial) / seconds:.2f}x faster"
        )
        print(
            f"throughput: {rate:,.0f} events/s; baseline, bare Ed25519 verify of the same {len(items)} "
            f"signatures on {args.workers} threads: {bare:,.0f}/s (one thread {bare_one:,.0f}/s); "
            f"ratio {rate / bare:.0%}"
        )
        print("where the time goes with one process (each phase timed alone, best of 5):")
        for label, phase in breakdown(bundle):
            print(f"  {label:52} {phase * 1000:7.1f} ms")
        if args.profile:
            print(profile(bundle, options))


if __name__ == "__main__":
    main()
