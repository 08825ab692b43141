"""Choosing executors: task and default names, checks before anything runs, and what a run
makes and shuts down."""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

import plait
from plait import ConfigError, Context, InvalidOptionError, RunStatus, Workflow
from plait.executors import Executor, InlineExecutor, Job, ThreadExecutor, run_call


def test_a_task_naming_an_unknown_executor_is_refused_before_anything_runs() -> None:
    ran: list[str] = []
    wf = Workflow("w")
    wf.add_task("first", lambda: ran.append("first"))
    wf.add_task("crunch", lambda: ran.append("crunch"), executor="proces")
    with pytest.raises(
        InvalidOptionError,
        match=r"^task 'crunch' names executor 'proces', which is not an executor: did you mean "
        r"'process'\? The executors are 'thread', 'inline', 'process'$",
    ):
        plait.run(wf)
    assert ran == []


def test_an_unknown_name_with_no_close_match_lists_the_known_ones_and_says_how() -> None:
    wf = Workflow("w")
    wf.add_task("a", lambda: 1, executor="cluster")
    with pytest.raises(
        InvalidOptionError,
        match=r"^task 'a' names executor 'cluster', which is not an executor: the executors "
        r"are 'thread', 'inline', 'process', 'mine'; give others with "
        r"plait.run\(executors=\{'cluster': \.\.\.\}\)$",
    ):
        plait.run(wf, executors={"mine": ThreadExecutor(1)})


def test_an_unknown_default_executor_is_a_config_error() -> None:
    wf = Workflow("w")
    wf.add_task("a", lambda: 1)
    with pytest.raises(ConfigError, match=r"^default_executor 'nope' is not an executor: "):
        plait.run(wf, default_executor="nope")


@pytest.mark.parametrize("value", ["", 3])
def test_default_executor_must_be_a_name(value: object) -> None:
    with pytest.raises(ConfigError, match=r"^default_executor must be an executor's name"):
        plait.EngineConfig(default_executor=value)  # type: ignore[arg-type]


def test_an_executor_that_is_not_one_is_refused() -> None:
    wf = Workflow("w")
    wf.add_task("a", lambda: 1)
    with pytest.raises(ConfigError, match=r"^executors\['x'\] must be a plait.executors.Executor"):
        plait.run(wf, executors={"x": object()})  # type: ignore[dict-item]


@pytest.mark.parametrize("value", ["", 3])
def test_the_executor_option_must_be_a_name(value: object) -> None:
    wf = Workflow("w")
    with pytest.raises(
        InvalidOptionError, match=r"^task 'a': executor must be a non-empty executor name"
    ):
        wf.add_task("a", lambda: 1, executor=value)  # type: ignore[arg-type]


def test_the_decorator_takes_the_executor_option() -> None:
    wf = Workflow("w")

    @wf.task(executor="inline")
    def a() -> int:
        return 1

    assert wf.tasks["a"].executor == "inline"


def test_sync_tasks_run_on_the_default_executor_and_async_ones_on_the_loop() -> None:
    seen: dict[str, str] = {}
    wf = Workflow("w")

    @wf.task
    def sync() -> None:
        seen["sync"] = threading.current_thread().name

    @wf.task
    async def on_loop() -> None:
        seen["on_loop"] = threading.current_thread().name

    @wf.task(executor="thread")
    async def on_thread(ctx: Context) -> str:
        await asyncio.sleep(0)
        seen["on_thread"] = threading.current_thread().name
        return ctx.task_id

    main = threading.current_thread().name
    result = plait.run(wf)
    assert result.outputs["on_thread"] == "on_thread"
    assert seen["sync"].startswith("plait-worker")
    assert seen["on_loop"] == main
    assert seen["on_thread"].startswith("plait-worker")
    inline = plait.run(wf, default_executor="inline")
    assert inline.status is RunStatus.SUCCEEDED
    assert seen["sync"] == main


class Recording(Executor):
    """A thread executor that says what it was asked."""

    def __init__(self, capacity: int | None) -> None:
        self.inner = ThreadExecutor(capacity or 8)
        self._capacity = capacity
        self.started = 0
        self.shut_down = False
        self.running = 0
        self.most = 0
        self.lock = threading.Lock()

    @property
    def capacity(self) -> int | None:
        return self._capacity

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self.started += 1

    def submit(self, job: Job) -> None:
        self.inner.submit(job)

    def shutdown(self, *, wait: bool = True) -> None:
        self.shut_down = True
        self.inner.shutdown(wait=wait)


def test_an_executor_given_to_run_is_started_and_left_to_its_owner() -> None:
    mine = Recording(None)
    wf = Workflow("w")
    wf.add_task("a", lambda: 1, executor="mine")
    assert plait.run(wf, executors={"mine": mine}).outputs == {"a": 1}
    assert plait.run(wf, executors={"mine": mine}).outputs == {"a": 1}  # serves a second run
    assert (mine.started, mine.shut_down) == (2, False)
    mine.shutdown()


