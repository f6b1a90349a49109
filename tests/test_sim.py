"""The state-wide load simulation (ops/sim, docs/scaling.md): its model's arithmetic, and a tiny run of the
whole thing so that its code keeps working. The tiny run uses wrk where it is installed and the
simulation's Python client otherwise (CI needs neither); it measures nothing worth quoting."""

from __future__ import annotations

from pathlib import Path

import pytest

from ops.sim import model, tiles
from ops.sim.cases import EVENTS_PER_SIM_CASE
from ops.sim.drive import Driver
from ops.sim.run import main, storage_in_process
from ops.sim.tiles import tile_path


def test_the_departments_add_up_to_the_state() -> None:
    depts = model.departments()
    assert len(depts) == model.MUNICIPALITIES == 351
    assert sum(d.population for d in depts) == model.STATE_POPULATION
    sizes = [d.population for d in depts]
    assert sizes == sorted(sizes, reverse=True)
    # the modelled towns stay below the smallest of the 25 largest
    assert max(sizes[len(model.LARGEST):]) <= model.LARGEST[-1][1]
    assert len({d.code for d in depts}) == 351
    with pytest.raises(ValueError, match="departments"):
        model.departments(352)


def test_the_load_follows_the_assumptions() -> None:
    a = model.Assumptions()
    depts = model.departments()
    load = model.load(depts, a)
    per_year = model.STATE_POPULATION / 1000 * a.cases_per_1000_residents * sum(a.events_per_case.values())
    assert load.events_per_year == pytest.approx(per_year)
    assert load.mean_appends_s == pytest.approx(per_year / (365.25 * 86400))
    assert load.peak_appends_s == pytest.approx(load.mean_appends_s * a.peak_hour_factor)
    witness = 351 * a.witnesses_per_log / a.checkpoint_interval_s
    assert load.peak_proof_reads_s == pytest.approx(load.peak_appends_s * a.proof_reads_per_event + witness)
    doubled = model.load(depts, model.Assumptions(cases_per_1000_residents=2 * a.cases_per_1000_residents))
    assert doubled.peak_appends_s == pytest.approx(2 * load.peak_appends_s)


def test_tile_paths_follow_c2sp() -> None:
    assert tile_path(0, 5) == "tile/0/005"
    assert tile_path(0, 1234067) == "tile/0/x001/x234/067"
    assert tile_path(2, 1000) == "tile/2/x001/000"


def test_a_tiny_simulation_runs_without_errors() -> None:
    figures = main(["--tiny", "--backend", "sqlite", "--storage-backends", "sqlite"])
    assert figures["errors"] == 0
    assert figures["sat_appends_s"] > 0
    assert figures["sat_proofs_s"] > 0
    assert figures["tile_fetches_s"] > 0
    # every event keeps its signed envelope (over 1,000 bytes here) and its leaf
    assert figures["sqlite_bytes_per_event"] > 1000
    assert figures["http_sqlite_bytes_per_event"] > 1000


@pytest.mark.postgres
def test_bytes_per_event_on_postgres(pg_server: str) -> None:
    bpe, events = storage_in_process("postgres", model.departments(3), 4)
    assert events == 4 * EVENTS_PER_SIM_CASE
    assert bpe > 1000


def test_the_python_client_fetches_tiles(tmp_path: Path) -> None:
    """The fallback where wrk is missing: the same request lists, sent over and over (cycle)."""
    result = tiles.measure(Driver(tmp_path, use_wrk=False), None, files=4, seconds=0.5, threads=1, connections=1)
    for run in result.runs:
        assert run.errors == 0
        assert run.ok > 4  # more fetches than files: the list was sent again
        assert "python client" in run.tool
