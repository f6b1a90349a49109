"""`verify BUNDLE --tiles DIR|URL`: a bundle against the log published as tlog-tiles, offline.

Run through the offline verifier (``evidence-ledger-verify``, which can import no HTTP client and no
database driver): the tiles' checkpoint must extend the bundle's (consistency proof computed from
the tiles) and every leaf of the bundle must be in the tiles' tree."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from ledger.log.tile_writer import TileWriter
from ledger.store import Ledger
from ops.bench.bench_log import prefill
from tests.support.bundles import Exported, codes, export_scenario, verify

pytestmark = pytest.mark.parametrize("backend", ["sqlite"])


@pytest.fixture
def exported(ledger: Ledger, tmp_path: Path) -> Exported:
    TileWriter(tmp_path / "old-tiles").publish(ledger)  # the log before the case: older than the bundle
    done = export_scenario(ledger, tmp_path / "case.zip")
    prefill(ledger, ledger.log_size() + 300)  # the log grows after the export
    ledger.checkpoint()
    TileWriter(tmp_path / "tiles").publish(ledger)
    return done


def _pins(e: Exported) -> list[str]:
    return ["--vkey", e.log_vkey, "--trust-root", e.trust_root]


def test_the_bundle_is_consistent_with_the_tiles(exported: Exported, tmp_path: Path) -> None:
    code, report = verify(exported.path, *_pins(exported), "--tiles", str(tmp_path / "tiles"))
    assert code == 0, report["findings"]
    section = report["checkpoint"]["tiles"]
    assert section["status"] == "consistent" and section["size"] == exported.ledger.log_size()
    assert section["included"] == len(report["timeline"]) + len(report["registry"])


def test_tampered_tiles_are_found(exported: Exported, tmp_path: Path) -> None:
    bad = tmp_path / "bad"
    shutil.copytree(tmp_path / "tiles", bad)
    tile = bad / "tile/0/000"
    data = bytearray(tile.read_bytes())
    data[0] ^= 1  # the hash of leaf 0: in every proof of the bundle's first entries
    tile.write_bytes(bytes(data))
    code, report = verify(exported.path, *_pins(exported), "--tiles", str(bad))
    assert code == 1 and codes(report) and codes(report) <= {"EQUIVOCATION", "BAD_INCLUSION"}, report["findings"]


def test_older_tiles_prove_nothing_and_say_so(exported: Exported, tmp_path: Path) -> None:
    code, report = verify(exported.path, *_pins(exported), "--tiles", str(tmp_path / "old-tiles"))
    assert code == 0 and report["checkpoint"]["tiles"]["status"] == "not compared"
    assert any("older than the bundle" in c for c in report["caveats"])
