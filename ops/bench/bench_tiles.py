"""The tiled log (C2SP tlog-tiles) at scale: writing the tiles from the database, and proofs from tiles.

    python -m ops.bench.bench_tiles [--backend sqlite|postgres] [--size N] [--proofs P]

The log is filled to N entries with synthetic leaves (``bench_log.prefill``) and checkpointed. Then:
  * the time ``log tiles`` takes to write the whole directory from the database (every tile and entry
    bundle, fsynced, then the checkpoint), and to add one checkpoint of 1,000 more entries to it;
  * inclusion and consistency proofs per second computed from the tiles in the directory — cold (a
    fresh reader per proof: every tile it needs read from disk) and warm (one reader, tiles cached) —
    beside the same proofs from the database (``Ledger.inclusion_proof``: the API's path), measured in
    the same run on the same log.
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from ledger.log import merkle, tiles
from ledger.log.tile_writer import TileWriter, write_tiles
from ops.bench.bench_log import prefill
from ops.bench.common import bench_ledger


def _rate(count: int, run: Callable[[int], object]) -> float:
    start = time.perf_counter()
    for i in range(count):
        run(i)
    return count / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--size", type=int, default=100_000)
    parser.add_argument("--proofs", type=int, default=2000)
    args = parser.parse_args()
    rng = random.Random(7)  # noqa: S311 - reproducible benchmark indexes
    with bench_ledger(args.backend) as bench, tempfile.TemporaryDirectory(prefix="el-tiles-") as tmp:
        ledger = bench.ledger
        start = time.perf_counter()
        prefill(ledger, args.size)
        ledger.checkpoint()
        print(f"fill {args.size} entries ({args.backend}): {time.perf_counter() - start:.1f} s")
        directory = Path(tmp) / "tiles"
        start = time.perf_counter()
        written, checkpoint = write_tiles(ledger, directory)
        full = time.perf_counter() - start
        assert checkpoint is not None
        size = checkpoint.size
        print(f"write the tiles of {size} entries from the database: {full:.2f} s ({written} files)")
        writer = TileWriter(directory)
        writer.publish(ledger)  # resumes from the directory's checkpoint
        prefill(ledger, size + 1000)
        ledger.checkpoint()
        start = time.perf_counter()
        writer.publish(ledger)
        print(f"publish one checkpoint of 1,000 more entries: {(time.perf_counter() - start) * 1000:.1f} ms")
        fetch = tiles.directory_fetch(directory)
        indexes = [rng.randrange(size) for _ in range(args.proofs)]
        firsts = [rng.randrange(1, size + 1) for _ in range(args.proofs)]
        warm = tiles.TiledTree(fetch, size)
        for i in range(args.proofs):  # the answers agree before they are timed
            if i % 50 == 0:
                assert warm.inclusion_proof(indexes[i]) == ledger.inclusion_proof(indexes[i], size)
                assert warm.consistency_proof(firsts[i]) == ledger.consistency_proof(firsts[i], size)
        root = checkpoint.root
        rows = [
            ("inclusion, database (API path)", _rate(args.proofs, lambda i: ledger.inclusion_proof(indexes[i], size))),
            ("inclusion, tiles cold", _rate(args.proofs, lambda i: tiles.TiledTree(fetch, size).inclusion_proof(indexes[i]))),
            ("inclusion, tiles warm", _rate(args.proofs, lambda i: warm.inclusion_proof(indexes[i]))),
            ("consistency, database (API path)",
             _rate(args.proofs, lambda i: ledger.consistency_proof(firsts[i], size))),
            ("consistency, tiles cold",
             _rate(args.proofs, lambda i: tiles.TiledTree(fetch, size).consistency_proof(firsts[i]))),
            ("consistency, tiles warm", _rate(args.proofs, lambda i: warm.consistency_proof(firsts[i]))),
        ]
        for name, rate in rows:
            print(f"{name:<34} {rate:>10,.0f} proofs/s")
        leaf = merkle.leaf_hash(ledger.leaf(indexes[0]))
        merkle.verify_inclusion(leaf, indexes[0], size, warm.inclusion_proof(indexes[0]), root)


if __name__ == "__main__":
    main()
