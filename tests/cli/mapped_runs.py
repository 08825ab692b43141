"""Stored mapped runs, written through the store API as the engine writes them (the contract:
instance ``i`` of mapped task ``convert`` is task ``convert[i]``, with its own record and
events; the mapped task has a record of its own with its status summed up).

So the views can be tested, and measured at 100,000 instances, without running the engine.
"""

from __future__ import annotations

from collections.abc import Collection

import plait
from plait import SkipCause, TaskStatus
from plait._results import TaskError
from plait.stores import EventRecord, RunRecord, Store, TaskRecord, WriteBatch
from plait.stores._base import RunUpdate

OWNER = "test-owner"


def event(kind: str, at: float, task_id: str | None = None, **data: object) -> EventRecord:
    return EventRecord(kind=kind, time=at, task_id=task_id, data=data)


def store_mapped_run(
    store: Store,
    n: int,
    *,
    run_id: str = "mapped",
    failed: Collection[int] = (),
    slots: int = 4,
    seconds: float = 0.05,
    with_events: bool = True,
) -> str:
    """A finished run of ``list_files -> convert (mapped, n instances) -> total``, plus
    ``alert`` (one_failed) and ``cleanup`` (all_done): instances in ``failed`` fail, so
    ``convert`` fails and ``total`` is skipped (upstream failed); with none failed, ``alert``
    is skipped (its rule was not met). Instances run ``slots`` at a time, ``seconds`` each.
    Without ``with_events``, only the records are written (as the engine does to a memory
    store)."""
    t0 = 1_000_000.0
    definition = [
        {"id": "list_files", "depends_on": [], "function": "m:list_files", "params": {}},
        {
            "id": "convert",
            "depends_on": ["list_files"],
            "function": "m:convert",
            "params": {},
            "map_over": "list_files",
        },
        {"id": "total", "depends_on": ["convert"], "function": "m:total", "params": {}},
        {"id": "alert", "depends_on": ["convert"], "function": "m:alert", "params": {}},
        {"id": "cleanup", "depends_on": ["convert"], "function": "m:cleanup", "params": {}},
    ]
    status = plait.RunStatus.FAILED if failed else plait.RunStatus.SUCCEEDED
    store.create_run(
        RunRecord(
            run_id=run_id,
            workflow="convert-files",
            fingerprint="-",
            definition=definition,
            config={"max_concurrency": slots},
            status=plait.RunStatus.RUNNING,
            created_at=t0,
            updated_at=t0,
            owner=OWNER,
            lease_expires_at=t0 + 1e9,
        )
    )
    events = [
        event("RunStarted", t0, workflow="convert-files", tasks=len(definition)),
        event("TaskStarted", t0 + 0.01, "list_files", attempt=1),
        event("TaskSucceeded", t0 + 0.11, "list_files", attempt=1),
    ]
    tasks = [_done("list_files", TaskStatus.SUCCEEDED, t0 + 0.01, t0 + 0.11)]
    error = TaskError(type="ValueError", message="not a PNG", traceback="Traceback ...")
    start = t0 + 0.12
    for i in range(n):
        at = start + (i // slots) * seconds
        end = at + seconds * (0.5 + (i % 7) / 10)
        task_id = f"convert[{i}]"
        events.append(event("TaskStarted", at, task_id, attempt=1))
        if i in failed:
            events.append(
                event("TaskFailed", end, task_id, attempt=1, error={"type": "ValueError"})
            )
            tasks.append(_done(task_id, TaskStatus.FAILED, at, end, error=error))
        else:
            events.append(event("TaskSucceeded", end, task_id, attempt=1))
            tasks.append(_done(task_id, TaskStatus.SUCCEEDED, at, end))
    last = max((t.finished_at or 0.0 for t in tasks), default=start)
    tasks.append(
        _done(
            "convert",
            TaskStatus.FAILED if failed else TaskStatus.SUCCEEDED,
            start,
            last,
            error=error if failed else None,
        )
    )
    after = last + 0.01
    if failed:
        events.append(
            event("TaskSkipped", after, "total", cause="convert", skip_cause="upstream_failed")
        )
        tasks.append(_skipped("total", after, SkipCause.UPSTREAM_FAILED))
        events += [
            event("TaskStarted", after, "alert", attempt=1),
            event("TaskSucceeded", after + 0.02, "alert", attempt=1),
        ]
        tasks.append(_done("alert", TaskStatus.SUCCEEDED, after, after + 0.02))
    else:
        events += [
            event("TaskStarted", after, "total", attempt=1),
            event("TaskSucceeded", after + 0.02, "total", attempt=1),
            event("TaskSkipped", after, "alert", cause="convert", skip_cause="trigger_rule"),
        ]
        tasks.append(_done("total", TaskStatus.SUCCEEDED, after, after + 0.02))
        tasks.append(_skipped("alert", after, SkipCause.TRIGGER_RULE))
    events += [
        event("TaskStarted", after + 0.03, "cleanup", attempt=1),
        event("TaskSucceeded", after + 0.04, "cleanup", attempt=1),
        event("RunFinished", after + 0.05, status=str(status)),
    ]
    tasks.append(_done("cleanup", TaskStatus.SUCCEEDED, after + 0.03, after + 0.04))
    store.write(
        run_id,
        OWNER,
        WriteBatch(
            run=RunUpdate(status=status, finished_at=after + 0.05),
            tasks=tasks,
            events=events if with_events else [],
        ),
    )
    return run_id


def _done(
    task_id: str,
    status: TaskStatus,
    start: float,
    end: float,
    *,
    error: TaskError | None = None,
) -> TaskRecord:
    return TaskRecord(
        task_id=task_id, status=status, attempts=1, started_at=start, finished_at=end, error=error
    )


def _skipped(task_id: str, at: float, cause: SkipCause) -> TaskRecord:
    return TaskRecord(task_id=task_id, status=TaskStatus.SKIPPED, finished_at=at, skip_cause=cause)