class Adaptive(Executor):
    """Ships jobs to one driver thread that ends them one at a time, in order, each after
    setting the capacity that ``capacities`` gives next (an executor whose capacity adapts,
    as the Dask executor's window does); records how many were out at each submit."""

    def __init__(self, capacities: Iterator[int]) -> None:
        self._capacity = 5  # until a run starts it
        self.capacities = capacities
        self.out = 0
        self.seen: list[int] = []  # jobs out, each time one is submitted
        self.jobs: queue.SimpleQueue[Job | None] = queue.SimpleQueue()
        self.driver = threading.Thread(target=self._drive)
        self.driver.start()

    @property
    def capacity(self) -> int:
        return self._capacity

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self._capacity = 1

    def submit(self, job: Job) -> None:
        self.out += 1
        self.seen.append(self.out)
        self.jobs.put(job)

    def _drive(self) -> None:
        while (job := self.jobs.get()) is not None:
            outcome = run_call(job.call())
            self._capacity = next(self.capacities)
            self.out -= 1
            job.complete(outcome)  # the engine submits the next jobs from here

    def shutdown(self, *, wait: bool = True) -> None:
        self.jobs.put(None)
        self.driver.join()


def test_the_engine_follows_an_executors_capacity_as_its_jobs_complete() -> None:
    wf = Workflow("w")
    for n in range(7):
        wf.add_task(f"t{n}", lambda: 1, executor="adaptive")
    # Its start narrows it from 5 to 1; the first job's end widens it to 3; the next three
    # narrow it to 1: none starts until the three out have ended, then one at a time.
    adaptive = Adaptive(iter([3, 1, 1, 1, 1, 1, 1]))
    try:
        result = plait.run(wf, executors={"adaptive": adaptive}, max_concurrency=8)
    finally:
        adaptive.shutdown()
    assert result.status is RunStatus.SUCCEEDED
    assert adaptive.seen == [1, 1, 2, 3, 1, 1, 1]


def test_an_executors_capacity_limits_how_many_of_its_tasks_run_at_once() -> None:
    lock = threading.Lock()
    now = [0]
    most = [0]
    barrier_free = threading.Event()

    def busy() -> None:
        with lock:
            now[0] += 1
            most[0] = max(most[0], now[0])
        barrier_free.wait(0.05)
        with lock:
            now[0] -= 1

    wf = Workflow("w")
    for n in range(8):
        wf.add_task(f"t{n}", busy, executor="two")
    others = []
    for n in range(4):
        wf.add_task(f"o{n}", lambda n=n: others.append(n))
    two = Recording(2)
    result = plait.run(wf, executors={"two": two}, max_concurrency=8)
    assert result.status is RunStatus.SUCCEEDED
    assert most[0] == 2
    assert sorted(others) == [0, 1, 2, 3]
    two.shutdown()


def test_an_async_task_named_inline_runs_on_the_loop() -> None:
    wf = Workflow("w")

    @wf.task(executor="inline")
    async def a() -> str:
        return threading.current_thread().name

    assert plait.run(wf).outputs == {"a": threading.current_thread().name}


def test_a_workflow_file_names_executors_and_builds_its_executors_section(
    tmp_path: Path,
) -> None:
    flow = tmp_path / "flow.yaml"
    flow.write_text(
        "name: x\n"
        "config: {default_executor: solo}\n"
        "executors:\n"
        "  solo: {inline: {}}\n"
        "  pair: {thread: {max_workers: 2}}\n"
        "tasks:\n"
        "  - {id: a, shell: echo a}\n"
        "  - {id: b, shell: echo b, executor: pair}\n"
    )
    loaded = plait.load_target(str(flow))
    assert loaded.settings == {"default_executor": "solo"}
    assert isinstance(loaded.executors["solo"], InlineExecutor)
    assert loaded.executors["pair"].capacity == 2
    assert loaded.workflow.tasks["b"].executor == "pair"
    result = plait.run(loaded.workflow, executors=loaded.executors, **loaded.settings)
    assert result.outputs == {"a": "a", "b": "b"}  # a shell task shipped to a thread too
    for executor in loaded.executors.values():
        executor.shutdown()


def test_a_workflow_file_with_a_wrong_executor_says_where(tmp_path: Path) -> None:
    flow = tmp_path / "flow.yaml"
    flow.write_text(
        "name: x\nexecutors:\n  pool: {procss: {}}\ntasks:\n  - {id: a, shell: echo, executor: 3}\n"
    )
    with pytest.raises(plait.WorkflowFileError) as caught:
        plait.load_target(str(flow))
    text = str(caught.value)
    assert "line 3: executors.pool: unknown key 'procss'" in text
    assert (
        "line 5: tasks[0].executor: expected an executor's name ('thread', 'inline', "
        "'process', or one under executors), not 3"
    ) in text
