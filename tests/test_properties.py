"""Property-based tests of the whole engine: random DAGs with random durations, failures,
retries, critical tasks, limits and pools, checked against what must hold for every run.

Each run is recorded on one timeline, in the order things happened: the engine's events (a
subscriber) and the task functions' own entries and exits (one lock orders both). The checks
replay that timeline.

The examples are derandomized, so CI draws the same plans every time (the runs themselves still
interleave threads as the OS schedules them: a plan reproduces, a race may need a few tries). Set
``PLAIT_FUZZ=1`` to draw new random plans, ten times as many, when hunting for bugs locally.
"""

from __future__ import annotations

import asyncio
import functools
import os
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

import plait
import plait.executors._named
from plait._events import (
    Event,
    RunFinished,
    RunStarted,
    TaskCancelled,
    TaskEvent,
    TaskFailed,
    TaskReady,
    TaskRetrying,
    TaskSkipped,
    TaskStarted,
    TaskSucceeded,
)
from plait._state import TASK_TRANSITIONS, RunStatus, TaskStatus
from plait.executors import Job, ThreadExecutor

PENDING = TaskStatus.PENDING
RUNNING = TaskStatus.RUNNING
SUCCEEDED = TaskStatus.SUCCEEDED
FAILED = TaskStatus.FAILED
SKIPPED = TaskStatus.SKIPPED
CANCELLED = TaskStatus.CANCELLED

RUN_TIMEOUT = 30.0  # the most any run may take; see time_limit
MAX_TASKS = 200
ALWAYS = 1_000  # fail_first of a task that fails every attempt
BACKOFF = 0.001
DURATIONS = [0.0, 0.0, 0.0, 0.0005, 0.001, 0.003]

FUZZ = bool(os.environ.get("PLAIT_FUZZ"))


def budget(n: int) -> settings:
    """``n`` derandomized examples (``10 * n`` random ones under ``PLAIT_FUZZ``)."""
    return settings(max_examples=n * 10 if FUZZ else n, deadline=None, derandomize=not FUZZ)


# -- plans: what a random workflow does -----------------------------------------------------------


@dataclass(frozen=True)
class TaskPlan:
    deps: tuple[int, ...]
    is_async: bool
    duration: float
    fail_first: int  # how many attempts raise before one returns (ALWAYS: every attempt)
    max_retries: int | None  # the task's own RetryPolicy; None: the engine's (no retries)
    critical: bool
    pool: str | None

    @property
    def allowed_attempts(self) -> int:
        return 1 + (self.max_retries or 0)

    @property
    def fails(self) -> bool:
        return self.fail_first >= self.allowed_attempts


#: The executors a plan runs on: those that run in this process, so that the recorder (which
#: the task functions share) sees every call. tests/executors/test_properties.py compares the
#: others with the thread executor.
RECORDED_EXECUTORS = ("thread", "inline")


@dataclass(frozen=True)
class Plan:
    tasks: tuple[TaskPlan, ...]
    max_concurrency: int
    pools: Mapping[str, int]
    fail_fast: bool
    executor: str = "thread"

    def halts_on(self, i: int) -> bool:
        return self.fail_fast or self.tasks[i].critical


# The strategies a plan draws from are made once, not at every draw: a new strategy is checked
# the first time it is drawn from, which cost more than the draws themselves (one per task).


@functools.cache
def chance(percent: int) -> st.SearchStrategy[bool]:
    """True about ``percent`` % of the time; shrinks to False."""
    return st.integers(0, 99).map(lambda k: k >= 100 - percent)


@functools.cache
def dependencies(i: int) -> st.SearchStrategy[list[int]]:
    """Up to four of the tasks before task ``i``."""
    return st.lists(st.integers(0, max(i - 1, 0)), max_size=min(i, 4), unique=True)


@functools.cache
def pool_of(limited: int) -> st.SearchStrategy[str | None]:
    """No pool, one of the ``limited`` pools that limit, or the one that does not."""
    return st.sampled_from([None, *(f"pool{k}" for k in range(limited)), "wide"])


