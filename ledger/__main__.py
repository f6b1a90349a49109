"""`python -m ledger` runs the `evidence-ledger` command line."""

from ledger.cli.app import main

main()
