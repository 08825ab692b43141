"""The timeline of a stored run: what each task's attempts did, and when, replayed from the store.

:meth:`_Run.load` reads a run's record, task records, questions, event log and task logs, and
replays the log into *segments*, one list per task (see ``_segments``: an attempt, a wait for a
person's answer, or a point-in-time marker), then computes the run's figures from them.

A mapped task's instances (``convert[0]`` ...) are tasks of their own here too, each with its
segments, kept apart from the definition's tasks in ``_Run.instances`` (see ``_mapped``): the
views show them as a group under their mapped task.

This is the run's data model, apart from how it is drawn: the HTML report renders it, and the
figures of ``_summary`` (makespan, task time, parallelism, critical path) are computed from its
attempts, for the report and for the command line's summaries alike.

(The module is private; its names keep their underscores, as the report imports them.)
"""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import graphlib
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field

from .._estimates import SOURCE_OF_LETTER
from .._graph import instance_id
from .._logs import LogLine
from .._rules import skip_note
from .._state import RunStatus, TaskStatus
from ..stores import EventRecord, InputRequest, RunRecord, Store, TaskRecord
from ._mapped import figure_dependencies, group_look, instance_of, path_weights
from ._segments import (
    _ORDER,
    _css_status,
    _error_line,
    _Look,
    _Segment,
    _segments_from_events,
    _segments_from_records,
    _Task,
)
from ._summary import RunFigures, figures_of

__all__ = [
    "_ORDER",
    "_Look",
    "_Run",
    "_Segment",
    "_Task",
    "_css_status",
    "_error_line",
    "_segments_from_events",
    "_topological",
    "stored_figures",
]


@dataclass(slots=True)
class _Run:
    record: RunRecord
    tasks: dict[str, _Task]
    questions: list[InputRequest]  # the questions still waiting
    start: float  # the time axis' origin
    end: float  # the time axis' end
    has_events: bool
    figures: RunFigures
    logs: dict[tuple[str, int], Sequence[LogLine]]  # (task id, attempt) -> its lines
    answers: list[InputRequest] = field(default_factory=list)  # the questions answered
    #: Each mapped task's instances, in item order (a mapped task with none yet has ``[]``).
    instances: dict[str, list[_Task]] = field(default_factory=dict)
    #: Each mapped task's instances by look: ``{"succeeded": 19, "failed": 1}``.
    looks: dict[str, Counter[str]] = field(default_factory=dict)
    #: Seconds each task and instance worked (its attempts' durations, together), and each
    #: mapped task's instances' span: the first one's start and the last one's end (None while
    #: none ran). Summed once here: a view that asked each of 100,000 instances would pay it
    #: again for every figure.
    work: dict[str, float] = field(default_factory=dict)
    spans: dict[str, tuple[float, float] | None] = field(default_factory=dict)

    @classmethod
    def load(cls, record: RunRecord, store: Store, *, with_logs: bool = True) -> _Run:
        """The timeline of ``record``'s run, from ``store``; its task logs too, unless not
        ``with_logs`` (the figures do not need them)."""
        with _no_cyclic_gc():
            return cls._load(record, store, with_logs=with_logs)

    @classmethod
    def _load(cls, record: RunRecord, store: Store, *, with_logs: bool) -> _Run:
        stored = store.load_tasks(record.run_id)
        requests = store.load_requests(record.run_id)
        events = store.load_events(record.run_id)
        logs = {}
        if with_logs:
            logs = {(log.task_id, log.attempt): log.lines for log in store.load_logs(record.run_id)}
        tasks: dict[str, _Task] = {}
        map_over: dict[str, str] = {}
        estimates = _estimates(record.config.get("estimates"), len(record.definition))
        for i, entry in enumerate(record.definition):
            task_id = str(entry["id"])
            task = tasks[task_id] = _task(
                task_id, i, tuple(str(d) for d in entry.get("depends_on", ())), stored
            )
            task.estimate = estimates[i]
            if entry.get("map_over"):
                task.mapped = True
                map_over[task_id] = str(entry["map_over"])
        instances = _instances(tasks, stored, events)
        every = {**tasks, **{t.id: t for group in instances.values() for t in group}}
        last_event = max((e.time for e in events), default=record.updated_at)
        if record.finished_at is not None:
            run_end = record.finished_at
        else:  # paused or live: as far as the store knows
            run_end = max(record.updated_at, last_event)
        live = record.status is RunStatus.RUNNING
        if events:
            _segments_from_events(every, events, run_end, live=live)
        else:
            _segments_from_records(every, stored, requests, run_end)
        _skip_notes(every, stored)
        looks: dict[str, Counter[str]] = {}
        for task_id, group in instances.items():
            looks[task_id] = Counter(t.css for t in group)
            if task_id not in stored and group:
                look = group_look(looks[task_id], total=len(group))
                tasks[task_id].status = TaskStatus(_STATUS_OF_LOOK.get(look, look))
        start = min([record.created_at, *(s.start for t in every.values() for s in t.segments)])
        end = max([run_end, *(s.end for t in every.values() for s in t.segments)])
        spans = {
            task.id: [(s.start, s.end) for s in task.segments if s.kind == "attempt"]
            for task in every.values()
        }
        ids = {task_id: [t.id for t in group] for task_id, group in instances.items()}
        work = {task_id: sum(e - s for s, e in attempts) for task_id, attempts in spans.items()}
        weights, stands_for = path_weights(work, ids, map_over)
        figures = figures_of(
            spans,
            figure_dependencies({t.id: t.depends_on for t in tasks.values()}, ids, map_over),
            weights=weights,
        )
        # A mapped task on the path stands for its instances: the path names the instance that
        # weighed the most (the mapped task only joins them; it did no work of its own).
        path = tuple(
            stands_for.get(t, t)
            for t in figures.critical_path
            if t in stands_for or not (t in instances and not every[t].work)
        )
        figures = dataclasses.replace(figures, critical_path=path)
        for task_id in path:
            every[task_id].critical = True
            parent = every[task_id].parent
            if parent is not None:
                tasks[parent].critical = True
        return cls(
            record=record,
            tasks=tasks,
            questions=[r for r in requests if not r.answered],
            answers=[r for r in requests if r.answered],
            start=start,
            end=end,
            has_events=bool(events),
            figures=figures,
            logs=logs,
            instances=instances,
            looks=looks,
            work=work,
            spans={task_id: _span_of(group, spans) for task_id, group in instances.items()},
        )

    @property
    def critical_path(self) -> list[str]:
        return list(self.figures.critical_path)

    @property
    def span(self) -> float:
        return max(self.end - self.start, 1e-3)

    def every_task(self) -> list[_Task]:
        """The definition's tasks, then each mapped task's instances."""
        return [*self.tasks.values(), *(t for group in self.instances.values() for t in group)]

    def attempts(self) -> list[_Segment]:
        return [s for t in self.every_task() for s in t.segments if s.kind == "attempt"]


