"""Crash-safety harness: SIGKILL `evidence-ledger serve` under concurrent signed appends, then check
offline that every acknowledged event survived and nothing is half-written (docs/crash-safety.md)."""