FAIL_FIRST = st.sampled_from([0, 0, 0, 0, 1, 2, 3, ALWAYS])
DURATION = st.sampled_from(DURATIONS)


@st.composite
def plans(draw: st.DrawFn, *, retries: bool = False, halts: bool = False) -> Plan:
    n = draw(st.integers(0, MAX_TASKS), label="tasks")
    limited = [f"pool{k}" for k in range(draw(st.integers(0, 3)))]
    pools = {name: draw(st.integers(1, 3), label=f"{name} limit") for name in limited}
    # "wide" never binds (its limit is the largest max_concurrency): plait.run refuses a pool
    # with no limit at all, so that is how a run gets a pool that limits nothing.
    pools["wide"] = 8
    pool = pool_of(len(limited))
    tasks = []
    for i in range(n):
        deps = draw(dependencies(i))
        max_retries = draw(st.integers(1, 3)) if retries and draw(chance(50)) else None
        fail_first = draw(FAIL_FIRST) if retries else (ALWAYS if draw(chance(4)) else 0)
        tasks.append(
            TaskPlan(
                deps=tuple(sorted(deps)),
                is_async=draw(st.booleans()),
                duration=draw(DURATION),
                fail_first=fail_first,
                max_retries=max_retries,
                critical=halts and draw(chance(10)),
                pool=draw(pool),
            )
        )
    return Plan(
        tasks=tuple(tasks),
        max_concurrency=draw(st.integers(1, 8), label="max_concurrency"),
        pools=pools,
        fail_fast=halts and draw(chance(30)),
        executor=draw(st.sampled_from(RECORDED_EXECUTORS), label="executor"),
    )


# -- recording a run ------------------------------------------------------------------------------


class InjectedFailure(Exception):
    pass


@dataclass(frozen=True)
class Enter:
    task: int
    attempt: int


@dataclass(frozen=True)
class Exit:
    task: int
    returned: bool


Entry = Event | Enter | Exit


class Recorder:
    """Subscriber and probe: one timeline of events and task function calls, in order.

    Also counts the task functions running at once, overall and per pool, as they run.
    """

    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self.lock = threading.Lock()
        self.timeline: list[Entry] = []
        self.calls = [0] * len(plan.tasks)
        self.running = 0
        self.max_running = 0
        self.pool_running: dict[str | None, int] = {}
        self.pool_max_running: dict[str | None, int] = {}

    def __call__(self, event: Event) -> None:
        with self.lock:
            self.timeline.append(event)

    def enter(self, i: int, attempt: int) -> None:
        pool = self.plan.tasks[i].pool
        with self.lock:
            self.timeline.append(Enter(i, attempt))
            self.calls[i] += 1
            self.running += 1
            self.max_running = max(self.max_running, self.running)
            self.pool_running[pool] = self.pool_running.get(pool, 0) + 1
            self.pool_max_running[pool] = max(
                self.pool_max_running.get(pool, 0), self.pool_running[pool]
            )

    def exit(self, i: int, returned: bool) -> None:
        with self.lock:
            self.timeline.append(Exit(i, returned))
            self.running -= 1
            self.pool_running[self.plan.tasks[i].pool] -= 1


def task_function(recorder: Recorder, i: int, task: TaskPlan) -> Callable[..., Any]:
    task_id = f"t{i}"

    def outcome(attempt: int) -> str:
        if attempt <= task.fail_first:
            raise InjectedFailure(f"{task_id} fails attempt {attempt}")
        return task_id

    if task.is_async:

        async def run_async(ctx: plait.Context) -> str:
            recorder.enter(i, ctx.attempt)
            returned = False
            try:
                await asyncio.sleep(task.duration)
                result = outcome(ctx.attempt)
                returned = True
                return result
            finally:
                recorder.exit(i, returned)

        return run_async

    def run_sync(ctx: plait.Context) -> str:
        recorder.enter(i, ctx.attempt)
        returned = False
        try:
            time.sleep(task.duration)
            result = outcome(ctx.attempt)
            returned = True
            return result
        finally:
            recorder.exit(i, returned)

    return run_sync


