"""The log side of trusted time: ask the configured time-stamping authorities (RFC 3161) for tokens
over checkpoints, keep the tokens that verify, read them back.

TSAs are listed in the ledger data dir's ``tsa.json``::

    [{"name": "freetsa", "url": "https://freetsa.org/tsr", "cert": "-----BEGIN CERTIFICATE-----…"}]

``cert`` is PEM text (written inline by ``evidence-ledger log add-tsa``) or the path of a PEM file,
relative to the data dir. It must hold the CA certificate that issued the TSA's certificate (and may
hold the TSA certificate too, to accept that one TSA only): see :func:`ledger.log.timestamp.load_trust`.
The file is read strictly, like ``witnesses.json``: an unknown key, a duplicate name, a bad URL or
an unusable certificate makes it unusable (``ConfigurationError``).

A request is one ``POST`` of a DER ``TimeStampReq`` (``application/timestamp-query``) through
:class:`ledger.transport.Transport` (bounded timeouts, no redirects, the answer capped at
``MAX_TOKEN`` bytes); the answer must be ``application/timestamp-reply`` and verify — status
granted, our imprint, our nonce, signed under the configured certificate — before it is stored in
``log_timestamps(size, tsa, token, received_at)``. Tokens are self-authenticating, so the rows carry no
MAC; every reader verifies what it reads (:func:`stored_tokens`), and the audit checks every row.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from domain.errors import LedgerError, MalformedInputError
from ledger.durable import write_atomic
from ledger.envelope.canonical import format_time
from ledger.log import timestamp
from ledger.log.tlog import StoredCheckpoint
from ledger.settings import CONFIG_FILE, ConfigurationError, load_endpoints, not_a_data_dir
from ledger.transport import Transport

TSA_FILE = "tsa.json"
DEFAULT_TIMEOUT = 5.0
MAX_WORKERS = 8
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")

logger = logging.getLogger("ledger.log.timestamping")


class TsaResponseError(LedgerError):
    """A TSA answered with something that is not a usable time-stamp reply."""

    code = "BAD_TSA_RESPONSE"


@dataclass(frozen=True)
class TsaEndpoint:
    name: str
    url: str
    cert: str  # as written in tsa.json: inline PEM or a path relative to the data dir
    trust: timestamp.TsaTrust

    def to_json(self) -> dict[str, str]:
        return {"name": self.name, "url": self.url, "cert": self.cert}


# --- configuration ----------------------------------------------------------------------------


def _check_url(url: object) -> str:
    parsed = urlsplit(url) if isinstance(url, str) else None
    if parsed is None or parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise MalformedInputError("a TSA URL is http(s)://host[:port][/path]", code="BAD_ARGUMENT")
    if parsed.username or parsed.password or parsed.fragment:
        raise MalformedInputError("a TSA URL has no credentials or fragment", code="BAD_ARGUMENT")
    assert isinstance(url, str)
    return url


def _check_name(name: object) -> str:
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise MalformedInputError(
            "a TSA name is 1-64 letters, digits, '.', '_' or '-' (starting with a letter or digit)",
            code="BAD_ARGUMENT",
        )
    return name


def _cert_pem(data_dir: Path, cert: object) -> bytes:
    if not isinstance(cert, str) or not cert:
        raise MalformedInputError("a TSA cert is PEM text or a PEM file's path", code="BAD_TSA_CERT")
    if cert.lstrip().startswith("-----BEGIN"):
        return cert.encode("ascii", "replace")
    path = Path(cert) if Path(cert).is_absolute() else data_dir / cert
    try:
        return path.read_bytes()
    except OSError as exc:
        raise MalformedInputError(f"cannot read the TSA certificate {cert}: {exc.strerror}", code="BAD_TSA_CERT") from None


def _endpoint(data_dir: Path, entry: dict[str, Any]) -> TsaEndpoint:
    name, url = _check_name(entry["name"]), _check_url(entry["url"])
    trust = timestamp.load_trust(_cert_pem(data_dir, entry["cert"]), name)
    return TsaEndpoint(name, url, entry["cert"], trust)


def load_tsas(data_dir: Path) -> list[TsaEndpoint]:
    """The configured TSAs; none when ``tsa.json`` does not exist."""
    return load_endpoints(
        Path(data_dir) / TSA_FILE, ("name", "url", "cert"), lambda e: _endpoint(Path(data_dir), e), "TSAs"
    )


def configure_tsa(data_dir: Path, url: str, cert_pem: bytes, name: str | None = None) -> TsaEndpoint:
    """Add a TSA to ``tsa.json`` with its certificate(s) inline (or replace the one of that name)."""
    data_dir = Path(data_dir)
    if not (data_dir / CONFIG_FILE).exists():
        raise ConfigurationError(not_a_data_dir(data_dir))
    url = _check_url(url)
    name = _check_name(name if name is not None else urlsplit(url).hostname)
    trust = timestamp.load_trust(cert_pem, name)
    endpoint = TsaEndpoint(name, url, timestamp.pem_of(trust).decode("ascii"), trust)
    endpoints = [e for e in load_tsas(data_dir) if e.name != name] + [endpoint]
    payload = json.dumps([e.to_json() for e in endpoints], indent=2, ensure_ascii=False) + "\n"
    write_atomic(data_dir / TSA_FILE, payload.encode("utf-8"))
    return endpoint


# --- asking --------------------------------------------------------------------------------------


def fetch_token(
    endpoint: TsaEndpoint, body: bytes, *, timeout: float = DEFAULT_TIMEOUT, client: httpx.Client | None = None
) -> tuple[bytes, timestamp.VerifiedToken]:
    """One request to ``endpoint`` for a token over ``body``: (the DER reply, what it verifies to).
    Raises ServerUnreachable / BadResponse (transport), TsaResponseError, TimestampInvalid."""
    request = timestamp.build_request(body)
    with Transport(timeout=timeout, max_response=timestamp.MAX_TOKEN, client=client) as http:
        response = http.request(
            "POST",
            endpoint.url,
            content=request.der,
            headers={"Content-Type": timestamp.QUERY_CONTENT_TYPE},
            deadline=2 * timeout,
        )
    content_type = response.headers.get("Content-Type", "").split(";")[0].strip().lower()
    if response.status_code != 200 or content_type != timestamp.REPLY_CONTENT_TYPE:
        raise TsaResponseError(f"HTTP {response.status_code} {content_type or 'without a content type'}")
    token = response.content
    return token, timestamp.verify_token(token, body, [endpoint.trust], nonce=request.nonce)


def store_token(ledger: Any, size: int, tsa: str, token: bytes) -> None:
    with ledger.db.write() as tx:
        tx.execute(
            "INSERT INTO log_timestamps (size, tsa, token, received_at) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
            (size, tsa, token, format_time(ledger.clock())),
        )


def _has_token(ledger: Any, size: int, tsa: str) -> bool:
    with ledger.db.read() as tx:
        return tx.one("SELECT 1 FROM log_timestamps WHERE size = ? AND tsa = ?", (size, tsa)) is not None


def stamp_checkpoint(
    ledger: Any,
    checkpoint: StoredCheckpoint,
    *,
    timeout: float = DEFAULT_TIMEOUT,
    client: httpx.Client | None = None,
    endpoints: Sequence[TsaEndpoint] | None = None,
) -> int:
    """Ask each configured TSA that holds no token for ``checkpoint`` yet for one; store each token
    that verifies. Returns how many TSAs now hold a token for it. Never raises: a failing TSA is
    logged (its name and the reason's code, nothing of the case) and skipped. The TSAs are asked
    in parallel, so the whole call takes about 2 * ``timeout`` seconds at most."""
    try:
        endpoints = load_tsas(ledger.data_dir) if endpoints is None else endpoints
        body = timestamp.stamped_message(checkpoint.note)
    except Exception as exc:
        logger.warning("no TSA asked: %s: %s", type(exc).__name__, getattr(exc, "message", str(exc))[:200])
        return 0
    if not endpoints:
        return 0

    def one(endpoint: TsaEndpoint) -> bool:
        try:
            if not _has_token(ledger, checkpoint.size, endpoint.name):
                token, _ = fetch_token(endpoint, body, timeout=timeout, client=client)
                store_token(ledger, checkpoint.size, endpoint.name, token)
        except Exception as exc:  # a TSA must never break checkpointing
            reason = getattr(exc, "code", type(exc).__name__)
            logger.warning("TSA %s gave no time-stamp for size %d: %s", endpoint.name, checkpoint.size, reason)
            return False
        return True

    with ThreadPoolExecutor(max_workers=min(MAX_WORKERS, len(endpoints))) as pool:
        return sum(pool.map(one, endpoints))


# --- reading -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StoredToken:
    size: int
    tsa: str
    token: bytes
    received_at: str


def tokens_for(ledger: Any, size: int) -> list[StoredToken]:
    """The stored token rows of the checkpoint of ``size``, by TSA name, as stored (unchecked)."""
    with ledger.db.read() as tx:
        rows = tx.query(
            "SELECT size, tsa, token, received_at FROM log_timestamps WHERE size = ? ORDER BY tsa", (size,)
        )
    return [StoredToken(int(s), str(t), bytes(k), str(r)) for s, t, k, r in rows]


def stored_tokens(ledger: Any, checkpoint: StoredCheckpoint) -> list[tuple[StoredToken, datetime]]:
    """The stored tokens of ``checkpoint`` that verify under the configured TSA of their name, with
    their genTime; any other row (written behind the service's back, or of a TSA no longer
    configured) is logged and left out."""
    try:
        trusts = {e.name: e.trust for e in load_tsas(ledger.data_dir)}
        body = timestamp.stamped_message(checkpoint.note)
    except LedgerError as exc:
        logger.warning("tsa.json unusable, no time-stamp served: %s", exc.message)
        return []
    kept = []
    for row in tokens_for(ledger, checkpoint.size):
        trust = trusts.get(row.tsa)
        try:
            if trust is None:
                raise timestamp.TimestampInvalid("no TSA of this name is configured")
            kept.append((row, timestamp.verify_token(row.token, body, [trust]).gen_time))
        except LedgerError:
            logger.error("a stored time-stamp for size %d (TSA %s) does not verify: left out", row.size, row.tsa)
    return kept


def newest_stamped_size(ledger: Any) -> int | None:
    """The largest checkpoint size with any stored token row (unchecked), or None."""
    with ledger.db.read() as tx:
        row = tx.one("SELECT MAX(size) FROM log_timestamps")
    return None if row is None or row[0] is None else int(row[0])


__all__ = [
    "TSA_FILE",
    "StoredToken",
    "TsaEndpoint",
    "TsaResponseError",
    "configure_tsa",
    "fetch_token",
    "load_tsas",
    "newest_stamped_size",
    "stamp_checkpoint",
    "store_token",
    "stored_tokens",
    "tokens_for",
]
