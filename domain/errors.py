"""The error hierarchy shared by every layer.

One root, in the lowest layer. Library exceptions never cross a layer: each layer wraps them with
``raise ... from exc``. Only ``api/errors.py`` maps these to HTTP problem documents and only
``ledger/cli.py`` maps them to exit codes. Messages say what was expected and what was found and
never contain personal data or submitted free text.
"""

from __future__ import annotations


class LedgerError(Exception):
    """Root of every error this project raises on purpose."""

    code: str = "LEDGER_ERROR"

    def __init__(self, message: str, *, code: str | None = None, **refs: object) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code
        #: identifiers that locate the problem (hold id, leaf index, key id ...); never personal data
        self.refs: dict[str, object] = dict(refs)

    @property
    def message(self) -> str:
        return str(self.args[0]) if self.args else self.code


class MalformedInputError(LedgerError):
    """Bytes that cannot be parsed as what they claim to be (JSON, envelope, proof, note)."""

    code = "MALFORMED"


class VerificationError(LedgerError):
    """Well-formed input whose signature, chain, leaf or proof does not check out."""

    code = "VERIFICATION_FAILED"


class DomainError(LedgerError):
    """A rule of the case was broken (maps to 422)."""

    code = "RULE_VIOLATION"


class InvalidEventError(DomainError):
    """An event body does not match its type's schema."""

    code = "INVALID_BODY"


class RuleViolation(DomainError):
    """A rule of the executive order or the case lifecycle refused the event."""


class AuthorizationError(LedgerError):
    """The signer (or caller) may not do this (maps to 403)."""

    code = "FORBIDDEN"


class NotFoundError(LedgerError):
    """The thing asked for does not exist (maps to 404)."""

    code = "NOT_FOUND"


class ConflictError(LedgerError):
    """A concurrent writer won, or an id was reused with different bytes (maps to 409)."""

    code = "CONFLICT"


def case_not_found(case_id: str) -> NotFoundError:
    """The one CASE_NOT_FOUND: the same words for a case that does not exist and one the caller may not
    see (so the answer does not tell them apart), with the next step for the command line and the API."""
    return NotFoundError(
        f"no case {case_id} (the cases are listed by evidence-ledger case list, or GET /v1/cases)",
        code="CASE_NOT_FOUND",
        case_id=case_id,
    )
