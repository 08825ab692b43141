"""The engine's semantics: parallelism, limits, failure, retries, timeouts, events, interrupts."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

import plait
from plait import RunStatus, TaskStatus, _deadlines

GUARD = 10.0  # seconds: a deadlock shows up as a failed wait, never as a hung suite


def statuses(result: plait.RunResult) -> dict[str, str]:
    return {task_id: str(task.status) for task_id, task in result.tasks.items()}


class Recorder:
    """A subscriber that keeps every event."""

    def __init__(self) -> None:
        self.events: list[plait.Event] = []
        self._lock = threading.Lock()

    def __call__(self, event: plait.Event) -> None:
        with self._lock:
            self.events.append(event)

    def of(self, kind: type[plait.Event]) -> list[Any]:
        return [e for e in self.events if isinstance(e, kind)]

    def names(self, task_id: str) -> list[str]:
        return [
            type(e).__name__
            for e in self.events
            if isinstance(e, plait.TaskEvent) and e.task_id == task_id
        ]


# -- execution and parallelism ---------------------------------------------------------------


def test_the_api_example_runs_and_passes_outputs_along() -> None:
    wf = plait.Workflow("report")
    stored: list[int] = []

    @wf.task
    def fetch() -> list[int]:
        return [1, 2, 3]

    @wf.task(depends_on=[fetch], retry=plait.RetryPolicy(max_retries=2, backoff=0.05), timeout=5.0)
    async def total(fetch: list[int]) -> int:
        return sum(fetch)

    @wf.task(depends_on=["total"], critical=True, pool="db")
    def store(total: int, ctx: plait.Context) -> None:
        assert ctx.task_id == "store"
        stored.append(total)

    def send_mail(to: str) -> str:
        return f"mail to {to}"

    wf.add_task("notify", send_mail, depends_on=["store"], params={"to": "ops"})

    result = plait.run(wf, max_concurrency=8, pools={"db": 2})

    assert result.status is RunStatus.SUCCEEDED
    assert result.tasks["total"].output == 6
    assert result.tasks["total"].attempts == 1
    assert result.tasks["notify"].output == "mail to ops"
    assert stored == [6]
    assert result.error is None


def test_arun_works_from_async_code() -> None:
    wf = plait.Workflow("w")
    wf.add_task("a", lambda: 1)

    async def main() -> plait.RunResult:
        return await plait.arun(wf, max_concurrency=2)

    assert asyncio.run(main()).tasks["a"].output == 1


def test_independent_sync_tasks_run_in_parallel() -> None:
    barrier = threading.Barrier(3, timeout=GUARD)
    wf = plait.Workflow("w")
    for name in "abc":
        wf.add_task(name, barrier.wait)  # each waits until all three are running at once
    assert plait.run(wf, max_concurrency=3).status is RunStatus.SUCCEEDED


def test_independent_async_tasks_run_concurrently() -> None:
    arrived = 0

    async def rendezvous() -> None:
        nonlocal arrived
        arrived += 1
        async with asyncio.timeout(GUARD):
            while arrived < 3:
                await asyncio.sleep(0.001)

    wf = plait.Workflow("w")
    for name in "abc":
        wf.add_task(name, rendezvous)
    assert plait.run(wf, max_concurrency=3).status is RunStatus.SUCCEEDED


def test_a_blocking_sync_task_does_not_block_async_tasks() -> None:
    released = threading.Event()

    def blocker() -> None:
        assert released.wait(GUARD), "the async task never ran while the sync one blocked"

    async def releaser() -> None:
        await asyncio.sleep(0.01)
        released.set()

    wf = plait.Workflow("w")
    wf.add_task("blocker", blocker)
    wf.add_task("releaser", releaser)
    assert plait.run(wf, max_concurrency=2).status is RunStatus.SUCCEEDED


def test_max_concurrency_one_runs_a_deterministic_topological_order() -> None:
    order: list[str] = []
    wf = plait.Workflow("w")

    def step(name: str) -> Callable[[], None]:
        return lambda: order.append(name)

    wf.add_task("a", step("a"))
    wf.add_task("b", step("b"), depends_on=["a"])
    wf.add_task("c", step("c"))
    wf.add_task("d", step("d"), depends_on=["b", "c"])
    wf.add_task("e", step("e"))
    runs = []
    for _ in range(3):
        order.clear()
        # Without history: the default store learns estimates from earlier runs of "w" (other
        # tests' too), which would reorder ties by how long each task happened to take.
        plait.run(wf, max_concurrency=1, learn_estimates=False)
        runs.append(list(order))
    # a heads the longest path (a -> b -> d), then c unlocks d; e comes last (rank 1, defined last)
    assert runs == [["a", "b", "c", "d", "e"]] * 3


def test_priority_beats_critical_path() -> None:
    order: list[str] = []
    wf = plait.Workflow("w")
    wf.add_task("long", lambda: order.append("long"))
    wf.add_task("long2", lambda: order.append("long2"), depends_on=["long"])
    wf.add_task("urgent", lambda: order.append("urgent"), priority=5)
    plait.run(wf, max_concurrency=1)
    assert order == ["urgent", "long", "long2"]


def test_running_tasks_never_exceed_max_concurrency_or_pool_limits() -> None:
    lock = threading.Lock()
    running = {"all": 0, "db": 0}
    peak = {"all": 0, "db": 0}

    def work(pool: str | None) -> Callable[[], None]:
        def task() -> None:
            with lock:
                for key in ("all", pool):
                    if key is not None:
                        running[key] += 1
                        peak[key] = max(peak[key], running[key])
            time.sleep(0.002)
            with lock:
                for key in ("all", pool):
                    if key is not None:
                        running[key] -= 1

        return task

    wf = plait.Workflow("w")
    for i in range(30):
        pool = "db" if i % 2 else None
        wf.add_task(f"t{i}", work(pool), pool=pool)
    result = plait.run(wf, max_concurrency=4, pools={"db": 2})
    assert result.status is RunStatus.SUCCEEDED
    assert peak == {"all": 4, "db": 2}


def test_a_task_waiting_for_a_full_pool_does_not_block_other_ready_tasks() -> None:
    other_ran = threading.Event()

    def holder() -> None:  # holds the only "db" slot until the unpooled task has run
        assert other_ran.wait(GUARD), "head-of-line blocking: the free slot was not used"

    wf = plait.Workflow("w")
    wf.add_task("holder", holder, pool="db", priority=3)
    wf.add_task("queued", lambda: None, pool="db", priority=2)  # best ready task, but pool full
    wf.add_task("other", other_ran.set, priority=1)
    result = plait.run(wf, max_concurrency=2, pools={"db": 1})
    assert result.status is RunStatus.SUCCEEDED


def test_no_task_ever_runs_twice() -> None:
    calls: dict[str, int] = {}
    lock = threading.Lock()

    def make(name: str) -> Callable[[], None]:
        def task() -> None:
            with lock:
                calls[name] = calls.get(name, 0) + 1

        return task

    async def amake_call(name: str) -> None:
        make(name)()

    wf = plait.Workflow("w")
    for i in range(200):
        deps = [f"t{j}" for j in (i - 1, i // 2, i - 7) if 0 <= j < i]
        if i % 3:
            wf.add_task(f"t{i}", make(f"t{i}"), depends_on=sorted(set(deps)))
        else:
            wf.add_task(f"t{i}", amake_call, depends_on=sorted(set(deps)), params={"name": f"t{i}"})
    result = plait.run(wf, max_concurrency=6)
    assert result.status is RunStatus.SUCCEEDED
    assert calls == {f"t{i}": 1 for i in range(200)}


def test_no_thread_is_left_behind_after_a_run() -> None:
    before = threading.active_count()
    wf = plait.Workflow("w")
    for i in range(20):
        wf.add_task(f"t{i}", lambda: time.sleep(0.001))
    plait.run(wf, max_concurrency=8)
    assert threading.active_count() == before


# -- failure ----------------------------------------------------------------------------------


def boom() -> None:
    raise ValueError("boom")


def test_a_failed_task_skips_its_dependents_and_independent_branches_go_on() -> None:
    ran: list[str] = []
    wf = plait.Workflow("w")
    wf.add_task("bad", boom)
    wf.add_task("child", lambda: ran.append("child"), depends_on=["bad"])
    wf.add_task("grandchild", lambda: ran.append("grandchild"), depends_on=["child"])
    wf.add_task("other", lambda: ran.append("other"))
    wf.add_task("after_other", lambda: ran.append("after_other"), depends_on=["other"])
    recorder = Recorder()

    result = plait.run(wf, retry_failed_tasks=False, subscribers=[recorder])

    assert statuses(result) == {
        "bad": "failed",
        "child": "skipped",
        "grandchild": "skipped",
        "other": "succeeded",
        "after_other": "succeeded",
    }
    assert sorted(ran) == ["after_other", "other"]  # dependents never ran on missing input
    assert result.status is RunStatus.FAILED
    assert result.error == "1 task(s) failed: 'bad': ValueError: boom (2 skipped)"
    error = result.tasks["bad"].error
    assert error is not None
    assert (error.type, error.message) == ("ValueError", "boom")
    assert 'raise ValueError("boom")' in error.traceback
    skipped = {e.task_id: e.cause for e in recorder.of(plait.TaskSkipped)}
    assert skipped == {"child": "bad", "grandchild": "bad"}


def test_a_critical_failure_cancels_running_async_tasks_at_once() -> None:
    wf = plait.Workflow("w")

    async def slow() -> None:
        await asyncio.sleep(GUARD)

    async def bad() -> None:
        await asyncio.sleep(0.01)
        raise RuntimeError("disk full")

    wf.add_task("slow", slow)
    wf.add_task("bad", bad, critical=True)
    wf.add_task("later", lambda: None, depends_on=["slow"])
    started = time.monotonic()

    result = plait.run(wf, retry_failed_tasks=False)

    assert time.monotonic() - started < GUARD / 2
    assert statuses(result) == {"slow": "cancelled", "bad": "failed", "later": "cancelled"}
    assert result.status is RunStatus.FAILED
    assert result.error == (
        "task 'bad' failed and is critical, so the run was stopped: RuntimeError: disk full "
        "(2 cancelled)"
    )


def test_a_critical_failure_starts_nothing_new() -> None:
    ran: list[str] = []
    wf = plait.Workflow("w")
    wf.add_task("bad", boom, critical=True, priority=1)
    for i in range(5):
        wf.add_task(f"t{i}", lambda i=i: ran.append(f"t{i}"))
    result = plait.run(wf, max_concurrency=1, retry_failed_tasks=False)
    assert ran == []
    assert {t.status for t in result.tasks.values()} == {TaskStatus.FAILED, TaskStatus.CANCELLED}


def test_running_sync_tasks_see_the_cancellation_and_stop() -> None:
    stopped = threading.Event()

    def cooperative(ctx: plait.Context) -> None:
        deadline = time.monotonic() + GUARD
        while time.monotonic() < deadline:
            if ctx.cancelled:
                stopped.set()
                ctx.raise_if_cancelled()
            time.sleep(0.001)

    async def bad() -> None:
        await asyncio.sleep(0.02)
        raise RuntimeError("stop")

    wf = plait.Workflow("w")
    wf.add_task("worker", cooperative)
    wf.add_task("bad", bad, critical=True)
    result = plait.run(wf, retry_failed_tasks=False)
    assert stopped.is_set()
    assert statuses(result) == {"worker": "cancelled", "bad": "failed"}


def test_a_sync_task_that_ignores_cancellation_is_abandoned_after_the_grace_period() -> None:
    release = threading.Event()

    def stubborn() -> None:
        release.wait(GUARD)

    wf = plait.Workflow("w")
    wf.add_task("stubborn", stubborn)
    wf.add_task("bad", boom, critical=True)
    started = time.monotonic()
    try:
        result = plait.run(wf, retry_failed_tasks=False, cancel_grace=0.1)
    finally:
        release.set()
    assert time.monotonic() - started < GUARD / 2
    assert statuses(result) == {"stubborn": "cancelled", "bad": "failed"}


def test_fail_fast_makes_every_failure_stop_the_run() -> None:
    wf = plait.Workflow("w")
    wf.add_task("bad", boom, priority=1)
    wf.add_task("other", lambda: None)
    result = plait.run(wf, max_concurrency=1, fail_fast=True, retry_failed_tasks=False)
    assert statuses(result) == {"bad": "failed", "other": "cancelled"}
    assert result.error is not None
    assert result.error.startswith("task 'bad' failed and fail_fast is on, so the run was stopped")


def test_raise_for_status_raises_for_a_failed_run() -> None:
    wf = plait.Workflow("w")
    wf.add_task("bad", boom)
    result = plait.run(wf, retry_failed_tasks=False)
    with pytest.raises(plait.RunFailedError, match=r"ended failed: 1 task\(s\) failed: 'bad'"):
        result.raise_for_status()


# -- retries ----------------------------------------------------------------------------------


def flaky(failures: int) -> Callable[[], str]:
    attempts = 0

    def task() -> str:
        nonlocal attempts
        attempts += 1
        if attempts <= failures:
            raise ConnectionError(f"attempt {attempts} failed")
        return "ok"

    return task


def test_a_task_that_passes_on_its_third_attempt_succeeds_with_three_attempts() -> None:
    wf = plait.Workflow("w")
    wf.add_task("flaky", flaky(2), retry=plait.RetryPolicy(max_retries=3, backoff=0.001))
    recorder = Recorder()
    result = plait.run(wf, subscribers=[recorder])
    task = result.tasks["flaky"]
    assert (task.status, task.attempts, task.output, task.error) == ("succeeded", 3, "ok", None)
    assert recorder.names("flaky") == [
        "TaskReady",
        "TaskStarted",
        "TaskRetrying",
        "TaskReady",
        "TaskStarted",
        "TaskRetrying",
        "TaskReady",
        "TaskStarted",
        "TaskSucceeded",
    ]
    assert [e.attempt for e in recorder.of(plait.TaskStarted)] == [1, 2, 3]


def test_retries_stop_at_the_limit() -> None:
    wf = plait.Workflow("w")
    wf.add_task("flaky", flaky(10), retry=plait.RetryPolicy(max_retries=2, backoff=0.001))
    task = plait.run(wf).tasks["flaky"]
    assert (task.status, task.attempts) == ("failed", 3)
    assert task.error is not None
    assert task.error.message == "attempt 3 failed"


def test_only_the_listed_exceptions_are_retried() -> None:
    wf = plait.Workflow("w")
    policy = plait.RetryPolicy(max_retries=3, backoff=0.001, retry_on=ConnectionError)
    wf.add_task("bad", boom, retry=policy)
    wf.add_task("flaky", flaky(1), retry=policy)
    result = plait.run(wf)
    assert (result.tasks["bad"].attempts, result.tasks["flaky"].attempts) == (1, 2)


def test_engine_defaults_retry_tasks_without_a_policy() -> None:
    wf = plait.Workflow("w")
    wf.add_task("flaky", flaky(2))
    result = plait.run(wf, max_retries=2, retry_backoff=0.001)
    assert result.tasks["flaky"].attempts == 3
    result = plait.run(wf, retry_failed_tasks=False)
    assert result.tasks["flaky"].attempts == 1


def test_a_retry_waiting_out_its_backoff_holds_no_slot() -> None:
    order: list[str] = []

    def first() -> None:
        order.append("first")
        if order.count("first") == 1:
            raise ConnectionError("try again")

    wf = plait.Workflow("w")
    wf.add_task("first", first, priority=1, retry=plait.RetryPolicy(backoff=0.2, jitter=0))
    wf.add_task("second", lambda: order.append("second"))
    result = plait.run(wf, max_concurrency=1)
    assert result.status is RunStatus.SUCCEEDED
    assert order == ["first", "second", "first"]


# -- timeouts ---------------------------------------------------------------------------------


def test_an_async_attempt_past_its_timeout_fails_with_task_timeout_error() -> None:
    cancelled = []

    async def slow() -> None:
        try:
            await asyncio.sleep(GUARD)
        except asyncio.CancelledError:
            cancelled.append(True)
            raise

    wf = plait.Workflow("w")
    wf.add_task("slow", slow, timeout=0.05)
    result = plait.run(wf, retry_failed_tasks=False)
    task = result.tasks["slow"]
    assert task.status is TaskStatus.FAILED
    assert task.error is not None
    assert task.error.type == "plait.TaskTimeoutError"
    assert task.error.message == (
        "task 'slow' (attempt 1) ran past its timeout of 0.05s; raise the task's timeout or "
        "make it faster"
    )
    assert isinstance(task.error.exception, plait.TaskTimeoutError)
    assert cancelled == [True]


def test_timeouts_of_different_lengths_each_fire_at_their_own_deadline() -> None:
    async def slow() -> None:
        await asyncio.sleep(GUARD)

    async def quick() -> str:
        return "fine"

    wf = plait.Workflow("w")
    wf.add_task("long", slow, timeout=1.0)  # its deadline is armed first
    wf.add_task("gate", quick)
    wf.add_task("short", slow, timeout=0.05, depends_on=["gate"])  # starts later, ends sooner
    wf.add_task("default", quick)  # the engine's task_timeout: a third length
    started = time.monotonic()
    result = plait.run(wf, retry_failed_tasks=False)
    assert time.monotonic() - started < GUARD
    long, short = result.tasks["long"], result.tasks["short"]
    assert long.error is not None and short.error is not None
    assert long.error.type == short.error.type == "plait.TaskTimeoutError"
    assert short.finished_at is not None and long.finished_at is not None
    assert short.finished_at < long.finished_at
    assert result.tasks["default"].output == "fine"


def test_a_timeout_fires_after_many_shorter_attempts_of_its_length_ended() -> None:
    # Ended attempts' deadlines behind a running one are dropped once a queue is long
    # (_deadlines): the long attempt at the head of its queue still times out, and the queue
    # stays short. The quick ones suspend once: an async attempt's deadline is queued then.
    async def slow() -> None:
        await asyncio.sleep(GUARD)

    async def quick() -> None:
        await asyncio.sleep(0)

    count = 3 * _deadlines._PRUNE_AT
    wf = plait.Workflow("w")
    wf.add_task("long", slow)
    for k in range(count):
        wf.add_task(f"q{k}", quick)
    lengths: list[int] = []
    watch = _deadlines._Deadlines._watch_deadline

    def watching(
        self: Any, timeout: float, attempt: Any, in_loop: bool, started: float | None = None
    ) -> None:
        watch(self, timeout, attempt, in_loop, started)
        lengths.append(len(self._deadlines[timeout]))

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(_deadlines._Deadlines, "_watch_deadline", watching)
        result = plait.run(wf, task_timeout=0.5, max_concurrency=4, retry_failed_tasks=False)
    error = result.tasks["long"].error
    assert error is not None and error.type == "plait.TaskTimeoutError"
    assert result.tasks[f"q{count - 1}"].status is TaskStatus.SUCCEEDED
    assert len(lengths) == count + 1
    assert max(lengths) <= _deadlines._PRUNE_AT + 1


def _counting_deadlines(patch: pytest.MonkeyPatch) -> dict[str, int]:
    """Count the deadlines queued, by task id, while ``patch`` is in force."""
    queued: dict[str, int] = {}
    watch = _deadlines._Deadlines._watch_deadline

    def watching(
        self: Any, timeout: float, attempt: Any, in_loop: bool, started: float | None = None
    ) -> None:
        task_id = self.graph.ids[attempt.index]
        queued[task_id] = queued.get(task_id, 0) + 1
        watch(self, timeout, attempt, in_loop, started)

    patch.setattr(_deadlines._Deadlines, "_watch_deadline", watching)
    return queued


def test_an_async_attempt_that_never_suspends_queues_no_deadline_and_cannot_time_out() -> None:
    # It holds the loop from start to end, so no timer could fire: its deadline is never
    # queued (_deadlines._DriverWatch), and one that runs past its timeout still succeeds.
    async def blocking() -> str:
        time.sleep(0.1)  # past its timeout, without giving the loop back
        return "done"

    async def quick(blocking: str) -> str:
        return blocking

    wf = plait.Workflow("w")
    wf.add_task("blocking", blocking, timeout=0.05)
    wf.add_task("quick", quick, depends_on=["blocking"])
    with pytest.MonkeyPatch.context() as patch:
        queued = _counting_deadlines(patch)
        result = plait.run(wf, retry_failed_tasks=False)
    assert result.outputs == {"blocking": "done", "quick": "done"}
    assert queued == {}


def test_an_async_attempt_that_suspends_late_times_out_from_its_start() -> None:
    # Its deadline is queued as it suspends, counted from when it started: 0.45s holding the
    # loop and 0.25s asleep pass its 0.5s timeout (from its suspension, they would not).
    async def late() -> None:
        time.sleep(0.45)
        await asyncio.sleep(0.25)

    wf = plait.Workflow("w")
    wf.add_task("late", late, timeout=0.5)
    result = plait.run(wf, retry_failed_tasks=False)
    error = result.tasks["late"].error
    assert error is not None and error.type == "plait.TaskTimeoutError"


def test_a_deadline_queued_late_takes_its_place_before_later_ones() -> None:
    # "held" holds the loop 0.8s, then waits for "second" to end (1.5s in). Meanwhile a worker
    # thread started "second" (0.5s in; deadline 1.7s). held's deadline, queued as it suspends,
    # is 1.2s: it must go before second's in their queue, and fire before second ends.
    second_done = threading.Event()

    def first() -> None:
        time.sleep(0.5)

    def second() -> None:
        time.sleep(1.0)
        second_done.set()

    async def held() -> None:
        time.sleep(0.8)
        await asyncio.to_thread(second_done.wait, GUARD)

    wf = plait.Workflow("w")
    wf.add_task("first", first, timeout=1.2)
    wf.add_task("second", second, depends_on=["first"], timeout=1.2)
    wf.add_task("held", held, timeout=1.2)
    result = plait.run(wf, retry_failed_tasks=False, max_concurrency=4)
    error = result.tasks["held"].error
    assert error is not None and error.type == "plait.TaskTimeoutError"
    assert result.tasks["second"].status is TaskStatus.SUCCEEDED


def test_a_driver_whose_attempts_suspend_queues_each_deadline_once() -> None:
    # After an attempt suspends, its driver queues the next ones' deadlines as it takes them
    # (eager), and turns lazy again when it lets others run (every 64 attempts): each deadline
    # is queued once, one that suspends then raises fails with its error, and the last one,
    # taken eagerly, times out.
    async def step() -> None:
        await asyncio.sleep(0)

    async def broken() -> None:
        await asyncio.sleep(0)
        raise ValueError("broken after suspending")

    async def slow() -> None:
        await asyncio.sleep(GUARD)

    count = 150  # more than two hand-backs of a driver (_KEEP_WITHOUT_YIELDING)
    wf = plait.Workflow("w")
    wf.add_task("s0", step)
    for k in range(1, count):
        wf.add_task(f"s{k}", step, depends_on=[f"s{k - 1}"])
    wf.add_task("broken", broken, depends_on=[f"s{count - 1}"])
    wf.add_task("slow", slow, depends_on=[f"s{count - 1}"], timeout=0.05)
    with pytest.MonkeyPatch.context() as patch:
        queued = _counting_deadlines(patch)
        result = plait.run(wf, retry_failed_tasks=False, max_concurrency=1)
    assert set(queued) == {*(f"s{k}" for k in range(count)), "broken", "slow"}
    assert set(queued.values()) == {1}
    broken_error = result.tasks["broken"].error
    assert broken_error is not None and broken_error.message == "broken after suspending"
    slow_error = result.tasks["slow"].error
    assert slow_error is not None and slow_error.type == "plait.TaskTimeoutError"


def test_a_custom_task_factory_of_the_loop_is_used_for_async_tasks() -> None:
    made: list[str] = []

    async def main() -> plait.RunResult:
        loop = asyncio.get_running_loop()

        def factory(loop: asyncio.AbstractEventLoop, coro: Any, **kwargs: Any) -> asyncio.Task[Any]:
            made.append(getattr(coro, "__qualname__", ""))
            return asyncio.Task(coro, loop=loop, **kwargs)

        loop.set_task_factory(factory)
        wf = plait.Workflow("w")
        wf.add_task("a", _answer)
        return await plait.arun(wf)

    result = asyncio.run(main())
    assert result.outputs == {"a": 42}
    assert any("_drive" in name for name in made)


async def _answer() -> int:
    return 42


def _driver_count(workflow: plait.Workflow, **options: Any) -> tuple[plait.RunResult, int]:
    """Run ``workflow``; return its result and how many ``_drive`` tasks the engine made."""
    made: list[str] = []

    async def main() -> plait.RunResult:
        def factory(loop: asyncio.AbstractEventLoop, coro: Any, **kwargs: Any) -> asyncio.Task[Any]:
            made.append(getattr(coro, "__qualname__", ""))
            return asyncio.Task(coro, loop=loop, **kwargs)

        asyncio.get_running_loop().set_task_factory(factory)
        return await plait.arun(workflow, **options)

    result = asyncio.run(main())
    return result, sum("_drive" in name for name in made)


def test_a_chain_of_async_tasks_runs_in_one_driver_not_a_task_each() -> None:
    async def step(**upstream: int) -> int:
        return sum(upstream.values()) + 1

    wf = plait.Workflow("w")
    for i in range(100):
        wf.add_task(f"t{i}", step, depends_on=[f"t{i - 1}"] if i else [])
    result, drivers = _driver_count(wf)
    assert result.outputs["t99"] == 100
    assert drivers == 1


def test_an_async_driver_lets_the_loop_run_others_every_few_attempts() -> None:
    order: list[str] = []

    async def step(**upstream: Any) -> None:
        order.append("task")
        if len(order) == 1:  # the first attempt asks the loop to run something else
            asyncio.get_running_loop().call_soon(order.append, "loop")

    wf = plait.Workflow("w")
    for i in range(100):
        wf.add_task(f"t{i}", step, depends_on=[f"t{i - 1}"] if i else [])
    plait.run(wf)
    assert order.index("loop") <= 1 + 64  # a driver yields at least every 64 attempts it keeps


def test_an_async_driver_whose_attempts_hold_the_loop_lets_it_run_others_after_each() -> None:
    order: list[str] = []

    async def busy(**upstream: Any) -> None:
        time.sleep(0.005)  # holds the loop: longer than a driver may hold it (2 ms)
        order.append("task")
        if len(order) == 1:
            asyncio.get_running_loop().call_soon(order.append, "loop")

    wf = plait.Workflow("w")
    for i in range(5):
        wf.add_task(f"t{i}", busy, depends_on=[f"t{i - 1}"] if i else [])
    plait.run(wf)
    assert order.index("loop") == 1


def test_after_a_failed_async_attempt_its_driver_runs_no_other_attempt() -> None:
    drivers: dict[str, asyncio.Task[Any] | None] = {}

    async def fail() -> None:
        drivers["bad"] = asyncio.current_task()
        raise ValueError("no")

    async def fine(ctx: plait.Context, **upstream: Any) -> str:
        drivers[ctx.task_id] = asyncio.current_task()
        return "ok"

    wf = plait.Workflow("w")
    wf.add_task("bad", fail, retry=plait.RetryPolicy(max_retries=0), priority=1)  # first
    wf.add_task("good", fine)
    wf.add_task("after", fine, depends_on=["good"])
    result = plait.run(wf, max_concurrency=1)
    assert statuses(result) == {"bad": "failed", "good": "succeeded", "after": "succeeded"}
    assert drivers["bad"] not in (drivers["good"], drivers["after"])
    assert drivers["good"] is drivers["after"]  # a driver whose attempt succeeded goes on


def test_a_timed_out_async_attempt_in_a_chain_leaves_the_next_attempts_alone() -> None:
    async def slow(**upstream: Any) -> None:
        await asyncio.sleep(GUARD)

    async def fine(**upstream: Any) -> str:
        return "ok"

    wf = plait.Workflow("w")
    wf.add_task("a", fine)
    wf.add_task("slow", slow, depends_on=["a"], timeout=0.05)
    wf.add_task("b", fine, depends_on=["a"])
    wf.add_task("c", fine, depends_on=["b"])
    result = plait.run(wf, max_concurrency=1)
    assert statuses(result) == {
        "a": "succeeded",
        "slow": "failed",
        "b": "succeeded",
        "c": "succeeded",
    }
    assert result.tasks["slow"].error is not None
    assert result.tasks["slow"].error.type == "plait.TaskTimeoutError"


def test_a_timed_out_attempt_is_retried() -> None:
    calls = 0

    async def slow_then_fast() -> str:
        nonlocal calls
        calls += 1
        if calls == 1:
            await asyncio.sleep(GUARD)
        return "done"

    wf = plait.Workflow("w")
    wf.add_task("t", slow_then_fast, timeout=0.05, retry=plait.RetryPolicy(backoff=0.001))
    task = plait.run(wf).tasks["t"]
    assert (task.status, task.attempts, task.output) == ("succeeded", 2, "done")


def test_a_sync_attempt_past_its_timeout_fails_and_is_told_to_stop() -> None:
    saw_cancel = threading.Event()

    def slow(ctx: plait.Context) -> None:
        deadline = time.monotonic() + GUARD
        while time.monotonic() < deadline and not ctx.cancelled:
            time.sleep(0.001)
        if ctx.cancelled:
            saw_cancel.set()

    wf = plait.Workflow("w")
    wf.add_task("slow", slow)
    started = time.monotonic()
    result = plait.run(wf, task_timeout=0.05, retry_failed_tasks=False)
    assert time.monotonic() - started < GUARD / 2
    assert result.tasks["slow"].status is TaskStatus.FAILED
    assert isinstance(result.tasks["slow"].error.exception, plait.TaskTimeoutError)  # type: ignore[union-attr]
    assert saw_cancel.wait(GUARD)


# -- events -----------------------------------------------------------------------------------


def test_events_tell_the_story_of_a_run() -> None:
    wf = plait.Workflow("story")
    wf.add_task("a", lambda: 1)
    wf.add_task("b", boom, depends_on=["a"])
    wf.add_task("c", lambda: None, depends_on=["b"])
    recorder = Recorder()
    result = plait.run(
        wf, retry_failed_tasks=False, subscribers=[recorder], run_id="r1", store="memory://"
    )
    kinds = [(type(e).__name__, getattr(e, "task_id", None)) for e in recorder.events]
    assert kinds == [
        ("RunStarted", None),
        ("TaskReady", "a"),
        ("TaskStarted", "a"),
        ("TaskSucceeded", "a"),
        ("TaskReady", "b"),
        ("TaskStarted", "b"),
        ("TaskFailed", "b"),
        ("TaskSkipped", "c"),
        ("RunFinished", None),
    ]
    assert all(e.run_id == "r1" for e in recorder.events)
    assert recorder.events[0] == plait.RunStarted(
        run_id="r1", time=recorder.events[0].time, workflow="story", tasks=3
    )
    finished = recorder.events[-1]
    assert isinstance(finished, plait.RunFinished)
    assert (finished.status, finished.error) == (RunStatus.FAILED, result.error)


def test_a_failing_subscriber_does_not_disturb_the_run(caplog: pytest.LogCaptureFixture) -> None:
    def broken(event: plait.Event) -> None:
        raise RuntimeError("subscriber bug")

    wf = plait.Workflow("w")
    wf.add_task("a", lambda: 1)
    result = plait.run(wf, subscribers=[broken])
    assert result.status is RunStatus.SUCCEEDED
    assert "event subscriber" in caplog.text


# -- interrupting -----------------------------------------------------------------------------


def test_cancelling_arun_cancels_running_tasks_and_leaves_nothing_behind() -> None:
    before = threading.active_count()
    cancelled: list[str] = []
    recorder = Recorder()

    async def slow() -> None:
        try:
            await asyncio.sleep(GUARD)
        except asyncio.CancelledError:
            cancelled.append("async")
            raise

    def slow_sync(ctx: plait.Context) -> None:
        deadline = time.monotonic() + GUARD
        while time.monotonic() < deadline:
            if ctx.cancelled:
                cancelled.append("sync")
                return
            time.sleep(0.001)

    wf = plait.Workflow("w")
    wf.add_task("slow", slow)
    wf.add_task("slow_sync", slow_sync)
    wf.add_task("after", lambda: None, depends_on=["slow"])

    async def main() -> None:
        run = asyncio.ensure_future(plait.arun(wf, subscribers=[recorder]))
        await asyncio.sleep(0.05)
        run.cancel()
        with pytest.raises(asyncio.CancelledError):
            await run

    asyncio.run(main())
    assert sorted(cancelled) == ["async", "sync"]
    finished = recorder.of(plait.RunFinished)
    assert [e.status for e in finished] == [RunStatus.CANCELLED]
    assert threading.active_count() == before


def test_ctrl_c_stops_plait_run_cleanly(tmp_path: Any) -> None:
    script = tmp_path / "flow.py"
    script.write_text(
        textwrap.dedent(
            """
            import asyncio, sys, threading, plait

            async def slow():
                try:
                    await asyncio.sleep(30)
                except asyncio.CancelledError:
                    print("cancelled", flush=True)
                    raise

            wf = plait.Workflow("w")
            wf.add_task("slow", slow)
            wf.add_task("started", lambda: print("started", flush=True))
            try:
                plait.run(wf, subscribers=[lambda e: print(type(e).__name__, flush=True)])
            except KeyboardInterrupt:
                print("interrupted", threading.active_count(), flush=True)
                sys.exit(130)
            """
        )
    )
    child = subprocess.Popen(
        [sys.executable, str(script)], stdout=subprocess.PIPE, text=True, env=os.environ.copy()
    )
    assert child.stdout is not None
    for line in child.stdout:
        if line.strip() == "started":
            break
    time.sleep(0.1)
    child.send_signal(signal.SIGINT)
    out, _ = child.communicate(timeout=GUARD)
    assert child.returncode == 130
    lines = out.split()
    assert "cancelled" in lines
    assert "RunFinished" in lines
    assert out.strip().endswith("interrupted 1")


def test_a_worker_takes_the_run_lock_only_once_it_is_free() -> None:
    from plait._attempts import _LOCK_TRIES, _take  # noqa: PLC0415 - a worker's private helper

    lock = threading.Lock()
    _take(lock)  # free: taken at once
    assert lock.locked()
    released = threading.Event()

    def hold_then_release() -> None:
        time.sleep(0.05)  # far longer than _LOCK_TRIES yields: the taker ends up blocking
        released.set()
        lock.release()

    holder = threading.Thread(target=hold_then_release)
    holder.start()
    _take(lock)
    assert released.is_set() and lock.locked() and _LOCK_TRIES > 0
    holder.join()
    lock.release()
