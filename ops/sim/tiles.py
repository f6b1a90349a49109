"""Proofs from tiles: what a static server (standing in for object storage behind a CDN) serves.

With C2SP tlog-tiles the log publishes its tree as immutable files of 256 hashes (8 KiB) under
``tile/<level>/<index>``; a client computes inclusion and consistency proofs itself from the tiles on
the path (for a tree of 2^24 entries: one tile per level, three levels, and the upper ones are shared by
every client, so a cache serves them). The server-side figure is then the rate of tile fetches.

``measure`` serves a directory with ``python -m http.server`` and, where installed, nginx, and drives
them with wrk (``wrk_sim.lua``, GETs expecting 200). Without ``--tiles-dir`` it writes ``files``
tile-sized (8 KiB) files under C2SP-style paths, as many as a large log has; with it, it serves that
directory as it is (a data dir's ``tiles/``, docs/tiles.md: every file found is fetched).
"""

from __future__ import annotations

import os
import random
import shutil
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from ops.bench.bench_http import server
from ops.procs import free_port
from ops.sim.drive import Driver, Request, Run

TILE_BYTES = 8192  # 256 SHA-256 hashes
#: tiles a client fetches for one inclusion proof in a tree of up to 2^24 entries with no cache: one
#: tile per level on the leaf's path, and at worst also the partial tile at the right edge of each level
TILES_PER_PROOF = 3
TILES_PER_PROOF_WORST = 6


def tile_path(level: int, index: int) -> str:
    """The C2SP tlog-tiles path of a full tile: the index in 3-digit groups, all but the last with x."""
    digits = f"{index:03d}"
    digits = "0" * (-len(digits) % 3) + digits
    groups = [digits[i : i + 3] for i in range(0, len(digits), 3)]
    return "/".join(["tile", str(level), *(f"x{g}" for g in groups[:-1]), groups[-1]])


def write_tiles(root: Path, files: int) -> None:
    rng = random.Random(3)  # noqa: S311 - content does not matter, only size
    for index in range(files):
        path = root / tile_path(0, index)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(rng.randbytes(TILE_BYTES))


@dataclass
class TileResult:
    runs: list[Run] = field(default_factory=list)
    source: str = ""

    @property
    def best_rate(self) -> float:
        return max((r.rate for r in self.runs), default=0.0)

    def lines(self, modelled_proofs_s: float) -> list[str]:
        out = [f"tiles: {self.source}"]
        out += [r.line() for r in self.runs]
        best = self.best_rate
        if best:
            out.append(
                f"tiles: {best:,.0f} fetches/s = {best / TILES_PER_PROOF_WORST:,.0f}-{best / TILES_PER_PROOF:,.0f}"
                f" uncached proofs/s ({TILES_PER_PROOF}-{TILES_PER_PROOF_WORST} tiles per proof); headroom over the"
                f" modelled {modelled_proofs_s:.2f} proof reads/s: at least"
                f" {best / TILES_PER_PROOF_WORST / modelled_proofs_s:,.0f}x, before any CDN"
            )
        return out


def _nginx_conf(root: Path, port: int, work: Path) -> Path:
    user = "user root;\n" if os.geteuid() == 0 else ""
    conf = work / "nginx.conf"
    conf.write_text(
        f"{user}worker_processes 1;\ndaemon off;\npid {work}/nginx.pid;\nerror_log {work}/error.log;\n"
        "events { worker_connections 1024; }\n"
        "http {\n"
        f"  access_log off;\n  client_body_temp_path {work}/body;\n  proxy_temp_path {work}/proxy;\n"
        f"  fastcgi_temp_path {work}/fastcgi;\n  uwsgi_temp_path {work}/uwsgi;\n  scgi_temp_path {work}/scgi;\n"
        f"  server {{ listen 127.0.0.1:{port}; root {root}; location /docs {{ return 404; }} }}\n"
        "}\n"
    )
    return conf


def measure(driver: Driver, tiles_dir: Path | None, *, files: int, seconds: float, threads: int,
            connections: int) -> TileResult:
    result = TileResult()
    with tempfile.TemporaryDirectory(prefix="el-sim-tiles-") as tmp_name:
        tmp = Path(tmp_name)
        if tiles_dir is None:
            root = tmp / "root"
            write_tiles(root, files)
            result.source = (f"{files} generated files of {TILE_BYTES} bytes under tile/0/... (static fetches of"
                             " full-tile-sized files, the server-side figure; --tiles-dir serves a real log's tiles)")
        else:
            root = tiles_dir.resolve()
            result.source = f"the tiles under {root}"
        paths = sorted("/" + p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())
        if not paths:
            raise SystemExit(f"no files under {root}")
        rng = random.Random(9)  # noqa: S311 - a reproducible workload
        per_thread = [[Request("GET", rng.choice(paths), "", "") for _ in range(20_000)] for _ in range(threads)]
        port = free_port()
        static = [sys.executable, "-m", "http.server", "--bind", "127.0.0.1", "--directory", str(root), str(port)]
        with server(static, dict(os.environ), port) as base:
            result.runs.append(driver.run(base, per_thread, connections=connections, seconds=seconds, expected=200, cycle=True,
                                          rate=0, name="tile fetches, python -m http.server"))
        nginx = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
        if nginx:
            os.chmod(tmp, 0o755)  # noqa: S103 - nginx's workers read the generated files
            port = free_port()
            conf = _nginx_conf(root, port, tmp)
            with server([nginx, "-c", str(conf), "-p", str(tmp)], dict(os.environ), port) as base:
                result.runs.append(driver.run(base, per_thread, connections=connections, seconds=seconds,
                                              expected=200, cycle=True, rate=0, name="tile fetches, nginx (1 worker)"))
    return result
