"""Fixtures for the executor tests: every executor, declared once in :data:`EXECUTORS`.

A test that takes ``executor`` runs once per executor, with a fresh one, shut down afterwards;
run a workflow on it with :func:`run_on` / :func:`resume_on`. Adding an executor to the
semantics suite means adding one line to :data:`EXECUTORS` (its factory, sized for the tests)
and, if it cannot do something the suite checks, its entry in :data:`CANNOT`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

import plait
from plait import RunResult, Workflow
from plait.executors import Executor, InlineExecutor, ThreadExecutor

#: Each executor under test, by name, and how to make one.
EXECUTORS: dict[str, Callable[[], Executor]] = {
    "thread": lambda: ThreadExecutor(4),
    "inline": InlineExecutor,
}

#: What an executor cannot do, by name: the semantics tests that check it are skipped, saying
#: why. (The README's table of executors says the same.) The things:
#:
#: - ``"interrupt"``: tell a running task to stop while it runs (a cancelled run);
#: - ``"see a timeout"``: let a task past its timeout see ``ctx.cancelled`` (an executor that
#:   kills it at once, or cannot interrupt it, cannot).
CANNOT: dict[str, dict[str, str]] = {
    "inline": {
        "interrupt": "a blocked event loop cannot interrupt the task that blocks it",
        "see a timeout": "a blocked event loop cannot interrupt the task that blocks it",
    },
}

#: The name the executor under test goes by in a run.
NAME = "under-test"


@pytest.fixture(params=list(EXECUTORS))
def executor(request: pytest.FixtureRequest) -> Iterator[Executor]:
    made = EXECUTORS[request.param]()
    made.plait_test_name = request.param  # type: ignore[attr-defined]  # for can()
    yield made
    made.shutdown(wait=True)


def can(executor: Executor, what: str) -> None:
    """Skip the test when ``executor`` cannot do ``what`` (see :data:`CANNOT`)."""
    name = getattr(executor, "plait_test_name", "")
    reason = CANNOT.get(name, {}).get(what)
    if reason is not None:
        pytest.skip(f"{name}: {reason}")


def run_on(executor: Executor, workflow: Workflow, **options: Any) -> RunResult:
    """Run ``workflow`` with every sync task (and none other) on ``executor``."""
    return plait.run(workflow, executors={NAME: executor}, default_executor=NAME, **options)


def resume_on(executor: Executor, run_id: str, workflow: Workflow, **options: Any) -> RunResult:
    return plait.resume(
        run_id, workflow, executors={NAME: executor}, default_executor=NAME, **options
    )
