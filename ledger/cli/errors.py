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

A reader that stops early (``evidence-ledger keys list | head -1``) closes the pipe: the command
then stops quietly, without an error line, with exit status **141** (128 + SIGPIPE, what a shell
reports for a program ended by a closed pipe), and its standard output is pointed at ``os.devnull``
as the Python documentation recommends, so that flushing at exit does not fail again.
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import sys
from collections.abc import Callable
from typing import Any, NoReturn, TypeVar

import typer

from domain.errors import LedgerError, MalformedInputError, VerificationError

F = TypeVar("F", bound=Callable[..., Any])

USAGE_CODES = frozenset({
    "MALFORMED_JSON",
    "BAD_ARGUMENT",
    "BAD_KEY",
    "BAD_TSA_CERT",
    "BAD_ORIGIN",
    "CONFIGURATION",
    "SAME_TRUST_DOMAIN",
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
#: the reader closed the pipe (128 + SIGPIPE); not one of :data:`EXIT_CODES`: no error is reported
BROKEN_PIPE = 141
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


#: ``CODE: `` at the start of a message: it names its code already
CODE_PREFIX = re.compile(r"[A-Z][A-Z0-9_]*: ")
#: the code of a message given without one, by exit code
DEFAULT_CODES = {REFUSED: "REFUSED", USAGE: "BAD_ARGUMENT", UNAVAILABLE: "SERVER_UNREACHABLE"}


def fail(message: str, code: int = REFUSED, *, error: str | None = None) -> NoReturn:
    """One line ``error: CODE: message`` on stderr and exit ``code``; ``error`` is the CODE, unless the
    message starts with one (else the usual code for the exit: ``BAD_ARGUMENT`` for 2)."""
    if error is not None:
        message = f"{error}: {message}"
    elif not CODE_PREFIX.match(message):
        message = f"{DEFAULT_CODES.get(code, 'ERROR')}: {message}"
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def stop_on_broken_pipe() -> NoReturn:
    """The reader closed standard output: stop quietly (:data:`BROKEN_PIPE`); stdout goes to devnull so
    that Python's flush at exit does not raise again."""
    _stdout_to_devnull()
    raise typer.Exit(BROKEN_PIPE)


def _stdout_to_devnull() -> None:
    with contextlib.suppress(OSError, ValueError):  # no real file descriptor (a test's captured stdout)
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def _stdout_is_devnull() -> bool:
    try:
        return os.path.samestat(os.fstat(sys.stdout.fileno()), os.stat(os.devnull))
    except (OSError, ValueError, AttributeError):
        return False


def _click_saw_a_broken_pipe() -> bool:
    """Click (and the click inside typer) ends a command whose write hit a closed pipe with exit 1, after
    wrapping stdout in its flush-pacifier; that wrapper is the sign (for a command outside
    :func:`cli_errors`). By name: the class is private, and typer carries its own copy."""
    return type(sys.stdout).__name__.lstrip("_") == "PacifyFlushWrapper"


def run(app: Callable[[], Any]) -> NoReturn:
    """The entry of every ``evidence-ledger`` script: run the app, then flush standard output here, where
    a closed pipe can still be told apart (a command's own writes are handled by :func:`cli_errors`)."""
    was_devnull = _stdout_is_devnull()
    try:
        app()
        status: Any = 0
    except SystemExit as exc:
        status = exc.code
    except BrokenPipeError:  # written outside a command (help, usage)
        status = BROKEN_PIPE
    if _click_saw_a_broken_pipe() or (status == REFUSED and not was_devnull and _stdout_is_devnull()):
        status = BROKEN_PIPE  # click's or rich's own ending (exit 1; rich points stdout at devnull first)
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        status = BROKEN_PIPE
    if status == BROKEN_PIPE:
        _stdout_to_devnull()
    sys.exit(status)


SAID_ONCE = 12  # a ref value at least this long is not repeated after a message that holds it


def describe(exc: LedgerError) -> str:
    """``CODE: message (refs)`` — refs are identifiers only, never personal data; a ref the message
    already says is not said twice: a long value (an id, a URL, an expectation) found word for word,
    or the field the message opens with (``narrative: … (kind=phone)``, not ``field=narrative``);
    the other short ones (``kind=phone``) stay as the stable, greppable part of the line."""
    refs = " ".join(f"{k}={v}" for k, v in exc.refs.items() if v is not None and not _said(str(v), exc.message))
    return f"{exc.code}: {exc.message}" + (f" ({refs})" if refs else "")


def _said(value: str, message: str) -> bool:
    """The message already says ``value``: word for word if long, or as the field it opens with
    (``basis: expected …`` needs no ``field=basis``)."""
    return (len(value) >= SAID_ONCE and value in message) or message.startswith(f"{value}: ")


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
        fail(f"{type(exc).__name__}: {exc.strerror or exc}", code, error="UNUSABLE_INPUT")
    if judging_input and code in (REFUSED, USAGE):
        said = describe(exc)
        kind = "verification failed: " if code == REFUSED else "unusable input: "
        fail(said.replace(": ", ": " + kind, 1), code)  # CODE: verification failed: message (refs)
    fail(describe(exc) + where, code)


def looked_in(exc: LedgerError, kwargs: dict[str, Any]) -> str:
    """For a ``*_NOT_FOUND`` or a case with no events yet (``CASE_NOT_OPENED``): where the command looked
    (the server, else the data dir it resolved)."""
    if not (exc.code.endswith("_NOT_FOUND") or exc.code == "CASE_NOT_OPENED"):
        return ""
    if kwargs.get("server"):
        return f"; looked on the server {kwargs['server']}"
    if "data_dir" not in kwargs:
        return ""
    # --data-dir, else EVIDENCE_LEDGER_DATA_DIR (the option reads it), else the settings' default
    data_dir = kwargs["data_dir"] or "./data"
    return f"; looked in the data dir {data_dir} (--data-dir / EVIDENCE_LEDGER_DATA_DIR)"


def check_server_url(url: str) -> None:
    """``--server`` of every command: an http(s) URL with a host (``127.0.0.1:9`` is no URL), else exit 2."""
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(url)
        usable = parts.scheme in ("http", "https") and bool(parts.hostname)
    except ValueError:
        usable = False
    if not usable:
        raise MalformedInputError(
            "--server must be an http:// or https:// URL, e.g. http://127.0.0.1:8000", code="BAD_ARGUMENT"
        )


def _wrap(func: F, *, judging_input: bool) -> F:
    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            if kwargs.get("server") is not None:
                check_server_url(kwargs["server"])
            return func(*args, **kwargs)
        except BrokenPipeError:
            stop_on_broken_pipe()
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