def build(plan: Plan, recorder: Recorder) -> plait.Workflow:
    wf = plait.Workflow("random")
    for i, task in enumerate(plan.tasks):
        wf.add_task(
            f"t{i}",
            task_function(recorder, i, task),
            depends_on=[f"t{d}" for d in task.deps],
            retry=None
            if task.max_retries is None
            else plait.RetryPolicy(max_retries=task.max_retries, backoff=BACKOFF, jitter=0),
            critical=task.critical,
            pool=task.pool,
        )
    return wf


def time_limit(plan: Plan) -> float:
    """Seconds after which a run counts as hung: generous (a run of 200 tasks takes ~0.3 s), yet
    short for small plans, so that shrinking a hang does not take 30 s per example."""
    serial = sum(
        task.duration * task.allowed_attempts + BACKOFF * 2**task.allowed_attempts
        for task in plan.tasks
    )
    return min(RUN_TIMEOUT, 5.0 + 10 * serial + 0.02 * len(plan.tasks))


def run_plan(plan: Plan) -> tuple[plait.RunResult, Recorder]:
    """Run the plan's workflow in a thread of its own, so that a hung run fails the test."""
    event(f"{len(plan.tasks) // 50 * 50}+ tasks")  # shown by --hypothesis-show-statistics
    recorder = Recorder(plan)
    wf = build(plan, recorder)
    outcome: list[plait.RunResult | BaseException] = []

    def target() -> None:
        try:
            outcome.append(
                plait.run(
                    wf,
                    subscribers=[recorder],
                    max_concurrency=plan.max_concurrency,
                    pools=plan.pools,
                    fail_fast=plan.fail_fast,
                    retry_failed_tasks=False,
                    default_executor=plan.executor,
                )
            )
        except BaseException as error:
            outcome.append(error)

    thread = threading.Thread(target=target, name="plait-run", daemon=True)
    thread.start()
    limit = time_limit(plan)
    thread.join(limit)
    assert not thread.is_alive(), f"the run did not finish within {limit:.1f}s"
    [result] = outcome
    if isinstance(result, BaseException):
        raise result
    return result, recorder


# -- checking a run -------------------------------------------------------------------------------


def ancestors(plan: Plan, i: int) -> set[int]:
    found: set[int] = set()
    stack = list(plan.tasks[i].deps)
    while stack:
        d = stack.pop()
        if d not in found:
            found.add(d)
            stack.extend(plan.tasks[d].deps)
    return found


