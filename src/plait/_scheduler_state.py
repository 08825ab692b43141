"""The scheduler's state: what :class:`plait._scheduler.Scheduler` knows of each task.

The scheduler is this state and one part per concern, each in a module of its own (mixins over
:class:`_SchedulerState`, so that every part reads and changes the same fields, as the run is split
over ``_run_state``):

- ``_scheduler.py``: the reports the engine makes (``succeed``, ``fail``...) and ``take``;
- ``_scheduler_decisions.py``: counting a finished task for its dependents, asking their rules,
  and the ready queues;
- ``_scheduler_mapping.py``: mapped tasks -- expanding one into its instances, finishing it;
- ``_scheduler_behind.py``: tasks queued behind running ones, for executors that pipeline.

What each field means is told in ``_scheduler``'s docstring (the design); the slots are declared
here, once, and the parts declare none. The steps one part calls in another are named at the end
of :class:`_SchedulerState`, for type checkers only; each is defined by exactly one part.
"""

from __future__ import annotations

import sys
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING

from ._graph import Graph
from ._state import SkipCause, TaskStatus

__all__: list[str] = []

_NOT_EXPANDED = -1

_UNLIMITED = sys.maxsize
# Statuses as constants: a member read off its enum class costs a tenth of a microsecond, and
# these are read once per task.
PENDING = TaskStatus.PENDING
RUNNING = TaskStatus.RUNNING
SUCCEEDED = TaskStatus.SUCCEEDED
FAILED = TaskStatus.FAILED
SKIPPED = TaskStatus.SKIPPED
CANCELLED = TaskStatus.CANCELLED
WAITING = TaskStatus.WAITING_FOR_INPUT
UPSTREAM_FAILED = SkipCause.UPSTREAM_FAILED
SKIPPED_BY_TASK = SkipCause.SKIPPED_BY_TASK

# Which count a finished dependency adds to (see ``_scheduler``'s docstring).
_SUCCEEDED, _FAILED, _UPSTREAM_FAILED, _SKIPPED = range(4)


