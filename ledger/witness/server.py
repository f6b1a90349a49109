"""The witness over HTTP (c2sp.org/tlog-witness), on the standard library's ``http.server``.

``POST /add-checkpoint`` takes ``old <size>\\n``, zero or more base64 consistency-proof hashes one per
line, a blank line and the signed checkpoint note. It answers:

* 200 ``text/plain; charset=utf-8`` — the cosignature/v1 signature line;
* 400 malformed request, 403 checkpoint not signed by the trusted log key, 404 unknown origin,
  411 no Content-Length, 413 body over ``MAX_BODY`` bytes, 422 invalid consistency proof;
* 409 ``text/x.tlog.size`` — the body is the size the witness last cosigned and a newline (the old
  size did not match, or the checkpoint is older than, or a fork of, what the witness cosigned).

Refusals are logged at INFO. A fork is logged as a WARNING by ``ledger.witness`` when its evidence
file is first written, never again for the same fork (see ``ledger.witness``).

``GET /healthz`` answers ``ok``. Every error body is one line of plain text. Request and error
logs go to the ``ledger.witness_server`` logger; checkpoints carry no personal data.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from domain.errors import MalformedInputError
from ledger.envelope.b64 import b64decode
from ledger.log import merkle
from ledger.log.note import MAX_TREE_SIZE
from ledger.witness.cosigner import (
    MAX_PROOF_HASHES,
    Witness,
    WitnessBadProof,
    WitnessConflict,
    WitnessForbidden,
    WitnessUnknownLog,
)

MAX_BODY = 64 * 1024
SIZE_CONTENT_TYPE = "text/x.tlog.size"
ADD_CHECKPOINT = "/add-checkpoint"
_DECIMAL = re.compile(rb"0|[1-9][0-9]{0,18}")

logger = logging.getLogger("ledger.witness.server")


def parse_add_checkpoint(body: bytes) -> tuple[int, list[bytes], bytes]:
    """``(old size, proof hashes, note)`` from an add-checkpoint body; MalformedInputError otherwise."""
    first, sep, rest = body.partition(b"\n")
    if not sep or not first.startswith(b"old "):
        raise MalformedInputError("the body starts with a line 'old <size>'")
    digits = first[4:]
    if not _DECIMAL.fullmatch(digits) or int(digits) > MAX_TREE_SIZE:
        raise MalformedInputError("the old size is decimal digits without leading zeros, at most 2**63-1")
    proof: list[bytes] = []
    while True:
        line, sep, rest = rest.partition(b"\n")
        if not sep:
            raise MalformedInputError("a blank line must separate the proof from the checkpoint")
        if not line:
            break
        if len(proof) == MAX_PROOF_HASHES:
            raise MalformedInputError(f"a consistency proof has at most {MAX_PROOF_HASHES} hashes")
        try:
            text = line.decode("ascii")
        except UnicodeDecodeError:
            raise MalformedInputError("a proof line is base64 text") from None
        value = b64decode(text, what="a proof line")
        if len(value) != merkle.HASH_SIZE:
            raise MalformedInputError("a proof line is the base64 of a 32-byte hash")
        proof.append(value)
    if not rest:
        raise MalformedInputError("the checkpoint note is missing")
    return int(digits), proof, rest


def _one_line(text: str) -> str:
    return " ".join(text.split())[:300]


class WitnessHandler(BaseHTTPRequestHandler):
    """Serves one ``Witness`` (set as a class attribute by ``make_server``)."""

    witness: Witness
    server_version = "evidence-ledger-witness/1"
    protocol_version = "HTTP/1.0"
    timeout = 10  # seconds per socket operation: a stalled client cannot hold a thread forever
    clock: Callable[[], float] = staticmethod(time.time)

    def do_GET(self) -> None:
        if self.path == "/healthz":
            self._reply(200, "ok\n")
        elif self.path == ADD_CHECKPOINT:
            self._reply(405, "use POST\n", extra={"Allow": "POST"})
        else:
            self._reply(404, "not found\n")

    def do_POST(self) -> None:
        if self.path != ADD_CHECKPOINT:
            self._reply(404, "not found\n")
            return
        body = self._read_body()
        if body is None:
            return
        try:
            old_size, proof, note_bytes = parse_add_checkpoint(body)
            line = self.witness.add_checkpoint(old_size, proof, note_bytes, now=self.clock())
        except WitnessConflict as exc:  # a fork's evidence is logged by the witness, when first written
            logger.info("add-checkpoint refused: 409 %s", exc.code)
            self._reply(409, f"{exc.latest_size}\n", content_type=SIZE_CONTENT_TYPE)
            return
        except MalformedInputError as exc:  # includes WitnessMalformed
            self._error(400, exc.code, exc.message)
            return
        except WitnessForbidden as exc:
            self._error(403, exc.code, exc.message)
            return
        except WitnessUnknownLog as exc:
            self._error(404, exc.code, exc.message)
            return
        except WitnessBadProof as exc:
            self._error(422, exc.code, exc.message)
            return
        except Exception:
            logger.exception("add-checkpoint failed")
            self._reply(500, "internal error\n")
            return
        self._reply(200, line.decode("utf-8"))

    def _read_body(self) -> bytes | None:
        if self.headers.get("Transfer-Encoding"):
            self._reply(411, "send a Content-Length, not a chunked body\n")
            return None
        length_text = self.headers.get("Content-Length")
        if length_text is None:
            self._reply(411, "Content-Length is required\n")
            return None
        if not length_text.isascii() or not length_text.isdigit():
            self._reply(400, "Content-Length must be a decimal number\n")
            return None
        length = int(length_text)
        if length > MAX_BODY:
            self._reply(413, f"the body is limited to {MAX_BODY} bytes\n")
            return None
        body = self.rfile.read(length)
        if len(body) != length:
            self._reply(400, "the body is shorter than its Content-Length\n")
            return None
        return body

    def _error(self, status: int, code: str, message: str) -> None:
        logger.info("add-checkpoint refused: %s %s", status, code)
        self._reply(status, f"{code}: {_one_line(message)}\n")

    def _reply(
        self,
        status: int,
        text: str,
        *,
        content_type: str = "text/plain; charset=utf-8",
        extra: dict[str, str] | None = None,
    ) -> None:
        data = text.encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")
        for name, value in (extra or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def version_string(self) -> str:
        return self.server_version

    def log_message(self, format: str, *args: object) -> None:
        logger.debug("%s " + format, self.address_string(), *args)


def make_server(witness: Witness, host: str = "127.0.0.1", port: int = 0) -> ThreadingHTTPServer:
    """A bound (not yet serving) threaded HTTP server for ``witness``; port 0 picks a free port."""
    handler = type("BoundWitnessHandler", (WitnessHandler,), {"witness": witness})
    server = ThreadingHTTPServer((host, port), handler)
    server.daemon_threads = True
    return server


def serve(
    witness: Witness,
    host: str = "127.0.0.1",
    port: int = 7380,
    *,
    on_ready: Callable[[str, int], None] | None = None,
) -> None:
    """Serve until interrupted; ``on_ready(host, port)`` is called once the socket is bound."""
    server = make_server(witness, host, port)
    bound_host, bound_port = server.server_address[:2]
    logger.info("witness %s listening on %s:%s", witness.name, bound_host, bound_port)
    if on_ready is not None:
        on_ready(str(bound_host), int(bound_port))
    try:
        server.serve_forever()
    finally:
        server.server_close()


__all__ = ["MAX_BODY", "SIZE_CONTENT_TYPE", "WitnessHandler", "make_server", "parse_add_checkpoint", "serve"]
