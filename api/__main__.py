"""``python -m api``: the `evidence-ledger` command line (with `serve` and `tokens`)."""

from __future__ import annotations

from ledger.cli.app import main

if __name__ == "__main__":
    main()
