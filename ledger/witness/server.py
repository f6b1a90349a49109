"""The witness's side of c2sp.org/tlog-witness that does not depend on an HTTP server.

The ASGI app that serves it is ``api.witness_app`` (the ``ledger`` package never imports a web
framework); everything it decides is here, as plain functions returning a :class:`Reply`:

``POST /add-checkpoint`` takes ``old <size>\\n``, zero or more base64 consistency-proof hashes one per
line, a blank line and the signed checkpoint note. It answers:

* 200 ``text/plain; charset=utf-8`` — the cosignature/v1 signature line;
* 400 malformed request, 403 checkpoint not signed by the trusted log key, 404 unknown origin,
  411 no Content-Length (or a chunked body), 413 body over ``MAX_BODY`` bytes, 422 invalid
  consistency proof;
* 409 ``text/x.tlog.size`` — the body is the size the witness last cosigned and a newline (the old
  size did not match, or the checkpoint is older than, or a fork of, what the witness cosigned).

Refusals are logged at INFO. A fork is logged as a WARNING by ``ledger.witness`` when its evidence
file is first written, never again for the same fork (see ``ledger.witness.cosigner``).

``GET /healthz`` answers ``ok``. Every error body is one line of plain text (:func:`error_line`).
Refusals and errors go to the ``ledger.witness.server`` logger; checkpoints carry no personal data.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field

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
TEXT_CONTENT_TYPE = "text/plain; charset=utf-8"
ADD_CHECKPOINT = "/add-checkpoint"
HEALTHZ = "/healthz"
_DECIMAL = re.compile(rb"0|[1-9][0-9]{0,18}")

logger = logging.getLogger("ledger.witness.server")


@dataclass(frozen=True)
class Reply:
    """One HTTP answer: status, body, content type and extra headers (``Cache-Control: no-store`` is
    added to every answer by the server)."""

    status: int
    body: bytes
    content_type: str = TEXT_CONTENT_TYPE
    headers: dict[str, str] = field(default_factory=dict)


def text(status: int, line: str, **headers: str) -> Reply:
    return Reply(status, line.encode("utf-8"), headers=headers)


def error_line(code: str, message: str) -> str:
    """The one-line body of a refusal: ``CODE: message`` and LF."""
    return f"{code}: {' '.join(message.split())[:300]}\n"


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
            line_text = line.decode("ascii")
        except UnicodeDecodeError:
            raise MalformedInputError("a proof line is base64 text") from None
        value = b64decode(line_text, what="a proof line")
        if len(value) != merkle.HASH_SIZE:
            raise MalformedInputError("a proof line is the base64 of a 32-byte hash")
        proof.append(value)
    if not rest:
        raise MalformedInputError("the checkpoint note is missing")
    return int(digits), proof, rest


def length_refusal(transfer_encoding: str | None, content_length: str | None) -> Reply | None:
    """411 for a chunked body or none announced; None when the body has a Content-Length (its
    value, and the ``MAX_BODY`` cap, are the body limit's to check before this runs)."""
    if transfer_encoding:
        return text(411, "send a Content-Length, not a chunked body\n")
    if content_length is None:
        return text(411, "Content-Length is required\n")
    return None


def _refused(status: int, code: str, message: str) -> Reply:
    logger.info("add-checkpoint refused: %s %s", status, code)
    return text(status, error_line(code, message))


def add_checkpoint(witness: Witness, body: bytes, now: float) -> Reply:
    """The answer to one ``POST /add-checkpoint`` whose body is ``body`` (blocking: the witness
    takes its locks and fsyncs its state before a cosignature is returned)."""
    try:
        old_size, proof, note_bytes = parse_add_checkpoint(body)
        line = witness.add_checkpoint(old_size, proof, note_bytes, now=now)
    except WitnessConflict as exc:  # a fork's evidence is logged by the witness, when first written
        logger.info("add-checkpoint refused: 409 %s", exc.code)
        return Reply(409, f"{exc.latest_size}\n".encode("ascii"), SIZE_CONTENT_TYPE)
    except MalformedInputError as exc:  # includes WitnessMalformed
        return _refused(400, exc.code, exc.message)
    except WitnessForbidden as exc:
        return _refused(403, exc.code, exc.message)
    except WitnessUnknownLog as exc:
        return _refused(404, exc.code, exc.message)
    except WitnessBadProof as exc:
        return _refused(422, exc.code, exc.message)
    except Exception:
        logger.exception("add-checkpoint failed")
        return text(500, "internal error\n")
    return Reply(200, line)


__all__ = [
    "ADD_CHECKPOINT",
    "HEALTHZ",
    "MAX_BODY",
    "SIZE_CONTENT_TYPE",
    "Reply",
    "add_checkpoint",
    "error_line",
    "length_refusal",
    "parse_add_checkpoint",
]
