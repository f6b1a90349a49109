"""RFC 3161 trusted time over checkpoints: what is stamped, the request, and checking a reply.

A time-stamping authority (TSA) signs "these bytes' hash existed at genTime". The ledger asks for a
token over each checkpoint it wants dated, and anyone holding the TSA's certificate can check
offline that the log's tree of that size and root existed no later than that time — which neither
the ledger's own clock, nor anyone who can edit its database or disk, can claim alone.

What is stamped: the message imprint is SHA-256 of the checkpoint note's BODY, the exact signed text
``<origin>\\n<size>\\n<base64 root>\\n`` (C2SP tlog-checkpoint), not of the whole note. The body alone
names the tree (origin, size, root) and never changes once signed, whereas the note grows as witness
cosignature lines arrive (after, or in parallel with, the time-stamp request): a token over the whole
note would stop matching the checkpoint as soon as a witness answered. The log's own signature is
over the same body, so body, signature and token all speak of one tree.

A token is the TSA's whole reply (DER ``TimeStampResp``, RFC 3161 section 2.4.2), as the TSA sent
it: it is self-authenticating and is kept, served and bundled byte for byte.

:func:`verify_token` raises :class:`domain.errors.VerificationError` with code ``TIMESTAMP_INVALID``
and returns the verified genTime. Offline-safe: standard library, ``cryptography`` and
``rfc3161_client`` only (the offline verifier uses it; the HTTP side is ``ledger.log.timestamping``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from rfc3161_client import (
    HashAlgorithm,
    PKIStatus,
    TimestampRequestBuilder,
    TimeStampResponse,
    VerifierBuilder,
    decode_timestamp_response,
)
from rfc3161_client import VerificationError as _LibraryError

from domain.errors import MalformedInputError, VerificationError
from ledger.log import note

INVALID = "TIMESTAMP_INVALID"
MISSING = "TIMESTAMP_MISSING"
QUERY_CONTENT_TYPE = "application/timestamp-query"
REPLY_CONTENT_TYPE = "application/timestamp-reply"
MAX_TOKEN = 64 * 1024  # a reply carrying the TSA certificate is 1-3 KiB; a chain, a few more
MAX_PEM = 256 * 1024
SHA256_OID = x509.ObjectIdentifier("2.16.840.1.101.3.4.2.1")


class TimestampInvalid(VerificationError):
    """A time-stamp token that does not prove what it should (status, imprint, nonce, signature, chain)."""

    code = INVALID


class BadTsaCertificate(MalformedInputError):
    """A TSA certificate file that cannot be used to check tokens."""

    code = "BAD_TSA_CERT"


def stamped_message(checkpoint_note: bytes) -> bytes:
    """The bytes whose SHA-256 is time-stamped: the checkpoint note's body (the signed text),
    without any signature line. Raises MalformedInputError when the note cannot be opened."""
    body, _ = note.open_note(checkpoint_note)
    return body


def imprint(body: bytes) -> bytes:
    return hashlib.sha256(body).digest()


# --- the trust a verifier brings --------------------------------------------------------------------


@dataclass(frozen=True)
class TsaTrust:
    """What one pinned certificate file trusts: the CA certificate(s) a TSA certificate must chain
    to, any intermediate, and — when the file holds the TSA's own certificate — that one certificate."""

    label: str  # the file name or the configured TSA name, for reports
    roots: tuple[x509.Certificate, ...]
    intermediates: tuple[x509.Certificate, ...] = ()
    tsa_certificate: x509.Certificate | None = None


def _is_ca(cert: x509.Certificate) -> bool:
    try:
        return bool(cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except x509.ExtensionNotFound:
        return False


def _self_issued(cert: x509.Certificate) -> bool:
    if cert.issuer != cert.subject:
        return False
    try:
        cert.verify_directly_issued_by(cert)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def load_trust(pem: bytes, label: str) -> TsaTrust:
    """The trust of a PEM file: every self-signed certificate is a root; any other CA certificate an
    intermediate; a certificate that is not a CA (the TSA's own) restricts the trust to that one
    TSA. A file must hold at least one root: RFC 3161 verification chains the TSA certificate to a
    CA the verifier trusts (pin the CA that issued the TSA's certificate, with the TSA certificate
    beside it in the same file to accept that one TSA only)."""
    if len(pem) > MAX_PEM:
        raise BadTsaCertificate(f"{label}: larger than {MAX_PEM} bytes")
    try:
        certs = x509.load_pem_x509_certificates(pem)
    except ValueError:
        raise BadTsaCertificate(f"{label}: not PEM certificates (-----BEGIN CERTIFICATE-----)") from None
    roots = tuple(c for c in certs if _self_issued(c))
    intermediates = tuple(c for c in certs if _is_ca(c) and c not in roots)
    leaves = [c for c in certs if not _is_ca(c)]
    if not roots:
        raise BadTsaCertificate(
            f"{label}: holds no self-signed CA certificate: add the certificate of the CA that issued the "
            "TSA's certificate (the TSA publishes it, e.g. cacert.pem)"
        )
    if len(leaves) > 1:
        raise BadTsaCertificate(f"{label}: holds {len(leaves)} TSA certificates: put each TSA in a file of its own")
    return TsaTrust(label, roots, intermediates, leaves[0] if leaves else None)


def pem_of(trust: TsaTrust) -> bytes:
    """The certificates of ``trust`` as PEM (roots, intermediates, then the TSA certificate)."""
    certs = [*trust.roots, *trust.intermediates, *([trust.tsa_certificate] if trust.tsa_certificate else [])]
    return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs)


