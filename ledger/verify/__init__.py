"""Offline verification: one engine shared by the bundle verifier and the full-ledger audit.

Imports only the standard library, `cryptography`, `rfc8785`, `domain` and the driver-free parts
of `ledger` (canonical JSON, envelopes, keys, leaves, Merkle, notes): never FastAPI, eventsourcing,
psycopg or sqlite3.
"""