class Replay:
    """Replays a run's timeline step by step, checking each step; then holds what happened.

    Task status follows the events (as a subscriber sees them) and must change only as
    ``TASK_TRANSITIONS`` allows; the task functions' calls are checked against that status.
    """

    def __init__(self, plan: Plan, result: plait.RunResult) -> None:
        n = len(plan.tasks)
        self.plan = plan
        self.result = result
        self.status = [PENDING] * n
        self.attempts = [0] * n  # attempts started, by TaskStarted
        self.calls = [0] * n  # calls of the task function
        self.cancelled_while_running = [False] * n
        self.halted_by: int | None = None  # the task whose failure stopped the run
        self.ready = [False] * n
        self.returned = [False] * n  # the task function's last call returned
        self.in_call = [False] * n
        self.calls_in_pool: dict[str | None, int] = {}

    def play(self, timeline: list[Entry]) -> Replay:
        result = self.result
        events = [entry for entry in timeline if isinstance(entry, Event)]
        assert isinstance(events[0], RunStarted)
        assert (events[0].workflow, events[0].tasks) == ("random", len(self.plan.tasks))
        assert isinstance(timeline[-1], RunFinished), "something happened after the run finished"
        assert (timeline[-1].status, timeline[-1].error) == (result.status, result.error)
        assert sum(isinstance(e, RunStarted | RunFinished) for e in events) == 2
        for entry in timeline:
            if isinstance(entry, Enter):
                self.enter(entry)
            elif isinstance(entry, Exit):
                self.exit(entry)
            elif isinstance(entry, TaskEvent):
                assert entry.run_id == result.run_id
                self.event(entry, int(entry.task_id[1:]))
        self.check_final()
        return self

    def change(self, i: int, new: TaskStatus, why: Entry) -> None:
        old = self.status[i]
        assert new in TASK_TRANSITIONS[old], f"t{i}: {old} -> {new} on {why}"
        self.status[i] = new

    def enter(self, entry: Enter) -> None:
        i, plan = entry.task, self.plan
        assert self.status[i] is RUNNING, f"t{i} was called while {self.status[i]}"
        assert entry.attempt == self.attempts[i] == self.calls[i] + 1, f"t{i}: a call too many"
        assert all(self.returned[d] for d in plan.tasks[i].deps), f"t{i} ran before its deps"
        assert not self.in_call[i]
        self.calls[i] += 1
        self.in_call[i] = True
        pool = plan.tasks[i].pool
        self.calls_in_pool[pool] = self.calls_in_pool.get(pool, 0) + 1
        assert sum(self.calls_in_pool.values()) <= plan.max_concurrency
        assert self.calls_in_pool[pool] <= plan.pools.get(pool or "", plan.max_concurrency)

    def exit(self, entry: Exit) -> None:
        i = entry.task
        assert self.in_call[i]
        self.in_call[i] = False
        self.returned[i] = entry.returned
        self.calls_in_pool[self.plan.tasks[i].pool] -= 1

    def event(self, event: TaskEvent, i: int) -> None:
        task = self.plan.tasks[i]
        status = self.status
        if self.halted_by is not None:
            assert not isinstance(event, TaskReady | TaskStarted | TaskRetrying), (
                f"{event} after t{self.halted_by} stopped the run"
            )
        if isinstance(event, TaskReady):
            assert status[i] is PENDING and not self.ready[i], event
            assert all(status[d] is SUCCEEDED for d in task.deps), event
            self.ready[i] = True
        elif isinstance(event, TaskStarted):
            assert self.ready[i], f"t{i} started without being ready"
            assert all(status[d] is SUCCEEDED for d in task.deps), event
            assert event.attempt == self.attempts[i] + 1 <= task.allowed_attempts, event
            self.ready[i] = False
            self.attempts[i] = event.attempt
            self.change(i, RUNNING, event)
            running = [j for j, s in enumerate(status) if s is RUNNING]
            assert len(running) <= self.plan.max_concurrency
            if task.pool in self.plan.pools:
                in_pool = sum(1 for j in running if self.plan.tasks[j].pool == task.pool)
                assert in_pool <= self.plan.pools[task.pool]
        elif isinstance(event, TaskSucceeded):
            self.check_attempt_ended(event, i)
            assert self.returned[i] and event.attempt > task.fail_first, event
            self.change(i, SUCCEEDED, event)
        elif isinstance(event, TaskRetrying):
            self.check_attempt_failed(event, i)
            assert event.attempt < task.allowed_attempts, event
            assert event.delay == pytest.approx(BACKOFF * 2 ** (event.attempt - 1))
            self.change(i, PENDING, event)
        elif isinstance(event, TaskFailed):
            self.check_attempt_failed(event, i)
            self.change(i, FAILED, event)
            if self.halted_by is None and self.plan.halts_on(i):
                self.halted_by = i
        elif isinstance(event, TaskSkipped):
            cause = int(event.cause[1:])
            assert cause in ancestors(self.plan, i), event
            assert status[cause] in (FAILED, CANCELLED), event
            assert self.halted_by is None or cause == self.halted_by, event
            self.change(i, SKIPPED, event)
        elif isinstance(event, TaskCancelled):
            assert self.halted_by is not None, f"{event}, but nothing stopped the run"
            # the last attempt made: 0 if it never started, or one that waits out its backoff
            assert event.attempt == self.attempts[i], event
            if status[i] is RUNNING:
                # our sync functions ignore ctx.cancelled: once called, they end on their own
                assert task.is_async or self.calls[i] < self.attempts[i], event
                self.cancelled_while_running[i] = True
            self.change(i, CANCELLED, event)

    def check_attempt_ended(self, event: TaskSucceeded | TaskFailed | TaskRetrying, i: int) -> None:
        assert self.status[i] is RUNNING and event.attempt == self.attempts[i], event
        assert not self.in_call[i], f"{event} while its function still runs"
        assert self.calls[i] == event.attempt, event

    def check_attempt_failed(self, event: TaskFailed | TaskRetrying, i: int) -> None:
        self.check_attempt_ended(event, i)
        assert not self.returned[i] and event.attempt <= self.plan.tasks[i].fail_first, event
        assert event.error.type.endswith("InjectedFailure"), event
        assert event.error.message == f"t{i} fails attempt {event.attempt}", event

    def check_final(self) -> None:
        assert not any(self.in_call)
        for i, task_id in enumerate(self.result.tasks):
            task = self.result.tasks[task_id]
            assert task_id == f"t{i}"
            assert task.status is self.status[i], task_id
            assert task.status.is_final, task_id
            assert task.attempts == self.attempts[i] <= self.plan.tasks[i].allowed_attempts
            assert (task.started_at is None) == (task.attempts == 0), task_id
            if self.cancelled_while_running[i]:
                # an async attempt cancelled before its first step never calls the function
                assert self.calls[i] in (task.attempts - 1, task.attempts), task_id
            else:
                assert self.calls[i] == task.attempts, task_id
            if task.status is SUCCEEDED:
                assert (task.output, task.error) == (task_id, None)
            if task.status is FAILED:
                assert task.error is not None
                assert task.error.message == f"{task_id} fails attempt {task.attempts}"


