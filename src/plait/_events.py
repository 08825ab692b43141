"""Typed events: what happens during a run, for progress displays, storage and monitoring.

Subscribers are callables registered with a run (``plait.run(wf, subscribers=[print])``). They
are called one at a time, in the order things happened, from whichever thread made the change (the
event loop or a worker thread), while the engine holds its lock: keep them quick, and hand slow
work to a queue. An exception in a subscriber is logged and does not disturb the run. With no
subscribers, no event object is ever built.

Every event carries ``run_id`` and ``time`` (Unix time); task events carry ``task_id``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from ._pause import Question
from ._public import publish_exports
from ._results import TaskError
from ._state import RunStatus, SkipCause

__all__ = [
    "AttemptJournal",
    "Event",
    "InputReceived",
    "InputRequested",
    "Journal",
    "RunFinished",
    "RunStarted",
    "Subscriber",
    "TaskCancelled",
    "TaskEvent",
    "TaskFailed",
    "TaskLogged",
    "TaskMapped",
    "TaskReady",
    "TaskRetrying",
    "TaskSkipped",
    "TaskStarted",
    "TaskSucceeded",
]

_log = logging.getLogger("plait.events")


@dataclass(frozen=True, slots=True, kw_only=True)
class Event:
    """Something that happened in a run."""

    run_id: str
    time: float


@dataclass(frozen=True, slots=True, kw_only=True)
class RunStarted(Event):
    """The run began: ``tasks`` tasks of workflow ``workflow``."""

    workflow: str
    tasks: int


@dataclass(frozen=True, slots=True, kw_only=True)
class RunFinished(Event):
    """The run ended with ``status``; ``error`` says why if it did not succeed."""

    status: RunStatus
    error: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class TaskEvent(Event):
    """Something that happened to one task."""

    task_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class TaskReady(TaskEvent):
    """Every dependency of the task succeeded; it waits for a slot."""


@dataclass(frozen=True, slots=True, kw_only=True)
class TaskMapped(TaskEvent):
    """The mapped task expanded into ``count`` instances, ``task_id[0]`` to
    ``task_id[count - 1]`` (each then has the events of any task); it finishes with the last."""

    count: int


@dataclass(frozen=True, slots=True, kw_only=True)
class TaskStarted(TaskEvent):
    """Attempt number ``attempt`` (1-based) of the task started."""

    attempt: int


@dataclass(frozen=True, slots=True, kw_only=True)
class TaskSucceeded(TaskEvent):
    """Attempt ``attempt`` returned; the task succeeded."""

    attempt: int


@dataclass(frozen=True, slots=True, kw_only=True)
class TaskRetrying(TaskEvent):
    """Attempt ``attempt`` failed with ``error``; the next starts after ``delay`` seconds."""

    attempt: int
    error: TaskError
    delay: float


@dataclass(frozen=True, slots=True, kw_only=True)
class TaskFailed(TaskEvent):
    """Attempt ``attempt`` failed with ``error`` and no retry is left: the task failed."""

    attempt: int
    error: TaskError


@dataclass(frozen=True, slots=True, kw_only=True)
class TaskSkipped(TaskEvent):
    """The task will not run: ``skip_cause`` says why (a :class:`~plait.SkipCause`), and
    ``cause`` is the task whose end decided it -- upstream of it (a dependency, or one of
    theirs), or the task itself when it raised ``plait.Skip``."""

    cause: str
    skip_cause: SkipCause = SkipCause.UPSTREAM_FAILED


@dataclass(frozen=True, slots=True, kw_only=True)
class TaskCancelled(TaskEvent):
    """The run stopped before the task finished; ``attempt`` is the last attempt it made (0 if
    it never started)."""

    attempt: int


@dataclass(frozen=True, slots=True, kw_only=True)
class InputRequested(TaskEvent):
    """The task waits for a person's answer to ``question``; it holds no slot meanwhile."""

    question: Question


@dataclass(frozen=True, slots=True, kw_only=True)
class InputReceived(TaskEvent):
    """An answer to the task's question ``key`` arrived (it was valid)."""

    key: str


@dataclass(frozen=True, slots=True, kw_only=True)
class TaskLogged(TaskEvent):
    """Attempt ``attempt`` said ``text`` on ``stream`` (``stdout``, ``stderr``, ``log`` or
    ``plait``; see :class:`plait.LogLine`); ``echoed`` when it was also written to the process's
    own stdout or stderr (a ``print``), so a watcher need not show it twice.

    Sent to subscribers only (the store keeps the attempt's log as a whole): a line a task
    says while no subscriber listens costs no event."""

    attempt: int
    number: int
    stream: str
    text: str
    echoed: bool = False


Subscriber = Callable[[Event], object]

#: How the store's recorder hears of events: the event's class, time, task id (None for run
#: events) and other fields, with no :class:`Event` object built -- the recorder turns them into
#: log rows, and a durable run emits two events per task.
Journal = Callable[[type[Event], float, str | None, dict[str, Any]], object]

#: A journal's path for the two events of every task, :class:`TaskStarted` and
#: :class:`TaskSucceeded`: their class, time, task id and attempt number, positional -- no
#: fields' dict built, the engine's whole cost of a task's events when no subscriber listens
#: (see ``_RunState._emit_attempt``). It records what :data:`Journal` records of the same event.
AttemptJournal = Callable[[type[Event], float, str, int], object]


def publish(subscribers: Sequence[Subscriber], event: Event) -> None:
    """Give ``event`` to every subscriber; a subscriber's exception is logged, not raised."""
    for subscriber in subscribers:
        try:
            subscriber(event)
        except Exception:
            _log.exception("event subscriber %r failed on %r", subscriber, event)


publish_exports(globals())  # plait.X, not plait._events.X: see plait._public
