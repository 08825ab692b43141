"""Pausing for a person: questions, answers (live and on resume), schemas and timeouts."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import pytest

import plait
from plait import RunStatus, TaskStatus

APPROVAL = {
    "type": "object",
    "properties": {"approved": {"type": "boolean"}, "note": {"type": "string"}},
    "required": ["approved"],
}


def statuses(result: plait.RunResult) -> dict[str, str]:
    return {task_id: str(task.status) for task_id, task in result.tasks.items()}


def two_gates() -> plait.Workflow:
    """Two branches wait for different people; a third needs nobody."""
    wf = plait.Workflow("gates")
    wf.add_task("prepare", lambda: 10)
    wf.add_task(
        "left",
        lambda prepare, ctx: prepare + ctx.input["amount"],
        depends_on=["prepare"],
        pause=plait.Pause(
            "left amount?",
            schema={"type": "object", "properties": {"amount": {"type": "integer"}}},
        ),
    )
    wf.add_task(
        "right",
        lambda prepare, ctx: prepare * ctx.input,
        depends_on=["prepare"],
        pause=plait.Pause("right factor?", schema={"type": "integer", "minimum": 1}),
    )
    wf.add_task("free", lambda: "no questions")
    wf.add_task("total", lambda left, right: left + right, depends_on=["left", "right"])
    return wf


def test_other_branches_finish_while_tasks_wait_and_the_run_pauses() -> None:
    recorder: list[plait.Event] = []
    result = plait.run(two_gates(), store="memory://", subscribers=[recorder.append])
    assert result.status is RunStatus.PAUSED
    assert statuses(result) == {
        "prepare": "succeeded",
        "left": "waiting_for_input",
        "right": "waiting_for_input",
        "free": "succeeded",
        "total": "pending",
    }
    assert {t: (q.prompt, q.key) for t, q in result.waiting.items()} == {
        "left": ("left amount?", ""),
        "right": ("right factor?", ""),
    }
    assert result.waiting["right"].schema == {"type": "integer", "minimum": 1}
    asked = [e.task_id for e in recorder if isinstance(e, plait.InputRequested)]
    assert sorted(asked) == ["left", "right"]
    assert result.error is None


def test_each_answer_goes_to_its_own_task() -> None:
    wf = two_gates()
    store = plait.stores.MemoryStore()
    paused = plait.run(wf, store=store)
    result = plait.resume(
        paused.run_id, wf, store=store, inputs={"left": {"amount": 5}, "right": 3}
    )
    assert result.status is RunStatus.SUCCEEDED
    assert result.outputs == {
        "prepare": 10,
        "left": 15,
        "right": 30,
        "free": "no questions",
        "total": 45,
    }
    assert result.tasks["prepare"].attempts == 1  # not run again


def test_answering_one_of_two_keeps_the_run_paused_on_the_other() -> None:
    wf = two_gates()
    store = plait.stores.MemoryStore()
    paused = plait.run(wf, store=store)
    result = plait.resume(paused.run_id, wf, store=store, inputs={"right": 2})
    assert result.status is RunStatus.PAUSED
    assert list(result.waiting) == ["left"]
    assert result.tasks["right"].output == 20
    final = plait.resume(paused.run_id, wf, store=store, inputs={"left": {"amount": 1}})
    assert final.outputs["total"] == 31


def test_a_wrong_answer_is_refused_and_nothing_changes() -> None:
    wf = two_gates()
    store = plait.stores.MemoryStore()
    paused = plait.run(wf, store=store)
    before = (store.get_run(paused.run_id), store.load_tasks(paused.run_id))
    with pytest.raises(
        plait.InputValidationError,
        match=r"^the answer for task 'right' is invalid at \(the answer\): 0 is less than the "
        r"minimum of 1 \(rule 'minimum'\); send a value that matches the question's schema$",
    ) as caught:
        plait.resume(paused.run_id, wf, store=store, inputs={"left": {"amount": 1}, "right": 0})
    assert (caught.value.task_id, caught.value.field, caught.value.rule) == (
        "right",
        "(the answer)",
        "minimum",
    )
    with pytest.raises(plait.InputValidationError, match=r"invalid at amount: 'x' is not of type"):
        plait.resume(paused.run_id, wf, store=store, inputs={"left": {"amount": "x"}})
    assert (store.get_run(paused.run_id), store.load_tasks(paused.run_id)) == before
    assert all(not r.answered for r in store.load_requests(paused.run_id))


def test_an_answer_for_a_task_that_asks_nothing_is_refused() -> None:
    wf = two_gates()
    store = plait.stores.MemoryStore()
    paused = plait.run(wf, store=store)
    with pytest.raises(plait.NotWaitingError, match=r"task 'free' of run .* is not waiting"):
        plait.resume(paused.run_id, wf, store=store, inputs={"free": 1})


def test_a_task_can_ask_midway_and_runs_again_from_the_top() -> None:
    calls: list[str] = []

    def pick(ctx: plait.Context) -> str:
        calls.append("before")
        colour = ctx.request_input("colour?", schema={"enum": ["red", "blue"]})
        size = ctx.request_input("size?", schema={"type": "integer"})
        calls.append("after")
        return f"{colour}-{size}"

    wf = plait.Workflow("ask")
    wf.add_task("pick", pick)
    store = plait.stores.MemoryStore()
    first = plait.run(wf, store=store)
    assert first.status is RunStatus.PAUSED
    assert (first.waiting["pick"].prompt, first.waiting["pick"].key) == ("colour?", "0")
    with pytest.raises(plait.InputValidationError, match=r"'green' is not one of"):
        plait.resume(first.run_id, wf, store=store, inputs={"pick": "green"})
    second = plait.resume(first.run_id, wf, store=store, inputs={"pick": "red"})
    assert (second.waiting["pick"].prompt, second.waiting["pick"].key) == ("size?", "1")
    final = plait.resume(first.run_id, wf, store=store, inputs={"pick": 3})
    assert final.outputs == {"pick": "red-3"}
    assert calls == ["before", "before", "before", "after"]  # code before a request re-runs


def test_an_async_task_can_ask_midway() -> None:
    async def ask(ctx: plait.Context) -> int:
        value: int = await ctx.arequest_input("n?", key="n")
        return value * 2

    wf = plait.Workflow("async-ask")
    wf.add_task("ask", ask)
    store = plait.stores.MemoryStore()
    paused = plait.run(wf, store=store)
    assert paused.waiting["ask"].key == "n"
    assert plait.resume(paused.run_id, wf, store=store, inputs={"ask": 21}).outputs == {"ask": 42}


@pytest.mark.parametrize("is_async", [False, True])
def test_a_task_that_asks_after_the_run_halted_is_cancelled_not_failed(is_async: bool) -> None:
    halted = threading.Event()

    def fail() -> None:
        raise RuntimeError("boom")

    def ask_late(ctx: plait.Context) -> None:
        assert halted.wait(10)
        ctx.request_input("too late?")

    async def ask_late_async(ctx: plait.Context) -> None:
        try:
            await asyncio.sleep(10)
        finally:  # cancelled by the halt: ask anyway, on the way out
            await ctx.arequest_input("too late?")

    def on_event(event: plait.Event) -> None:
        if isinstance(event, plait.TaskFailed):
            halted.set()

    wf = plait.Workflow("late")
    wf.add_task("ask", ask_late_async if is_async else ask_late)
    wf.add_task("fail", fail, critical=True)
    result = plait.run(wf, subscribers=[on_event], max_concurrency=2)
    assert result.status is RunStatus.FAILED
    assert result.tasks["fail"].status is TaskStatus.FAILED
    assert result.tasks["ask"].status is TaskStatus.CANCELLED
    assert result.tasks["ask"].error is None
    assert result.waiting == {}


def test_a_waiting_task_holds_no_concurrency_slot() -> None:
    wf = plait.Workflow("slots")
    wf.add_task("gate", lambda ctx: ctx.input, pause=plait.Pause("go?"), priority=10)
    for i in range(3):
        wf.add_task(f"work{i}", lambda: None)
    result = plait.run(wf, store="memory://", max_concurrency=1)
    assert statuses(result)["gate"] == "waiting_for_input"
    assert all(result.tasks[f"work{i}"].status is TaskStatus.SUCCEEDED for i in range(3))


def test_an_approval_gate_without_a_function_outputs_the_answer() -> None:
    wf = plait.Workflow("gate")
    wf.add_task("approve", None, pause=plait.Pause("ship it?", schema=APPROVAL))
    wf.add_task("ship", lambda approve: approve["approved"], depends_on=["approve"])
    store = plait.stores.MemoryStore()
    paused = plait.run(wf, store=store)
    done = plait.resume(paused.run_id, wf, store=store, inputs={"approve": {"approved": True}})
    assert done.outputs == {"approve": {"approved": True}, "ship": True}


def test_a_live_run_is_answered_from_another_thread_and_goes_on() -> None:
    wf = two_gates()

    async def main() -> plait.RunResult:
        run = asyncio.ensure_future(
            plait.arun(wf, run_id="live-two", store="memory://", wait_for_input=True)
        )
        while not run.done():
            await asyncio.sleep(0.01)
            try:
                plait.answer("live-two", "left", {"amount": 1})
                break
            except (plait.NotWaitingError, plait.stores.RunNotFoundError):
                continue
        answerer = threading.Thread(target=plait.answer, args=("live-two", "right", 4))
        answerer.start()
        answerer.join()
        return await asyncio.wait_for(run, 10)

    result = asyncio.run(main())
    assert result.status is RunStatus.SUCCEEDED
    assert result.outputs["total"] == 11 + 40


def test_a_live_answer_is_checked_before_it_is_taken() -> None:
    wf = plait.Workflow("live-check")
    wf.add_task("n", lambda ctx: ctx.input, pause=plait.Pause("n?", schema={"type": "integer"}))

    async def main() -> plait.RunResult:
        run = asyncio.ensure_future(
            plait.arun(wf, run_id="live-check", store="memory://", wait_for_input=True)
        )
        await asyncio.sleep(0.05)
        with pytest.raises(plait.InputValidationError, match=r"'five' is not of type 'integer'"):
            plait.answer("live-check", "n", "five")
        plait.answer("live-check", "n", 5)
        return await asyncio.wait_for(run, 10)

    assert asyncio.run(main()).outputs == {"n": 5}


def test_a_paused_run_can_be_answered_first_and_resumed_later() -> None:
    wf = two_gates()
    store = plait.stores.MemoryStore()
    paused = plait.run(wf, store=store)
    plait.answer(paused.run_id, "left", {"amount": 2}, store=store)
    plait.answer(paused.run_id, "right", 1, store=store)
    assert plait.resume(paused.run_id, wf, store=store).outputs["total"] == 22


def test_a_pause_timeout_fails_the_task() -> None:
    wf = plait.Workflow("timeout")
    wf.add_task("ask", lambda ctx: ctx.input, pause=plait.Pause("quick?", timeout=0.05))
    wf.add_task("after", lambda ask: ask, depends_on=["ask"])
    result = plait.run(wf, store="memory://", wait_for_input=True)
    assert statuses(result) == {"ask": "failed", "after": "skipped"}
    error = result.tasks["ask"].error
    assert error is not None
    assert error.message == (
        "nobody answered task 'ask' ('quick?') within its timeout; answer sooner, raise the "
        "timeout, or give the question a default"
    )
    assert isinstance(error.exception, plait.InputTimeoutError)


def test_a_pause_timeout_with_a_default_uses_it() -> None:
    wf = plait.Workflow("default")
    wf.add_task(
        "ask", lambda ctx: ctx.input, pause=plait.Pause("go?", timeout=0.05, default="auto")
    )
    result = plait.run(wf, store="memory://", wait_for_input=True)
    assert result.outputs == {"ask": "auto"}


def test_a_resumed_run_honours_the_time_already_spent_waiting(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    wf = plait.Workflow("spent")
    wf.add_task("ask", lambda ctx: ctx.input, pause=plait.Pause("go?", timeout=5))
    store = plait.stores.MemoryStore()
    paused = plait.run(wf, store=store)
    deadline = paused.waiting["ask"].deadline
    assert deadline is not None
    # The whole timeout passes while nobody runs the workflow: the clock is moved past the
    # deadline rather than slept through.
    real_time = time.time
    monkeypatch.setattr(time, "time", lambda: real_time() + 6)
    assert time.time() > deadline
    started = time.monotonic()
    result = plait.resume(paused.run_id, wf, store=store, wait_for_input=True)
    task = result.tasks["ask"]
    assert task.status is TaskStatus.FAILED
    assert task.error is not None
    assert isinstance(task.error.exception, plait.InputTimeoutError)
    assert time.monotonic() - started < 5  # it failed at once: it did not wait a fresh 5 s


def test_a_midway_question_timeout_is_honoured_after_a_resume() -> None:
    def ask(ctx: plait.Context) -> Any:
        return ctx.request_input("value?", timeout=0.1, default="fallback")

    wf = plait.Workflow("midway-timeout")
    wf.add_task("ask", ask)
    store = plait.stores.MemoryStore()
    paused = plait.run(wf, store=store)
    time.sleep(0.15)
    result = plait.resume(paused.run_id, wf, store=store, wait_for_input=True)
    assert result.outputs == {"ask": "fallback"}


def test_pydantic_models_work_as_schemas() -> None:
    pydantic = pytest.importorskip("pydantic")

    class Order(pydantic.BaseModel):  # type: ignore[misc,name-defined]
        item: str
        quantity: int

    wf = plait.Workflow("pydantic")
    wf.add_task("order", lambda ctx: ctx.input.quantity, pause=plait.Pause("order?", schema=Order))
    store = plait.stores.MemoryStore()
    paused = plait.run(wf, store=store)
    assert paused.waiting["order"].schema is not None
    with pytest.raises(plait.InputValidationError, match=r"invalid at quantity"):
        plait.resume(paused.run_id, wf, store=store, inputs={"order": {"item": "x"}})
    done = plait.resume(
        paused.run_id, wf, store=store, inputs={"order": {"item": "x", "quantity": 3}}
    )
    assert done.outputs == {"order": 3}


def test_a_bad_pause_is_rejected_when_the_task_is_defined() -> None:
    with pytest.raises(plait.InvalidOptionError, match=r"a Pause needs a non-empty prompt"):
        plait.Pause("")
    with pytest.raises(plait.InvalidOptionError, match=r"not a valid JSON Schema"):
        plait.Pause("x?", schema={"type": "no-such-type"})
    with pytest.raises(plait.InvalidOptionError, match=r"task 't' has nothing to do"):
        plait.Workflow("w").add_task("t", None)
