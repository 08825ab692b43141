"""Mapped tasks in a run: expanding a mapped task into its instances, and finishing it.

A mapped task (``map_over=``) runs once per item of the list its upstream returned. When its rule
lets it run, the scheduler hands it over ``running`` and the run *expands* it
(:meth:`_Mapping._expand`): it reads the item list -- the upstream's output, or, for a task mapped
over a mapped task, that task's instances, one for one -- checks it (a list or tuple, at most
``EngineConfig.max_map`` items), tells the scheduler how many instances to add
(:meth:`plait._scheduler.Scheduler.expand`), grows the run's per-task columns by as many, and
emits :class:`~plait.TaskMapped`. From then on each instance ``convert[k]`` is a task like any
other: attempts, retries, timeout, events, a record in the store. Its function gets item ``k`` in
the parameter named after the upstream (:meth:`_Mapping._item`).

When its last instance finishes, the scheduler finishes the mapped task, and the run gives it its
output -- the list of its succeeded instances' outputs, in item order, whatever its status -- and
its record and event (:meth:`_Mapping._finish_mapped`).

On resume, the item list is the upstream's recorded output, so a resumed run maps over the same
items; instances recorded as succeeded are not run again (``Restored.instances``).

Instance ids are ``f"{task_id}[{k}]"`` (:func:`plait._graph.instance_id`); brackets are reserved in
task ids, so :func:`split_instance_id` tells an instance from a task by its id alone.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ._events import TaskCancelled, TaskFailed, TaskMapped, TaskSkipped, TaskSucceeded
from ._exceptions import MapError
from ._graph import INSTANCE_ID
from ._results import TaskError
from ._run_state import _RunState
from ._state import SkipCause, TaskStatus
from .executors._remote import local
from .stores import TaskRecord

__all__ = ["RestoredInstance", "group_instances", "restored_instances", "split_instance_id"]


def split_instance_id(task_id: str) -> tuple[str, int] | None:
    """``("convert", 3)`` for ``"convert[3]"``; None for an id that is not an instance's."""
    match = INSTANCE_ID.match(task_id)
    if match is None:
        return None
    return match[1], int(match[2])


def group_instances(
    task_ids: Iterable[str], mapped: Iterable[str]
) -> dict[str, list[tuple[int, str]]]:
    """The instance ids among ``task_ids`` of each of the tasks ``mapped``, by task, as
    ``(item, id)`` in item order."""
    wanted = set(mapped)
    groups: dict[str, list[tuple[int, str]]] = {}
    if not wanted:
        return groups
    for task_id in task_ids:
        split = split_instance_id(task_id)
        if split is not None and split[0] in wanted:
            groups.setdefault(split[0], []).append((split[1], task_id))
    for group in groups.values():
        group.sort()
    return groups


@dataclass(frozen=True, slots=True)
class RestoredInstance:
    """An instance's record, as a resumed run starts from it."""

    status: TaskStatus
    attempts: int
    output: Any = None  # for a succeeded instance
    payload: bytes | None = None
    started_at: float | None = None
    finished_at: float | None = None
    skip_cause: SkipCause | None = None  # for a skipped instance
    error: TaskError | None = None  # a failed instance's error, or the reason a skip gave

    @property
    def kept_skip(self) -> bool:
        """Whether it skipped itself (``raise plait.Skip``) and so stays skipped on resume: its
        item is the one recorded and its mapped task ran because every dependency succeeded,
        so what it was given is unchanged (as :func:`plait._restart.kept_skips` decides for a
        task, whose dependencies may have changed)."""
        return self.status is TaskStatus.SKIPPED and self.skip_cause is SkipCause.SKIPPED_BY_TASK


