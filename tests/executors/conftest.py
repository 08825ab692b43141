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
from plait.executors import DaskExecutor, Executor, InlineExecutor, ProcessExecutor, ThreadExecutor

_DASK: list[Any] = []  # the tests' one LocalCluster and its client, made on first use


def dask_client() -> Any:
    """A client of the tests' LocalCluster (two single-threaded worker processes), started the
    first time a test asks and closed when the session ends (see ``_close_the_dask_cluster``):
    starting one costs seconds, so every Dask test shares it."""
    if not _DASK:
        distributed = pytest.importorskip("distributed")
        # dashboard_address=":0", not None: None is the default port, 8787, with a warning when
        # another cluster on the machine has it.
        cluster = distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0"
        )
        _DASK.extend([cluster, distributed.Client(cluster, set_as_default=False)])
    return _DASK[1]


@pytest.fixture(scope="session", autouse=True)
def _close_the_dask_cluster() -> Iterator[None]:
    yield
    if _DASK:
        cluster, client = _DASK
        client.close()
        cluster.close()
        _DASK.clear()


def _dask_executor() -> Executor:
    return DaskExecutor(dask_client())


#: Each executor under test, by name, and how to make one.
EXECUTORS: dict[str, Callable[[], Executor]] = {
    "thread": lambda: ThreadExecutor(4),
    "inline": InlineExecutor,
    "process": lambda: ProcessExecutor(2),
    "dask": _dask_executor,
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
