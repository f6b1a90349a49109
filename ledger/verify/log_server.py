"""What ``evidence-ledger verify --server URL`` asks a log server: its latest checkpoint and RFC 6962
consistency proofs, over the standard library's ``urllib`` (the offline verifier imports no HTTP client
package). Bounded: a timeout, no redirects, at most :data:`MAX_ANSWER` bytes. Nothing fetched is
trusted: checkpoints are verified under the pinned key, proofs against both signed roots.

A server that cannot be reached is ``SERVER_UNREACHABLE`` (exit 3, as for every command). An error
status is ``BAD_RESPONSE``: for a checkpoint that is exit 3, but for a consistency proof between
signed checkpoints it is, like a malformed proof or one that does not verify, the caller's
``EQUIVOCATION`` finding (``ledger.verify.memory``).
"""

from __future__ import annotations

import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from domain.errors import LedgerError, MalformedInputError
from ledger.log.proof_json import parse_consistency_proof
from ledger.verify.memory import ProofSource

TIMEOUT = 30.0
MAX_ANSWER = 1 << 20


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # a redirect is answered as the error status it is


class LogServer:
    """One log server, by its base URL (http or https)."""

    def __init__(self, url: str, *, timeout: float = TIMEOUT) -> None:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise MalformedInputError(
                "--server must be an http:// or https:// URL, e.g. http://127.0.0.1:8000", code="BAD_ARGUMENT"
            )
        self.url = url.rstrip("/")
        self.timeout = timeout
        self._opener = urllib.request.build_opener(_NoRedirect())

    def get(self, path: str, params: dict[str, int] | None = None) -> bytes:
        url = self.url + path + ("?" + urllib.parse.urlencode(params) if params else "")
        try:
            with self._opener.open(url, timeout=self.timeout) as answer:
                data: bytes = answer.read(MAX_ANSWER + 1)
        except urllib.error.HTTPError as exc:
            raise LedgerError(
                f"the server at {url} answered HTTP {exc.code}: check that --server is the log of this bundle",
                code="BAD_RESPONSE",
            ) from None
        except (urllib.error.URLError, OSError, ValueError) as exc:
            reason = getattr(exc, "reason", exc)
            raise LedgerError(
                f"cannot reach {url} ({reason}): check the URL and that the server is running",
                code="SERVER_UNREACHABLE",
            ) from None
        if len(data) > MAX_ANSWER:
            raise LedgerError(f"the answer of {url} is larger than {MAX_ANSWER} bytes", code="BAD_RESPONSE")
        return data

    def checkpoint(self) -> bytes:
        """The latest signed checkpoint as the server states it (unverified)."""
        return self.get("/v1/log/checkpoint")

    def origin(self) -> str:
        return self.checkpoint().decode("utf-8", "replace").split("\n", 1)[0]

    def consistency_proof(self, first: int, second: int) -> list[bytes]:
        """The hashes of the consistency proof between tree sizes ``first`` and ``second`` (unverified)."""
        raw = self.get("/v1/log/proof/consistency", {"first": first, "second": second})
        return parse_consistency_proof(raw, first=first, second=second)

    def proofs_for(self, origin: str) -> ProofSource:
        """Consistency proofs of the log ``origin``: the server's own origin is checked first (a proof
        from another log would only fail, and look like a fork), else BAD_ARGUMENT."""
        checked: list[str] = []

        def proof(first: int, second: int) -> list[bytes]:
            if not checked:
                served = self.origin()
                if served != origin:
                    raise MalformedInputError(
                        f"the server at {self.url} serves the log {served!r}, not {origin!r}: pass the server "
                        "of this log as --server",
                        code="BAD_ARGUMENT",
                    )
                checked.append(served)
            return self.consistency_proof(first, second)

        return proof