class _Mapping(_RunState):
    """Expanding and finishing mapped tasks; part of :class:`plait._engine._Run`."""

    def _mapped_decided(self, i: int, *, in_loop: bool) -> None:
        """Mapped task ``i`` was decided: expand it (it is ``running``), or it finished."""
        if self.scheduler.status[i] is TaskStatus.RUNNING:
            self._expand(i, in_loop=in_loop)
        else:
            self._finish_mapped(i)

    def _expand(self, i: int, *, in_loop: bool) -> None:
        """Expand mapped task ``i`` into one instance per item (see the module docstring).
        Under the lock."""
        graph = self.graph
        u = graph.map_over[i]
        upstream = graph.instances.get(u)
        self.started_at[i] = time.time()
        items: Sequence[Any] | None = None
        if upstream is not None:  # mapped over a mapped task: instance by instance
            count = len(upstream)
        else:
            value = local(self.outputs[u]) if self.remote_outputs else self.outputs[u]
            if not isinstance(value, list | tuple):
                self._fail_expansion(
                    i,
                    MapError(
                        f"task {graph.ids[i]!r} maps over the output of {graph.ids[u]!r}, which "
                        f"is a {type(value).__qualname__}, not a list; make {graph.ids[u]!r} "
                        "return a list (or a tuple) of items"
                    ),
                    in_loop=in_loop,
                )
                return
            items, count = value, len(value)
        limit = self.config.max_map
        if count > limit:
            self._fail_expansion(
                i,
                MapError(
                    f"task {graph.ids[i]!r} would expand into {count:,} instances, over the limit "
                    f"of {limit:,} per mapped task; raise EngineConfig.max_map (max_map="
                    f"{count}) if that many is meant"
                ),
                in_loop=in_loop,
            )
            return
        restored = self._restored_instances.pop(i, {})
        succeeded = [
            k for k, r in restored.items() if r.status is TaskStatus.SUCCEEDED and k < count
        ]
        skipped = [k for k, r in restored.items() if r.kept_skip and k < count]
        if items is not None:
            self._items[i] = items
        decided = self.scheduler.expand(i, count, succeeded, skipped)
        self._grow(i, count)
        instances = graph.instances[i]
        for k, record in restored.items():
            if k >= count:
                continue
            j = instances[k]
            self.attempts[j] = self.attempts_before[j] = record.attempts
            if record.status is TaskStatus.SUCCEEDED:
                self.outputs[j] = record.output
                self.payloads[j] = record.payload
            if record.status is TaskStatus.SUCCEEDED or record.kept_skip:
                self.started_at[j] = record.started_at
                self.finished_at[j] = record.finished_at
            if record.kept_skip:
                self.errors[j] = record.error
        if self.listening:
            self._emit(TaskMapped, task_id=graph.ids[i], count=count)
        self._decided(i, decided, in_loop=in_loop)

    def _fail_expansion(self, i: int, error: MapError, *, in_loop: bool) -> None:
        task_error = TaskError.from_exception(error)
        self.errors[i] = task_error
        self.finished_at[i] = time.time()
        decided = self.scheduler.fail(i)
        if self.listening:
            self._emit(TaskFailed, task_id=self.graph.ids[i], attempt=0, error=task_error)
        self._decided(i, decided, in_loop=in_loop)
        if self.critical[i] and not self.scheduler.halted:
            self.halted_by = i
            self._halt(in_loop=in_loop)

    def _grow(self, i: int, count: int) -> None:
        """Make room for ``count`` new instances of mapped task ``i`` in the run's columns."""
        for column in (
            self.outputs,
            self.errors,
            self.started_at,
            self.finished_at,
            self.current,
            self.answers,
            self.payloads,
        ):
            column.extend([None] * count)
        self.attempts.extend([0] * count)
        self.attempts_before.extend([0] * count)
        self.retry.extend([self.retry[i]] * count)
        self.timeout.extend([self.timeout[i]] * count)
        self.critical.extend([self.critical[i]] * count)
        self.executor_of.extend([self.executor_of[i]] * count)
        self.async_off_loop.extend([self.async_off_loop[i]] * count)

    def _item(self, j: int) -> tuple[str, Any]:
        """The parameter that instance ``j`` gets its item in, and the item."""
        graph = self.graph
        p = graph.instance_parent[j - graph.size]
        name = graph.ids[graph.map_over[p]]
        dependencies = graph.dependencies[j]
        if dependencies:  # b[k] gets a[k]'s output
            value = self.outputs[dependencies[0]]
        else:
            value = self._items[p][j - graph.instances[p].start]
        return name, value

    def _finish_mapped(self, i: int) -> None:
        """Every instance of mapped task ``i`` finished, and so did it (the scheduler decided
        its status): give it its output, and tell the world. Under the lock."""
        graph = self.graph
        status = self.scheduler.status
        instances = graph.instances[i]
        outputs = self.outputs
        values = [outputs[j] for j in instances if status[j] is TaskStatus.SUCCEEDED]
        if self.remote_outputs:
            values = [local(value) for value in values]
        outputs[i] = values
        if self._encodes:
            assert self.serializer is not None
            self.payloads[i] = self.serializer.dumps(values)
        self.finished_at[i] = time.time()
        self._items.pop(i, None)
        now = status[i]
        task_id = graph.ids[i]
        if now is TaskStatus.SUCCEEDED:
            self.errors[i] = None
            if self.listening:
                self._emit(TaskSucceeded, task_id=task_id, attempt=0)
            return
        failed = [graph.ids[j] for j in instances if status[j] is TaskStatus.FAILED]
        if now is TaskStatus.FAILED:
            shown = ", ".join(map(repr, failed[:5])) + (" ..." if len(failed) > 5 else "")
            self.errors[i] = error = TaskError(
                "plait.MapError",
                f"{len(failed)} of {len(instances)} instances of {task_id!r} failed: {shown}",
            )
            if self.listening:
                self._emit(TaskFailed, task_id=task_id, attempt=0, error=error)
        elif now is TaskStatus.CANCELLED:
            if self.listening:
                self._emit(TaskCancelled, task_id=task_id, attempt=0)
        elif self.listening:  # skipped: an instance was skipped because something failed
            cause = next(
                (j for j in instances if self.scheduler.skip_cause[j] is SkipCause.UPSTREAM_FAILED),
                i,
            )
            self._emit(
                TaskSkipped,
                task_id=task_id,
                cause=graph.ids[cause],
                skip_cause=SkipCause.UPSTREAM_FAILED,
            )


def restored_instances(
    records: Mapping[str, TaskRecord],
    mapped: Iterable[str],
    index: Mapping[str, int],
    load: Callable[[TaskRecord], Any],
) -> dict[int, dict[int, RestoredInstance]]:
    """The instance records among ``records`` (task id -> TaskRecord) of the ``mapped`` tasks,
    by the mapped task's index and item; ``load`` reads a stored output."""
    restored: dict[int, dict[int, RestoredInstance]] = {}
    for task_id, group in group_instances(records, mapped).items():
        by_item = restored.setdefault(index[task_id], {})
        for k, instance_id in group:
            record = records[instance_id]
            succeeded = record.status is TaskStatus.SUCCEEDED
            by_item[k] = RestoredInstance(
                status=record.status,
                attempts=record.attempts,
                output=load(record) if succeeded else None,
                payload=record.output if succeeded else None,
                started_at=record.started_at,
                finished_at=record.finished_at,
                skip_cause=record.skip_cause,
                error=record.error,
            )
    return restored
