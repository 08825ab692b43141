"""The state of one run, and what it tells as it changes: its events, its logs.

A run is one :class:`plait._engine._Run`, made of this state and of one part per concern, each in
a module of its own (mixins over :class:`_RunState`, so that every part reads and changes the
same fields under the same lock):

- ``_engine.py``: the life cycle, and dispatch (what starts, where it runs);
- ``_attempts.py``: an attempt -- how it is called, and settled (succeed, retry after a backoff,
  fail, cancel);
- ``_deadlines.py``: timeouts, the cancel grace period, and the gate of a durable run's lease;
- ``_questions.py``: asking for input, expiring questions, receiving answers;
- ``_stopping.py``: halting (a critical failure, ``fail_fast``, an interrupt, a failed store);
- ``_mapping.py``: expanding a mapped task into its instances, and finishing it;
- ``_restored.py``: where a resumed run starts from, put back into the columns as they are made;
- ``_run_results.py``: reading the state -- the run's result, a task's, the store's columns.

Per-task state is held in columns by task index. For a workflow with mapped tasks, ``graph`` is
the run's own copy (``Graph.for_run``), and every column grows by a mapped task's instances when
it expands (``_mapping``): an instance is a task like any other from then on.

The steps one part calls in another are named at the end of :class:`_RunState`, for type checkers
only; each is defined by exactly one part.

Threading: every change of run state happens under ``_RunState.lock``, from the loop thread or a
worker thread; loop-only calls (``create_task``, timers) reach the loop with
``call_soon_threadsafe``; ``in_loop`` says which thread a step runs in.
"""

from __future__ import annotations

import asyncio
import math
import threading
import time
from collections import deque
from collections.abc import Callable, Coroutine, Mapping, Sequence
from operator import attrgetter
from typing import TYPE_CHECKING, Any, Protocol

from ._config import EngineConfig
from ._events import (
    AttemptJournal,
    Event,
    Journal,
    Subscriber,
    TaskCancelled,
    TaskLogged,
    TaskSkipped,
    TaskStarted,
    TaskSucceeded,
    publish,
)
from ._graph import Graph
from ._log_capture import running_attempt
from ._logs import AttemptLog, LogLine
from ._pause import InputRequired, Question
from ._placement import _lanes, _place
from ._recorder import Recorder
from ._results import RunResult, TaskError, TaskResult
from ._scheduler import Scheduler
from ._serialization import Serializer
from ._state import TaskStatus
from ._workflow import Workflow
from .executors import Executor
from .executors._named import RunExecutors
from .stores import TaskRecordColumns

if TYPE_CHECKING:
    from ._attempt import _Attempt
    from ._mapping import RestoredInstance
    from ._restored import Restored

__all__: list[str] = []


# Read per task (see _decided, task_result): a member read off its enum class costs ~1k
# instructions.
_SUCCEEDED = TaskStatus.SUCCEEDED
_SKIPPED = TaskStatus.SKIPPED
_CANCELLED = TaskStatus.CANCELLED
_WAITING = TaskStatus.WAITING_FOR_INPUT


class AttemptScope(Protocol):
    """What is entered around each in-process call of a task's function, on the thread that
    calls it (a worker thread, or the event loop's task of an async attempt)."""

    def enter(self) -> object:
        """The call of an attempt begins (the attempt is the one that
        ``_log_capture.running_attempt`` names there); returns what :meth:`exit` takes."""

    def exit(self, token: object) -> None:
        """The call that :meth:`enter` began (which returned ``token``) ended."""

    def traceparent(self, task_id: str, attempt: int) -> str:
        """For an attempt shipped elsewhere: what names its span there (a W3C
        ``traceparent``)."""