class _SchedulerState:
    """The scheduler's fields, by task index (see ``_scheduler``'s docstring), and how they
    start."""

    __slots__ = (
        "_ahead",
        "_behind",
        "_cleanup",
        "_counts",
        "_decides_on_success",
        "_free",
        "_graph",
        "_held",
        "_lane_free",
        "_lane_limit",
        "_lane_of",
        "_left",
        "_limit",
        "_lined",
        "_maps",
        "_missing",
        "_open",
        "_pool_free",
        "_pool_limit",
        "_queue_lane",
        "_queue_of",
        "_queue_pool",
        "_queued",
        "_ready",
        "_rules",
        "_single_queue",
        "_size",
        "_start_ready",
        "_total",
        "cleanup_halted",
        "graph",
        "halted",
        "ready",
        "skip_cause",
        "status",
        "unfinished",
        "waiting",
    )

    def __init__(
        self,
        graph: Graph,
        max_concurrency: int,
        pool_limits: Mapping[str, int] | None = None,
        *,
        lanes: Sequence[int] | None = None,
        lane_limits: Sequence[int] = (),
    ) -> None:
        """Every task starts pending.

        Args:
            graph: the compiled graph.
            max_concurrency: the most tasks running at once.
            pool_limits: slots of each named pool.
            lanes: each task's lane (its executor's implicit pool; 0: none), by index.
            lane_limits: the slots of lanes 1, 2, ...

        Raises:
            ValueError: a task's lane has no limit in ``lane_limits``.
        """
        pool_limits = pool_limits or {}
        # A workflow with mapped tasks grows: the scheduler works on the run's own copy.
        self.graph = self._graph = graph = graph.for_run() if not graph.growable else graph
        self._size = len(graph)  # the workflow's tasks; instances come after them
        self._total = len(graph)  # every task, instances included
        self.status = [PENDING] * len(graph)
        self.unfinished = len(graph)
        self.halted = False
        self.cleanup_halted = False  # a halt cancelled the cleanup tasks too (second interrupt)
        self._missing = [len(d) for d in graph.dependencies]
        # succeeded, failed, upstream-failed, skipped dependencies: one list per kind
        self._counts = ([0] * len(graph), [0] * len(graph), [0] * len(graph), [0] * len(graph))
        # Whether a success may decide the task's rule while other dependencies still run: if
        # not, a success asks the rule only when it was the last dependency to finish.
        self._decides_on_success = graph.decides_on_success
        self._open = [True] * len(graph)
        self._rules = graph.rules
        self._cleanup = graph.cleanup
        self.skip_cause: list[SkipCause | None] = [None] * len(graph)
        # Ready, but not into a ready queue: waiting for input (hold), or a mapped task, to expand.
        self._held = [False] * len(graph)
        self.waiting = 0
        self._maps = graph.mapped
        # By task: how many of a mapped task's instances have not finished (-1: not expanded),
        # and the line of its ready instances (see the module docstring).
        self._left: list[int] = []
        self._lined: list[deque[int] | None] = []
        if graph.mapped:
            self._left = [_NOT_EXPANDED] * len(graph)
            self._lined = [None] * len(graph)
            for i, u in enumerate(graph.map_over):
                if u >= 0:
                    self._held[i] = True
        self._lane_free = [_UNLIMITED, *lane_limits]
        self._lane_limit = list(self._lane_free)
        if lanes is None or not any(lanes):
            self._lane_of: Sequence[int] = [0] * len(graph) if lanes is None else list(lanes)
            self._queue_of: Sequence[int] = graph.pool_of
            self._queue_pool = list(range(len(graph.pool_names)))
            self._queue_lane = [0] * len(graph.pool_names)
        else:
            if len(lanes) != len(graph) or not all(
                0 <= lane < len(self._lane_free) for lane in lanes
            ):
                raise ValueError(
                    f"lanes must give each of the {len(graph)} tasks a lane in 0.."
                    f"{len(lane_limits)}, not {list(lanes)!r}"
                )
            queues: dict[tuple[int, int], int] = {(0, 0): 0}
            pool_of = graph.pool_of
            self._lane_of = list(lanes)
            self._queue_of = [
                queues.setdefault((pool_of[i], lanes[i]), len(queues)) for i in range(len(graph))
            ]
            self._queue_pool = [pool for pool, _ in queues]
            self._queue_lane = [lane for _, lane in queues]
        self._ready: list[list[int]] = [[] for _ in self._queue_pool]
        # The keys ready at the start, sorted, smallest last: popped in O(1) (see _scheduler).
        self._start_ready: list[list[int]] = [[] for _ in self._queue_pool]
        self._queued = [False] * len(graph)  # in a ready queue (and not cancelled there)
        self.ready = 0
        self._pool_limit = [
            _UNLIMITED if name is None else pool_limits.get(name, _UNLIMITED)
            for name in graph.pool_names
        ]
        self._pool_free = list(self._pool_limit)
        self._single_queue = len(self._queue_pool) == 1
        self._limit = max_concurrency
        self._free = max_concurrency
        # Tasks queued behind running ones (see _scheduler_behind): by the running task, and by
        # the queued one.
        self._behind: dict[int, int] = {}
        self._ahead: dict[int, int] = {}

    # -- the steps each part calls in another (defined in the module named) -------------------

    if TYPE_CHECKING:

        def _kind(self, i: int) -> int: ...  # _scheduler_decisions

        def _count(  # _scheduler_decisions
            self, i: int, kind: int, decided: list[int], stack: list[int]
        ) -> None: ...

        def _cascade(  # _scheduler_decisions
            self, decided: list[int], stack: list[int]
        ) -> None: ...

        def _decide(  # _scheduler_decisions
            self, i: int, decided: list[int], stack: list[int]
        ) -> None: ...

        def _leave(self, i: int) -> None: ...  # _scheduler_decisions

        def _push(self, i: int) -> None: ...  # _scheduler_decisions

        def _head(self, queue: int) -> int: ...  # _scheduler_decisions

        def _pop_key(self, queue: int, key: int) -> int: ...  # _scheduler_decisions

        def _misuse(self, i: int, expected: str) -> ValueError: ...  # _scheduler_inspection

        def _is_mapped(self, i: int) -> bool: ...  # _scheduler_mapping

        def _ready_behind(self, i: int) -> Iterable[int]: ...  # _scheduler_mapping

        def _pop_instance(self, p: int, heap: list[int]) -> int: ...  # _scheduler_mapping

        def _hand_over(self, i: int) -> bool: ...  # _scheduler_behind

        def _unqueue(self, j: int) -> None: ...  # _scheduler_behind

        def _instance_done(  # _scheduler_mapping
            self, j: int, decided: list[int], stack: list[int]
        ) -> None: ...
