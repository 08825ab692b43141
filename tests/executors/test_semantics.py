"""The semantics every executor keeps, run once per executor of ``conftest.EXECUTORS``: outputs,
retries, timeouts, fail-fast, skipped dependents, pauses, cancellation, logs, events and
durability (a SQLite store, and resuming a run)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

import plait
from plait import Event, RetryPolicy, RunStatus, TaskStatus, Workflow
from plait.executors import Executor
from plait.stores import SQLiteStore

from . import _semantics_tasks as tasks
from .conftest import CANNOT, can, resume_on, run_on

pytestmark = pytest.mark.timeout(120)

NO_WAIT = RetryPolicy(max_retries=0)


def test_outputs_flow_along_the_graph(executor: Executor) -> None:
    wf = Workflow("w")
    wf.add_task("one", tasks.one)
    wf.add_task("two", tasks.double, depends_on=["one"])
    wf.add_task("three", tasks.add, depends_on=["one", "two"])
    wf.add_task("four", tasks.async_double, depends_on=["one"], executor="under-test")
    result = run_on(executor, wf)
    assert result.status is RunStatus.SUCCEEDED
    assert result.outputs == {"one": 1, "two": 2, "three": 3, "four": 2}


def test_a_failed_attempt_is_retried_by_plaits_policy(executor: Executor) -> None:
    wf = Workflow("w")
    wf.add_task(
        "flaky",
        tasks.flaky,
        params={"until": 3},
        retry=RetryPolicy(max_retries=2, backoff=0, jitter=0),
    )
    result = run_on(executor, wf)
    assert result.tasks["flaky"].output == 3
    assert result.tasks["flaky"].attempts == 3


def test_a_task_past_its_timeout_fails(executor: Executor) -> None:
    wf = Workflow("w")
    # It stops when cancelled, or after a second (an executor that cannot interrupt it).
    wf.add_task("stuck", tasks.wait_for_cancel, params={"limit": 1.0}, timeout=0.3, retry=NO_WAIT)
    wf.add_task("after", tasks.one, depends_on=["stuck"])
    result = run_on(executor, wf, cancel_grace=5)
    stuck = result.tasks["stuck"]
    assert stuck.status is TaskStatus.FAILED
    assert stuck.error is not None
    assert stuck.error.type == "plait.TaskTimeoutError"
    assert result.tasks["after"].status is TaskStatus.SKIPPED


def test_a_timeout_is_seen_by_the_running_task_as_ctx_cancelled(
    executor: Executor, tmp_path: Path
) -> None:
    can(executor, "see a timeout")
    marker = tmp_path / "seen"
    wf = Workflow("w")
    wf.add_task(
        "stuck", tasks.note_cancel, params={"marker": str(marker)}, timeout=0.3, retry=NO_WAIT
    )
    result = run_on(executor, wf, cancel_grace=5)
    assert result.tasks["stuck"].status is TaskStatus.FAILED
    deadline = time.monotonic() + 30  # the abandoned task writes its note a moment later
    while not marker.exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert marker.read_text() == "cancelled"


def test_a_failure_skips_its_dependents_and_nothing_else(executor: Executor) -> None:
    wf = Workflow("w")
    wf.add_task("bad", tasks.fail, retry=NO_WAIT)
    wf.add_task("after", tasks.one, depends_on=["bad"])
    wf.add_task("aside", tasks.one)
    result = run_on(executor, wf)
    assert result.status is RunStatus.FAILED
    assert [result.tasks[t].status for t in ("bad", "after", "aside")] == [
        TaskStatus.FAILED,
        TaskStatus.SKIPPED,
        TaskStatus.SUCCEEDED,
    ]
    error = result.tasks["bad"].error
    assert error is not None
    assert (error.type, error.message) == ("ValueError", "bad input")
    assert "in fail" in error.traceback


def test_fail_fast_stops_the_run_and_cancels_what_runs(executor: Executor) -> None:
    wf = Workflow("w")
    # On an executor that cannot interrupt it (inline) it runs first and blocks the loop until
    # it gives up, so there it gives up at once; elsewhere it is cancelled long before 5 s.
    name = getattr(executor, "plait_test_name", "")
    limit = 0.2 if "interrupt" in CANNOT.get(name, {}) else 5.0
    wf.add_task("waits", tasks.wait_for_cancel, priority=1, params={"limit": limit})
    wf.add_task("bad", tasks.fail, retry=NO_WAIT)
    wf.add_task("later", tasks.one, depends_on=["bad"])
    result = run_on(executor, wf, fail_fast=True, max_concurrency=2, cancel_grace=10)
    assert result.status is RunStatus.FAILED
    assert result.tasks["bad"].status is TaskStatus.FAILED
    assert result.tasks["later"].status is TaskStatus.SKIPPED
    # On an executor that runs two at once it was running and saw ctx.cancelled; on one that
    # runs one at a time it either never started or ended first.
    assert result.tasks["waits"].status in (TaskStatus.CANCELLED, TaskStatus.SUCCEEDED)


def test_a_task_that_asks_pauses_and_runs_again_from_the_top_with_the_answer(
    executor: Executor, tmp_path: Path
) -> None:
    marker = tmp_path / "ran"
    wf = Workflow("w")
    wf.add_task("pick", tasks.ask, params={"marker": str(marker)})
    store = plait.stores.MemoryStore()
    first = run_on(executor, wf, store=store)
    assert first.status is RunStatus.PAUSED
    assert first.waiting["pick"].prompt == "colour?"
    final = resume_on(executor, first.run_id, wf, store=store, inputs={"pick": "red"})
    assert final.outputs == {"pick": "colour=red"}
    assert marker.read_text().splitlines() == ["ran", "ran"]


def test_what_a_task_logs_and_prints_is_kept_in_its_log(executor: Executor) -> None:
    wf = Workflow("w")
    wf.add_task("talk", tasks.talk)
    store = plait.stores.MemoryStore()
    result = run_on(executor, wf, store=store)
    lines = plait.get_logs(result.run_id, "talk", store=store)
    assert [(line.attempt, line.stream, line.text) for line in lines] == [
        (1, "log", "INFO plait.task: attempt 1"),
        (1, "log", "WARNING app: careful"),
        (1, "stdout", "printed 1"),
    ]


def test_a_line_is_in_the_store_and_told_to_subscribers_while_its_task_runs(
    executor: Executor, tmp_path: Path
) -> None:
    """The task returns only once it has read its own line back from the run's store: on a
    worker process or a Dask worker too, the line comes back as it is said."""
    store = f"sqlite:///{tmp_path / 'plait.db'}"
    wf = Workflow("live")
    wf.add_task("talk", tasks.wait_to_be_seen, params={"store": store})
    events: list[Event] = []
    result = run_on(executor, wf, store=store, subscribers=[events.append])
    assert result.tasks["talk"].output is True
    texts = [line.text for line in plait.get_logs(result.run_id, "talk", store=store)]
    assert texts == ["INFO plait.task: waiting to be seen"]  # once: not again with the outcome
    kinds = [type(e) for e in events if isinstance(e, plait.TaskLogged | plait.TaskSucceeded)]
    assert kinds == [plait.TaskLogged, plait.TaskSucceeded]


def test_events_tell_each_attempt_in_causal_order(executor: Executor) -> None:
    events: list[Event] = []
    wf = Workflow("w")
    wf.add_task("one", tasks.one)
    wf.add_task(
        "flaky",
        tasks.flaky,
        params={"until": 2},
        depends_on=["one"],
        retry=RetryPolicy(max_retries=1, backoff=0, jitter=0),
    )
    run_on(executor, wf, subscribers=[events.append])
    told = [
        (type(e).__name__, getattr(e, "task_id", None), getattr(e, "attempt", None))
        for e in events
        if type(e).__name__ in ("TaskStarted", "TaskSucceeded", "TaskRetrying")
    ]
    assert told == [
        ("TaskStarted", "one", 1),
        ("TaskSucceeded", "one", 1),
        ("TaskStarted", "flaky", 1),
        ("TaskRetrying", "flaky", 1),
        ("TaskStarted", "flaky", 2),
        ("TaskSucceeded", "flaky", 2),
    ]


def test_a_durable_run_records_outputs_and_resumes_only_what_did_not_succeed(
    executor: Executor, tmp_path: Path
) -> None:
    marker, needed = tmp_path / "ran", tmp_path / "needed"
    wf = Workflow("w")
    wf.add_task("counted", tasks.count_runs, params={"marker": str(marker)})
    wf.add_task("needs", tasks.needs_file, params={"path": str(needed)}, depends_on=["counted"])
    store = SQLiteStore(tmp_path / "runs.db")
    first = run_on(executor, wf, store=store, retry_failed_tasks=False)
    assert first.status is RunStatus.FAILED
    assert plait.get_run(first.run_id, store=store).tasks["counted"].output == 1
    needed.write_text("here")
    second = resume_on(executor, first.run_id, wf, store=store)
    assert second.status is RunStatus.SUCCEEDED
    assert second.outputs == {"counted": 1, "needs": "here"}
    assert marker.read_text().splitlines() == ["ran"]  # it did not run again


def test_cancelling_a_live_run_stops_its_running_task(executor: Executor, tmp_path: Path) -> None:
    can(executor, "interrupt")
    store = SQLiteStore(tmp_path / "runs.db")
    started = threading.Event()
    outcome: list[plait.RunResult] = []
    wf = Workflow("w")
    wf.add_task("waits", tasks.wait_for_cancel)
    wf.add_task("after", tasks.one, depends_on=["waits"])

    def heard(event: Event) -> None:
        if isinstance(event, plait.TaskStarted) and event.task_id == "waits":
            started.set()

    runner = threading.Thread(
        target=lambda: outcome.append(
            run_on(executor, wf, store=store, run_id="live", subscribers=[heard], cancel_grace=10)
        )
    )
    runner.start()
    assert started.wait(30)
    plait.cancel("live", store=store, timeout=30)
    runner.join(60)
    [result] = outcome
    assert result.status is RunStatus.CANCELLED
    waits = result.tasks["waits"]
    # Stopped (a hard cancel), or it saw ctx.cancelled and returned: either way it ended early.
    assert waits.status is TaskStatus.CANCELLED or waits.output == "cancelled"
    assert result.tasks["after"].status is TaskStatus.CANCELLED  # it never started