def replay(plan: Plan, result: plait.RunResult, recorder: Recorder) -> Replay:
    """Check the run step by step, and the limits the task functions saw as they ran."""
    assert recorder.max_running <= plan.max_concurrency
    for pool, limit in plan.pools.items():
        assert recorder.pool_max_running.get(pool, 0) <= limit
    return Replay(plan, result).play(recorder.timeline)


def expected_statuses(plan: Plan) -> list[TaskStatus]:
    """Where every task ends when nothing stops the run early."""
    expected: list[TaskStatus] = []
    for task in plan.tasks:
        if any(expected[d] is not SUCCEEDED for d in task.deps):
            expected.append(SKIPPED)
        else:
            expected.append(FAILED if task.fails else SUCCEEDED)
    return expected


def check_as_planned(plan: Plan, result: plait.RunResult, replay: Replay) -> None:
    """Nothing stopped the run: every status, attempt count and the run's outcome are known."""
    expected = expected_statuses(plan)
    assert replay.status == expected
    for i, task in enumerate(plan.tasks):
        attempts = {
            SUCCEEDED: task.fail_first + 1,
            FAILED: task.allowed_attempts,
            SKIPPED: 0,
        }[expected[i]]
        assert result.tasks[f"t{i}"].attempts == attempts
    failed = [f"t{i}" for i, s in enumerate(expected) if s is FAILED]
    skipped = expected.count(SKIPPED)
    if not failed:
        assert result.status is RunStatus.SUCCEEDED
        assert result.error is None
        return
    assert result.status is RunStatus.FAILED
    shown = "; ".join(f"{t!r}: {result.tasks[t].error}" for t in failed[:5])
    more = f" (and {len(failed) - 5} more)" if len(failed) > 5 else ""
    tail = f" ({skipped} skipped)" if skipped else ""
    assert result.error == f"{len(failed)} task(s) failed: {shown}{more}{tail}"


def check_stopped(plan: Plan, result: plait.RunResult, replay: Replay) -> None:
    """A critical (or fail_fast) failure stopped the run."""
    halted_by = replay.halted_by
    assert halted_by is not None
    task_id = f"t{halted_by}"
    reason = "is critical" if plan.tasks[halted_by].critical else "fail_fast is on"
    assert result.status is RunStatus.FAILED
    assert result.error is not None
    assert result.error.startswith(
        f"task {task_id!r} failed and {reason}, so the run was stopped: "
        f"{result.tasks[task_id].error}"
    )
    for i, task in enumerate(plan.tasks):
        attempts = result.tasks[f"t{i}"].attempts
        if replay.status[i] is SUCCEEDED:
            assert attempts == task.fail_first + 1
        elif replay.status[i] is FAILED:
            # a task stopped mid-retry by the halt fails with attempts to spare
            assert attempts <= task.allowed_attempts
            assert attempts <= task.fail_first
        elif replay.status[i] is SKIPPED:
            assert attempts == 0


