"""The log side of witnessing: send each new checkpoint to the configured witnesses, keep their cosignatures.

Witnesses are listed in the ledger data dir's ``witnesses.json``:
``[{"url": "https://witness.example/prefix", "vkey": "name+hex8+base64(0x04 || key)"}]``
(``configure_witness`` or ``evidence-ledger log add-witness`` write it).

For each witness ``collect_cosignatures`` sends c2sp.org/tlog-witness ``add-checkpoint`` with the
largest size that witness has cosigned for this log (from ``log_cosignatures``; 0 at first contact)
and the consistency proof from that size. On 409 it retries once from the size the witness reports.
A returned line is kept only if it is a valid cosignature/v1 by the configured key over this very
checkpoint. Timeouts are bounded; a failing witness is logged and skipped — collecting never raises.

The requests go through :class:`ledger.transport.Transport` (bounded timeouts, no redirects, identity
encoding, answers capped at ``MAX_RESPONSE`` bytes, an unreachable witness is ``SERVER_UNREACHABLE``);
the c2sp tlog-witness protocol itself (plain-text bodies, ``text/x.tlog.size`` on 409) is spoken here.
"""

from __future__ import annotations

import functools
import json
import logging
import re
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from domain.errors import LedgerError, MalformedInputError
from ledger.durable import write_atomic
from ledger.envelope.b64 import b64encode
from ledger.envelope.canonical import format_time
from ledger.log import note
from ledger.log.domains import other_trust_domain, trust_domain
from ledger.log.tlog import StoredCheckpoint
from ledger.settings import CONFIG_FILE, ConfigurationError, LedgerConfig, load_endpoints, not_a_data_dir
from ledger.transport import Transport

WITNESSES_FILE = "witnesses.json"
DEFAULT_TIMEOUT = 5.0
MAX_RESPONSE = 64 * 1024
MAX_WORKERS = 8
SIZE_CONTENT_TYPE = "text/x.tlog.size"
_SIZE_BODY = re.compile(rb"(0|[1-9][0-9]{0,18})\n")

logger = logging.getLogger("ledger.log.witnessing")


class SameTrustDomain(ConfigurationError):
    """A production ledger refuses a witness in its own trust domain: it would not be independent."""

    code = "SAME_TRUST_DOMAIN"


class WitnessResponseError(LedgerError):
    """A witness answered with something that is not a usable cosignature."""

    code = "BAD_WITNESS_RESPONSE"


@dataclass(frozen=True)
class WitnessEndpoint:
    url: str
    vkey: note.VerifierKey

    @property
    def name(self) -> str:
        return self.vkey.name

    def to_json(self) -> dict[str, str]:
        return {"url": self.url, "vkey": str(self.vkey)}


# --- configuration ----------------------------------------------------------------------------


def _check_url(url: object) -> str:
    parsed = urlsplit(url) if isinstance(url, str) else None
    if parsed is None or parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise MalformedInputError("a witness URL is http(s)://host[:port][/prefix]", code="BAD_ARGUMENT")
    if parsed.username or parsed.password or parsed.query or parsed.fragment:
        raise MalformedInputError("a witness URL has no credentials, query or fragment", code="BAD_ARGUMENT")
    assert isinstance(url, str)
    return url.rstrip("/")


def _witness_key(vkey: object) -> note.VerifierKey:
    if not isinstance(vkey, str):
        raise MalformedInputError("a witness verifier key is a string", code="BAD_KEY")
    key = note.parse_verifier_key(vkey.strip())
    if key.type != note.SIG_TYPE_COSIGNATURE_V1:
        raise MalformedInputError("a witness verifier key is a cosignature/v1 (type 0x04) key", code="BAD_KEY")
    return key


def load_witnesses(data_dir: Path) -> list[WitnessEndpoint]:
    """The configured witnesses; none when ``witnesses.json`` does not exist."""
    return load_endpoints(
        Path(data_dir) / WITNESSES_FILE,
        ("url", "vkey"),
        lambda e: WitnessEndpoint(_check_url(e["url"]), _witness_key(e["vkey"])),
        "witnesses",
    )