def _span_of(
    instances: Sequence[_Task], spans: Mapping[str, Sequence[tuple[float, float]]]
) -> tuple[float, float] | None:
    """The first start and the last end of ``instances``' attempts (None if none ran)."""
    starts = [s for t in instances for s, _ in spans[t.id]]
    ends = [e for t in instances for _, e in spans[t.id]]
    return (min(starts), max(ends)) if starts else None


@contextlib.contextmanager
def _no_cyclic_gc() -> Iterator[None]:
    """No cyclic garbage collection while a run's records become objects: they all live until
    the page is made, and at 100,000 instances (some ten objects each) the collector's passes
    over them took a third of the time (reference counting still frees what is dropped). The
    collector is on again after, if it was before (so two threads that overlap leave it on)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _task(
    task_id: str, index: int, depends_on: tuple[str, ...], stored: Mapping[str, TaskRecord]
) -> _Task:
    """A task as its record (if any) has it."""
    task_record = stored.get(task_id)
    return _Task(
        id=task_id,
        index=index,
        depends_on=depends_on,
        status=task_record.status if task_record else TaskStatus.PENDING,
        attempts=task_record.attempts if task_record else 0,
        error=task_record.error if task_record else None,
    )


def _instances(
    tasks: dict[str, _Task], stored: Mapping[str, TaskRecord], events: Sequence[EventRecord]
) -> dict[str, list[_Task]]:
    """Each mapped task's instances, in item order, from the ids the records and events use
    (an id ``name[i]`` whose ``name`` is a task of the run; see ``_mapped``) and the count
    each ``TaskMapped`` event gives (an instance not started yet is pending); marks the tasks
    that have some as mapped."""
    found: dict[str, dict[int, str]] = {t.id: {} for t in tasks.values() if t.mapped}
    named_by_events: set[str] = set()
    for event in events:
        if event.kind == "TaskMapped" and event.task_id in tasks:
            count = event.data.get("count")
            ids = (
                [instance_id(event.task_id, i) for i in range(count)]
                if isinstance(count, int)
                else []
            )
            found.setdefault(event.task_id, {}).update(enumerate(ids))
            named_by_events.update(ids)
    for task_id in stored.keys() - named_by_events:  # without a TaskMapped event (no log)
        named = instance_of(task_id)
        if named is not None and named[0] in tasks and task_id not in tasks:
            found.setdefault(named[0], {})[named[1]] = task_id
    instances: dict[str, list[_Task]] = {}
    for parent, by_index in found.items():
        tasks[parent].mapped = True
        group = instances[parent] = []
        for index in sorted(by_index):
            instance = _task(by_index[index], index, (), stored)
            instance.parent = parent
            group.append(instance)
    return instances


#: The task status that a look (of a mapped task summed up from its instances) stands for.
_STATUS_OF_LOOK: Mapping[str, str] = {"waiting": "waiting_for_input"}


def _skip_notes(tasks: Mapping[str, _Task], stored: Mapping[str, TaskRecord]) -> None:
    """Give each skipped task whose events did not say why the why its record keeps."""
    for task in tasks.values():
        if task.status is TaskStatus.SKIPPED and not task.skip_note:
            task_record = stored.get(task.id)
            cause = task_record.skip_cause if task_record else None
            task.skip_note = skip_note(cause)


def _topological(tasks: Mapping[str, _Task]) -> list[str]:
    sorter: graphlib.TopologicalSorter[str] = graphlib.TopologicalSorter()
    for task in tasks.values():
        sorter.add(task.id, *(d for d in task.depends_on if d in tasks))
    return list(sorter.static_order())


def stored_figures(store: Store, record: RunRecord) -> RunFigures:
    """The figures of ``record``'s whole run, every session of it, as its store holds it: what
    the command line's summaries show, computed as the report computes its own."""
    return _Run.load(record, store, with_logs=False).figures


def _estimates(stored: object, n: int) -> list[tuple[float, str] | None]:
    """Each task's estimate (by definition order) as the run recorded them (see
    ``plait._estimates._document``): seconds and where it came from; None when unknown."""
    found: list[tuple[float, str] | None] = [None] * n
    if not isinstance(stored, dict):
        return found
    seconds, letters = stored.get("seconds"), stored.get("from")
    if not (isinstance(seconds, list) and isinstance(letters, str)):
        return found
    for i, (value, letter) in enumerate(zip(seconds[:n], letters, strict=False)):
        if isinstance(value, int | float) and letter in SOURCE_OF_LETTER:
            found[i] = (float(value), SOURCE_OF_LETTER[letter])
    return found
