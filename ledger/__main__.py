"""`python -m ledger` runs the `evidence-ledger` command line."""

from ledger.cli import main

main()
