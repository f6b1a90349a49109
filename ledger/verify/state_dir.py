"""Where a client keeps what it has seen of each log: the newest verified checkpoint, the receipts it got.

Like Go's checksum-database client cache (``$GOPATH/pkg/sumdb``), every client of the project (the CLI
talking to a server, the offline verifier, the monitor) keeps a small state directory:

    $EVIDENCE_LEDGER_STATE_DIR                  (else $XDG_STATE_HOME/evidence-ledger,
                                                  else ~/.local/state/evidence-ledger)
        logs/<origin, percent-encoded>/latest    the newest checkpoint verified for that origin (signed note)
        logs/<origin, percent-encoded>/receipts/ the signed receipts of appends, <leaf index>.txt
        logs/<origin, percent-encoded>/conflicts/ both notes of every rollback or fork seen

Standard library only: the offline verifier imports it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import quote

STATE_DIR_ENV = "EVIDENCE_LEDGER_STATE_DIR"


def state_dir(environ: Mapping[str, str] | None = None) -> Path | None:
    """The client state directory (not created here); None when there is no home directory to put it in."""
    env = os.environ if environ is None else environ
    explicit = env.get(STATE_DIR_ENV, "")
    if explicit:
        return Path(explicit)
    base = env.get("XDG_STATE_HOME", "")
    if not (base and Path(base).is_absolute()):
        try:
            base = str(Path.home() / ".local" / "state")
        except RuntimeError:
            return None
    return Path(base) / "evidence-ledger"


def origin_dir(root: Path, origin: str) -> Path:
    """``root/logs/<origin>``, the origin percent-encoded so that it is one path component."""
    name = quote(origin, safe="")
    if name in ("", ".", ".."):
        raise ValueError("an origin cannot name a directory of its own")
    return root / "logs" / name
