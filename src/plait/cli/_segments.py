"""A task's bars on the timeline, and how the store's records become them.

A *segment* is one bar: an attempt (from its start to the event that ended it, or to the
question it stopped to ask), a wait for a person's answer, or a point-in-time marker (skipped,
cancelled before it started). :func:`_segments_from_events` replays a run's event log into each
task's segments; attempts still open when a run starts again (a resume after a crash) or when the
log ends (a run that is not live) were lost with their process. Without an event log (the memory
store), :func:`_segments_from_records` gives each task one attempt segment, from its first start
to its last end. A skipped task keeps why, in words (``_Task.skip_note``).

``_timeline`` puts the tasks together into a run (``_Run``); the report draws them.

(The module is private; its names keep their underscores, as the report imports them.)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, cast

from .._results import TaskError
from .._rules import skip_note
from .._state import TaskStatus
from ..stores import EventRecord, InputRequest, TaskRecord
from ._mapped import deciding_task

__all__ = [
    "_LOOK_OF",
    "_ORDER",
    "_Look",
    "_Segment",
    "_Task",
    "_css_status",
    "_error_line",
    "_segments_from_events",
    "_segments_from_records",
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