def configure_witness(data_dir: Path, url: str, vkey: str) -> WitnessEndpoint:
    """Add a witness to ``witnesses.json`` (or change its URL); refuse a second key under one name."""
    data_dir = Path(data_dir)
    if not (data_dir / CONFIG_FILE).exists():
        raise ConfigurationError(not_a_data_dir(data_dir))
    endpoint = WitnessEndpoint(_check_url(url), _witness_key(vkey))
    config = LedgerConfig.load(data_dir)
    if config.production and not other_trust_domain(endpoint.name, config.origin):
        raise SameTrustDomain(
            f"witness {endpoint.name} is in the log's own trust domain ({trust_domain(config.origin)}): a "
            "production ledger counts only witnesses run by others (a DA's or the AG's office: docs/witness.md)"
        )
    endpoints = load_witnesses(data_dir)
    for known in endpoints:
        if known.name == endpoint.name and known.vkey != endpoint.vkey:
            raise ConfigurationError(f"witness {known.name!r} is already configured with another key")
    endpoints = [e for e in endpoints if e.name != endpoint.name] + [endpoint]
    payload = json.dumps([e.to_json() for e in endpoints], indent=2, ensure_ascii=False) + "\n"
    write_atomic(data_dir / WITNESSES_FILE, payload.encode("utf-8"))
    return endpoint


def counting_witnesses(data_dir: Path, config: LedgerConfig) -> list[WitnessEndpoint]:
    """The configured witnesses whose cosignatures count towards publishing a checkpoint: every one
    in a standard ledger; in a production ledger only those in another trust domain than the log's."""
    endpoints = load_witnesses(data_dir)
    if not config.production:
        return endpoints
    return [e for e in endpoints if other_trust_domain(e.name, config.origin)]


def require_publishing_witnesses(data_dir: Path, config: LedgerConfig) -> None:
    """ConfigurationError (naming `log add-witness`) when a production ledger has fewer witnesses in
    other trust domains than ``min_witnesses``: no checkpoint of it could ever be published."""
    if not config.production:
        return
    have, need = len(counting_witnesses(data_dir, config)), config.min_witnesses
    if have < need:
        raise ConfigurationError(
            f"this production ledger has {have} witness(es) in other trust domains and needs {need} before it"
            " can publish a checkpoint: add them with `evidence-ledger log add-witness --url URL --vkey KEY`"
            " (docs/witness.md)"
        )


# --- collecting -------------------------------------------------------------------------------


def _stored_line(ledger: Any, size: int, witness: str) -> str | None:
    with ledger.db.read() as tx:
        row = tx.one("SELECT line FROM log_cosignatures WHERE size = ? AND witness = ?", (size, witness))
    return None if row is None else str(row[0])


def _cosigned_size(ledger: Any, witness: str, at_most: int) -> int:
    with ledger.db.read() as tx:
        row = tx.one(
            "SELECT MAX(size) FROM log_cosignatures WHERE witness = ? AND size <= ?", (witness, at_most)
        )
    return 0 if row is None or row[0] is None else int(row[0])


def _store(ledger: Any, size: int, witness: str, line: str) -> None:
    with ledger.db.write() as tx:
        tx.execute(
            "INSERT INTO log_cosignatures (size, witness, line, received_at) VALUES (?, ?, ?, ?)"
            " ON CONFLICT DO NOTHING",
            (size, witness, line, format_time(ledger.clock())),
        )


def _request_body(ledger: Any, old: int, checkpoint: StoredCheckpoint) -> bytes:
    proof = ledger.consistency_proof(old, checkpoint.size) if 0 < old < checkpoint.size else []
    lines = b"".join(b64encode(h).encode("ascii") + b"\n" for h in proof)
    return b"old %d\n" % old + lines + b"\n" + checkpoint.note


def _post(http: Transport, url: str, body: bytes) -> tuple[int, str, bytes]:
    """(status, content type, body): the body capped at MAX_RESPONSE bytes, the whole exchange at
    about 2 * timeout seconds (both enforced by the transport)."""
    response = http.request(
        "POST",
        f"{url}/add-checkpoint",
        content=body,
        headers={"Content-Type": "text/plain; charset=utf-8"},
        deadline=2 * http.timeout,
    )
    return response.status_code, response.headers.get("Content-Type", ""), response.content


