"""A property every executor keeps: a random workflow ends on it as it ends on the thread
executor -- the same statuses, outputs and attempts for every task."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import plait
from plait import RetryPolicy, Workflow
from plait.executors import Executor

from . import _semantics_tasks as tasks
from .conftest import EXECUTORS

pytestmark = pytest.mark.timeout(600)

Plan = list[tuple[tuple[int, ...], int, bool, bool]]  # (dependencies, fail_first, async, own)


@st.composite
def plans(draw: st.DrawFn) -> Plan:
    plan = []
    for i in range(draw(st.integers(0, 12))):
        deps = draw(st.lists(st.integers(0, max(i - 1, 0)), max_size=min(i, 3), unique=True))
        fail_first = draw(st.sampled_from([0, 0, 0, 1, 2, 9]))
        # own: an async task that names the executor under test (else async ones run on the loop)
        plan.append((tuple(sorted(deps)), fail_first, draw(st.booleans()), draw(st.booleans())))
    return plan


def build(plan: Plan) -> Workflow:
    wf = Workflow("random")
    for i, (deps, fail_first, is_async, own) in enumerate(plan):
        wf.add_task(
            f"t{i}",
            tasks.planned_async if is_async else tasks.planned,
            depends_on=[f"t{d}" for d in deps],
            params={"i": i, "fail_first": fail_first},
            retry=RetryPolicy(max_retries=2, backoff=0, jitter=0),
            executor="under-test" if is_async and own else None,
        )
    return wf


def summary(result: plait.RunResult) -> dict[str, tuple[object, ...]]:
    return {
        task_id: (task.status, task.output, task.attempts, task.error and task.error.message)
        for task_id, task in result.tasks.items()
    }


@pytest.fixture(scope="module")
def every_executor() -> Iterator[dict[str, Executor]]:
    made = {name: make() for name, make in EXECUTORS.items()}
    yield made
    for executor in made.values():
        executor.shutdown(wait=True)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(plan=plans(), name=st.sampled_from(sorted(EXECUTORS)), concurrency=st.integers(1, 4))
def test_a_random_workflow_ends_on_every_executor_as_on_threads(
    every_executor: dict[str, Executor], plan: Plan, name: str, concurrency: int
) -> None:
    wf = build(plan)
    on_threads = plait.run(
        wf, executors={"under-test": every_executor["thread"]}, max_concurrency=concurrency
    )
    elsewhere = plait.run(
        wf,
        executors={"under-test": every_executor[name]},
        default_executor="under-test",
        max_concurrency=concurrency,
    )
    assert summary(elsewhere) == summary(on_threads)
    assert elsewhere.status is on_threads.status
