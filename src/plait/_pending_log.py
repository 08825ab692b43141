"""What a run told its recorder since the last batch: the engine's side of ``_recorder.py``.

The engine journals every event here while it holds its lock (see ``plait._events.Journal``);
the recorder's writer thread takes what gathered, under the same lock, once per batch
(:meth:`PendingLog.take`). The engine's side is kept as short as it can be, because it runs
twice per task on the engine's thread: a task's start is kept aside, not logged, and its
success is one row that holds the start's time. Everything else is worked out when the batch is
taken, on the writer's thread:

- a start whose attempt is still running when the batch is taken becomes a ``TaskStarted`` row
  of its own, at its place in the log (so the log of a run that crashed shows what was in
  flight); the success of such an attempt, in a later batch, is a row without a start;
- the duration of each succeeded attempt, for learned estimates (``plait._estimates``): its end
  less its start, less the time it waited for answers (see ``TaskDuration``); an instance of a
  mapped task counts for its mapped task (:class:`~plait._estimates.InstanceSamples`).

Measured on Part 3 of ``make bench``'s workload (10,000 async no-op tasks in chains of 10,
SQLite store; the engine thread's CPU time while the run goes, median of 10, against the same
with a journal that does nothing): the journal cost the engine 3.0 µs per task when a start was
a row folded later, every change marked a task and a success was timed at once (81 against
51 ms); 1.0 µs this way (57 against 47 ms).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from ._estimates import InstanceSamples
from ._events import Event, InputReceived, InputRequested, TaskReady, TaskStarted, TaskSucceeded
from ._run_records import ATTEMPT_ENDS, Logged, request_of
from ._serialization import Serializer
from .stores import InputRequest

__all__ = ["PendingLog", "Taken"]

#: (task id, seconds, finished at) of a succeeded attempt, in the order attempts finished.
Timed = tuple[str, float, float]


class Taken:
    """One batch's share of the log: its ``events`` (rows in the order they happened), the ids
    of the tasks whose record it must write (``changed``), the ``requests`` to record
    (questions asked, answers given), and the durations it taught (:meth:`timed`, worked out
    when asked, off the engine's lock)."""

    __slots__ = ("_apart", "_ended", "_log", "changed", "events", "requests")

    def __init__(
        self,
        log: PendingLog,
        events: list[Logged],
        changed: dict[str, None],
        requests: list[InputRequest],
        apart: dict[int, float | None],
    ) -> None:
        self._log = log
        self.events = events
        self._ended = events  # the rows before the starts of running attempts were added
        self.changed = changed
        self.requests = requests
        self._apart = apart

    def timed(self) -> list[Timed]:
        """How long each attempt that succeeded in this batch ran (see the module docstring).

        Runs on the writer's thread, in batch order (instances are sampled in the order they
        finished)."""
        functions = self._log.functions
        if functions is None:
            return []
        apart = self._apart
        sampled = self._log.sampled
        timed = []
        for place, (kind, at, task_id, _, started) in enumerate(self._ended):
            if kind is not TaskSucceeded:
                continue
            # A success holds its start unless its duration was worked out apart.
            seconds = apart[place] if apart and place in apart else at - started  # type: ignore[operator]
            if seconds is None:
                continue
            learned_as: str | None = task_id
            if task_id not in functions:  # an instance: learned as its mapped task
                learned_as = sampled.sample(task_id)  # type: ignore[arg-type]
            if learned_as is not None:
                timed.append((learned_as, seconds if seconds > 0.0 else 0.0, at))
        return timed


class PendingLog:
    """The events a run journaled since its last batch (see the module docstring).

    Its two entry points are called by the engine under its lock; :meth:`take` by the
    recorder's writer under the same lock. ``functions`` maps each task id to its function's
    name, to learn durations (None: learn none); ``wake`` is called, once, at the first change
    after :attr:`quiet` was set (the writer found nothing to write: a change that follows a
    quiet spell is written at once). A question's default is stored as ``serializer`` makes it.
    """

    def __init__(
        self,
        functions: Mapping[str, str] | None,
        wake: Callable[[], object],
        serializer: Serializer | None = None,
    ) -> None:
        self.functions = functions
        self._serializer = serializer
        self.sampled = InstanceSamples()  # used by Taken.timed, on the writer's thread
        #: Set by the writer when it found nothing to write; the next change wakes it.
        self.quiet = False
        self._wake = wake
        self._events: list[Logged] = []
        # The attempts started since the last batch and still running: task id -> (the place
        # of the start in the log, its time, the attempt's number).
        self._running: dict[str, tuple[int, float, int]] = {}
        # The starts of attempts that told something else before they ended (a question):
        # rows of their own, as those still running when a batch is taken.
        self._pinned: list[tuple[str, tuple[int, float, int]]] = []
        self._changed: dict[str, None] = {}  # task ids whose record must be written
        #: The requests to record, in order: questions asked (by the engine, through the
        #: journal) and answers given (the recorder adds them, under the lock).
        self.requests: list[InputRequest] = []
        # A succeeded attempt's duration worked out at once (by place in ``_events``; None:
        # none to learn): one that began before the last batch, or waited for answers.
        self._apart: dict[int, float | None] = {}
        # For those: the starts of attempts still running when a batch was taken, and the
        # questions asked and the time spent waiting for answers, by task id.
        self._began: dict[str, float] = {}
        self._asked: dict[str, float] = {}
        self._waited: dict[str, float] = {}

    def __call__(
        self, kind: type[Event], at: float, task_id: str | None, data: dict[str, Any]
    ) -> None:
        """Journal (see ``plait._events.Journal``): queue the event and mark the task it
        changed (a task's start and success: :meth:`attempt`)."""
        if kind is TaskReady:  # derivable (a task is ready when its last dependency succeeds)
            return
        if kind is TaskStarted or kind is TaskSucceeded:
            assert task_id is not None  # a task's event
            self.attempt(kind, at, task_id, data["attempt"])
            return
        started = None
        if task_id is not None:
            self._changed[task_id] = None
            start = self._running.pop(task_id, None)
            if start is not None:
                if kind in ATTEMPT_ENDS:
                    started = start[1]  # folded into this row
                else:  # e.g. it asks a question: its start keeps a row of its own, before this
                    self._pinned.append((task_id, start))
                    if self.functions is not None:
                        self._began[task_id] = start[1]
            if kind is InputRequested:
                self.requests.append(request_of(data["question"], self._serializer))
            if self.functions is not None:
                self._time(kind, at, task_id)
        self._events.append((kind, at, task_id, data, started))
        if self.quiet:
            self.quiet = False
            self._wake()

    def attempt(self, kind: type[Event], at: float, task_id: str, number: int) -> None:
        """Attempt journal (see ``plait._events.AttemptJournal``): a task's start or its
        success (``kind``) of attempt ``number``. Twice per task, on the engine's thread."""
        if kind is TaskStarted:
            self._running[task_id] = (len(self._events), at, number)
            self._changed[task_id] = None
            if self._began or self._waited:  # left by an earlier attempt
                self._began.pop(task_id, None)
                self._waited.pop(task_id, None)
        else:  # TaskSucceeded
            start = self._running.pop(task_id, None)
            if start is None or self._waited:
                self._succeeded_apart(at, task_id, number, start)
            else:
                self._events.append((kind, at, task_id, number, start[1]))
        if self.quiet:
            self.quiet = False
            self._wake()

    def _succeeded_apart(
        self, at: float, task_id: str, number: int, start: tuple[int, float, int] | None
    ) -> None:
        """A success whose duration is worked out now: its attempt began before the last
        batch (its start is a row of its own there), or waited for answers."""
        began = self._began.pop(task_id, None) if start is None else start[1]
        waited = self._waited.pop(task_id, 0.0) if self._waited else 0.0
        self._changed[task_id] = None
        self._apart[len(self._events)] = None if began is None else at - began - waited
        self._events.append((TaskSucceeded, at, task_id, number, None if start is None else began))

    def _time(self, kind: type[Event], at: float, task_id: str) -> None:
        """Keep what a duration needs as attempts that did not succeed end, and as questions
        are asked and answered inside an attempt."""
        if kind in ATTEMPT_ENDS:
            self._began.pop(task_id, None)
            self._waited.pop(task_id, None)
        elif kind is InputRequested:
            self._asked[task_id] = at
        elif kind is InputReceived:
            asked = self._asked.pop(task_id, None)
            if asked is not None and (task_id in self._running or task_id in self._began):
                self._waited[task_id] = self._waited.get(task_id, 0.0) + at - asked

    def take(self) -> Taken:
        """What gathered since the last batch; under the engine's lock.

        The starts of attempts still running go into the log at their places, and are kept
        (their times) for the durations of those attempts."""
        events, running, pinned = self._events, self._running, self._pinned
        taken = Taken(self, events, self._changed, self.requests, self._apart)
        self._events, self._running, self._changed, self.requests = [], {}, {}, []
        self._pinned, self._apart = [], {}
        if running:
            if self.functions is not None:
                for task_id, (_, at, _) in running.items():
                    self._began[task_id] = at
            pinned += running.items()
        if pinned:
            taken.events = _with_starts(events, pinned)
        return taken


def _with_starts(
    events: list[Logged], starts: list[tuple[str, tuple[int, float, int]]]
) -> list[Logged]:
    """``events`` with a ``TaskStarted`` row for each of ``starts``, at its place."""
    starts.sort(key=_place)  # at one place (no other event between them): by their times
    rows: list[Logged] = []
    done = 0
    for task_id, (place, at, number) in starts:
        rows += events[done:place]
        rows.append((TaskStarted, at, task_id, number, None))
        done = place
    rows += events[done:]
    return rows


def _place(start: tuple[str, tuple[int, float, int]]) -> tuple[int, float]:
    return start[1][0], start[1][1]
