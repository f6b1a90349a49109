"""A local RFC 3161 time-stamping authority for tests, made with ``openssl ts``.

``TestTSA(tmp_path)`` makes its own CA (self-signed) and a TSA certificate issued by it with the
critical extended key usage timeStamping, then answers ``application/timestamp-query`` POSTs on
127.0.0.1 by running ``openssl ts -reply`` per request (without ``-chain``: the reply carries only
the TSA certificate, which rfc3161-client accepts; ``-chain`` writes an unsorted certificate set it
rejects). No network beyond loopback.

``tsa.url`` is the endpoint, ``tsa.ca_pem`` / ``tsa.cert_pem`` the certificates to pin,
``tsa.requests`` counts the queries answered, ``tsa.down = True`` makes it answer 503, and
``tsa.reply(query_der)`` stamps a query without HTTP.
"""

from __future__ import annotations

import http.server
import subprocess
import threading
from pathlib import Path

QUERY_TYPE = "application/timestamp-query"
REPLY_TYPE = "application/timestamp-reply"

_TSA_EXTENSIONS = """[tsa_ext]
basicConstraints = critical, CA:false
keyUsage = critical, digitalSignature, nonRepudiation
extendedKeyUsage = critical, timeStamping
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
"""

_TSA_CONFIG = """[tsa]
default_tsa = tsa_config
[tsa_config]
dir = {dir}
serial = $dir/serial
crypto_device = builtin
signer_cert = $dir/tsa.pem
signer_key = $dir/tsa.key
signer_digest = sha256
default_policy = 1.2.3.4.1
digests = sha256, sha384, sha512
accuracy = secs:1
ordering = no
tsa_name = no
ess_cert_id_chain = no
ess_cert_id_alg = sha256
"""


def _openssl(*args: str | Path, stdin: bytes | None = None) -> bytes:
    done = subprocess.run(["openssl", *map(str, args)], input=stdin, capture_output=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"openssl {args[0]} failed: {done.stderr.decode(errors='replace')[:500]}")
    return done.stdout


def make_ca(directory: Path, name: str = "Test TSA CA") -> tuple[Path, Path]:
    """A self-signed CA (key, certificate) in ``directory``."""
    key, cert = directory / "ca.key", directory / "ca.pem"
    _openssl(
        "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
        "-keyout", key, "-out", cert, "-days", "3650", "-subj", f"/CN={name}",
        "-addext", "basicConstraints=critical,CA:true", "-addext", "keyUsage=critical,keyCertSign,cRLSign",
    )
    return key, cert


def issue_tsa_cert(directory: Path, ca_key: Path, ca_cert: Path, name: str = "Test TSA") -> tuple[Path, Path]:
    """A TSA key and certificate issued by the CA (critical EKU timeStamping, which `openssl ts`
    itself requires of its signer)."""
    key, csr, cert, ext = directory / "tsa.key", directory / "tsa.csr", directory / "tsa.pem", directory / "tsa.ext"
    ext.write_text(_TSA_EXTENSIONS)
    _openssl(
        "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
        "-keyout", key, "-out", csr, "-subj", f"/CN={name}",
    )
    _openssl(
        "x509", "-req", "-in", csr, "-CA", ca_cert, "-CAkey", ca_key, "-CAcreateserial",
        "-out", cert, "-days", "3650", "-extfile", ext, "-extensions", "tsa_ext",
    )
    return key, cert


class TestTSA:
    """A CA, a TSA certificate it issued, and (after ``start``) an HTTP endpoint that stamps queries."""

    __test__ = False  # not a pytest class

    def __init__(self, directory: Path, name: str = "Test TSA") -> None:
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.ca_key, self.ca_pem = make_ca(self.dir, f"{name} CA")
        self.key, self.cert_pem = issue_tsa_cert(self.dir, self.ca_key, self.ca_pem, name)
        (self.dir / "serial").write_text("01\n")
        self.config = self.dir / "tsa.cnf"
        self.config.write_text(_TSA_CONFIG.format(dir=self.dir))
        self.requests = 0
        self.down = False
        self._lock = threading.Lock()
        self._server: http.server.ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def reply(self, query: bytes) -> bytes:
        """The DER TimeStampResp ``openssl ts -reply`` gives for the DER query (TSA certificate only)."""
        with self._lock:  # openssl increments the serial file
            query_file = self.dir / "query.tsq"
            query_file.write_bytes(query)
            return _openssl("ts", "-reply", "-config", self.config, "-queryfile", query_file)

    @property
    def url(self) -> str:
        assert self._server is not None, "start() the TSA first"
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/tsr"

    def start(self) -> TestTSA:
        tsa = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                query = self.rfile.read(length)
                if tsa.down:
                    self._answer(503, "text/plain", b"down\n")
                    return
                if self.headers.get("Content-Type") != QUERY_TYPE:
                    self._answer(415, "text/plain", b"not a timestamp query\n")
                    return
                try:
                    body = tsa.reply(query)
                except RuntimeError:
                    self._answer(400, "text/plain", b"bad query\n")
                    return
                with tsa._lock:
                    tsa.requests += 1
                self._answer(200, REPLY_TYPE, body)

            def _answer(self, status: int, content_type: str, body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        # shutdown() waits for the loop to see it: up to poll_interval (0.5 s by default) per test
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
