"""A fake log for witness tests, and the add-checkpoint request body."""

from __future__ import annotations

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ledger.envelope.b64 import b64encode
from ledger.log import merkle, note

ORIGIN = "test.example/log"


class FakeLog:
    """An in-memory log with its own real Ed25519 key."""

    def __init__(self, origin: str = ORIGIN) -> None:
        self.origin = origin
        self.key = Ed25519PrivateKey.generate()
        self.vkey = note.make_verifier_key(origin, self.key.public_key())
        self.leaves = [merkle.leaf_hash(b"entry %d" % i) for i in range(40)]

    def root(self, size: int) -> bytes:
        return merkle.root_from_leaf_hashes(self.leaves[:size])

    def note(self, size: int, *, root: bytes | None = None, key: Ed25519PrivateKey | None = None) -> bytes:
        body = note.Checkpoint(self.origin, size, self.root(size) if root is None else root).body()
        return note.sign_note(body, self.origin, key or self.key)

    def proof(self, old: int, new: int) -> list[bytes]:
        return merkle.reference_consistency_proof(old, self.leaves[:new])


def request_body(old: int, proof: list[bytes], signed: bytes) -> bytes:
    return b"old %d\n" % old + b"".join(b64encode(h).encode() + b"\n" for h in proof) + b"\n" + signed

