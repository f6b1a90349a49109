"""The one place where the command line turns an error into one line on stderr and an exit code.

Exit codes: **0** done; **1** refused or failed — a rule refused the event, the ledger refused to act
(``STATE_TAMPERED``, ``ROLLBACK_DETECTED``), a verification or check failed; **2** unusable input or
arguments — a malformed argument or file, a bad key, a missing data dir, a configuration that cannot
work. (``verify`` adds **3**: UNPINNED.) Commands that judge files (``verify``, ``log verify-*``,
``audit``) use :func:`check_errors`: there, anything wrong with the input itself is unusable input,
and only a failed verification is 1. Every other command uses :func:`cli_errors`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, NoReturn, TypeVar

import typer

from domain.errors import LedgerError, MalformedInputError, VerificationError

F = TypeVar("F", bound=Callable[..., Any])

USAGE_CODES = frozenset({
    "MALFORMED_JSON",
    "BAD_ARGUMENT",
    "BAD_KEY",
    "BAD_ORIGIN",
    "CONFIGURATION",
    "UNUSABLE_INPUT",
    "UNSAFE_DURABILITY",
    "READ_MODELS_OUTDATED",
    "KEYSTORE_IN_DATA_DIR",
    "KEYSTORE_NOT_FOUND",
    "KEYSTORE_UNUSABLE",
})
USAGE, REFUSED = 2, 1


def fail(message: str, code: int = REFUSED) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def describe(exc: LedgerError) -> str:
    """``CODE: message (refs)`` — refs are identifiers only, never personal data."""
    refs = " ".join(f"{k}={v}" for k, v in exc.refs.items())
    return f"{exc.code}: {exc.message}" + (f" ({refs})" if refs else "")


def exit_code(exc: BaseException, *, judging_input: bool = False) -> int:
    """The exit code for an error; ``judging_input``: the command checks files given to it."""
    if isinstance(exc, OSError):
        return USAGE
    if not isinstance(exc, LedgerError):
        raise TypeError("not a project error")
    if judging_input:
        return REFUSED if isinstance(exc, VerificationError) else USAGE
    usage = exc.code in USAGE_CODES or (isinstance(exc, MalformedInputError) and exc.code == "BAD_ARGUMENT")
    return USAGE if usage else REFUSED


def _report(exc: LedgerError | OSError, *, judging_input: bool) -> NoReturn:
    code = exit_code(exc, judging_input=judging_input)
    if isinstance(exc, OSError):
        fail(f"unusable input: {type(exc).__name__}: {exc.strerror or exc}", code)
    if judging_input:
        fail(("verification failed: " if code == REFUSED else "unusable input: ") + describe(exc), code)
    fail(describe(exc), code)


def _wrap(func: F, *, judging_input: bool) -> F:
    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except (LedgerError, OSError) as exc:
            _report(exc, judging_input=judging_input)

    return functools.update_wrapper(wrapper, func)  # type: ignore[return-value]


def cli_errors(func: F) -> F:
    """Project errors of an ordinary command: one line on stderr, exit 1 (refused) or 2 (unusable)."""
    return _wrap(func, judging_input=False)


def check_errors(func: F) -> F:
    """Project errors of a command that judges files: a failed verification is 1, the rest 2."""
    return _wrap(func, judging_input=True)
