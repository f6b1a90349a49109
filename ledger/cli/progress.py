"""Progress bars for long reads and writes (``export``, ``verify``, ``evidence put``): rich, on
stderr, and only when stderr is a terminal and the output is not ``--json`` — so a pipe, a log file
or a script reading JSON never sees one."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TextIO

#: ``(stage, bytes done, bytes in the stage)``, after each chunk; total 0 means "not counted in bytes"
Report = Callable[[str, int, int], None]


def wanted(as_json: bool = False, stream: TextIO | None = None) -> bool:
    """A bar only for people: stderr is a terminal and the output is not JSON."""
    stream = sys.stderr if stream is None else stream
    return not as_json and bool(getattr(stream, "isatty", lambda: False)())


@contextmanager
def progress_bar(label: str, enabled: bool, *, in_bytes: bool = True) -> Iterator[Report | None]:
    """A callback that moves a transient bar on stderr (None when ``enabled`` is false); counts bytes,
    or items (``in_bytes=False``: "12/40")."""
    if not enabled:
        yield None
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    count = DownloadColumn() if in_bytes else MofNCompleteColumn()
    columns = (TextColumn(f"{label}: {{task.description}}"), BarColumn(), count, TimeRemainingColumn())
    with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task("", total=None)

        def report(stage: str, done: int, total: int) -> None:
            bar.update(task, description=stage, completed=done, total=total or None)

        yield report
