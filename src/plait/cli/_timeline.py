"""The timeline of a stored run: what each task's attempts did, and when, replayed from the store.

:meth:`_Run.load` reads a run's record, task records, questions, event log and task logs, and
replays the log into *segments*, one list per task: an attempt (from its start to the event that
ended it, or to the question it stopped to ask), a wait for a person's answer, or a
point-in-time marker (skipped, cancelled before it started). Attempts still open when a run
starts again (a resume after a crash) or when the log ends (a run that is not live) were lost
with their process. Without an event log (the memory store), each task has one attempt segment,
from its first start to its last end.

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
from typing import Any, Literal, cast

from .._estimates import SOURCE_OF_LETTER
from .._graph import instance_id
from .._logs import LogLine
from .._results import TaskError
from .._rules import skip_note
from .._state import RunStatus, TaskStatus
from ..stores import EventRecord, InputRequest, RunRecord, Store, TaskRecord
from ._mapped import (
    deciding_task,
    figure_dependencies,
    group_look,
    instance_of,
    path_weights,
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


#: What a bar of the timeline stands for.
_Kind = Literal["attempt", "waiting", "marker"]

#: How a bar or a node looks: its CSS class is ``status-<look>``. A task's status gives its look
#: (``waiting_for_input`` looks ``waiting``); attempts add ``suspended`` (stopped to ask for
#: input) and ``interrupted`` (lost when the run's process stopped).
_Look = Literal[
    "succeeded",
    "failed",
    "cancelled",
    "skipped",
    "waiting",
    "running",
    "pending",
    "suspended",
    "interrupted",
]


#: The order of the statuses in the header's counts and the timeline's filter.
_ORDER: tuple[_Look, ...] = (
    "succeeded",
    "failed",
    "cancelled",
    "skipped",
    "waiting",
    "running",
    "pending",
)


@dataclass(slots=True)
class _Segment:
    """One bar of the timeline: an attempt, a wait for input, or a point-in-time marker."""

    kind: _Kind
    status: _Look
    start: float
    end: float
    attempt: int = 0
    note: str = ""  # the error's line, the question, or why the task was skipped
    retried: bool = False  # a failed attempt that was followed by a retry

    @property
    def duration(self) -> float:
        return max(0.0, self.end - self.start)


@dataclass(slots=True)
class _Task:
    id: str
    index: int
    depends_on: tuple[str, ...]
    status: TaskStatus
    attempts: int = 0
    error: TaskError | None = None
    segments: list[_Segment] = field(default_factory=list)
    critical: bool = False
    #: What the scheduler weighed the task by, and where that came from (``given``, ``learned``
    #: or ``function``; see plait._estimates); None when it was unknown.
    estimate: tuple[float, str] | None = None
    #: Why a skipped task was skipped, in words (see ``plait._rules.skip_note``); "" otherwise.
    skip_note: str = ""
    #: A mapped task: its instances are ``_Run.instances[id]``. (Its look is theirs, summed up,
    #: when the store holds no record of the task as a whole.)
    mapped: bool = False
    #: An instance: the mapped task it belongs to (its ``index`` is its item's).
    parent: str | None = None

    @property
    def css(self) -> _Look:
        return _LOOK_OF[self.status]

    @property
    def work(self) -> float:
        """Seconds the task's attempts ran, together."""
        return sum(s.duration for s in self.segments if s.kind == "attempt")

    @property
    def first_start(self) -> float | None:
        starts = [s.start for s in self.segments if s.kind != "marker"]
        return min(starts) if starts else None


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


def _css_status(status: TaskStatus) -> _Look:
    return _LOOK_OF[status]


_LOOK_OF: Mapping[TaskStatus, _Look] = {
    status: "waiting" if status is TaskStatus.WAITING_FOR_INPUT else cast(_Look, status.value)
    for status in TaskStatus
}


def _task_error(value: Any) -> TaskError | None:
    if not isinstance(value, Mapping):
        return None
    return TaskError(
        type=str(value.get("type", "")),
        message=str(value.get("message", "")),
        traceback=str(value.get("traceback") or ""),
    )


def _error_line(error: TaskError | None) -> str:
    """The error as the last line of its traceback reads: ``Type: message``, on one line."""
    if error is None:
        return ""
    line = " ".join(str(error).split())
    return line if len(line) <= 240 else line[:239] + "\u2026"


#: How each event that ends an attempt colours it.
_ENDS: dict[str, _Look] = {
    "TaskSucceeded": "succeeded",
    "TaskRetrying": "failed",
    "TaskFailed": "failed",
    "TaskCancelled": "cancelled",
}

_LOST = "the run's process stopped before this attempt ended"


