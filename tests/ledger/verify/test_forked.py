"""Forked workers: each task's result comes back to the caller, a task's exception is raised in the
caller, and a worker that dies is an error, never a hang."""

from __future__ import annotations

import os
from concurrent.futures.process import BrokenProcessPool

import pytest

from ledger.verify.forked import forked

INHERITED = {"words": ["signed", "logged"]}  # the workers read what the caller held at the fork


def _fail() -> None:
    raise ValueError("this task cannot be done")


@pytest.mark.parametrize("processes", [1, 2, 3])
def test_each_task_result_comes_back_in_place(processes: int) -> None:
    tasks = [lambda: os.getpid(), lambda: INHERITED["words"][0], lambda: len(INHERITED["words"]), lambda: 7]
    with forked(tasks, processes) as workers:
        results = [workers.result(i) for i in (3, 0, 2, 1)]
    assert results[0] == 7 and results[2] == 2 and results[3] == "signed"
    assert results[1] != os.getpid()


def test_a_task_that_raises_raises_here_and_the_others_still_answer() -> None:
    with forked([_fail, lambda: "done"], 1) as workers:
        with pytest.raises(ValueError, match="cannot be done"):
            workers.result(0)
        assert workers.result(1) == "done"


def test_a_worker_that_dies_is_an_error() -> None:
    with forked([lambda: os._exit(3)], 1) as workers, pytest.raises(BrokenProcessPool):
        workers.result(0)
