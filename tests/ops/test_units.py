"""The deployment files (docs/deployment.md): every systemd unit in ops/systemd is hardened as documented,
accepted by `systemd-analyze verify`, and runs a command of ours with options it has; the nginx example
(ops/proxy/nginx.conf) passes `nginx -t` and, in front of a real `evidence-ledger serve`, serves the API
and the tiles over HTTPS with the headers it promises."""

from __future__ import annotations

import datetime
import grp
import ipaddress
import os
import pwd
import re
import shlex
import shutil
import socket
import ssl
import stat
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import typer
import typer.main
import typer.testing
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from ledger.log import note
from ledger.store import Ledger
from ops.bench.bench_log import prefill
from ops.procs import CLI, Server, free_port, serving

ROOT = Path(__file__).resolve().parents[2]
UNITS = ROOT / "ops" / "systemd"
NGINX_CONF = ROOT / "ops" / "proxy" / "nginx.conf"
INSTALLED = "/opt/evidence-ledger/bin/evidence-ledger"
DATA_DIR = "/var/lib/evidence-ledger"
KEYSTORE_DIR = "/var/lib/evidence-ledger-keystore"
TILES_DIR = "/var/lib/evidence-ledger-tiles"
ENV_FILE = "/etc/evidence-ledger/evidence-ledger.env"


@dataclass(frozen=True)
class Expected:
    user: str
    state_directories: str
    command: str  # the subcommand ExecStart runs
    environment_file: str | None
    restart: str | None


EXPECTED = {
    "evidence-ledger.service": Expected(
        "evidence-ledger", "evidence-ledger evidence-ledger-keystore", "serve", ENV_FILE, "always"),
    "evidence-ledger-retention.service": Expected(
        "evidence-ledger", "evidence-ledger evidence-ledger-keystore", "retention run", ENV_FILE, None),
    "evidence-ledger-witness.service": Expected("el-witness", "el-witness", "witness serve", None, "always"),
    "evidence-ledger-monitor.service": Expected(
        "evidence-ledger-monitor", "evidence-ledger-monitor", "audit", "/etc/evidence-ledger/monitor.env", "always"),
}

HARDENING = {
    "NoNewPrivileges": ["yes"], "ProtectSystem": ["strict"], "ProtectHome": ["yes"], "PrivateTmp": ["yes"],
    "PrivateDevices": ["yes"], "ProtectKernelTunables": ["yes"], "ProtectKernelModules": ["yes"],
    "ProtectControlGroups": ["yes"], "ProtectKernelLogs": ["yes"], "ProtectClock": ["yes"],
    "ProtectHostname": ["yes"], "ProtectProc": ["invisible"], "ProcSubset": ["pid"], "RestrictNamespaces": ["yes"],
    "RestrictRealtime": ["yes"], "LockPersonality": ["yes"], "RemoveIPC": ["yes"],
    "RestrictAddressFamilies": ["AF_INET AF_INET6 AF_UNIX"], "RestrictSUIDSGID": ["yes"], "CapabilityBoundingSet": [""],
    "AmbientCapabilities": [""], "SystemCallArchitectures": ["native"],
    "SystemCallFilter": ["@system-service", "~@privileged @resources"], "UMask": ["0077"],
    "StateDirectoryMode": ["0700"],
}