# --- the request ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Request:
    der: bytes
    nonce: int


def build_request(body: bytes) -> Request:
    """A DER TimeStampReq over SHA-256(``body``) with a fresh random nonce and certReq true (the
    reply then carries the TSA certificate, so the token verifies with the CA alone)."""
    request = (
        TimestampRequestBuilder()
        .data(body)
        .hash_algorithm(HashAlgorithm.SHA256)
        .nonce(nonce=True)
        .cert_request(cert_request=True)
        .build()
    )
    if request.nonce is None or request.message_imprint.message != imprint(body):
        raise AssertionError("the library built a request other than the one asked for")
    return Request(request.as_bytes(), request.nonce)


# --- checking a reply --------------------------------------------------------------------------------


@dataclass(frozen=True)
class VerifiedToken:
    gen_time: datetime  # UTC
    tsa: str  # the label of the trust it verified under
    serial: int


def parse_token(der: bytes) -> TimeStampResponse:
    """The parsed reply; TimestampInvalid when it is not one DER TimeStampResp, exactly."""
    if not isinstance(der, bytes | bytearray) or not 0 < len(der) <= MAX_TOKEN:
        raise TimestampInvalid(f"a time-stamp token is 1 to {MAX_TOKEN} bytes of DER")
    try:
        response = decode_timestamp_response(bytes(der))
    except ValueError as exc:
        raise TimestampInvalid(f"the time-stamp token is not a DER TimeStampResp: {str(exc)[:120]}") from None
    if response.as_bytes() != bytes(der):  # no trailing bytes, no second encoding of the same reply
        raise TimestampInvalid("the time-stamp token carries bytes beyond its DER TimeStampResp")
    return response


def check_content(response: TimeStampResponse, body: bytes, nonce: int | None = None) -> None:
    """What can be checked without the TSA's certificate: granted, over SHA-256(``body``), the nonce."""
    if response.status != PKIStatus.GRANTED.value:
        raise TimestampInvalid(f"the TSA did not grant the time-stamp (PKIStatus {response.status})")
    info = response.tst_info
    if info.message_imprint.hash_algorithm != SHA256_OID:
        raise TimestampInvalid("the time-stamp is not over a SHA-256 imprint")
    if info.message_imprint.message != imprint(body):
        raise TimestampInvalid("the time-stamp is over other bytes than this checkpoint's body")
    if nonce is not None and info.nonce != nonce:
        raise TimestampInvalid("the time-stamp's nonce is not the one sent: a replayed or foreign reply")


def _verifies_under(response: TimeStampResponse, body: bytes, trust: TsaTrust) -> str | None:
    """None when the token's signature chains to ``trust`` (signer certificate with a critical EKU
    timeStamping, valid at genTime); else the library's reason."""
    verifier = VerifierBuilder(
        roots=list(trust.roots),
        intermediates=list(trust.intermediates),
        tsa_certificate=trust.tsa_certificate,
    ).build()
    try:
        verifier.verify(response, imprint(body))
    except (_LibraryError, ValueError) as exc:
        return str(exc).split(":")[0][:160]
    return None


def verify_token(
    der: bytes, body: bytes, trusts: Sequence[TsaTrust], *, nonce: int | None = None
) -> VerifiedToken:
    """Check a DER TimeStampResp over the checkpoint body ``body`` (see :func:`stamped_message`):
    status granted, a SHA-256 imprint equal to SHA-256(``body``), the nonce sent (when given), and
    a signature by a certificate with the critical extended key usage timeStamping that chains to
    one of ``trusts``. Returns the verified genTime; raises TimestampInvalid."""
    if not trusts:
        raise TimestampInvalid("no TSA certificate to check the time-stamp against")
    response = parse_token(der)
    check_content(response, body, nonce)
    reasons = []
    for trust in trusts:
        reason = _verifies_under(response, body, trust)
        if reason is None:
            info = response.tst_info
            return VerifiedToken(gen_time=info.gen_time, tsa=trust.label, serial=int(info.serial_number))
        reasons.append(f"{trust.label}: {reason}")
    raise TimestampInvalid("the time-stamp is not signed by a trusted TSA (" + "; ".join(reasons) + ")")


def gen_time_of(der: bytes) -> datetime | None:
    """The genTime a token claims, unchecked (for reports where no TSA certificate is pinned); None
    when the token does not parse."""
    try:
        return parse_token(der).tst_info.gen_time
    except VerificationError:
        return None


__all__ = [
    "INVALID",
    "MISSING",
    "QUERY_CONTENT_TYPE",
    "REPLY_CONTENT_TYPE",
    "BadTsaCertificate",
    "Request",
    "TimestampInvalid",
    "TsaTrust",
    "VerifiedToken",
    "build_request",
    "check_content",
    "gen_time_of",
    "imprint",
    "load_trust",
    "parse_token",
    "pem_of",
    "stamped_message",
    "verify_token",
]