def _reported_size(content_type: str, body: bytes) -> int | None:
    if content_type.split(";")[0].strip().lower() != SIZE_CONTENT_TYPE or not _SIZE_BODY.fullmatch(body):
        return None
    return int(body[:-1])


def _verified_line(signed: bytes, body: bytes, witness: note.VerifierKey, log_key: note.VerifierKey) -> str:
    """The one line of ``body`` that is a valid cosignature by ``witness`` over the checkpoint note ``signed``."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise WitnessResponseError("the witness answered with invalid UTF-8") from None
    if not text.endswith("\n"):
        raise WitnessResponseError("the witness answer is not signature lines ending in LF")
    lines = [line + "\n" for line in text[:-1].split("\n")]
    try:
        cosigned = note.add_signature_lines(signed, [line.encode("utf-8") for line in lines])
        note.verify_checkpoint(cosigned, log_key, [witness], 1)
        _, signatures = note.open_note(cosigned)
    except MalformedInputError as exc:
        raise WitnessResponseError(f"the witness answer is malformed: {exc.message}") from None
    mine = [line for line, sig in zip(lines, signatures[-len(lines) :], strict=True) if witness.matches(sig)]
    return mine[0]


def _cosigns(checkpoint: StoredCheckpoint, line: str, witness: note.VerifierKey, log_key: note.VerifierKey) -> bool:
    return _cosigns_note(checkpoint.note, line, witness, log_key)


@functools.lru_cache(maxsize=1024)
def _cosigns_note(signed: bytes, line: str, witness: note.VerifierKey, log_key: note.VerifierKey) -> bool:
    """Whether ``line`` is a valid cosignature by ``witness`` of the note ``signed`` (signed by
    ``log_key``). A pure function of its arguments, all of them part of the key, so it is remembered:
    the published checkpoint's stored lines are verified on every read of it (production profile), and
    the same bytes give the same answer; an edited line or note, another key, is another question."""
    try:
        _verified_line(signed, line.encode("utf-8"), witness, log_key)
    except LedgerError:  # malformed, or not a valid cosignature by this witness over this checkpoint
        return False
    return True


def verified_cosignatures(ledger: Any, checkpoint: StoredCheckpoint) -> list[str]:
    """The stored cosignature lines of ``checkpoint`` that verify under a configured witness key; any
    other line (written behind the service's back) is logged as an alert and left out."""
    try:
        keys = [endpoint.vkey for endpoint in load_witnesses(ledger.data_dir)]
    except LedgerError as exc:
        logger.warning("witnesses.json unusable, no cosignature kept: %s", exc.message)
        return []
    log_key = ledger.rollback_guard().log_key
    kept = []
    for line in checkpoint.cosignatures:
        if any(_cosigns(checkpoint, line, key, log_key) for key in keys):
            kept.append(line)
        else:
            logger.error("a stored cosignature line for size %d does not verify: left out", checkpoint.size)
    return kept


def counted_cosignatures(ledger: Any, checkpoint: StoredCheckpoint) -> list[str]:
    """The stored lines of ``checkpoint`` that are valid cosignatures by a witness that counts
    (:func:`counting_witnesses`), one per witness."""
    try:
        keys = [e.vkey for e in counting_witnesses(ledger.data_dir, ledger.config)]
    except LedgerError as exc:
        logger.warning("witnesses.json unusable, no cosignature counted: %s", exc.message)
        return []
    log_key = ledger.rollback_guard().log_key
    counted: dict[str, str] = {}
    for line in checkpoint.cosignatures:
        for key in keys:
            if key.name not in counted and _cosigns(checkpoint, line, key, log_key):
                counted[key.name] = line
    return list(counted.values())


def _collect_one(
    http: Transport,
    ledger: Any,
    checkpoint: StoredCheckpoint,
    endpoint: WitnessEndpoint,
    log_key: note.VerifierKey,
) -> str | None:
    stored = _stored_line(ledger, checkpoint.size, endpoint.name)
    if stored is not None:
        if _cosigns(checkpoint, stored, endpoint.vkey, log_key):
            return stored
        logger.error(
            "the stored cosignature of witness %s for size %d does not verify: asking the witness again",
            endpoint.name, checkpoint.size,
        )
    old = _cosigned_size(ledger, endpoint.name, checkpoint.size)
    for attempt in (1, 2):
        status, content_type, body = _post(http, endpoint.url, _request_body(ledger, old, checkpoint))
        if status == 200:
            line = _verified_line(checkpoint.note, body, endpoint.vkey, log_key)
            _store(ledger, checkpoint.size, endpoint.name, line)
            return line
        reported = _reported_size(content_type, body) if status == 409 else None
        if reported is not None and reported > checkpoint.size:
            logger.error(
                "witness %s has cosigned size %d, larger than this log's checkpoint %d: "
                "this ledger may have been rolled back",
                endpoint.name, reported, checkpoint.size,
            )
            return None
        if attempt == 1 and reported is not None and reported != old:
            old = reported
            continue
        first_line = body[:200].decode("utf-8", "replace").split("\n")[0]
        logger.warning(
            "witness %s did not cosign size %d (old %d): HTTP %d %s",
            endpoint.name, checkpoint.size, old, status, first_line,
        )
        return None
    return None


def _safely(call: Callable[[], str | None], name: str) -> str | None:
    try:
        return call()
    except Exception as exc:  # a witness must never break checkpointing
        logger.warning("witness %s skipped: %s: %s", name, type(exc).__name__, str(exc)[:200])
        return None


def collect_cosignatures(
    ledger: Any,
    checkpoint: StoredCheckpoint,
    *,
    timeout: float = DEFAULT_TIMEOUT,
    client: httpx.Client | None = None,
) -> list[str]:
    """Ask every configured witness to cosign ``checkpoint``; store and return the valid lines.

    Returns the cosignature lines held for this checkpoint by the configured witnesses (new or
    already stored). Never raises: problems are logged and the witness is skipped.
    """
    try:
        endpoints = load_witnesses(ledger.data_dir)
        if not endpoints:
            return []
        log_key = note.make_verifier_key(ledger.config.log_key_name, ledger.log_key.public_key())
    except Exception as exc:
        logger.warning("no witness contacted: %s: %s", type(exc).__name__, str(exc)[:200])
        return []
    with (
        Transport(timeout=timeout, max_response=MAX_RESPONSE, client=client) as http,
        ThreadPoolExecutor(max_workers=min(MAX_WORKERS, len(endpoints))) as pool,
    ):
        futures = [
            pool.submit(
                _safely,
                lambda e=endpoint: _collect_one(http, ledger, checkpoint, e, log_key),  # type: ignore[misc]
                endpoint.name,
            )
            for endpoint in endpoints
        ]
        results = [future.result() for future in futures]
    return [line for line in results if line is not None]


def checkpoint_with_witnesses(
    ledger: Any, *, timeout: float = DEFAULT_TIMEOUT, client: httpx.Client | None = None
) -> StoredCheckpoint | None:
    """Sign a checkpoint covering every entry (if needed), collect cosignatures, re-read it with them
    and record it (with its cosignatures) outside the database, for the rollback guard."""
    signed = ledger.checkpoint()
    if signed is None:
        return None
    lines = collect_cosignatures(ledger, signed, timeout=timeout, client=client)
    stored: StoredCheckpoint = ledger.checkpoint_at(signed.size)  # verified stored lines only
    cosigned = replace(stored, cosignatures=tuple(dict.fromkeys([*stored.cosignatures, *lines])))
    ledger.record_checkpoint(cosigned)
    return cosigned


__all__ = [
    "WITNESSES_FILE",
    "SameTrustDomain",
    "WitnessEndpoint",
    "WitnessResponseError",
    "checkpoint_with_witnesses",
    "collect_cosignatures",
    "configure_witness",
    "counted_cosignatures",
    "counting_witnesses",
    "load_witnesses",
    "require_publishing_witnesses",
]
