"""Settings of the HTTP service (prefix ``EVIDENCE_LEDGER_API_``).

The ledger's own settings (data dir, database, body limit, clock skew, checkpoint interval) stay in
:class:`ledger.settings.Settings`; this class holds only what the web layer adds.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from api.connections import ConnectionSettings
from ledger.tokens import TokenPolicy


class ApiSettings(TokenPolicy, ConnectionSettings):  # token_max_days: the token policy; limits: connections
    model_config = SettingsConfigDict(env_prefix="EVIDENCE_LEDGER_API_", extra="ignore")

    max_batch: int = Field(default=256, ge=1, le=4096, description="envelopes per group commit")
    wait_timeout: float = Field(
        default=5.0, gt=0, description="seconds `?wait=true` (and a bundle) waits for the checkpointer"
    )
    token_cache_seconds: float = Field(
        default=2.0,
        ge=0,
        description="cache verified tokens this long (0 = look up every request); a revocation made by "
        "another process (`evidence-ledger tokens revoke`) applies within this many seconds",
    )
    require_durability: bool = Field(
        default=True, description="refuse to start when the database could lose acknowledged writes"
    )
    max_evidence_bytes: int = Field(
        default=20 * 1024**3, ge=1, description="largest evidence file POST /v1/evidence accepts (bytes)"
    )
    witness_timeout: float = Field(
        default=2.0, gt=0, le=30, description="seconds per witness request made by the background checkpointer"
    )
    rollback_retry_after: int = Field(
        default=60, ge=1, description="Retry-After (seconds) sent with 503 ROLLBACK_DETECTED"
    )
    tmp_dir: Path | None = Field(
        default=None, description="where bundles are built before they are streamed (default: the system's)"
    )
    public_url: str | None = Field(
        default=None,
        pattern=r"^https?://[^\s/?#]+(/[^\s?#]*)?$",
        description="the service's public address for links in the Atom feed (behind a reverse proxy); default:"
        " the address the request came to",
    )
