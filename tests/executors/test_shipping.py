"""The worker's side of the seam: run_call, TaskCall, Outcome, RemoteError, CancelFlag; and an
executor that ships every attempt through pickle, end to end."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import pickle
import sys
import threading
from collections.abc import Iterator
from typing import Any

import cloudpickle
import pytest

import plait
from plait import Context, RunStatus, Workflow
from plait._logs import LogLine
from plait._pause import NO_DEFAULT, InputRequired
from plait.executors import (
    CancelFlag,
    Executor,
    Job,
    Outcome,
    RemoteError,
    TaskCall,
    run_call,
)


def add(a: int, b: int) -> int:
    return a + b


def who(ctx: Context, x: int) -> tuple[str, str, int, str, int]:
    return (ctx.run_id, ctx.task_id, ctx.attempt, ctx.idempotency_key, x)


def make_call(fn: Any, **fields: Any) -> TaskCall:
    base: dict[str, Any] = {
        "run_id": "r1",
        "task_id": "t",
        "attempt": 2,
        "idempotency_key": "r1/t",
        "fn": fn,
        "log_limit": 4096,
    }
    return TaskCall(**{**base, **fields})


# -- run_call ------------------------------------------------------------------------------------


def test_run_call_calls_the_function_with_its_arguments() -> None:
    outcome = run_call(make_call(add, kwargs={"a": 1, "b": 2}))
    assert (outcome.output, outcome.error, outcome.logs) == (3, None, [])


def test_run_call_builds_the_context_from_the_snapshot() -> None:
    outcome = run_call(make_call(who, kwargs={"x": 5}, context_parameter="ctx"))
    assert outcome.output == ("r1", "t", 2, "r1/t", 5)


def test_run_call_never_raises_and_keeps_the_error_as_raised_with_its_traceback() -> None:
    def explode() -> None:
        raise KeyError("missing")

    outcome = run_call(make_call(explode))
    assert isinstance(outcome.error, KeyError)
    assert outcome.traceback is not None
    assert "in explode" in outcome.traceback
    assert "KeyError: 'missing'" in outcome.traceback


def test_run_call_catches_system_exit_too() -> None:
    def leave() -> None:
        sys.exit(3)

    assert isinstance(run_call(make_call(leave)).error, SystemExit)


def test_a_call_that_does_not_fit_the_function_is_a_binding_error_naming_the_task() -> None:
    outcome = run_call(make_call(add, kwargs={"a": 1, "c": 2}))
    assert isinstance(outcome.error, plait.BindingError)
    assert str(outcome.error).startswith("task 't': calling add with parameters ['a', 'c']")


def test_ctx_cancelled_reads_the_callable() -> None:
    flag = CancelFlag()
    seen: list[bool] = []

    def look(ctx: Context) -> None:
        seen.append(ctx.cancelled)
        flag.set()
        seen.append(ctx.cancelled)
        ctx.raise_if_cancelled()

    outcome = run_call(make_call(look, context_parameter="ctx"), cancelled=flag)
    assert seen == [False, True]
    assert isinstance(outcome.error, plait.TaskCancelledError)


def test_what_the_attempt_logs_and_prints_comes_back_in_the_outcome() -> None:
    def talk(ctx: Context) -> None:
        ctx.logger.info("hello %s", "there")
        logging.getLogger("app").warning("careful")
        print("printed")
        print("partial", end="")

    outcome = run_call(make_call(talk, context_parameter="ctx"))
    assert outcome.error is None
    assert [(line.task_id, line.attempt, line.stream, line.text) for line in outcome.logs] == [
        ("t", 2, "log", "INFO plait.task: hello there"),
        ("t", 2, "log", "WARNING app: careful"),
        ("t", 2, "stdout", "printed"),
        ("t", 2, "stdout", "partial"),
    ]


def test_log_limit_0_keeps_no_logs() -> None:
    def talk() -> None:
        print("not kept")

    assert run_call(make_call(talk, log_limit=0)).logs == []


def test_a_question_without_an_answer_raises_input_required() -> None:
    def ask(ctx: Context) -> Any:
        return ctx.request_input("colour?", schema={"enum": ["red"]}, timeout=5)

    outcome = run_call(make_call(ask, context_parameter="ctx"))
    assert isinstance(outcome.error, InputRequired)
    assert (outcome.error.key, outcome.error.prompt, outcome.error.timeout) == ("0", "colour?", 5)
    assert outcome.traceback is None  # a pause, not a failure
    answered = run_call(make_call(ask, context_parameter="ctx", answers={"0": "red"}))
    assert answered.output == "red"


def test_ctx_input_and_an_approval_gate_read_the_pause_answer() -> None:
    def read(ctx: Context) -> Any:
        return ctx.input

    assert run_call(make_call(read, context_parameter="ctx")).output is None
    assert run_call(make_call(read, context_parameter="ctx", answers={"": 7})).output == 7
    assert run_call(make_call(None, answers={"": "yes"})).output == "yes"


def test_an_async_function_runs_under_asyncio_run() -> None:
    async def double(x: int) -> int:
        await asyncio.sleep(0)
        return 2 * x

    assert run_call(make_call(double, kwargs={"x": 4}, is_async=True)).output == 8


def test_a_cancel_flag_cancels_an_async_call_at_its_next_await() -> None:
    flag = CancelFlag()
    started = threading.Event()

    async def wait_forever() -> None:
        started.set()
        await asyncio.Event().wait()

    result: list[Outcome] = []
    worker = threading.Thread(
        target=lambda: result.append(
            run_call(make_call(wait_forever, is_async=True), cancelled=flag)
        )
    )
    worker.start()
    assert started.wait(10)
    flag.set()
    worker.join(10)
    assert not worker.is_alive()
    assert isinstance(result[0].error, asyncio.CancelledError)


def test_a_cancel_flag_calls_listeners_once_and_at_once_when_already_set() -> None:
    flag = CancelFlag()
    heard: list[str] = []
    stop = flag.listen(lambda: heard.append("a"))
    flag.listen(lambda: heard.append("b"))
    stop()
    flag.set()
    flag.set()
    flag.listen(lambda: heard.append("c"))
    assert heard == ["b", "c"]
    assert flag() and flag.is_set()


# -- what travels --------------------------------------------------------------------------------


def test_a_task_call_pickles_by_reference_and_a_lambda_with_cloudpickle() -> None:
    call = make_call(add, kwargs={"a": 1, "b": 2})
    assert pickle.loads(pickle.dumps(call)) == call
    lam = make_call(lambda a: a + 1, kwargs={"a": 1})
    assert run_call(pickle.loads(cloudpickle.dumps(lam))).output == 2


def test_every_field_of_a_call_and_an_outcome_survives_pickling() -> None:
    """Both pickle as their fields in order (``__reduce__``): a field added to the class but
    not to its ``__reduce__`` would be lost on the way to a worker, or back."""
    call = TaskCall(
        run_id="r",
        task_id="t",
        attempt=3,
        idempotency_key="r/t",
        fn=add,
        kwargs={"a": 1},
        context_parameter="ctx",
        answers={"k": 2},
        is_async=True,
        log_limit=7,
        traceparent="00-ab-cd-01",
        upstream={"u": 4},
        map_over="items",
    )
    defaults = TaskCall(run_id="", task_id="", attempt=0, idempotency_key="", fn=None)
    for field in dataclasses.fields(TaskCall):  # none left at its default, so each is checked
        assert getattr(call, field.name) != getattr(defaults, field.name), field.name
    assert pickle.loads(pickle.dumps(call)) == call
    line = LogLine("t", 3, 1, 0.5, "stdout", "hi")
    outcome = Outcome(output=5, error=ValueError("v"), traceback="tb", logs=[line], echoed=True)
    for field in dataclasses.fields(Outcome):
        assert getattr(outcome, field.name) != getattr(Outcome(), field.name), field.name
    back = pickle.loads(pickle.dumps(outcome))
    assert (back.output, back.traceback, back.logs, back.echoed) == (5, "tb", [line], True)
    assert isinstance(back.error, ValueError) and str(back.error) == "v"


def test_input_required_and_no_default_survive_pickling() -> None:
    request = InputRequired("k", "why?", {"type": "integer"}, 3.0, NO_DEFAULT)
    back = pickle.loads(pickle.dumps(request))
    assert (back.key, back.prompt, back.schema, back.timeout) == (
        "k",
        "why?",
        {"type": "integer"},
        3.0,
    )
    assert back.default is NO_DEFAULT


class Unpicklable(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.lock = threading.Lock()


def test_an_error_that_cannot_be_pickled_travels_as_a_remote_error() -> None:
    def fail() -> None:
        raise Unpicklable("held a lock")

    outcome = run_call(make_call(fail)).portable()
    error = outcome.error
    assert isinstance(error, RemoteError)
    back = pickle.loads(pickle.dumps(error))
    assert back.type_name.endswith("Unpicklable")
    assert back.message == "held a lock"
    assert "in fail" in back.formatted
    assert str(back) == f"{back.type_name}: held a lock"


def test_a_picklable_error_travels_as_itself() -> None:
    outcome = Outcome(error=ValueError("v")).portable()
    assert isinstance(outcome.error, ValueError)


# -- end to end: an executor that ships every attempt -----------------------------------------


class PicklingExecutor(Executor):
    """Ships every job as a real remote executor would: pickles the call, runs it with run_call
    on a thread of its own, pickles the outcome back, and completes the job."""

    def __init__(self, max_workers: int) -> None:
        self.max_workers = max_workers
        self.flags: dict[int, CancelFlag] = {}
        self.cancelled: list[str] = []
        self.threads: list[threading.Thread] = []

    @property
    def capacity(self) -> int | None:
        return self.max_workers

    def submit(self, job: Job) -> None:
        flag = self.flags[id(job)] = CancelFlag()
        thread = threading.Thread(target=self._ship, args=(job, flag), daemon=True)
        self.threads.append(thread)
        thread.start()

    def cancel(self, job: Job) -> None:
        assert job.cancelled
        self.cancelled.append(job.call().task_id)
        self.flags[id(job)].set()

    def _ship(self, job: Job, flag: CancelFlag) -> None:
        try:
            call = pickle.loads(cloudpickle.dumps(job.call()))
        except Exception as error:
            job.complete(Outcome(error=error))
            return
        outcome = run_call(call, cancelled=flag).portable()
        job.complete(pickle.loads(cloudpickle.dumps(outcome)))

    def shutdown(self, *, wait: bool = True) -> None:
        if wait:
            for thread in self.threads:
                thread.join()


@pytest.fixture
def shipping() -> Iterator[PicklingExecutor]:
    executor = PicklingExecutor(4)
    yield executor
    executor.shutdown()


def run_shipped(wf: Workflow, executor: PicklingExecutor, **options: Any) -> plait.RunResult:
    return plait.run(wf, executors={"ship": executor}, default_executor="ship", **options)


def test_a_shipped_chain_passes_outputs_and_keeps_logs(
    shipping: PicklingExecutor,
) -> None:
    wf = Workflow("w")
    wf.add_task("one", lambda: 1)

    @wf.task(depends_on=["one"], retry=plait.RetryPolicy(max_retries=1, backoff=0.01, jitter=0))
    def two(ctx: Context, one: int) -> int:
        print("attempt", ctx.attempt)
        if ctx.attempt == 1:
            raise RuntimeError("first try fails")
        return one + 1

    store = plait.stores.MemoryStore()
    result = run_shipped(wf, shipping, store=store)
    assert shipping.threads, "the run did not use the shipping executor"
    assert result.status is RunStatus.SUCCEEDED
    assert result.outputs == {"one": 1, "two": 2}
    assert result.tasks["two"].attempts == 2
    lines = plait.get_logs(result.run_id, "two", store=store)
    assert [(line.attempt, line.stream, line.text) for line in lines] == [
        (1, "stdout", "attempt 1"),
        (2, "stdout", "attempt 2"),
    ]


def test_a_shipped_error_that_cannot_be_pickled_is_a_readable_task_error(
    shipping: PicklingExecutor,
) -> None:
    def fail() -> None:
        raise Unpicklable("held a lock")

    wf = Workflow("w")
    wf.add_task("fail", fail)
    result = run_shipped(wf, shipping)
    error = result.tasks["fail"].error
    assert error is not None
    assert error.type.endswith("Unpicklable")
    assert error.message == "held a lock"
    assert "in fail" in error.traceback


def test_a_shipped_error_keeps_the_traceback_from_where_it_was_raised(
    shipping: PicklingExecutor,
) -> None:
    def fail() -> None:
        raise ValueError("bad value")

    wf = Workflow("w")
    wf.add_task("fail", fail)
    error = run_shipped(wf, shipping).tasks["fail"].error
    assert error is not None
    assert (error.type, error.message) == ("ValueError", "bad value")
    assert "in fail" in error.traceback


def test_a_shipped_task_can_ask_and_runs_again_with_the_answer(
    shipping: PicklingExecutor,
) -> None:
    def pick(ctx: Context) -> str:
        return str(ctx.request_input("colour?"))

    wf = Workflow("ask")
    wf.add_task("pick", pick)
    store = plait.stores.MemoryStore()
    first = run_shipped(wf, shipping, store=store)
    assert first.status is RunStatus.PAUSED
    assert first.waiting["pick"].prompt == "colour?"
    final = plait.resume(
        first.run_id,
        wf,
        store=store,
        inputs={"pick": "red"},
        executors={"ship": shipping},
        default_executor="ship",
    )
    assert final.outputs == {"pick": "red"}


STOPPED = threading.Event()


def stuck(ctx: Context) -> None:
    """Loops until cancelled (module level, so that it pickles by reference)."""
    while not ctx.cancelled:
        STOPPED.wait(0.01)
    STOPPED.set()


def test_a_timeout_is_forwarded_to_the_executor_as_a_cancel(
    shipping: PicklingExecutor,
) -> None:
    wf = Workflow("w")
    wf.add_task("stuck", stuck, timeout=0.2, retry=plait.RetryPolicy(max_retries=0))
    result = run_shipped(wf, shipping)
    assert result.tasks["stuck"].status is plait.TaskStatus.FAILED
    assert isinstance(result.tasks["stuck"].error, plait.TaskError)
    assert result.tasks["stuck"].error.type == "plait.TaskTimeoutError"
    assert shipping.cancelled == ["stuck"]
    assert STOPPED.wait(10)  # the worker saw ctx.cancelled


def test_a_durable_run_stores_a_shipped_output(shipping: PicklingExecutor, tmp_path: Any) -> None:
    wf = Workflow("w")
    wf.add_task("one", lambda: {"a": [1, 2]})
    store = plait.stores.SQLiteStore(tmp_path / "runs.db")
    result = run_shipped(wf, shipping, store=store)
    assert result.outputs == {"one": {"a": [1, 2]}}
    assert plait.get_run(result.run_id, store=store).outputs == {"one": {"a": [1, 2]}}
