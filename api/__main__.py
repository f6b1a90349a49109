"""``python -m api``: the `evidence-ledger` command line (every ledger command and `serve`)."""

from __future__ import annotations

from api.console import main

if __name__ == "__main__":
    main()
