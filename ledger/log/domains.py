"""Trust domains of witnesses: who counts as independent of the log.

A key name's trust domain is its host part, the text before the first ``/``
(``middlesexda.gov/witness`` → ``middlesexda.gov``), compared case-insensitively without a port or a
trailing dot. A witness is in ANOTHER trust domain than the log when its domain is neither the log
origin's host, nor a subdomain of it, nor a parent of it: ``witness.cambridgema.gov`` or ``gov`` are
the City's own (or everyone's), ``mass.gov`` and ``middlesexda.gov`` are not. A production ledger
counts only such witnesses (docs/witness.md). Standard library only.
"""

from __future__ import annotations


def trust_domain(name: str) -> str:
    """The host part of a key name or log origin, lower-case, without a port or a trailing dot."""
    host = name.split("/", 1)[0].strip().lower()
    if host.startswith("[") and "]" in host:  # an IPv6 literal: [::1]:443
        return host[1 : host.index("]")]
    if host.count(":") == 1:
        host = host.split(":", 1)[0]
    return host.rstrip(".")


def same_trust_domain(witness_name: str, origin: str) -> bool:
    """True when the witness's domain is the origin's host, a subdomain of it or a parent of it."""
    witness, log = trust_domain(witness_name), trust_domain(origin)
    if not witness or not log:
        return True  # no host to tell them apart: never counted as independent
    return witness == log or witness.endswith("." + log) or log.endswith("." + witness)


def other_trust_domain(witness_name: str, origin: str) -> bool:
    """True when a witness of this name is independent of the log of ``origin``."""
    return not same_trust_domain(witness_name, origin)


__all__ = ["other_trust_domain", "same_trust_domain", "trust_domain"]
