"""The engine's side of pipelining (``_pipelining``), with a pipelining executor of one's own:
the contract of ``job.queue_behind()`` and ``job.began()`` (see ``executors/_base.py``)."""

from __future__ import annotations

import threading

import pytest

import plait
from plait import Event, TaskStarted, TaskSucceeded
from plait.executors import Executor, Job, run_call


class OneWorker(Executor):
    """Runs its jobs one after another on one thread, asking for a job to queue behind each
    (a worker that reads calls in order). ``too_early``: report a queued job begun before the
    one ahead completed (misuse), keeping the error."""

    def __init__(self, *, pipelines: bool = True, too_early: bool = False) -> None:
        self._pipelines = pipelines
        self._too_early = too_early
        self.errors: list[Exception] = []
        self.queued = 0

    @property
    def capacity(self) -> int:
        return 1

    @property
    def pipelines(self) -> bool:
        return self._pipelines

    def submit(self, job: Job) -> None:
        threading.Thread(target=self._work, args=(job,)).start()

    def _work(self, job: Job | None) -> None:
        while job is not None:
            try:
                behind = job.queue_behind()
            except RuntimeError as error:
                self.errors.append(error)
                behind = None
            if behind is not None:
                self.queued += 1
                if self._too_early:
                    try:
                        behind.began()
                    except RuntimeError as error:
                        self.errors.append(error)
            job.complete(run_call(job.call()))
            if behind is not None:
                behind.began()
            job = behind

    def shutdown(self, *, wait: bool = True) -> None:
        pass


def _two_tasks() -> plait.Workflow:
    wf = plait.Workflow("two")
    wf.add_task("a", lambda: "a")
    wf.add_task("b", lambda: "b")
    return wf


def test_a_job_queued_behind_another_starts_when_it_begins_and_runs_in_its_slot() -> None:
    executor = OneWorker()
    events: list[Event] = []
    result = plait.run(
        _two_tasks(),
        executors={"one": executor},
        default_executor="one",
        max_concurrency=1,
        subscribers=[events.append],
    )
    assert result.status is plait.RunStatus.SUCCEEDED
    assert executor.queued == 1
    assert executor.errors == []
    assert [
        (type(e).__name__, e.task_id) for e in events if isinstance(e, TaskStarted | TaskSucceeded)
    ] == [
        ("TaskStarted", "a"),
        ("TaskSucceeded", "a"),
        ("TaskStarted", "b"),
        ("TaskSucceeded", "b"),
    ]


def test_a_job_reported_begun_before_the_one_ahead_completed_is_refused() -> None:
    executor = OneWorker(too_early=True)
    result = plait.run(
        _two_tasks(), executors={"one": executor}, default_executor="one", max_concurrency=1
    )
    assert result.status is plait.RunStatus.SUCCEEDED  # and the run went on as it should
    (error,) = executor.errors
    assert str(error) == (
        "task 'b' (attempt 1) was reported begun while still queued behind task 'a'; call "
        "job.began() once the job ahead of it has completed"
    )


def test_an_executor_that_does_not_pipeline_cannot_queue_behind() -> None:
    executor = OneWorker(pipelines=False)
    result = plait.run(
        _two_tasks(), executors={"one": executor}, default_executor="one", max_concurrency=2
    )
    assert result.status is plait.RunStatus.SUCCEEDED
    assert executor.queued == 0
    assert len(executor.errors) == 2
    assert str(executor.errors[0]).endswith(
        "but its pipelines property is False: make it True so that the engine gives the "
        "executor a lane of its own"
    )


@pytest.mark.parametrize("pipelines", [True, False])
def test_began_does_nothing_for_a_submitted_job(pipelines: bool) -> None:
    class BeganTwice(OneWorker):
        def submit(self, job: Job) -> None:
            job.began()
            job.began()
            super().submit(job)

    events: list[Event] = []
    plait.run(
        _two_tasks(),
        executors={"one": BeganTwice(pipelines=pipelines)},
        default_executor="one",
        max_concurrency=1,
        subscribers=[events.append],
    )
    assert sum(isinstance(e, TaskStarted) for e in events) == 2