def sections(path: Path) -> dict[str, dict[str, list[str]]]:
    """The unit file as {section: {key: [values in order]}}."""
    found: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] | None = None
    for raw in path.read_text("utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            current = found.setdefault(line.strip("[]"), {})
            continue
        assert current is not None and "=" in line, f"{path.name}: {raw!r}"
        key, value = line.split("=", 1)
        current.setdefault(key.strip(), []).append(value.strip())
    return found


def service_files() -> list[Path]:
    return sorted(UNITS.glob("*.service"))


def test_every_unit_is_one_we_check() -> None:
    assert sorted(p.name for p in service_files()) == sorted(EXPECTED)
    assert sorted(p.name for p in UNITS.iterdir()) == sorted([*EXPECTED, "evidence-ledger-retention.timer"])


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_the_unit_is_hardened(name: str) -> None:
    path = UNITS / name
    text = path.read_text("utf-8")
    assert text.startswith("#") and re.search(r"^# .*[Ii]nstall", text, re.M), f"{name}: no install header"
    service = sections(path)["Service"]
    want = EXPECTED[name]
    for key, value in HARDENING.items():
        assert service.get(key) == value, (name, key, service.get(key))
    assert service["User"] == [want.user] and service["Group"] == [want.user] and want.user != "root"
    assert service["StateDirectory"] == [want.state_directories]
    # the state directories (and the API's public tiles directory) are the only writable places, no way
    # back to privileges
    assert service.get("ReadWritePaths") == ([TILES_DIR] if name == "evidence-ledger.service" else None)
    assert "DynamicUser" not in service
    assert service.get("EnvironmentFile") == ([want.environment_file] if want.environment_file else None)
    assert service.get("Restart") == ([want.restart] if want.restart else None)
    (command,) = service["ExecStart"]
    assert command.startswith(INSTALLED + " "), command


@pytest.mark.parametrize("name", ["evidence-ledger.service", "evidence-ledger-retention.service"])
def test_the_ledger_units_share_the_data_dir_and_keep_keys_read_only(name: str) -> None:
    service = sections(UNITS / name)["Service"]
    assert f"EVIDENCE_LEDGER_DATA_DIR={DATA_DIR}" in service["Environment"]
    assert f"EVIDENCE_LEDGER_KEYSTORE_DIR={KEYSTORE_DIR}" in service["Environment"]
    read_only = " ".join(service["ReadOnlyPaths"]).split()
    assert sorted(read_only) == sorted([f"{DATA_DIR}/keys", f"{DATA_DIR}/ledger.json", f"{KEYSTORE_DIR}/kek.key"])
    # the keystore is not inside the data dir (the service refuses that: KEYSTORE_IN_DATA_DIR)
    assert not KEYSTORE_DIR.startswith(DATA_DIR + "/")


def test_nginx_serves_the_tiles_directory_the_service_writes() -> None:
    """The tiles are published outside the data dir: systemd re-applies StateDirectoryMode=0700 at every
    start, so nothing in the data dir can stay readable to nginx's user."""
    api = sections(UNITS / "evidence-ledger.service")["Service"]
    assert f"EVIDENCE_LEDGER_TILES_DIR={TILES_DIR}" in api["Environment"]
    assert api["ReadWritePaths"] == [TILES_DIR]
    state = [f"/var/lib/{name}" for name in " ".join(api["StateDirectory"]).split()]
    assert not any(d == TILES_DIR or TILES_DIR.startswith(d + "/") for d in state), state
    text = NGINX_CONF.read_text("utf-8")
    assert _directive(text, "alias") == [TILES_DIR + "/"] and _directive(text, "root") == []
    assert re.search(r"location /tiles/ \{\n\s*alias " + re.escape(TILES_DIR + "/") + ";", text), text
    # the retention run does not write tiles: its unit gets no such path
    retention = sections(UNITS / "evidence-ledger-retention.service")["Service"]
    assert "ReadWritePaths" not in retention


def test_the_api_listens_on_loopback_behind_the_proxy_and_the_timer_runs_retention_daily() -> None:
    api = sections(UNITS / "evidence-ledger.service")["Service"]
    assert api["ExecStart"] == [f"{INSTALLED} serve --host 127.0.0.1 --port 8000"]
    assert "FORWARDED_ALLOW_IPS=127.0.0.1,::1" in api["Environment"]
    retention = sections(UNITS / "evidence-ledger-retention.service")["Service"]
    assert retention["Type"] == ["oneshot"]
    assert "Install" not in sections(UNITS / "evidence-ledger-retention.service")  # started by the timer only
    timer = sections(UNITS / "evidence-ledger-retention.timer")
    assert timer["Timer"]["Unit"] == ["evidence-ledger-retention.service"]
    assert timer["Timer"]["OnCalendar"] == ["*-*-* 03:17:00"] and timer["Timer"]["Persistent"] == ["true"]
    assert timer["Install"]["WantedBy"] == ["timers.target"]
    witness = sections(UNITS / "evidence-ledger-witness.service")["Service"]
    assert witness["ExecStart"] == [f"{INSTALLED} witness serve --host 127.0.0.1 --port 7380"]
    assert "EVIDENCE_LEDGER_WITNESS_DIR=/var/lib/el-witness" in witness["Environment"]


def _app() -> typer.Typer:
    """The `evidence-ledger` app, every command registered as in the installed script."""
    import api.cli  # registers `serve` and `witness serve`
    from ledger.cli.app import commands

    assert api.cli.serve is not None
    return commands()


def _cli() -> Any:
    """The same as a (typer's own) click command tree."""
    return typer.main.get_command(_app())


def _resolve(words: list[str]) -> Any:
    """The click command ``words`` name; fails if there is none."""
    node = _cli()
    for word in words:
        assert hasattr(node, "get_command"), (words, word)  # a group
        found = node.get_command(node.make_context(node.name or "evidence-ledger", [], resilient_parsing=True), word)
        assert found is not None, (words, word)
        node = found
    return node


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_exec_start_is_a_real_command_of_ours_with_real_options(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    service = sections(UNITS / name)["Service"]
    (command,) = service["ExecStart"]
    words = shlex.split(re.sub(r"\$\{\w+\}", "VALUE", command))[1:]
    first_option = next((i for i, w in enumerate(words) if w.startswith("-")), len(words))
    subcommand, arguments = words[:first_option], words[first_option:]
    assert " ".join(subcommand) == EXPECTED[name].command
    usage = typer.testing.CliRunner().invoke(_app(), [*subcommand, "--help"], prog_name="evidence-ledger")
    assert usage.exit_code == 0, usage.output
    assert f"Usage: evidence-ledger {' '.join(subcommand)} [OPTIONS]" in " ".join(usage.output.split()), usage.output
    # the options parse as that command's options, with values of their types, in the unit's environment
    # (nothing is run)
    for assignment in service.get("Environment", []):
        monkeypatch.setenv(*assignment.split("=", 1))
    node = _resolve(subcommand)
    parsed = node.make_context(" ".join(subcommand), list(arguments))
    for option in (w.split("=", 1)[0] for w in arguments if w.startswith("--")):
        assert any(option in p.opts for p in node.params), (name, option)
    assert parsed.params  # the option values were read


def test_the_exec_start_check_can_fail() -> None:
    with pytest.raises(AssertionError):
        _resolve(["retention", "no-such-command"])
    serve = _resolve(["serve"])
    with pytest.raises(Exception, match="No such option: --listen"):
        serve.make_context("serve", ["--listen", "127.0.0.1"])
    with pytest.raises(Exception, match="valid integer"):
        serve.make_context("serve", ["--port", "eighty"])


def test_systemd_analyze_verify_accepts_every_unit(tmp_path: Path) -> None:
    tool = shutil.which("systemd-analyze")
    if tool is None:
        pytest.skip("SKIPPED LOUDLY: systemd-analyze is not installed (Debian package systemd): the units in "
                    "ops/systemd were NOT verified")
    # verify checks that ExecStart exists: the copies run this environment's evidence-ledger instead
    here = Path(CLI[0])
    assert here.is_file(), here
    copies = []
    for unit in sorted(UNITS.iterdir()):
        copy = tmp_path / unit.name
        copy.write_text(unit.read_text("utf-8").replace(INSTALLED, str(here)), "utf-8")
        copies.append(str(copy))
    env = {**os.environ, "SYSTEMD_LOG_LEVEL": "warning"}
    done = subprocess.run([tool, "verify", *copies], capture_output=True, text=True, timeout=60, env=env, check=False)
    output = done.stdout + done.stderr
    complaints = [line for line in output.splitlines() if any(Path(c).name in line for c in copies)]
    assert done.returncode == 0 and complaints == [], output
    # systemd's own rating of each sandbox: exposure at most 2.0 of 10 ("OK"; 1.4 to 1.6 as written)
    for copy in copies:
        if copy.endswith(".service"):
            rated = subprocess.run([tool, "security", "--offline=true", "--threshold=20", "--no-pager", copy],
                                   capture_output=True, text=True, timeout=60, env=env, check=False)
            assert rated.returncode == 0, rated.stdout + rated.stderr
    api = tmp_path / "evidence-ledger.service"
    rated = subprocess.run([tool, "security", "--offline=true", "--threshold=10", "--no-pager", str(api)],
                           capture_output=True, text=True, timeout=60, env=env, check=False)
    assert rated.returncode != 0  # the rating can fail: 1.4 is above 1.0
    # the check can fail: a misspelt value in any of them is reported
    api.write_text(api.read_text("utf-8").replace("ProtectSystem=strict", "ProtectSystem=strictly"), "utf-8")
    done = subprocess.run([tool, "verify", str(api)], capture_output=True, text=True, timeout=60, env=env, check=False)
    assert "evidence-ledger.service" in done.stdout + done.stderr


# -- the reverse proxy ------------------------------------------------------------------------------


def _nginx() -> str:
    tool = shutil.which("nginx") or next((p for p in ("/usr/sbin/nginx",) if Path(p).is_file()), None)
    if tool is None:
        pytest.skip("SKIPPED LOUDLY: nginx is not installed (Debian package nginx-light, .ci/run installs it): "
                    "ops/proxy/nginx.conf was NOT checked")
    return tool


@dataclass(frozen=True)
class Tls:
    ca: Path
    cert: Path
    key: Path


def _certificates(where: Path) -> Tls:
    """A test CA and a certificate it signed for 127.0.0.1 / localhost."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "evidence-ledger test CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
          .not_valid_after(now + datetime.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True, content_commitment=False,
                                       key_encipherment=False, data_encipherment=False, key_agreement=False,
                                       encipher_only=False, decipher_only=False), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])).issuer_name(ca_name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                        x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    tls = Tls(where / "ca.pem", where / "fullchain.pem", where / "privkey.pem")
    tls.ca.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    tls.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    tls.key.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))
    return tls


def _replace(text: str, old: str, new: str) -> str:
    assert old in text, f"ops/proxy/nginx.conf no longer has {old!r}: update this test with it"
    return text.replace(old, new)


@dataclass(frozen=True)
class Proxy:
    config: Path
    prefix: Path
    https_port: int
    http_port: int


def _render(tmp_path: Path, tls: Tls, *, tiles_dir: Path, upstream_port: int) -> Proxy:
    """ops/proxy/nginx.conf as it stands, with this test's ports, certificate and tiles dir, inside a
    main configuration that keeps every nginx file (pid, logs, temp) in ``tmp_path``."""
    prefix = tmp_path / "nginx"
    prefix.mkdir()
    https_port, http_port = free_port(), free_port()
    site = NGINX_CONF.read_text("utf-8")
    for old, new in [
        ("    listen [::]:80;\n", ""), ("    listen [::]:443 ssl http2;\n", ""),
        ("listen 80;", f"listen 127.0.0.1:{http_port};"),
        ("listen 443 ssl http2;", f"listen 127.0.0.1:{https_port} ssl http2;"),
        ("/etc/ssl/evidence-ledger/fullchain.pem", str(tls.cert)),
        ("/etc/ssl/evidence-ledger/privkey.pem", str(tls.key)),
        (f"alias {TILES_DIR}/;", f"alias {tiles_dir}/;"),
        ("server 127.0.0.1:8000;", f"server 127.0.0.1:{upstream_port};"),
    ]:
        site = _replace(site, old, new)
    (prefix / "site.conf").write_text(site, "utf-8")
    user = ""
    if os.geteuid() == 0:  # workers would otherwise run as nobody, who cannot read the test's directories
        user = f"user {pwd.getpwuid(os.geteuid()).pw_name} {grp.getgrgid(os.getegid()).gr_name};"
    temp = "\n".join(f"    {kind}_temp_path {prefix / kind};" for kind in ("client_body", "proxy", "fastcgi", "uwsgi",
                                                                          "scgi"))
    main = f"""{user}
daemon off;
worker_processes 1;
pid {prefix / "nginx.pid"};
error_log {prefix / "error.log"} warn;
events {{ worker_connections 64; }}
http {{
    access_log off;
{temp}
    types {{ text/plain txt; }}
    include {prefix / "site.conf"};
}}
"""
    config = prefix / "nginx.conf"
    config.write_text(main, "utf-8")
    return Proxy(config, prefix, https_port, http_port)


def _nginx_command(tool: str, proxy: Proxy, *extra: str) -> list[str]:
    return [tool, "-p", str(proxy.prefix), "-e", str(proxy.prefix / "error.log"), "-c", str(proxy.config), *extra]


def _directive(text: str, name: str) -> list[str]:
    return re.findall(rf"^[ \t]*{re.escape(name)}[ \t]+([^;{{}}\n]+);", text, re.M)


def test_the_proxy_limits_match_the_service_defaults() -> None:
    """nginx cuts clients at the edge with the service's own limits; a change on one side shows here."""
    from api.settings import ApiSettings
    from ledger.settings import Settings

    text = NGINX_CONF.read_text("utf-8")
    api, ledger_settings = ApiSettings(), Settings()
    size = {"k": 1024, "m": 1024**2, "g": 1024**3}
    assert [int(v[:-1]) * size[v[-1]] for v in _directive(text, "client_max_body_size")] == [
        ledger_settings.max_json_body, api.max_evidence_bytes]
    assert _directive(text, "client_header_timeout") == [f"{api.header_timeout:g}s"]
    assert _directive(text, "client_body_timeout") == [f"{api.body_timeout:g}s"]
    assert _directive(text, "limit_conn") == [f"evidence_ledger_clients {api.max_connections_per_address}"]
    (upstream_idle,) = _directive(text, "keepalive_timeout")[:1]
    assert int(upstream_idle.rstrip("s")) < api.keep_alive_timeout
    (upstream_requests,) = _directive(text, "keepalive_requests")
    assert int(upstream_requests) < api.max_requests_per_connection
    assert _directive(text, "ssl_protocols") == ["TLSv1.2 TLSv1.3"]
    assert _directive(text, "proxy_set_header") == [
        'Connection ""', "Host $host", "X-Forwarded-For $remote_addr", "X-Forwarded-Proto $scheme"]
    assert _directive(text, "proxy_pass") == ["http://evidence_ledger"] * 3
    assert _directive(text, "server") == ["127.0.0.1:8000"]  # the API unit's --host/--port


def test_nginx_accepts_the_example_config(tmp_path: Path) -> None:
    tool = _nginx()
    tls = _certificates(tmp_path)
    proxy = _render(tmp_path, tls, tiles_dir=tmp_path, upstream_port=free_port())
    done = subprocess.run(_nginx_command(tool, proxy, "-t"), capture_output=True, text=True, timeout=30, check=False)
    assert done.returncode == 0 and "test is successful" in done.stderr, done.stderr
    # the check can fail: a directive nginx does not know is refused
    proxy.config.write_text(proxy.config.read_text("utf-8").replace("access_log off;", "access_log off; no_such 1;"))
    done = subprocess.run(_nginx_command(tool, proxy, "-t"), capture_output=True, text=True, timeout=30, check=False)
    assert done.returncode != 0 and "no_such" in done.stderr


@pytest.fixture
def backend() -> str:
    return "sqlite"


@dataclass(frozen=True)
class Front:
    proxy: Proxy
    tls: Tls
    server: Server
    tiles: Path


@pytest.fixture
def nginx_in_front(ledger: Ledger, tmp_path: Path) -> Iterator[Front]:
    """`serve` publishing its tiles in a directory of its own, as the unit has it (outside the data dir,
    with the unit's UMask=0077), and nginx in front serving that directory."""
    tool = _nginx()
    tls = _certificates(tmp_path)
    prefill(ledger, 600)  # two full tiles and partial ones, written by the service at its first checkpoint
    tiles = tmp_path / "public" / "evidence-ledger-tiles"
    env = {**os.environ, "EVIDENCE_LEDGER_DATA_DIR": str(ledger.data_dir), "EVIDENCE_LEDGER_TILES_DIR": str(tiles)}
    umask = os.umask(0o077)
    try:
        started = serving(env, tmp_path / "server.log")
        server = started.__enter__()
    finally:
        os.umask(umask)
    try:
        proxy = _render(tmp_path, tls, tiles_dir=tiles, upstream_port=int(server.url.rsplit(":", 1)[1]))
        with (proxy.prefix / "stderr.log").open("wb") as log:
            process = subprocess.Popen(_nginx_command(tool, proxy), stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 10
            while True:
                assert process.poll() is None, (proxy.prefix / "error.log").read_text(errors="replace")
                try:
                    socket.create_connection(("127.0.0.1", proxy.https_port), timeout=1).close()
                    break
                except OSError:
                    assert time.monotonic() < deadline, "nginx did not listen"
                    time.sleep(0.05)
            yield Front(proxy, tls, server, tiles)
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
    finally:
        started.__exit__(None, None, None)


def _published(ledger: Ledger, app: httpx.Client) -> note.Checkpoint:
    """Wait for the service to publish the tiles of every entry (its first checkpoint, within a second)."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        response = app.get("/tiles/checkpoint")
        if response.status_code == 200:
            body = note.verify_checkpoint(response.content, ledger.rollback_guard().log_key).checkpoint
            if body.size == ledger.log_size():
                return body
        time.sleep(0.05)
    raise AssertionError("the service did not publish the tiles")


@pytest.mark.slow
def test_nginx_serves_the_api_and_the_tiles_over_https(ledger: Ledger, nginx_in_front: Front) -> None:
    proxy, tls, tiles = nginx_in_front.proxy, nginx_in_front.tls, nginx_in_front.tiles
    context = ssl.create_default_context(cafile=str(tls.ca))
    base = f"https://127.0.0.1:{proxy.https_port}"
    hsts = "max-age=63072000"
    with (httpx.Client(base_url=base, verify=context, timeout=10) as client,
          httpx.Client(base_url=nginx_in_front.server.url, timeout=10) as app):
        ready = client.get("/readyz")
        assert ready.status_code == 200, ready.text
        assert ready.json()["status"] == "ready" and ready.headers["strict-transport-security"] == hsts
        assert "server" not in ready.headers or ready.headers["server"] == "nginx"  # no version

        # the app believes the proxy's X-Forwarded-Proto and Host (the name, without a port: on 443 in
        # production): its absolute links are https ones
        feed = client.get("/v1/public/releases.atom")
        assert feed.status_code == 200, feed.text
        assert 'href="https://127.0.0.1/public"' in feed.text, feed.text

        # the tiles the service wrote (600 entries: full tiles 0/000, 0/001 and their bundles; partial
        # ones of width 88 and the level-1 tile of width 2), served by nginx as the app serves them
        body = _published(ledger, app)
        assert body.size == 600
        width = body.size % 256
        policy = {
            "checkpoint": ("no-cache", "text/plain; charset=utf-8"),
            "tile/0/000": ("public, max-age=31536000, immutable", "application/octet-stream"),
            "tile/entries/001": ("public, max-age=31536000, immutable", "application/octet-stream"),
            f"tile/0/002.p/{width}": ("public, max-age=60", "application/octet-stream"),
            f"tile/entries/002.p/{width}": ("public, max-age=60", "application/octet-stream"),
            "tile/1/000.p/2": ("public, max-age=60", "application/octet-stream"),
        }
        for path, (cache, kind) in policy.items():
            written = (tiles / path).read_bytes()
            via_nginx, via_app = client.get(f"/tiles/{path}"), app.get(f"/tiles/{path}")
            assert via_nginx.status_code == 200 == via_app.status_code, path
            assert via_nginx.content == written == via_app.content, path
            for header, want in [("cache-control", cache), ("content-type", kind), ("access-control-allow-origin", "*")]:
                assert via_nginx.headers[header] == want == via_app.headers[header], (path, header)
            assert via_nginx.headers["strict-transport-security"] == hsts
        assert len((tiles / "tile/0/000").read_bytes()) == 8192
        # written 0644 (directories 0755) by a service running with UMask=0077: nginx's user reads them
        assert {stat.S_IMODE(p.stat().st_mode) for p in tiles.rglob("*") if p.is_file()} == {0o644}
        assert {stat.S_IMODE(p.stat().st_mode) for p in [tiles, *tiles.rglob("*")] if p.is_dir()} == {0o755}

        # nothing else is reachable: not through a symlink (a name the service never writes), not with dot-dots
        (tiles / "leak").symlink_to(ledger.data_dir / "ledger.json")
        assert client.get("/tiles/leak").status_code == 403
        assert client.get("/tiles/%2e%2e/ledger.json").status_code in (400, 404)
        assert client.get("/tiles/../ledger.json").status_code in (400, 404)
        assert client.post("/tiles/checkpoint", content=b"x").status_code == 405

        # JSON bodies over the API's limit stop at the proxy
        assert client.post("/v1/cases", content=b"x" * (1024 * 1024 + 1)).status_code == 413

    with httpx.Client(timeout=10) as plain:
        moved = plain.get(f"http://127.0.0.1:{proxy.http_port}/readyz")
        assert moved.status_code == 301 and moved.headers["location"].startswith("https://")