# -- the properties -------------------------------------------------------------------------------


@budget(60)
@given(plans())
def test_random_workflows_end_as_their_failures_dictate(plan: Plan) -> None:
    result, recorder = run_plan(plan)
    replayed = replay(plan, result, recorder)
    assert replayed.halted_by is None
    check_as_planned(plan, result, replayed)


@budget(30)
@given(plans(retries=True))
def test_random_workflows_with_retries_end_as_their_failures_dictate(plan: Plan) -> None:
    result, recorder = run_plan(plan)
    replayed = replay(plan, result, recorder)
    assert replayed.halted_by is None
    check_as_planned(plan, result, replayed)


@budget(60)
@given(plans(halts=True, retries=True))
def test_a_critical_failure_stops_random_workflows(plan: Plan) -> None:
    result, recorder = run_plan(plan)
    replayed = replay(plan, result, recorder)
    if replayed.halted_by is None:  # no critical task failed: an ordinary run
        event("ran to the end")
        check_as_planned(plan, result, replayed)
    else:
        event(
            "stopped by a critical failure"
            if plan.tasks[replayed.halted_by].critical
            else "stopped by fail_fast"
        )
        check_stopped(plan, result, replayed)


# -- regressions ----------------------------------------------------------------------------------


def test_a_task_cancelled_during_its_retry_backoff_reports_the_attempt_it_made() -> None:
    wf = plait.Workflow("backoff")

    @wf.task(retry=plait.RetryPolicy(max_retries=1, backoff=1.0, jitter=0))
    def flaky() -> None:
        raise InjectedFailure("first attempt fails")

    @wf.task(critical=True)
    async def boom() -> None:
        await asyncio.sleep(0.05)
        raise InjectedFailure("critical")

    events: list[Event] = []
    result = plait.run(wf, subscribers=[events.append], retry_failed_tasks=False)
    assert result.tasks["flaky"].status is CANCELLED
    assert result.tasks["flaky"].attempts == 1
    [cancelled] = [e for e in events if isinstance(e, TaskCancelled)]
    assert (cancelled.task_id, cancelled.attempt) == ("flaky", 1)


def test_a_sync_attempt_stopped_before_a_thread_picks_it_up_is_never_called(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Seen in random runs: a sync task's function entered after the critical failure that
    stopped the run. Here a slow executor holds the job until the run has stopped."""
    stopped = threading.Event()

    class SlowPickup(ThreadExecutor):
        def submit(self, job: Job) -> None:
            def later() -> None:
                stopped.wait(RUN_TIMEOUT)
                ThreadExecutor.submit(self, job)

            threading.Thread(target=later, daemon=True).start()

    monkeypatch.setattr(plait.executors._named, "ThreadExecutor", SlowPickup)
    wf = plait.Workflow("slow pickup")
    calls: list[bool] = []

    @wf.task
    def side_effect(ctx: plait.Context) -> None:
        calls.append(ctx.cancelled)

    @wf.task(critical=True)
    async def boom() -> None:
        raise InjectedFailure("critical")

    def on_event(event: Event) -> None:
        if isinstance(event, TaskFailed) and event.task_id == "boom":
            stopped.set()

    events: list[Event] = []
    result = plait.run(
        wf, subscribers=[events.append, on_event], retry_failed_tasks=False, cancel_grace=2.0
    )
    started = [e.task_id for e in events if isinstance(e, TaskStarted)]
    assert started == ["side_effect", "boom"]  # both started before boom failed
    assert result.status is RunStatus.FAILED
    assert calls == [], f"called after the run stopped, with ctx.cancelled={calls[0]}"
    assert result.tasks["side_effect"].status is CANCELLED
    [cancelled] = [e for e in events if isinstance(e, TaskCancelled)]
    assert (cancelled.task_id, cancelled.attempt) == ("side_effect", 1)