def _segments_from_events(
    tasks: Mapping[str, _Task], events: Sequence[EventRecord], run_end: float, *, live: bool
) -> None:
    """Replay the event log into each task's bars.

    An attempt runs from ``TaskStarted`` to the event that ends it (or to the question it stops
    to ask); an attempt logged as one row has its start in the ending event's ``started``. A
    wait runs from ``InputRequested`` to ``InputReceived`` or to the attempt that starts with
    the answer. Attempts still open when a run starts again (a resume after a crash) or when the
    log ends (a run that is not live) were lost with their process.
    """
    running: dict[str, _Segment] = {}
    waiting: dict[str, _Segment] = {}
    previous = events[0].time if events else run_end
    for event in events:
        kind, at = event.kind, event.time
        if kind == "RunStarted":
            for attempt in running.values():
                attempt.end, attempt.status, attempt.note = previous, "interrupted", _LOST
            running.clear()
        previous = at
        task = tasks.get(event.task_id) if event.task_id is not None else None
        if task is None:
            continue
        data = event.data
        if kind == "TaskStarted":
            _start(task, at, data, running, waiting)
        elif kind in _ENDS:
            started = data.get("started")
            if isinstance(started, int | float):  # an attempt logged as one row
                _start(task, started, data, running, waiting)
            _close(waiting, task.id, at)
            ended = running.pop(task.id, None)
            if ended is not None:
                ended.end, ended.status = at, _ENDS[kind]
                ended.retried = kind == "TaskRetrying"
                ended.note = _error_line(_task_error(data.get("error")))
            elif kind == "TaskCancelled":  # before it started, or while it waited
                task.segments.append(_Segment("marker", "cancelled", at, at, note=_UNSTARTED))
        elif kind == "TaskSkipped":
            cause = deciding_task(task.id, str(data.get("cause", "")))
            reason = skip_note(data.get("skip_cause"), cause)
            task.skip_note = reason
            note = f"skipped: {reason}"
            ended = running.pop(task.id, None)
            if ended is not None:  # the attempt skipped itself (raise plait.Skip)
                ended.end, ended.status, ended.note = at, "skipped", note
            else:
                task.segments.append(_Segment("marker", "skipped", at, at, note=note))
        elif kind == "InputRequested":
            asked = running.pop(task.id, None)
            if asked is not None:  # the attempt stopped to ask (ctx.request_input)
                asked.end, asked.status, asked.note = at, "suspended", "stopped to ask for input"
            if task.id not in waiting:  # a resumed run asks its open questions again
                question = data.get("question")
                prompt = question.get("prompt", "") if isinstance(question, Mapping) else ""
                wait = _Segment("waiting", "waiting", at, at, note=str(prompt))
                waiting[task.id] = wait
                task.segments.append(wait)
        elif kind == "InputReceived":
            answered = _close(waiting, task.id, at)
            if answered is not None:
                answered.note += " (answered)"
    for attempt in running.values():
        attempt.end = max(attempt.start, run_end)
        if not live:
            attempt.status, attempt.note = "interrupted", _LOST
    for wait in waiting.values():
        wait.end = max(wait.start, run_end)


_UNSTARTED = "cancelled (not started)"


def _start(
    task: _Task,
    at: float,
    data: Mapping[str, Any],
    running: dict[str, _Segment],
    waiting: dict[str, _Segment],
) -> None:
    """Open the bar of the attempt ``data`` names, started at ``at`` (ending any wait)."""
    _close(waiting, task.id, at)
    attempt = _Segment("attempt", "running", at, at, attempt=int(data.get("attempt", 0)))
    running[task.id] = attempt
    task.segments.append(attempt)


def _close(open_segments: dict[str, _Segment], task_id: str, at: float) -> _Segment | None:
    """End the task's open segment (if any) at ``at``; return it."""
    segment = open_segments.pop(task_id, None)
    if segment is not None:
        segment.end = at
    return segment


def _segments_from_records(
    tasks: Mapping[str, _Task],
    stored: Mapping[str, TaskRecord],
    requests: Sequence[InputRequest],
    run_end: float,
) -> None:
    """Without an event log: one bar per task, from its first start to its last end."""
    for request in requests:
        task = tasks.get(request.task_id)
        if task is not None:
            end = request.answered_at if request.answered_at is not None else run_end
            task.segments.append(
                _Segment("waiting", "waiting", request.requested_at, end, note=request.prompt)
            )
    for task_id, task_record in stored.items():
        task = tasks.get(task_id)
        if task is None:
            continue
        if task_record.started_at is None:
            if task.status is TaskStatus.SKIPPED and task_record.finished_at is not None:
                note = f"skipped: {skip_note(task_record.skip_cause)}"
                at = task_record.finished_at
                task.segments.append(_Segment("marker", "skipped", at, at, note=note))
            continue
        end = task_record.finished_at if task_record.finished_at is not None else run_end
        status: _Look = task.css if task.status.is_final else "running"
        if task.status is TaskStatus.WAITING_FOR_INPUT:
            status = "suspended"  # it ran, then stopped to ask
        task.segments.append(
            _Segment(
                "attempt",
                status,
                task_record.started_at,
                max(end, task_record.started_at),
                attempt=task_record.attempts,
                note=_error_line(task_record.error),
            )
        )
        task.segments.sort(key=lambda s: s.start)


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
