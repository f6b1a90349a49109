"""The one place where the command line turns an error into one line on stderr and an exit code.

Exit codes (:data:`EXIT_CODES`, also in ``evidence-ledger --help`` and the README): **0** done;
**1** refused or failed — a rule refused the event, the ledger refused to act (``STATE_TAMPERED``,
``ROLLBACK_DETECTED``), a verification or check failed; **2** unusable input or arguments — a
malformed argument or file, a bad key, a missing data dir, a configuration that cannot work, an
existing file not to be overwritten; **3** unavailable — the server (or database) could not be
reached or did not answer in time; **4** (``verify``, ``log verify-*``) verified, but not anchored
to a pinned trust root: UNPINNED, not a pass. Commands that judge files (``verify``, ``log
verify-*``, ``audit``) use :func:`check_errors`: there, anything wrong with the input itself is
unusable input, and only a failed verification is 1. Every other command uses :func:`cli_errors`.

An error is always one line on stderr, ``error: CODE: message (refs)``, also under ``--json``
(stdout then stays empty, so a script reading the JSON never parses an error as a result). The
message says what to do next; refs are identifiers, never personal data.
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
    "BAD_STATEMENT",  # e.g. an event type that is no type name
    "UNKNOWN_EVENT_TYPE",
})
OK, REFUSED, USAGE, UNAVAILABLE, UNPINNED = 0, 1, 2, 3, 4
#: the exit codes of every command, as the help and the README show them
EXIT_CODES = {
    OK: "ok",
    REFUSED: "refused by a rule, or a verification failed",
    USAGE: "unusable input or arguments (a bad file, key, option or data dir; a file not to be overwritten)",
    UNAVAILABLE: "unavailable: the server or database cannot be reached or timed out",
    UNPINNED: "verified but not anchored to a pinned trust root (UNPINNED): not a pass",
}
#: errors meaning "no answer": the server or the database, not the request, is the problem
UNAVAILABLE_CODES = frozenset({"SERVER_UNREACHABLE", "BAD_RESPONSE", "STORAGE_UNAVAILABLE"})


def fail(message: str, code: int = REFUSED) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


SAID_ONCE = 12  # a ref value at least this long is not repeated after a message that holds it


def describe(exc: LedgerError) -> str:
    """``CODE: message (refs)`` — refs are identifiers only, never personal data; a long ref value (an
    id, a URL, an expectation) that the message already says word for word is not said twice, while
    short ones (``field=narrative kind=phone``) stay as the stable, greppable part of the line."""
    refs = " ".join(
        f"{k}={v}" for k, v in exc.refs.items()
        if v is not None and not (len(str(v)) >= SAID_ONCE and str(v) in exc.message)
    )
    return f"{exc.code}: {exc.message}" + (f" ({refs})" if refs else "")


def exit_code(exc: BaseException, *, judging_input: bool = False) -> int:
    """The exit code for an error; ``judging_input``: the command checks files given to it."""
    if isinstance(exc, OSError):
        return USAGE
    if not isinstance(exc, LedgerError):
        raise TypeError("not a project error")
    if exc.code in UNAVAILABLE_CODES:
        return UNAVAILABLE
    if judging_input:
        return REFUSED if isinstance(exc, VerificationError) else USAGE
    usage = exc.code in USAGE_CODES or (isinstance(exc, MalformedInputError) and exc.code == "BAD_ARGUMENT")
    return USAGE if usage else REFUSED


def _report(exc: LedgerError | OSError, *, judging_input: bool, where: str = "") -> NoReturn:
    code = exit_code(exc, judging_input=judging_input)
    if isinstance(exc, OSError):
        fail(f"unusable input: {type(exc).__name__}: {exc.strerror or exc}", code)
    if judging_input and code in (REFUSED, USAGE):
        fail(("verification failed: " if code == REFUSED else "unusable input: ") + describe(exc), code)
    fail(describe(exc) + where, code)


def looked_in(exc: LedgerError, kwargs: dict[str, Any]) -> str:
    """For a ``*_NOT_FOUND``: where the command looked (the server, else the data dir it resolved)."""
    if not exc.code.endswith("_NOT_FOUND"):
        return ""
    if kwargs.get("server"):
        return f"; looked on the server {kwargs['server']}"
    if "data_dir" not in kwargs:
        return ""
    # --data-dir, else EVIDENCE_LEDGER_DATA_DIR (the option reads it), else the settings' default
    data_dir = kwargs["data_dir"] or "./data"
    return f"; looked in the data dir {data_dir} (--data-dir / EVIDENCE_LEDGER_DATA_DIR)"


def _wrap(func: F, *, judging_input: bool) -> F:
    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except (LedgerError, OSError) as exc:
            where = looked_in(exc, kwargs) if isinstance(exc, LedgerError) else ""
            _report(exc, judging_input=judging_input, where=where)

    return functools.update_wrapper(wrapper, func)  # type: ignore[return-value]


def cli_errors(func: F) -> F:
    """Project errors of an ordinary command: one line on stderr, exit 1 (refused) or 2 (unusable)."""
    return _wrap(func, judging_input=False)


def check_errors(func: F) -> F:
    """Project errors of a command that judges files: a failed verification is 1, the rest 2."""
    return _wrap(func, judging_input=True)