class _RunState:
    """The state of one run; see the module docstring."""

    def __init__(
        self,
        workflow: Workflow,
        config: EngineConfig,
        run_id: str,
        subscribers: Sequence[Subscriber],
        *,
        wait_for_input: bool = False,
        serializer: Serializer | None = None,
        restored: Restored | None = None,
        graph: Graph | None = None,
        executors: Mapping[str, Executor] | None = None,
    ) -> None:
        # ``graph``: the workflow's, reordered by learned estimates (see plait._estimates).
        self.graph = graph = workflow.graph() if graph is None else graph
        self.config = config
        self.run_id = run_id
        self.subscribers = tuple(subscribers)
        self.journal: Journal | None = None  # the store's recorder, see keep_journal()
        self.attempt_journal: AttemptJournal | None = None  # its path for starts and successes
        #: Entered around each in-process call of a task function (the tracer's: it makes the
        #: attempt's span current, see plait._tracing); None costs nothing.
        self.attempt_scope: AttemptScope | None = None
        #: The attempt (of another run) whose function started this run, if one did: a trace
        #: of that run nests this one's spans under it (see plait._tracing).
        self.started_in = running_attempt.get()
        self.listening = bool(self.subscribers)  # whether anyone hears of events
        # TaskReady is the most frequent event and the store's recorder does not want it: it is
        # built only when a subscriber given by the caller may.
        self.announce_ready = bool(self.subscribers)
        self.lock = threading.Lock()
        # Where each task runs: None on the loop (an async task that names no executor).
        self.executors = RunExecutors(
            config.max_concurrency, executors or {}, cancel_grace=config.cancel_grace
        )
        self.executor_of: list[Executor | None]
        # Whether a task is an async function that an executor calls (under asyncio.run).
        self.async_off_loop: list[bool]
        self.executor_of, self.async_off_loop = _place(
            graph.options, self.executors, config.default_executor
        )
        # An executor's lane, by id: its capacity may change (see _Attempts.complete).
        self.lane_of_executor: dict[int, int]
        lanes, lane_limits, self.lane_of_executor = _lanes(
            self.executor_of, self.executors.in_use(), config.max_concurrency
        )
        self.scheduler = Scheduler(
            graph, config.max_concurrency, config.pools, lanes=lanes, lane_limits=lane_limits
        )
        # A workflow with mapped tasks: the run's own copy, which grows by their instances.
        self.graph = graph = self.scheduler.graph
        self._items: dict[int, Sequence[Any]] = {}  # each expanded mapped task's items
        self._restored_instances: dict[int, dict[int, RestoredInstance]] = {}
        n = len(graph)
        self.outputs: list[Any] = [None] * n
        self.errors: list[TaskError | None] = [None] * n
        self.attempts = [0] * n
        # Attempts made before this resume: retry budgets count from here, so a task that used
        # up its retries in an earlier process gets a full budget again.
        self.attempts_before = [0] * n
        self.started_at: list[float | None] = [None] * n
        self.finished_at: list[float | None] = [None] * n
        self.current: list[_Attempt | None] = [None] * n
        # Each task's own option, or the run's; most tasks have none of their own, which
        # attrgetter over the options sees without a Python-level step per task.
        specs, default_retry = graph.options, config.default_retry
        self.retry = (
            [spec.retry or default_retry for spec in specs]
            if any(map(attrgetter("retry"), specs))
            else [default_retry] * n
        )
        self.timeout = (
            [spec.timeout if spec.timeout is not None else config.task_timeout for spec in specs]
            if any(map(attrgetter("timeout"), specs))  # a task's own timeout is > 0
            else [config.task_timeout] * n
        )
        self.critical = (
            [spec.critical or config.fail_fast for spec in specs]
            if any(map(attrgetter("critical"), specs))
            else [config.fail_fast] * n
        )
        self.wait_for_input = wait_for_input
        # Whether a task a report made ready needs nothing more, when no one listens: not a
        # mapped task (it expands) nor one that waits for input (it asks). See _decided.
        self._plain_ready = not graph.mapped
        self.answers: list[dict[str, Any] | None] = [None] * n
        self.questions: dict[int, Question] = {}  # open questions; at most one per task
        self._question_schemas: dict[int, Any] = {}  # as given (e.g. a pydantic model)
        self._question_defaults: dict[int, Any] = {}
        self._question_timers: dict[int, asyncio.TimerHandle] = {}
        self._backoffs = 0  # failed attempts waiting out their backoff
        self.serializer = serializer
        # The memory store keeps outputs as they are: nothing to encode.
        self._encodes = serializer is not None and serializer.name != "object"
        # Some outputs are handles on values kept where they were made (a Dask worker's
        # memory; see executors._remote): read through `local` from then on. Set by complete().
        self.remote_outputs = False
        self.payloads: list[bytes | None] = [None] * n
        self.recorder: Recorder | None = None
        self.store_failure: BaseException | None = None  # what stopped the run (lease, store)
        # The gate (see the module docstring), on lease_clock; set by the recorder's thread.
        self.lease_deadline = math.inf
        self._stall = math.inf  # when the store call under way, if any, counts as stalled
        self.gate = math.inf
        self._holding = False  # new tasks wait for a stalled store call
        self._closed = False  # the run is over (_close)
        self._lease_timer: asyncio.TimerHandle | None = None
        self._succeeded_before: list[int] = []
        self._skipped_before: list[int] = []
        self.halted_by: int | None = None
        self.interrupted = False
        self.stop_reason: str | None = None  # why it was interrupted, for the run's error
        self.run_started_at = 0.0
        # Built on the loop that runs it, so stop() works from any thread from the start.
        self._loop: asyncio.AbstractEventLoop = asyncio.get_running_loop()
        self._new_task: Callable[[Coroutine[Any, Any, None]], asyncio.Task[None]]
        self._loop_thread = 0
        self._done: asyncio.Future[None]
        # Running attempts' deadlines: one queue per timeout length, so each is in deadline
        # order as attempts start (there are few lengths: the engine's and tasks' own).
        self._deadlines: dict[float, deque[tuple[float, _Attempt]]] = {}
        self._deadline_timer: asyncio.TimerHandle | None = None
        self._armed_deadline = math.inf
        self._grace_timer: asyncio.TimerHandle | None = None
        self._async_starts: list[_Attempt] = []
        self._log_lock = threading.Lock()  # makes each attempt's log once
        self.final_result: RunResult | None = None
        self.recorded = threading.Event()  # set once the run's end is in its store
        if restored is not None:
            self._restore(restored)

    # -- logs ----------------------------------------------------------------------------------

    def open_log(self, attempt: _Attempt) -> AttemptLog | None:
        """Make ``attempt``'s log, the first time it says something (any thread); None when
        the run keeps no logs (``max_log_bytes=0``)."""
        limit = self.config.max_log_bytes
        if not limit:
            return None
        with self._log_lock:
            if attempt.log is None:
                recorder = self.recorder
                attempt.log = AttemptLog(
                    self.graph.ids[attempt.index],
                    attempt.number,
                    limit=limit,
                    changed=None if recorder is None else recorder.log_changed,
                    said=self._publish_line if self.subscribers else None,
                )
            return attempt.log

    def _publish_line(self, line: LogLine, echoed: bool) -> None:
        """Tell the subscribers a task said ``line`` (from the thread that said it)."""
        token = running_attempt.set(None)  # what a subscriber prints is not the task's
        try:
            with self.lock:
                publish(
                    self.subscribers,
                    TaskLogged(
                        run_id=self.run_id,
                        time=line.time,
                        task_id=line.task_id,
                        attempt=line.attempt,
                        number=line.number,
                        stream=line.stream,
                        text=line.text,
                        echoed=echoed,
                    ),
                )
        finally:
            running_attempt.reset(token)

    # -- events --------------------------------------------------------------------------------

    def keep_journal(self, journal: Journal, attempt_journal: AttemptJournal) -> None:
        """Send every event to ``journal`` (the store's recorder, the tracer, the metrics) too,
        as plain fields; a task's start and success to ``attempt_journal``."""
        self.journal = journal
        self.attempt_journal = attempt_journal
        self.listening = True

    def _emit(self, kind: type[Event], task_id: str | None = None, **data: Any) -> None:
        """Tell the journal and the subscribers that ``kind`` happened (to ``task_id``)."""
        now = time.time()
        if self.journal is not None:
            self.journal(kind, now, task_id, data)
        if self.subscribers:
            if task_id is not None:
                data = {"task_id": task_id, **data}
            event = kind(run_id=self.run_id, time=now, **data)
            publish(self.subscribers, event)

    def _emit_attempt(
        self, kind: type[TaskStarted | TaskSucceeded], task_id: str, number: int
    ) -> None:
        """:meth:`_emit` of a task's start or success (``kind``: TaskStarted or TaskSucceeded)
        of attempt ``number``: the two events of every task, so their fields go positionally to
        the attempt journal and no dict is built unless a subscriber listens. A task's two
        events cost the engine's thread 0.65 µs through ``_emit``'s keywords and dict into the
        tracer's journal, 0.47 this way; 4.0-4.6 and 3.2-3.7 into the recorder's, the tracer's
        and the metrics' (thread CPU, best of 15 x 20,000 tasks)."""
        now = time.time()
        if self.attempt_journal is not None:
            self.attempt_journal(kind, now, task_id, number)
        if self.subscribers:
            publish(
                self.subscribers,
                kind(run_id=self.run_id, time=now, task_id=task_id, attempt=number),
            )

    def _decided(self, cause: int | None, decided: list[int], *, in_loop: bool) -> None:
        """Tell the world what a report to the scheduler decided: the tasks it skipped (``cause``
        is the task whose end decided them), cancelled (a halt) or made ready. Under the lock."""
        if not decided:
            return
        status = self.scheduler.status
        graph = self.graph
        ids = graph.ids
        maps = graph.mapped
        announce = self.announce_ready
        ready = []  # those that ask their question (waiting for input), or are announced
        for d in decided:
            now = status[d]
            if (
                maps
                and d < graph.size
                and graph.map_over[d] >= 0
                and (now is TaskStatus.RUNNING or d in graph.instances)
            ):
                self._mapped_decided(d, in_loop=in_loop)  # expands, or finished
                continue
            if now is _SKIPPED:
                if self.listening:
                    self._emit(
                        TaskSkipped,
                        task_id=ids[d],
                        cause=ids[d if cause is None else cause],
                        skip_cause=self.scheduler.skip_cause[d],
                    )
            elif now is _CANCELLED:
                if self.listening:
                    self._emit(TaskCancelled, task_id=ids[d], attempt=self.attempts[d])
            elif announce or now is _WAITING:
                ready.append(d)
        if ready:
            self._announce_ready(ready, in_loop=in_loop)

    # -- the steps each part calls in another (defined in the module named) -------------------

    if TYPE_CHECKING:

        def _dispatch(  # _engine
            self, *, in_loop: bool, for_worker: Executor | None = None, for_driver: bool = False
        ) -> _Attempt | None: ...

        def _resolve_if_finished(self, *, in_loop: bool) -> None: ...  # _engine

        def _cancel_async(self, attempt: _Attempt, *, in_loop: bool) -> None: ...  # _engine

        def _settle(self, attempt: _Attempt, *, in_loop: bool) -> None: ...  # _attempts

        def _abandon(self, attempt: _Attempt) -> None: ...  # _deadlines

        def _watch_deadline(  # _deadlines
            self, timeout: float, attempt: _Attempt, in_loop: bool
        ) -> None: ...

        def queue_behind(self, ahead: _Attempt) -> _Attempt | None: ...  # _pipelining

        def queued_began(self, attempt: _Attempt) -> None: ...  # _pipelining

        def _cancel_queued(self) -> None: ...  # _pipelining

        def _start_grace_timer(self, grace: float) -> None: ...  # _deadlines

        def _announce_ready(self, ready: list[int], *, in_loop: bool) -> None: ...  # _questions

        def _ask(self, i: int, request: InputRequired, *, in_loop: bool) -> None: ...  # _questions

        def _halt(self, *, in_loop: bool, cleanup: bool = True) -> None: ...  # _stopping

        def _mapped_decided(self, i: int, *, in_loop: bool) -> None: ...  # _mapping

        def _item(self, j: int) -> tuple[str, Any]: ...  # _mapping

        def _restore(self, restored: Restored) -> None: ...  # _restored

        def result(self) -> RunResult: ...  # _run_results

        def task_result(  # _run_results
            self, i: int, *, with_instances: bool = True
        ) -> TaskResult: ...

        def _can_only_wait(self) -> bool: ...  # _run_results

        def task_columns(  # _run_results
            self, task_ids: Sequence[str] | None = None
        ) -> TaskRecordColumns: ...
