"""The inline executor: tasks on the event loop's thread, one at a time."""

from __future__ import annotations

import asyncio
import threading

import pytest

import plait
from plait import Workflow
from plait.executors import InlineExecutor


def test_it_needs_the_loop_before_it_takes_a_job() -> None:
    with pytest.raises(RuntimeError, match=r"^InlineExecutor.submit\(\) before start\(\)"):
        InlineExecutor().submit(None)  # type: ignore[arg-type]


def test_its_capacity_is_one() -> None:
    assert InlineExecutor().capacity == 1


def test_async_tasks_take_their_turn_between_inline_tasks() -> None:
    order: list[str] = []
    wf = Workflow("w")
    for n in range(3):
        wf.add_task(f"sync{n}", lambda n=n: order.append(f"sync{n}"))

    @wf.task
    async def ticker() -> None:
        for _ in range(3):
            order.append("tick")
            await asyncio.sleep(0)

    result = plait.run(wf, default_executor="inline", max_concurrency=8)
    assert result.status is plait.RunStatus.SUCCEEDED
    # The loop is not held for all of them at once: a tick comes before the last sync task.
    assert order.index("tick") < order.index("sync2")
    assert sorted(order) == ["sync0", "sync1", "sync2", "tick", "tick", "tick"]


def test_every_inline_task_runs_on_the_callers_thread() -> None:
    threads: set[int] = set()
    wf = Workflow("w")
    for n in range(5):
        wf.add_task(f"t{n}", lambda: threads.add(threading.get_ident()))
    plait.run(wf, default_executor="inline")
    assert threads == {threading.get_ident()}
