"""Unit tests of the pure scheduler, driven step by step as the engine would drive it."""

from __future__ import annotations

import functools
import random
import re
import statistics
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, SupportsIndex

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_rules import reference_cause, reference_decision

from plait import Workflow
from plait._graph import Graph
from plait._rules import RUN, TriggerRule
from plait._scheduler import PoolStatistics, Scheduler
from plait._state import TASK_TRANSITIONS, SkipCause, TaskStatus

PENDING = TaskStatus.PENDING
RUNNING = TaskStatus.RUNNING
WAITING = TaskStatus.WAITING_FOR_INPUT
SUCCEEDED = TaskStatus.SUCCEEDED
FAILED = TaskStatus.FAILED
SKIPPED = TaskStatus.SKIPPED
CANCELLED = TaskStatus.CANCELLED

TaskDef = tuple[str, Sequence[str]]


def _noop() -> None:
    pass


def make_graph(
    tasks: Iterable[TaskDef], options: Mapping[str, Mapping[str, Any]] | None = None
) -> Graph:
    """A compiled graph of no-op tasks: ``(id, depends_on)`` pairs, plus options by task id."""
    options = options or {}
    wf = Workflow("test")
    for task_id, depends_on in tasks:
        wf.add_task(task_id, _noop, depends_on=depends_on, **options.get(task_id, {}))
    return wf.graph()


class CheckedStatus(list[TaskStatus]):
    """The scheduler's status list, checking every change against ``TASK_TRANSITIONS``."""

    def __init__(self, statuses: Iterable[TaskStatus], ids: Sequence[str]) -> None:
        super().__init__(statuses)
        self.ids = ids
        self.changes: list[tuple[str, TaskStatus, TaskStatus]] = []

    def __setitem__(self, index: Any, value: Any) -> None:
        assert isinstance(index, SupportsIndex), "the scheduler only sets one status at a time"
        old = self[index]
        if value is not old:
            self.changes.append((self.ids[index], old, value))
            assert value in TASK_TRANSITIONS[old], (
                f"task {self.ids[index]!r}: {old} -> {value} is not in TASK_TRANSITIONS"
            )
        super().__setitem__(index, value)


class Harness:
    """A scheduler spoken to by task id, with every status change checked."""

    def __init__(
        self, graph: Graph, max_concurrency: int = 4, pools: Mapping[str, int] | None = None
    ) -> None:
        self.graph = graph
        self.scheduler = Scheduler(graph, max_concurrency, pools)
        self.checked = CheckedStatus(self.scheduler.status, graph.ids)
        self.scheduler.status = self.checked

    def _ids(self, indices: Iterable[int]) -> list[str]:
        return [self.graph.ids[i] for i in indices]

    def _i(self, task_id: str) -> int:
        return self.graph.index[task_id]

    def start(self, succeeded: Iterable[str] = ()) -> list[str]:
        return self._ids(self.scheduler.start([self._i(t) for t in succeeded]))

    def take(self) -> str | None:
        i = self.scheduler.take()
        return None if i is None else self.graph.ids[i]

    def take_all(self) -> list[str]:
        taken = []
        while (task_id := self.take()) is not None:
            taken.append(task_id)
        return taken

    def succeed(self, task_id: str) -> list[str]:
        return self._ids(self.scheduler.succeed(self._i(task_id)))

    def fail(self, task_id: str) -> list[str]:
        return self._ids(self.scheduler.fail(self._i(task_id)))

    def retry(self, task_id: str) -> None:
        self.scheduler.retry(self._i(task_id))

    def requeue(self, task_id: str) -> bool:
        return self.scheduler.requeue(self._i(task_id))

    def cancel(self, task_id: str) -> list[str]:
        return self._ids(self.scheduler.cancel(self._i(task_id)))

    def halt(self, *, cleanup: bool = True) -> list[str]:
        return self._ids(self.scheduler.halt(cleanup=cleanup))

    def skip(self, task_id: str) -> list[str]:
        return self._ids(self.scheduler.skip(self._i(task_id)))

    def cause(self, task_id: str) -> SkipCause | None:
        return self.scheduler.skip_cause[self._i(task_id)]

    def hold(self, task_id: str) -> None:
        self.scheduler.hold(self._i(task_id))

    def suspend(self, task_id: str) -> None:
        self.scheduler.suspend(self._i(task_id))

    def answer(self, task_id: str) -> bool:
        return self.scheduler.answer(self._i(task_id))

    def status(self, task_id: str) -> TaskStatus:
        return self.scheduler.status[self._i(task_id)]

    def statuses(self) -> dict[str, TaskStatus]:
        return dict(zip(self.graph.ids, self.scheduler.status, strict=True))

    def run_serially(self) -> list[str]:
        """Take and succeed one task at a time until nothing is left; the order they ran in."""
        order = []
        while (task_id := self.take()) is not None:
            order.append(task_id)
            self.succeed(task_id)
        return order


def independent(*ids: str) -> list[TaskDef]:
    return [(task_id, ()) for task_id in ids]


DIAMOND: list[TaskDef] = [("a", ()), ("b", ["a"]), ("c", ["a"]), ("d", ["b", "c"])]


# -- start and take -------------------------------------------------------------------------------


def test_roots_are_ready_at_start() -> None:
    h = Harness(make_graph([("a", ()), ("b", ["a"]), ("c", ()), ("d", ["c", "a"])]))
    assert sorted(h.start()) == ["a", "c"]
    assert h.statuses() == {"a": PENDING, "b": PENDING, "c": PENDING, "d": PENDING}
    assert h.scheduler.statistics().ready == 2


def test_take_hands_out_nothing_before_start() -> None:
    h = Harness(make_graph(independent("a")))
    assert h.take() is None


def test_take_returns_none_when_nothing_is_ready() -> None:
    h = Harness(make_graph([("a", ()), ("b", ["a"])]))
    h.start()
    assert h.take() == "a"
    assert h.take() is None  # b waits for a, although slots are free
    assert h.scheduler.running == 1


def test_take_marks_the_task_running() -> None:
    h = Harness(make_graph(independent("a")))
    h.start()
    assert h.take() == "a"
    assert h.status("a") is RUNNING


def test_take_returns_none_when_every_slot_is_taken() -> None:
    h = Harness(make_graph(independent("a", "b", "c", "d")), max_concurrency=2)
    h.start()
    assert h.take_all() == ["a", "b"]
    assert h.take() is None
    assert h.scheduler.running == 2
    h.succeed("a")
    assert h.take_all() == ["c"]


def test_empty_graph_is_finished_at_once() -> None:
    h = Harness(make_graph([]))
    assert h.start() == []
    assert h.scheduler.finished
    assert h.take() is None


# -- ready-queue order ----------------------------------------------------------------------------


def test_higher_priority_starts_first() -> None:
    graph = make_graph(
        [("long", ()), ("long2", ["long"]), ("long3", ["long2"]), ("low", ()), ("high", ())],
        {"high": {"priority": 5}, "low": {"priority": -1}},
    )
    h = Harness(graph, max_concurrency=1)
    h.start()
    # priority beats the critical path: "high" has nothing after it, "long" has two more tasks
    assert h.take() == "high"
    h.succeed("high")
    assert h.take() == "long"
    h.succeed("long")
    assert h.run_serially() == ["long2", "long3", "low"]


def test_longest_path_to_the_end_starts_first() -> None:
    graph = make_graph([("short", ()), ("head", ()), ("middle", ["head"]), ("tail", ["middle"])])
    h = Harness(graph, max_concurrency=1)
    h.start()
    assert h.take() == "head"  # defined after "short", but three tasks long


def test_estimates_weight_the_critical_path() -> None:
    graph = make_graph(
        [("slow", ()), ("head", ()), ("middle", ["head"]), ("tail", ["middle"])],
        {"slow": {"estimate": 10.0}, "head": {"estimate": 1.0}, "middle": {"estimate": 0.5}},
    )
    assert list(graph.rank) == [10.0, 2.5, 1.5, 1.0]  # unknown estimate ("tail") counts as 1
    h = Harness(graph, max_concurrency=1)
    h.start()
    assert h.run_serially() == ["slow", "head", "middle", "tail"]


def test_zero_estimates_fall_back_to_definition_order() -> None:
    graph = make_graph(
        [("a", ()), ("b", ()), ("b2", ["b"])],
        {"a": {"estimate": 0.0}, "b": {"estimate": 0.0}, "b2": {"estimate": 0.0}},
    )
    h = Harness(graph, max_concurrency=1)
    h.start()
    assert h.run_serially() == ["a", "b", "b2"]


def test_definition_order_breaks_ties() -> None:
    h = Harness(make_graph(independent("zeta", "alpha", "mid")), max_concurrency=1)
    h.start()
    assert h.run_serially() == ["zeta", "alpha", "mid"]


def test_max_concurrency_one_runs_a_deterministic_topological_order() -> None:
    tasks: list[TaskDef] = [
        ("a", ()),
        ("b", ()),
        ("c", ["a"]),
        ("d", ["b", "c"]),
        ("e", ["a"]),
        ("f", ()),
        ("g", ["f", "e"]),
    ]
    # ranks (tasks to the end): a=3, b=2, c=2, d=1, e=2, f=2, g=1
    orders = []
    for _ in range(3):
        h = Harness(make_graph(tasks), max_concurrency=1)
        h.start()
        orders.append(h.run_serially())
        assert h.scheduler.finished
    assert orders[0] == ["a", "b", "c", "e", "f", "d", "g"]
    assert orders[0] == orders[1] == orders[2]


def test_a_task_made_ready_later_is_ordered_among_those_already_waiting() -> None:
    graph = make_graph([("a", ()), ("b", ()), ("c", ()), ("after_a", ["a"])], {"after_a": {}})
    h = Harness(graph, max_concurrency=1)
    h.start()
    assert h.take() == "a"  # rank 2
    assert h.succeed("a") == ["after_a"]
    # after_a (rank 1, defined last) waits behind b and c (rank 1, defined earlier)
    assert h.run_serially() == ["b", "c", "after_a"]


def test_tasks_ready_at_the_start_and_those_made_ready_later_are_taken_in_one_order() -> None:
    # The start's ready tasks wait in a sorted list beside the heap: take compares both heads.
    graph = make_graph(
        [("a", ()), ("b", ()), ("c", ()), ("urgent", ["a"]), ("after_c", ["c"])],
        {"urgent": {"priority": 5}},
    )
    h = Harness(graph, max_concurrency=1)
    h.start()
    assert h.take() == "a"
    assert h.succeed("a") == ["urgent"]
    assert h.take() == "urgent"  # made ready later, but before b and c
    h.succeed("urgent")
    assert h.run_serially() == ["c", "b", "after_c"]  # c has a task after it


def test_with_pools_tasks_ready_at_the_start_and_later_are_taken_in_one_order() -> None:
    graph = make_graph(
        [("a", ()), ("p1", ()), ("p2", ()), ("b", ()), ("urgent", ["a"])],
        {"p1": {"pool": "p"}, "p2": {"pool": "p"}, "urgent": {"priority": 5, "pool": "p"}},
    )
    h = Harness(graph, max_concurrency=1, pools={"p": 1})
    h.start()
    assert h.scheduler.statistics().pools["p"] == PoolStatistics(running=0, limit=1, ready=2)
    assert h.take() == "a"
    assert h.succeed("a") == ["urgent"]
    assert h.scheduler.statistics().pools["p"] == PoolStatistics(running=0, limit=1, ready=3)
    assert h.take() == "urgent"
    h.succeed("urgent")
    assert h.run_serially() == ["p1", "p2", "b"]


# -- succeed --------------------------------------------------------------------------------------


def test_succeed_readies_a_dependent_only_once_all_its_dependencies_succeeded() -> None:
    h = Harness(make_graph(DIAMOND))
    h.start()
    assert h.take() == "a"
    assert h.succeed("a") == ["b", "c"]
    assert h.take_all() == ["b", "c"]
    assert h.succeed("c") == []  # d still waits for b
    assert h.status("d") is PENDING
    assert h.take() is None
    assert h.succeed("b") == ["d"]
    assert h.take() == "d"


def test_succeed_frees_the_slot() -> None:
    h = Harness(make_graph(independent("a", "b")), max_concurrency=1)
    h.start()
    assert h.take() == "a"
    assert h.take() is None
    h.succeed("a")
    assert h.status("a") is SUCCEEDED
    assert h.scheduler.running == 0
    assert h.take() == "b"


# -- fail -----------------------------------------------------------------------------------------


def test_fail_skips_every_transitive_dependent() -> None:
    graph = make_graph([("a", ()), ("b", ["a"]), ("c", ["b"]), ("d", ["c"]), ("other", ())])
    h = Harness(graph)
    h.start()
    assert h.take() == "a"
    assert sorted(h.fail("a")) == ["b", "c", "d"]
    assert h.statuses() == {
        "a": FAILED,
        "b": SKIPPED,
        "c": SKIPPED,
        "d": SKIPPED,
        "other": PENDING,
    }
    assert h.take_all() == ["other"]


def test_fail_skips_a_task_reachable_twice_only_once() -> None:
    graph = make_graph([*DIAMOND, ("e", ["d", "b"]), ("f", ["e", "c", "d"])])
    h = Harness(graph)
    h.start()
    h.take()
    skipped = h.fail("a")
    assert sorted(skipped) == ["b", "c", "d", "e", "f"]  # no duplicates
    assert h.scheduler.unfinished == 0
    assert h.scheduler.finished


def test_fail_leaves_independent_branches_running_and_runnable() -> None:
    graph = make_graph([("a", ()), ("x", ()), ("a2", ["a"]), ("x2", ["x"]), ("both", ["a2", "x2"])])
    h = Harness(graph)
    h.start()
    assert h.take_all() == ["a", "x"]
    assert h.succeed("a") == ["a2"]
    assert h.take() == "a2"
    assert sorted(h.fail("x")) == ["both", "x2"]
    assert h.status("a2") is RUNNING  # the other branch goes on
    assert h.succeed("a2") == []  # "both" was skipped: it never becomes ready
    assert h.scheduler.finished
    assert h.statuses() == {
        "a": SUCCEEDED,
        "x": FAILED,
        "a2": SUCCEEDED,
        "x2": SKIPPED,
        "both": SKIPPED,
    }


def test_fail_of_one_dependency_skips_a_dependent_whose_other_dependency_succeeded() -> None:
    h = Harness(make_graph([("a", ()), ("b", ()), ("c", ["a", "b"])]))
    h.start()
    h.take_all()
    assert h.succeed("a") == []
    assert h.fail("b") == ["c"]
    assert h.status("c") is SKIPPED


def test_fail_frees_the_slot() -> None:
    h = Harness(make_graph(independent("a", "b")), max_concurrency=1)
    h.start()
    h.take()
    h.fail("a")
    assert h.scheduler.running == 0
    assert h.take() == "b"


# -- retry and requeue ----------------------------------------------------------------------------


def test_retry_frees_the_slot_and_the_task_waits_pending_out_of_the_queue() -> None:
    h = Harness(make_graph(independent("a", "b")), max_concurrency=1)
    h.start()
    assert h.take() == "a"
    h.retry("a")
    assert h.status("a") is PENDING
    assert h.scheduler.running == 0
    assert h.scheduler.statistics().ready == 1  # only b: a waits out its backoff
    assert h.take() == "b"
    assert h.take() is None


def test_requeue_puts_the_task_back_in_the_ready_queue() -> None:
    h = Harness(make_graph(independent("a", "b", "c")), max_concurrency=1)
    h.start()
    assert h.take() == "a"
    h.retry("a")
    assert h.take() == "b"
    assert h.requeue("a") is True
    h.succeed("b")
    # back in the queue at its own place: ahead of c, which was defined later
    assert h.run_serially() == ["a", "c"]
    assert h.scheduler.finished


def test_requeue_of_a_task_that_is_not_pending_returns_false() -> None:
    h = Harness(make_graph(independent("a")))
    h.start()
    h.take()
    assert h.requeue("a") is False  # running
    h.succeed("a")
    assert h.requeue("a") is False  # succeeded
    assert h.take() is None


def test_a_retried_task_keeps_its_dependents_waiting() -> None:
    h = Harness(make_graph([("a", ()), ("b", ["a"])]))
    h.start()
    h.take()
    h.retry("a")
    h.requeue("a")
    assert h.take() == "a"
    assert h.succeed("a") == ["b"]


# -- cancel ---------------------------------------------------------------------------------------


def test_cancel_of_a_running_task_frees_its_slot_and_skips_its_dependents() -> None:
    h = Harness(make_graph([("a", ()), ("b", ["a"]), ("c", ["b"]), ("x", ())]), max_concurrency=1)
    h.start()
    assert h.take() == "a"
    assert sorted(h.cancel("a")) == ["b", "c"]
    assert h.statuses() == {"a": CANCELLED, "b": SKIPPED, "c": SKIPPED, "x": PENDING}
    assert h.scheduler.running == 0
    assert h.take() == "x"


def test_cancel_of_a_task_waiting_out_its_backoff_keeps_it_from_being_requeued() -> None:
    h = Harness(make_graph([("a", ()), ("b", ["a"])]))
    h.start()
    h.take()
    h.retry("a")
    assert h.cancel("a") == ["b"]
    assert h.scheduler.running == 0
    assert h.requeue("a") is False
    assert h.take() is None
    assert h.scheduler.finished


def test_cancel_of_a_ready_task_takes_it_out_of_the_ready_queue() -> None:
    h = Harness(make_graph(independent("a", "b", "c")), max_concurrency=1)
    h.start()
    assert h.cancel("b") == []
    assert h.status("b") is CANCELLED
    assert h.scheduler.statistics().ready == 2
    assert h.run_serially() == ["a", "c"]  # b is never handed out
    assert h.scheduler.finished


def test_cancel_of_a_ready_task_in_a_pool_frees_nothing_and_is_not_handed_out() -> None:
    options = {"p1": {"pool": "p"}, "p2": {"pool": "p"}}
    h = Harness(make_graph(independent("p1", "p2"), options), max_concurrency=1, pools={"p": 1})
    h.start()
    h.cancel("p1")
    assert h.scheduler.statistics().pools["p"] == PoolStatistics(running=0, limit=1, ready=1)
    assert h.run_serially() == ["p2"]
    assert h.scheduler.finished


def test_cancel_of_a_task_whose_dependencies_have_not_finished_skips_its_dependents() -> None:
    h = Harness(make_graph([("a", ()), ("b", ["a"]), ("c", ["b"])]))
    h.start()
    h.take()
    assert h.cancel("b") == ["c"]
    assert h.succeed("a") == []  # b was cancelled: it does not become ready
    assert h.scheduler.finished


# -- halt -----------------------------------------------------------------------------------------


def test_halt_cancels_every_task_that_has_not_started() -> None:
    graph = make_graph([("a", ()), ("b", ()), ("c", ["a"]), ("d", ()), ("e", ["b"])])
    h = Harness(graph, max_concurrency=2)
    h.start()
    assert h.take_all() == ["a", "b"]
    h.succeed("b")  # e becomes ready; c still waits for a
    assert sorted(h.halt()) == ["c", "d", "e"]
    assert h.statuses() == {
        "a": RUNNING,
        "b": SUCCEEDED,
        "c": CANCELLED,
        "d": CANCELLED,
        "e": CANCELLED,
    }


def test_halt_cancels_a_task_waiting_out_a_retry_backoff() -> None:
    h = Harness(make_graph(independent("a", "b")))
    h.start()
    h.take_all()
    h.retry("a")
    assert h.halt() == ["a"]
    assert h.status("a") is CANCELLED
    assert h.requeue("a") is False
    assert h.take() is None


def test_halt_stops_take_while_running_tasks_stay_running_until_reported() -> None:
    h = Harness(make_graph([("a", ()), ("b", ()), ("c", ()), ("a2", ["a"])]), max_concurrency=2)
    h.start()
    assert h.take_all() == ["a", "b"]
    h.halt()
    assert h.take() is None
    assert h.status("a") is RUNNING
    assert not h.scheduler.finished
    assert h.succeed("a") == []  # its dependent was cancelled: nothing becomes ready
    assert h.take() is None
    h.fail("b")
    assert h.scheduler.finished
    assert h.statuses() == {"a": SUCCEEDED, "b": FAILED, "c": CANCELLED, "a2": CANCELLED}


def test_halt_twice_cancels_nothing_more() -> None:
    h = Harness(make_graph(independent("a", "b")))
    h.start()
    assert sorted(h.halt()) == ["a", "b"]
    assert h.halt() == []
    assert h.scheduler.unfinished == 0
    assert h.scheduler.finished


def test_halt_sets_halted() -> None:
    h = Harness(make_graph(independent("a")))
    h.start()
    assert not h.scheduler.halted
    h.halt()
    assert h.scheduler.halted


# -- pools ----------------------------------------------------------------------------------------


def test_a_full_pool_does_not_block_ready_tasks_of_other_pools() -> None:
    graph = make_graph(
        independent("db1", "db2", "db3", "free1", "free2"),
        {"db1": {"pool": "db"}, "db2": {"pool": "db"}, "db3": {"pool": "db"}},
    )
    h = Harness(graph, max_concurrency=4, pools={"db": 1})
    h.start()
    # db2 and db3 come first in queue order but their pool is full: no head-of-line blocking
    assert h.take_all() == ["db1", "free1", "free2"]
    h.succeed("free1")
    assert h.take() is None  # a global slot is free, but only db tasks are left
    h.succeed("db1")
    assert h.take_all() == ["db2"]


def test_pool_limits_hold_per_pool() -> None:
    options = {f"{pool}{n}": {"pool": pool} for pool in ("p", "q") for n in range(4)}
    graph = make_graph(independent(*options), options)
    h = Harness(graph, max_concurrency=10, pools={"p": 2, "q": 3})
    h.start()
    taken = h.take_all()
    assert taken == ["p0", "p1", "q0", "q1", "q2"]
    stats = h.scheduler.statistics()
    assert stats.pools["p"] == PoolStatistics(running=2, limit=2, ready=2)
    assert stats.pools["q"] == PoolStatistics(running=3, limit=3, ready=1)
    h.succeed("q0")
    assert h.take_all() == ["q3"]
    h.fail("p1")
    assert h.take_all() == ["p2"]


def test_a_pool_without_a_configured_limit_is_bounded_by_max_concurrency_only() -> None:
    options = {f"t{n}": {"pool": "unconfigured"} for n in range(5)}
    graph = make_graph(independent(*options), options)
    h = Harness(graph, max_concurrency=3, pools={"other": 1})
    h.start()
    assert h.take_all() == ["t0", "t1", "t2"]
    assert h.scheduler.statistics().pools["unconfigured"] == PoolStatistics(3, None, 2)


def test_max_concurrency_holds_across_pools() -> None:
    graph = make_graph(
        independent("p1", "q1", "n1", "p2"),
        {"p1": {"pool": "p"}, "p2": {"pool": "p"}, "q1": {"pool": "q"}},
    )
    h = Harness(graph, max_concurrency=2, pools={"p": 5, "q": 5})
    h.start()
    assert h.take_all() == ["p1", "q1"]
    h.succeed("q1")
    assert h.take_all() == ["n1"]


def test_the_best_ready_task_across_pools_starts_first() -> None:
    graph = make_graph(
        independent("a", "b", "c", "d"),
        {"a": {"pool": "p"}, "b": {"pool": "q"}, "c": {"pool": "p"}, "d": {"priority": 1}},
    )
    h = Harness(graph, max_concurrency=1, pools={"p": 1, "q": 1})
    h.start()
    assert h.run_serially() == ["d", "a", "b", "c"]


def test_retry_frees_the_pool_slot() -> None:
    graph = make_graph(independent("a", "b"), {"a": {"pool": "p"}, "b": {"pool": "p"}})
    h = Harness(graph, pools={"p": 1})
    h.start()
    assert h.take_all() == ["a"]
    h.retry("a")
    assert h.take_all() == ["b"]
    h.requeue("a")
    assert h.take() is None
    h.succeed("b")
    assert h.take_all() == ["a"]


# -- resume ---------------------------------------------------------------------------------------


def test_resume_does_not_hand_out_succeeded_tasks_and_readies_their_dependents() -> None:
    graph = make_graph([*DIAMOND, ("x", ())])
    h = Harness(graph, max_concurrency=10)
    assert sorted(h.start(succeeded=["a", "b"])) == ["c", "x"]
    assert h.status("a") is SUCCEEDED
    assert h.status("b") is SUCCEEDED
    assert h.scheduler.unfinished == 3
    assert h.take_all() == ["c", "x"]
    assert h.succeed("c") == ["d"]
    assert h.take_all() == ["d"]


def test_resume_of_every_task_is_finished() -> None:
    h = Harness(make_graph(DIAMOND))
    assert h.start(succeeded=["a", "b", "c", "d"]) == []
    assert h.scheduler.finished
    assert h.take() is None


def test_resume_restores_succeeded_tasks_through_an_allowed_transition() -> None:
    h = Harness(make_graph(DIAMOND))
    h.start(succeeded=["a"])
    assert h.checked.changes == [("a", PENDING, SUCCEEDED)]


# -- waiting for input ---------------------------------------------------------------------------


def test_a_held_task_waits_for_input_when_ready_holding_no_slot() -> None:
    h = Harness(make_graph([("a", ()), ("gate", ["a"]), ("after", ["gate"]), ("x", ())]))
    h.hold("gate")
    h.start()
    assert h.take_all() == ["a", "x"]
    assert h.succeed("a") == ["gate"]  # ready, but it waits for an answer
    assert h.status("gate") is WAITING
    assert h.take() is None
    stats = h.scheduler.statistics()
    assert (stats.running, stats.ready, stats.waiting) == (1, 0, 1)
    assert h.answer("gate") is True
    assert h.status("gate") is PENDING
    assert h.take() == "gate"
    assert h.succeed("gate") == ["after"]


def test_an_answer_before_the_task_is_ready_lets_it_run_without_waiting() -> None:
    h = Harness(make_graph([("a", ()), ("gate", ["a"])]))
    h.hold("gate")
    h.start()
    h.take()
    assert h.answer("gate") is False  # not waiting yet
    assert h.succeed("a") == ["gate"]
    assert h.status("gate") is PENDING
    assert h.take() == "gate"


def test_a_held_root_waits_from_the_start() -> None:
    h = Harness(make_graph(independent("gate", "b")))
    h.hold("gate")
    assert sorted(h.start()) == ["b", "gate"]
    assert h.status("gate") is WAITING
    assert h.take_all() == ["b"]


def test_suspend_frees_the_slot_until_the_answer_requeues_the_task() -> None:
    h = Harness(make_graph(independent("asks", "other")), max_concurrency=1)
    h.start()
    assert h.take() == "asks"
    h.suspend("asks")
    assert h.status("asks") is WAITING
    assert h.scheduler.running == 0
    assert h.take() == "other"
    assert h.answer("asks") is True
    h.succeed("other")
    assert h.take() == "asks"


def test_idle_when_nothing_runs_and_nothing_is_ready() -> None:
    h = Harness(make_graph(independent("gate", "b")))
    h.hold("gate")
    h.start()
    assert not h.scheduler.idle  # b is ready
    h.take()
    assert not h.scheduler.idle  # b runs
    h.succeed("b")
    assert h.scheduler.idle  # only the gate is left, waiting for an answer
    assert not h.scheduler.finished


def test_a_waiting_task_can_fail_or_be_cancelled_skipping_its_dependents() -> None:
    graph = make_graph([("g1", ()), ("g1_next", ["g1"]), ("g2", ()), ("g2_next", ["g2"])])
    h = Harness(graph)
    h.hold("g1")
    h.hold("g2")
    h.start()
    assert h.fail("g1") == ["g1_next"]  # e.g. nobody answered in time
    assert h.cancel("g2") == ["g2_next"]
    assert h.scheduler.statistics().waiting == 0
    assert h.scheduler.finished


def test_halt_cancels_waiting_tasks_and_ignores_later_answers() -> None:
    h = Harness(make_graph(independent("gate", "b")))
    h.hold("gate")
    h.start()
    h.take()
    assert h.halt() == ["gate"]
    assert h.status("gate") is CANCELLED
    assert h.answer("gate") is False
    assert h.scheduler.statistics().waiting == 0


# -- transitions ----------------------------------------------------------------------------------


def test_every_status_change_of_a_run_is_an_allowed_transition() -> None:
    """CheckedStatus fails on any change TASK_TRANSITIONS does not allow; this walks through
    every kind of change the scheduler makes and pins the sequence."""
    graph = make_graph(
        [("a", ()), ("b", ["a"]), ("c", ()), ("d", ["c"]), ("e", ()), ("f", ()), ("g", ["f"])]
    )
    h = Harness(graph, max_concurrency=10)
    h.hold("g")
    h.start(succeeded=["f"])  # g becomes ready, and waits for input
    h.take_all()  # a, c, e
    h.retry("a")
    h.requeue("a")
    h.take()  # a again
    h.succeed("a")
    h.take()  # b
    h.suspend("b")
    h.answer("b")
    h.fail("c")  # d skipped
    h.cancel("e")
    h.halt()  # b (queued again) and g (waiting) cancelled
    assert h.checked.changes == [
        ("f", PENDING, SUCCEEDED),
        ("g", PENDING, WAITING),
        ("a", PENDING, RUNNING),
        ("c", PENDING, RUNNING),
        ("e", PENDING, RUNNING),
        ("a", RUNNING, PENDING),
        ("a", PENDING, RUNNING),
        ("a", RUNNING, SUCCEEDED),
        ("b", PENDING, RUNNING),
        ("b", RUNNING, WAITING),
        ("b", WAITING, PENDING),
        ("c", RUNNING, FAILED),
        ("d", PENDING, SKIPPED),
        ("e", RUNNING, CANCELLED),
        ("b", PENDING, CANCELLED),
        ("g", WAITING, CANCELLED),
    ]
    assert h.scheduler.finished


# -- statistics, finished, repr -------------------------------------------------------------------


def test_statistics_count_running_ready_unfinished_and_pools() -> None:
    graph = make_graph(
        [("p1", ()), ("p2", ()), ("q1", ()), ("n1", ()), ("n2", ["n1"]), ("n3", ())],
        {"p1": {"pool": "p"}, "p2": {"pool": "p"}, "q1": {"pool": "q"}},
    )
    h = Harness(graph, max_concurrency=3, pools={"p": 1})
    h.start()
    stats = h.scheduler.statistics()
    assert (stats.running, stats.max_concurrency, stats.ready, stats.unfinished) == (0, 3, 5, 6)
    assert stats.pools == {
        "p": PoolStatistics(running=0, limit=1, ready=2),
        "q": PoolStatistics(running=0, limit=None, ready=1),
    }
    assert h.take_all() == ["n1", "p1", "q1"]  # n1 heads the longest path
    stats = h.scheduler.statistics()
    assert (stats.running, stats.ready, stats.unfinished) == (3, 2, 6)
    assert stats.pools["p"] == PoolStatistics(running=1, limit=1, ready=1)
    assert stats.pools["q"] == PoolStatistics(running=1, limit=None, ready=0)
    h.succeed("n1")
    h.fail("p1")
    stats = h.scheduler.statistics()
    assert (stats.running, stats.ready, stats.unfinished) == (1, 3, 4)
    assert stats.pools["p"] == PoolStatistics(running=0, limit=1, ready=1)
    assert "None" not in stats.pools and None not in stats.pools


def test_statistics_without_pools_list_none() -> None:
    h = Harness(make_graph(independent("a")))
    h.start()
    assert h.scheduler.statistics().pools == {}


def test_finished_once_every_task_is_final() -> None:
    h = Harness(make_graph([("a", ()), ("b", ["a"]), ("c", ())]))
    h.start()
    h.take_all()
    assert not h.scheduler.finished
    h.fail("a")  # b skipped
    assert not h.scheduler.finished
    h.succeed("c")
    assert h.scheduler.finished


def test_repr_summarises_the_queues() -> None:
    h = Harness(make_graph(independent("a", "b", "c")), max_concurrency=2)
    h.start()
    h.take()
    assert repr(h.scheduler) == "<Scheduler 1/2 running, 2 ready, 3 unfinished>"


# -- trigger rules, Skip and cleanup tasks ------------------------------------------------------


def test_a_one_success_task_is_ready_at_the_first_success() -> None:
    h = Harness(
        make_graph([("a", ()), ("b", ()), ("any", ["a", "b"])], {"any": {"trigger": "one_success"}})
    )
    h.start()
    h.take_all()
    assert h.succeed("a") == ["any"]  # b still runs
    assert h.take() == "any"


def test_a_one_failed_task_is_skipped_once_every_dependency_succeeded() -> None:
    h = Harness(
        make_graph(
            [("a", ()), ("b", ()), ("alert", ["a", "b"])], {"alert": {"trigger": "one_failed"}}
        )
    )
    h.start()
    h.take_all()
    assert h.succeed("a") == []
    assert h.succeed("b") == ["alert"]
    assert h.statuses()["alert"] is SKIPPED
    assert h.cause("alert") is SkipCause.TRIGGER_RULE


def test_a_failure_skips_by_rule_and_an_all_done_task_still_runs() -> None:
    graph = make_graph(
        [("a", ()), ("b", ["a"]), ("c", ["b"]), ("report", ["c"])],
        {"report": {"trigger": "all_done"}},
    )
    h = Harness(graph)
    h.start()
    h.take()
    assert h.fail("a") == ["b", "c", "report"]  # report runs: c ended (skipped)
    assert [h.cause(t) for t in "bc"] == [SkipCause.UPSTREAM_FAILED] * 2
    assert h.statuses()["report"] is PENDING
    assert h.take() == "report"


def test_a_task_that_skips_itself_counts_as_skipped_not_failed_for_its_dependents() -> None:
    graph = make_graph([("a", ()), ("b", ["a"]), ("c", ["a"])], {"c": {"trigger": "none_failed"}})
    h = Harness(graph)
    h.start()
    h.take()
    assert h.skip("a") == ["b", "c"]
    assert h.cause("a") is SkipCause.SKIPPED_BY_TASK
    assert h.cause("b") is SkipCause.UPSTREAM_SKIPPED
    assert h.statuses()["c"] is PENDING  # none_failed: a skip is no failure
    assert h.take() == "c"


def test_a_cleanup_task_runs_after_a_halt_once_its_dependencies_are_done() -> None:
    graph = make_graph(
        [("setup", ()), ("work", ["setup"]), ("more", ["work"]), ("release", ["setup", "work"])],
        {"release": {"cleanup": True}},
    )
    h = Harness(graph)
    h.start()
    h.take()
    h.succeed("setup")
    assert h.take() == "work"
    assert h.halt() == ["more"]  # release waits for work, still running
    assert h.take() is None
    assert h.cancel("work") == ["release"]  # all_done, the default of a cleanup task
    assert h.take() == "release"
    h.succeed("release")
    assert h.scheduler.finished


def test_a_second_halt_without_cleanup_cancels_the_cleanup_tasks_too() -> None:
    graph = make_graph([("work", ()), ("release", ["work"])], {"release": {"cleanup": True}})
    h = Harness(graph)
    h.start()
    h.take()
    assert h.halt() == []
    assert h.halt(cleanup=False) == ["release"]
    assert h.cancel("work") == []
    assert h.scheduler.finished


def test_a_cleanup_task_may_be_retried_after_a_halt_until_a_second_halt_stops_it() -> None:
    graph = make_graph([("work", ()), ("release", ())], {"release": {"cleanup": True}})
    h = Harness(graph)
    h.start()
    assert {h.take(), h.take()} == {"work", "release"}
    i = graph.index
    assert h.halt() == []
    assert not h.scheduler.may_retry(i["work"])
    assert h.scheduler.may_retry(i["release"])  # its retry policy still holds
    h.scheduler.retry(i["release"])
    assert h.scheduler.requeue(i["release"])
    assert h.take() == "release"
    assert h.halt(cleanup=False) == []
    assert not h.scheduler.may_retry(i["release"])
    with pytest.raises(ValueError, match="'release' cannot be retried: the run halted and its"):
        h.scheduler.retry(i["release"])


def test_start_keeps_tasks_that_skipped_themselves_and_decides_rule_skips_again() -> None:
    graph = make_graph(
        [("a", ()), ("b", ["a"]), ("c", ["b"]), ("d", ["b"])], {"d": {"trigger": "none_skipped"}}
    )
    h = Harness(graph)
    i = graph.index
    decided = h._ids(h.scheduler.start(succeeded=[i["a"]], skipped=[i["b"]]))
    assert decided == ["c", "d"]
    assert [h.cause(t) for t in "bcd"] == [
        SkipCause.SKIPPED_BY_TASK,
        SkipCause.UPSTREAM_SKIPPED,
        SkipCause.UPSTREAM_SKIPPED,
    ]
    assert h.scheduler.finished


# -- a model of the scheduler, driven by random operations ----------------------------------------


class Model:
    """What the scheduler should do, written independently of it (and slowly)."""

    def __init__(
        self, graph: Graph, max_concurrency: int, pools: Mapping[str, int], held: set[int]
    ) -> None:
        self.graph = graph
        self.n = len(graph)
        self.max_concurrency = max_concurrency
        self.pools = pools
        self.status = [PENDING] * self.n
        self.backoff: set[int] = set()
        self.needs_input = [i in held for i in range(self.n)]
        self.halted = False
        self.decided = [False] * self.n  # the rule said: run (or the task is final)
        self.cause: list[SkipCause | None] = [None] * self.n
        self.dependents = [
            [j for j in range(self.n) if i in graph.dependencies[j]] for i in range(self.n)
        ]
        rank = [0.0] * self.n
        known = [s.estimate for s in graph.specs if s.estimate is not None]
        unknown = statistics.median(known) if known else 1.0
        for i in reversed(range(self.n)):  # dependencies are defined first: a topological order
            estimate = graph.specs[i].estimate
            rest = max((rank[j] for j in self.dependents[i]), default=0.0)
            rank[i] = (unknown if estimate is None else estimate) + rest
        self.order_key = [(-graph.specs[i].priority, -rank[i], i) for i in range(self.n)]

    def with_status(self, status: TaskStatus) -> list[int]:
        return [i for i, s in enumerate(self.status) if s is status]

    def running(self) -> int:
        return self.status.count(RUNNING)

    def running_in(self, pool: str) -> int:
        return sum(1 for i in self.with_status(RUNNING) if self.graph.specs[i].pool == pool)

    def upstream_states(self, i: int) -> list[str]:
        """Task ``i``'s dependencies as the Airflow reference names their states."""
        names = {SUCCEEDED: "success", FAILED: "failed", CANCELLED: "upstream_failed"}
        states = []
        for d in self.graph.dependencies[i]:
            status = self.status[d]
            if status is SKIPPED:
                failed = self.cause[d] is SkipCause.UPSTREAM_FAILED
                states.append("upstream_failed" if failed else "skipped")
            else:
                states.append(names.get(status, "pending"))
        return states

    def ready(self) -> list[int]:
        return [i for i in self.with_status(PENDING) if i not in self.backoff and self.decided[i]]

    def takeable(self) -> list[int]:
        if self.running() >= self.max_concurrency:  # after a halt only cleanup tasks are ready
            return []
        result = []
        for i in self.ready():
            pool = self.graph.specs[i].pool
            if pool is None or pool not in self.pools or self.running_in(pool) < self.pools[pool]:
                result.append(i)
        return result

    def best(self) -> int | None:
        return min(self.takeable(), key=self.order_key.__getitem__, default=None)

    def settle(self) -> set[int]:
        """Ask the reference about every undecided task until nothing changes: those it says
        run are queued (or wait, if they need input), those it says skip are skipped."""
        decided = set()
        changed = True
        while changed:
            changed = False
            for i in self.with_status(PENDING):
                if self.decided[i] or (self.halted and not self.graph.cleanup[i]):
                    continue
                outcome = reference_decision(self.graph.rules[i], self.upstream_states(i))
                if outcome is None:
                    continue
                self.decided[i] = changed = True
                decided.add(i)
                if outcome != RUN:
                    self.status[i] = SKIPPED
                    self.cause[i] = SkipCause(outcome)
                elif self.needs_input[i]:
                    self.status[i] = WAITING
        return decided

    def halt(self, cleanup: bool) -> set[int]:
        """Cancel what has not started, except pending cleanup tasks (unless ``cleanup`` is
        false); return the cancelled tasks and those the cancellations decided."""
        keep = {i for i in self.with_status(PENDING) if cleanup and self.graph.cleanup[i]}
        cancelled = set(self.with_status(PENDING) + self.with_status(WAITING)) - keep
        for i in cancelled:
            self.status[i] = CANCELLED
        self.backoff &= keep
        self.halted = True
        return cancelled | self.settle()


# The strategies a setup draws from are made once, not for every task: a new strategy is checked
# the first time it is drawn from, which costs more than the draw.
PRIORITY = st.sampled_from([0, 0, 0, 1, -1])
ESTIMATE = st.sampled_from([None, None, 0.0, 0.5, 3.0])
TRIGGER = st.sampled_from([TriggerRule.ALL_SUCCESS] * 12 + list(TriggerRule))
POOLS = [st.sampled_from([None, *["p", "q", "r"][:k]]) for k in range(4)]


@functools.cache
def dependencies(i: int) -> st.SearchStrategy[list[int]]:
    """Up to three of the tasks before task ``i``."""
    return st.lists(st.integers(0, max(i - 1, 0)), max_size=min(i, 3), unique=True)


@st.composite
def scheduler_setups(draw: st.DrawFn) -> tuple[Graph, int, dict[str, int], set[int]]:
    n = draw(st.integers(0, 25))
    pool_names = ["p", "q", "r"][: draw(st.integers(0, 3))]
    limits = {name: draw(st.integers(1, 3)) for name in pool_names if draw(st.booleans())}
    wf = Workflow("model")
    held = set()
    for i in range(n):
        wf.add_task(
            f"t{i}",
            _noop,
            depends_on=[f"t{d}" for d in draw(dependencies(i))],
            pool=draw(POOLS[len(pool_names)]),
            priority=draw(PRIORITY),
            estimate=draw(ESTIMATE),
            trigger=draw(TRIGGER),
            cleanup=draw(st.integers(0, 5)) == 5,
        )
        if draw(st.integers(0, 9)) == 9:
            held.add(i)
    return wf.graph(), draw(st.integers(1, 4)), limits, held


@settings(max_examples=150, deadline=None, derandomize=True)
@given(setup=scheduler_setups(), data=st.data())
def test_scheduler_matches_a_model_under_random_operations(
    setup: tuple[Graph, int, dict[str, int], set[int]], data: st.DataObject
) -> None:
    """Every take is the model's best ready task within the limits (so also work-conserving),
    every status matches the model after each step, every change is an allowed transition, and
    the run always finishes."""
    graph, max_concurrency, pools, held = setup
    h = Harness(graph, max_concurrency, pools)
    scheduler = h.scheduler
    model = Model(graph, max_concurrency, pools, held)
    retries = [0] * len(graph)
    suspensions = [0] * len(graph)

    for i in held:
        scheduler.hold(i)
    assert set(scheduler.start()) == model.settle()
    for _ in range(20 * len(graph) + 10):
        if scheduler.finished:
            break
        running = model.with_status(RUNNING)
        waiting = model.with_status(WAITING)
        assert running or waiting or model.backoff or model.takeable(), "stuck"
        operations = []
        if model.takeable() or data.draw(st.booleans(), label="try an empty take"):
            operations.append("take")
        if running:
            operations += ["succeed", "succeed", "fail", "cancel", "skip"]
            if not model.halted and any(retries[i] < 2 for i in running):
                operations.append("retry")
            if not model.halted and any(suspensions[i] < 2 for i in running):
                operations.append("suspend")
        if waiting:
            operations += ["answer", "fail waiting", "cancel waiting"]
        if model.with_status(PENDING):
            operations.append("cancel pending")  # ready, waiting out a backoff, or neither
        if model.backoff:
            operations.append("requeue")
        if not model.halted:
            operations.append("halt")
        operations.append("halt without cleanup")  # a second interrupt
        operation = data.draw(st.sampled_from(operations), label="operation")

        if operation == "take":
            expected = model.best()
            assert scheduler.take() == expected
            if expected is not None:
                model.status[expected] = RUNNING
        elif operation == "requeue":
            i = data.draw(st.sampled_from(sorted(model.backoff)), label="requeued")
            model.backoff.discard(i)
            assert scheduler.requeue(i) is True
        elif operation.startswith("halt"):
            cleanup = operation == "halt"
            assert set(scheduler.halt(cleanup=cleanup)) == model.halt(cleanup)
        elif operation == "answer":
            # answer a waiting task, or any other (an answer given before it was asked for)
            i = data.draw(st.sampled_from(waiting + list(range(len(graph)))), label="answered")
            model.needs_input[i] = False
            queued = model.status[i] is WAITING and (not model.halted or graph.cleanup[i])
            if queued:
                model.status[i] = PENDING
            assert scheduler.answer(i) is queued
        elif operation == "cancel pending":
            i = data.draw(st.sampled_from(model.with_status(PENDING)), label=operation)
            model.status[i] = CANCELLED
            model.backoff.discard(i)
            assert set(scheduler.cancel(i)) == model.settle()
        elif operation.endswith(" waiting"):
            i = data.draw(st.sampled_from(waiting), label=operation)
            if operation == "fail waiting":
                model.status[i] = FAILED
                assert set(scheduler.fail(i)) == model.settle()
            else:
                model.status[i] = CANCELLED
                assert set(scheduler.cancel(i)) == model.settle()
        else:
            if operation == "retry":
                running = [i for i in running if retries[i] < 2]
            elif operation == "suspend":
                running = [i for i in running if suspensions[i] < 2]
            i = data.draw(st.sampled_from(running), label=operation)
            if operation == "succeed":
                model.status[i] = SUCCEEDED
                assert set(scheduler.succeed(i)) == model.settle()
            elif operation == "fail":
                model.status[i] = FAILED
                assert set(scheduler.fail(i)) == model.settle()
            elif operation == "cancel":
                model.status[i] = CANCELLED
                assert set(scheduler.cancel(i)) == model.settle()
            elif operation == "skip":
                model.status[i] = SKIPPED
                model.cause[i] = SkipCause.SKIPPED_BY_TASK
                assert set(scheduler.skip(i)) == model.settle()
            elif operation == "suspend":
                suspensions[i] += 1
                model.status[i] = WAITING
                model.needs_input[i] = True
                scheduler.suspend(i)
            else:
                retries[i] += 1
                model.status[i] = PENDING
                model.backoff.add(i)
                scheduler.retry(i)

        assert list(scheduler.status) == model.status
        assert scheduler.skip_cause == model.cause
        assert scheduler.running == model.running() <= max_concurrency
        for pool, limit in pools.items():
            assert model.running_in(pool) <= limit
        assert scheduler.unfinished == sum(1 for s in model.status if not s.is_final)
        assert scheduler.finished == all(s.is_final for s in model.status)
        assert scheduler.idle == (model.running() == 0 and not model.ready())
        stats = scheduler.statistics()
        assert stats.ready == scheduler.ready == len(model.ready())
        for pool, pool_stats in stats.pools.items():
            in_pool = [i for i in model.ready() if graph.specs[i].pool == pool]
            assert pool_stats.ready == len(in_pool)
            assert pool_stats.running == model.running_in(pool)
        assert stats.waiting == scheduler.waiting == model.status.count(WAITING)
    assert scheduler.finished, "the operations ran out before the scheduler finished"
    assert scheduler.status is h.checked, "the status list was replaced: changes went unchecked"


# -- misuse is loud -------------------------------------------------------------------------------


def _misuse_state() -> Harness:
    """a succeeded, b running, c ready (pending), d pending behind b and c."""
    h = Harness(make_graph(DIAMOND), max_concurrency=1)
    h.start()
    assert h.take() == "a"
    h.succeed("a")
    assert h.take() == "b"
    return h


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda h: h.succeed("a"), "task 'a' was already marked succeeded"),
        (lambda h: h.succeed("c"), "task 'c' is not running (it is pending)"),
        (lambda h: h.retry("d"), "task 'd' is not running (it is pending)"),
        (lambda h: h.suspend("a"), "task 'a' was already marked succeeded"),
        (lambda h: h.fail("c"), "task 'c' is not running or waiting for input (it is pending)"),
        (lambda h: h.cancel("a"), "task 'a' was already marked succeeded"),
        (lambda h: h.start(["a"]), "task 'a' was already marked succeeded"),
        (lambda h: h.scheduler.succeed(4), "no task has index 4; the graph's tasks are 0 to 3"),
        (lambda h: h.scheduler.succeed(-1), "no task has index -1; the graph's tasks are 0 to 3"),
        (lambda h: h.scheduler.fail(7), "no task has index 7; the graph's tasks are 0 to 3"),
        (lambda h: h.scheduler.answer(9), "no task has index 9; the graph's tasks are 0 to 3"),
        (lambda h: h.scheduler.requeue(-2), "no task has index -2; the graph's tasks are 0 to 3"),
        (lambda h: h.scheduler.hold(4), "no task has index 4; the graph's tasks are 0 to 3"),
    ],
)
def test_misuse_raises_value_error_naming_the_task_and_changes_nothing(
    call: Callable[[Harness], object], message: str
) -> None:
    h = _misuse_state()
    before = (h.statuses(), repr(h.scheduler), h.scheduler.statistics())
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        call(h)
    assert (h.statuses(), repr(h.scheduler), h.scheduler.statistics()) == before
    h.succeed("b")  # and the scheduler goes on as if nothing had been tried
    assert h.run_serially() == ["c", "d"]
    assert h.scheduler.finished


def test_succeed_twice_no_longer_drifts_the_counters() -> None:
    h = Harness(make_graph(independent("x", "y")), max_concurrency=2)
    h.start()
    assert h.take_all() == ["x", "y"]
    h.succeed("x")
    with pytest.raises(ValueError, match=r"^task 'x' was already marked succeeded$"):
        h.succeed("x")
    assert repr(h.scheduler) == "<Scheduler 1/2 running, 0 ready, 1 unfinished>"


# -- lanes: executors' capacities as implicit pools ---------------------------------------------


def test_a_lane_limits_its_tasks_and_never_blocks_the_others() -> None:
    graph = make_graph([("a", []), ("b", []), ("c", []), ("d", [])])
    # a, b, c on an executor of capacity 1 (lane 1); d on no lane.
    scheduler = Scheduler(graph, 8, lanes=[1, 1, 1, 0], lane_limits=[1])
    scheduler.start()
    taken = [scheduler.take(), scheduler.take(), scheduler.take()]
    assert taken == [graph.index["a"], graph.index["d"], None]
    scheduler.succeed(graph.index["a"])
    assert scheduler.take() == graph.index["b"]
    assert scheduler.take() is None


def test_a_task_needs_a_slot_in_both_its_pool_and_its_lane() -> None:
    graph = make_graph(
        [("a", []), ("b", []), ("c", [])], {"a": {"pool": "db"}, "b": {"pool": "db"}}
    )
    scheduler = Scheduler(graph, 8, {"db": 1}, lanes=[1, 1, 1], lane_limits=[2])
    scheduler.start()
    first, second = scheduler.take(), scheduler.take()
    assert {first, second} == {graph.index["a"], graph.index["c"]}  # b waits for the pool
    assert scheduler.take() is None
    scheduler.succeed(graph.index["c"])
    assert scheduler.take() is None  # the lane is free again, but db is still full
    scheduler.succeed(graph.index["a"])
    assert scheduler.take() == graph.index["b"]


def test_lanes_keep_the_critical_path_order_within_a_lane() -> None:
    # a long chain behind x: x comes first although it was added last.
    graph = make_graph([("y", []), ("x", []), ("x2", ["x"]), ("x3", ["x2"])])
    scheduler = Scheduler(graph, 4, lanes=[1, 1, 1, 1], lane_limits=[1])
    scheduler.start()
    assert scheduler.take() == graph.index["x"]


def test_a_lane_resized_while_tasks_run_starts_only_what_its_new_limit_allows() -> None:
    graph = make_graph([(name, []) for name in "abcdef"])
    scheduler = Scheduler(graph, 8, lanes=[1] * 6, lane_limits=[2])
    scheduler.start()
    a, b = scheduler.take(), scheduler.take()
    assert scheduler.take() is None
    scheduler.resize_lane(1, 4)  # wider: two more start
    assert scheduler.lane_limit(1) == 4
    c, d = scheduler.take(), scheduler.take()
    assert None not in (a, b, c, d) and scheduler.take() is None
    scheduler.resize_lane(1, 1)  # narrower than the four running: none more until one is left
    for i in (a, b, c):
        scheduler.succeed(i)
        assert scheduler.take() is None
    scheduler.succeed(d)
    assert scheduler.take() is not None
    assert scheduler.take() is None


def test_a_lane_that_does_not_exist_or_a_limit_below_one_is_refused() -> None:
    graph = make_graph([("a", [])])
    scheduler = Scheduler(graph, 2, lanes=[1], lane_limits=[1])
    with pytest.raises(ValueError, match=r"^the scheduler has lanes 1..1, not 2$"):
        scheduler.resize_lane(2, 3)
    with pytest.raises(ValueError, match=r"^the scheduler has lanes 1..1, not 0$"):
        scheduler.lane_limit(0)
    with pytest.raises(ValueError, match=r"^lane 1's limit must be at least 1, not 0$"):
        scheduler.resize_lane(1, 0)
    assert scheduler.lane_limit(1) == 1


def test_lanes_that_do_not_fit_the_graph_are_refused() -> None:
    graph = make_graph([("a", []), ("b", [])])
    with pytest.raises(ValueError, match=r"^lanes must give each of the 2 tasks a lane in 0..1"):
        Scheduler(graph, 2, lanes=[0, 2], lane_limits=[1])


# -- mapped tasks --------------------------------------------------------------------------------


def _each(**inputs: Any) -> None:
    pass


def mapped_graph(tasks: Iterable[tuple[str, Sequence[str], str | None]], **options: Any) -> Graph:
    """A graph of no-op tasks: ``(id, depends_on, map_over)``."""
    wf = Workflow("mapped")
    for task_id, depends_on, map_over in tasks:
        wf.add_task(task_id, _each, depends_on=depends_on, map_over=map_over, **options)
    return wf.graph()


def drain(scheduler: Scheduler) -> list[str]:
    """Take and succeed tasks until nothing is ready; the ids, in order. Mapped tasks that
    become ready are expanded into two instances."""
    ids = scheduler.graph.ids
    order = []
    while (i := scheduler.take()) is not None:
        order.append(ids[i])
        for d in scheduler.succeed(i):
            if scheduler.status[d] is RUNNING:
                scheduler.expand(d, 2)
    return order


def test_a_mapped_task_waits_running_for_its_expansion_and_its_instances_run_in_item_order() -> (
    None
):
    scheduler = Scheduler(mapped_graph([("ls", [], None), ("each", ["ls"], "ls")]), 1)
    assert scheduler.start() == [0]
    assert scheduler.take() == 0
    assert scheduler.succeed(0) == [1]
    assert scheduler.status[1] is RUNNING
    assert scheduler.running == 0  # expanding holds no slot
    assert scheduler.take() is None
    assert scheduler.expand(1, 3) == [2, 3, 4]
    graph = scheduler.graph
    assert graph.ids[2:] == ["each[0]", "each[1]", "each[2]"]
    assert scheduler.instances(1) == range(2, 5)
    assert scheduler.unfinished == 4  # the mapped task and its three instances
    order = []
    while (i := scheduler.take()) is not None:
        order.append(i)
        decided = scheduler.succeed(i)
    assert order == [2, 3, 4]
    assert decided == [1]  # the last instance finishes the mapped task
    assert scheduler.status[1] is SUCCEEDED
    assert scheduler.finished


def test_zero_items_finish_a_mapped_task_at_once_and_its_dependents_go_on() -> None:
    graph = mapped_graph([("ls", [], None), ("each", ["ls"], "ls"), ("total", ["each"], None)])
    scheduler = Scheduler(graph, 2)
    scheduler.start()
    scheduler.succeed(scheduler.take())  # type: ignore[arg-type]
    assert scheduler.expand(1, 0) == [1, 2]
    assert scheduler.status[1] is SUCCEEDED
    assert scheduler.take() == 2


def test_the_workflow_graph_is_left_alone_a_run_grows_its_own_copy() -> None:
    graph = mapped_graph([("ls", [], None), ("each", ["ls"], "ls")])
    scheduler = Scheduler(graph, 2)
    scheduler.start()
    scheduler.succeed(scheduler.take())  # type: ignore[arg-type]
    scheduler.expand(1, 5)
    assert len(graph) == 2 and len(scheduler.graph) == 7
    assert graph.definition() == scheduler.graph.definition()
    assert graph.fingerprint() == scheduler.graph.fingerprint()
    assert Scheduler(graph, 2).graph is not scheduler.graph


def test_a_failed_instance_fails_the_mapped_task_after_the_others_ran() -> None:
    graph = mapped_graph([("ls", [], None), ("each", ["ls"], "ls"), ("after", ["each"], None)])
    scheduler = Scheduler(graph, 4)
    scheduler.start()
    scheduler.succeed(scheduler.take())  # type: ignore[arg-type]
    scheduler.expand(1, 3)
    first, second, third = scheduler.take(), scheduler.take(), scheduler.take()
    assert scheduler.fail(first) == []  # type: ignore[arg-type]
    assert scheduler.succeed(second) == []  # type: ignore[arg-type]
    assert scheduler.succeed(third) == [1, 2]  # type: ignore[arg-type]
    assert scheduler.status[1] is FAILED
    assert (scheduler.status[2], scheduler.skip_cause[2]) == (SKIPPED, SkipCause.UPSTREAM_FAILED)


def test_mapping_over_a_mapped_task_streams_instance_by_instance() -> None:
    graph = mapped_graph([("ls", [], None), ("a", ["ls"], "ls"), ("b", ["a"], "a")])
    scheduler = Scheduler(graph, 4)
    scheduler.start()
    scheduler.succeed(scheduler.take())  # type: ignore[arg-type]
    assert scheduler.expand(1, 3) == [3, 4, 5, 2]  # a's instances, then b: it may expand now
    assert scheduler.expand(2, 3) == []  # b[k] waits for a[k]
    with pytest.raises(ValueError, match=r"^task 'b' was already expanded|not waiting to expand"):
        scheduler.expand(2, 3)
    a = [scheduler.take() for _ in range(3)]
    assert a == [3, 4, 5]
    assert scheduler.succeed(4) == [7]  # b[1] as soon as a[1] succeeded
    assert scheduler.graph.ids[7] == "b[1]"
    assert scheduler.fail(3) == [6]  # b[0] is skipped: a[0] failed
    assert (scheduler.status[6], scheduler.skip_cause[6]) == (SKIPPED, SkipCause.UPSTREAM_FAILED)
    assert scheduler.succeed(5) == [8, 1]  # b[2]; a is done
    assert scheduler.status[1] is FAILED


def test_a_stream_expands_over_the_instances_of_its_upstream_and_nothing_else() -> None:
    graph = mapped_graph([("ls", [], None), ("a", ["ls"], "ls"), ("b", ["a"], "a")])
    scheduler = Scheduler(graph, 4)
    scheduler.start()
    scheduler.succeed(scheduler.take())  # type: ignore[arg-type]
    scheduler.expand(1, 2)
    with pytest.raises(
        ValueError,
        match=r"^task 'b' maps over 'a' instance by instance: it expands into its 2 instances, "
        r"not 3$",
    ):
        scheduler.expand(2, 3)


def test_misuse_of_mapped_tasks_is_loud() -> None:
    graph = mapped_graph([("ls", [], None), ("each", ["ls"], "ls")])
    scheduler = Scheduler(graph, 2)
    scheduler.start()
    with pytest.raises(ValueError, match=r"^task 0 is not a mapped task: there is nothing to"):
        scheduler.expand(0, 1)
    with pytest.raises(ValueError, match=r"^task 'each' is not waiting to expand \(it is pending"):
        scheduler.expand(1, 1)
    scheduler.succeed(scheduler.take())  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"^task 'each' cannot expand into -1 instances$"):
        scheduler.expand(1, -1)
    with pytest.raises(ValueError, match=r"^task 'each': items \[2\] are not all among its 2"):
        scheduler.expand(1, 2, succeeded=[2])
    scheduler.expand(1, 2)
    for report in (scheduler.succeed, scheduler.skip, scheduler.retry, scheduler.cancel):
        with pytest.raises(ValueError, match=r"^task 'each' is mapped: its instances run and"):
            report(1)
    with pytest.raises(ValueError, match=r"^task 'each' is mapped: it cannot wait for input$"):
        scheduler.hold(1)


def test_instances_restored_as_succeeded_do_not_run_again() -> None:
    graph = mapped_graph([("ls", [], None), ("each", ["ls"], "ls")])
    scheduler = Scheduler(graph, 4)
    scheduler.start()
    scheduler.succeed(scheduler.take())  # type: ignore[arg-type]
    assert scheduler.expand(1, 3, succeeded=[0, 2]) == [3]
    assert scheduler.status[2:] == [SUCCEEDED, PENDING, SUCCEEDED]
    assert scheduler.succeed(scheduler.take()) == [1]  # type: ignore[arg-type]
    assert scheduler.expand  # and when all were restored, the task finishes as it expands:
    again = Scheduler(graph, 4)
    again.start()
    again.succeed(again.take())  # type: ignore[arg-type]
    assert again.expand(1, 2, succeeded=[0, 1]) == [1]
    assert again.finished


def test_instances_that_skipped_themselves_stay_skipped_when_restored() -> None:
    graph = mapped_graph([("ls", [], None), ("each", ["ls"], "ls"), ("then", ["each"], "each")])
    scheduler = Scheduler(graph, 4)
    scheduler.start()
    scheduler.succeed(scheduler.take())  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"items \[1\] cannot have both succeeded and skipped"):
        scheduler.expand(1, 3, succeeded=[0, 1], skipped=[1])
    with pytest.raises(ValueError, match=r"items \[3\] are not all among its 3 items"):
        scheduler.expand(1, 3, skipped=[3])
    decided = scheduler.expand(1, 3, succeeded=[0], skipped=[1])
    each = list(scheduler.instances(1) or ())
    assert decided == [each[2], 2]  # the one left to run, then the stream (it may expand now)
    assert scheduler.status[each[1]] is SKIPPED
    assert scheduler.skip_cause[each[1]] is SkipCause.SKIPPED_BY_TASK
    then = scheduler.expand(2, 3)
    skipped = scheduler.instances(2)[1]  # type: ignore[index]
    assert skipped in then and scheduler.skip_cause[skipped] is SkipCause.UPSTREAM_SKIPPED
    scheduler.succeed(scheduler.take())  # type: ignore[arg-type]  # each[2]
    assert scheduler.status[1] is SUCCEEDED  # an instance's Skip leaves out its item only


def test_instances_keep_their_tasks_pool_and_a_halt_cancels_those_not_started() -> None:
    graph = mapped_graph(
        [("ls", [], None), ("each", ["ls"], "ls"), ("other", ["ls"], None)],
    )
    scheduler = Scheduler(graph, 4, lanes=[0, 1, 0], lane_limits=[1])
    scheduler.start()
    scheduler.succeed(scheduler.take())  # type: ignore[arg-type]
    scheduler.expand(1, 3)
    taken = [scheduler.take(), scheduler.take(), scheduler.take()]
    assert taken == [3, 2, None]  # one instance (lane of 1 slot) and the other task
    assert scheduler.statistics().ready == 2
    cancelled = scheduler.halt()
    assert cancelled == [4, 5]
    assert scheduler.succeed(3) == [1]
    assert scheduler.status[1] is CANCELLED
    assert scheduler.take() is None  # the mapped task's key left in its heap is dropped
    assert scheduler.succeed(2) == []
    assert scheduler.finished


def mapped_plan(rng: random.Random) -> tuple[Graph, dict[int, int], dict[str, str]]:
    """A random DAG of static and mapped tasks (some mapped over mapped ones), the number of
    items each mapped task over a static one gets (the same for every task mapped over one
    task: its output's length), and how each task or instance ends (made
    from one seeded ``Random``, as ``test_rules.ruled_graph`` is: hypothesis's cost is per
    draw)."""
    n = rng.randint(1, 8)
    wf = Workflow("mapped")
    mapped: set[int] = set()
    counts: dict[int, int] = {}
    sizes: dict[int, int] = {}  # the length of each static task's output that is mapped over
    for i in range(n):
        depends_on = rng.sample(range(i), rng.randint(0, min(i, 3)))
        map_over = None
        if depends_on and rng.random() < 0.5:
            map_over = depends_on[0]
            mapped.add(i)
            if map_over not in mapped:
                counts[i] = sizes.setdefault(map_over, rng.randint(0, 3))
        wf.add_task(
            f"t{i}",
            _each,
            depends_on=[f"t{d}" for d in depends_on],
            map_over=None if map_over is None else f"t{map_over}",
            trigger=TriggerRule.ALL_SUCCESS if map_over is not None else rng.choice(RULES),
        )
    ends = {
        f"t{i}{suffix}": rng.choice(["success", "success", "failed", "skip"])
        for i in range(n)
        for suffix in ("", *INSTANCES)
    }
    return wf.graph(), counts, ends


RULES = [TriggerRule.ALL_SUCCESS, TriggerRule.ALL_DONE, TriggerRule.ONE_FAILED]
INSTANCES = ("[0]", "[1]", "[2]")


def _state(status: TaskStatus, cause: SkipCause | None) -> str:
    if status is SUCCEEDED:
        return "success"
    if status is FAILED:
        return "failed"
    return "upstream_failed" if cause is SkipCause.UPSTREAM_FAILED else "skipped"


@functools.cache
def _reference_cause(rule: TriggerRule, states: tuple[str, ...]) -> str:
    return reference_cause(rule, states)


def mapped_reference(
    graph: Graph, counts: dict[int, int], ends: dict[str, str]
) -> dict[str, tuple[TaskStatus, SkipCause | None]]:
    """Each task's and instance's final status and cause, from the rules in topological order:
    a stream counts its upstream as succeeded if that expanded, instance k follows instance k."""
    end_of = {"success": (SUCCEEDED, None), "failed": (FAILED, None)}
    end_of["skip"] = (SKIPPED, SkipCause.SKIPPED_BY_TASK)
    final: dict[str, tuple[TaskStatus, SkipCause | None]] = {}
    expanded: dict[int, list[str]] = {}
    for i in graph.topological_order:
        task_id, u = graph.ids[i], graph.map_over[i]
        states = [
            "success" if d == u and d in expanded else _state(*final[graph.ids[d]])
            for d in graph.dependencies[i]
        ]
        outcome = _reference_cause(graph.rules[i], tuple(sorted(states)))
        if outcome != RUN:
            final[task_id] = (SKIPPED, outcome)  # type: ignore[assignment]
            continue
        if u < 0:
            final[task_id] = end_of[ends.get(task_id, "success")]
            continue
        items = [f"{task_id}[{k}]" for k in range(len(expanded[u]) if u in expanded else counts[i])]
        expanded[i] = items
        for k, instance in enumerate(items):
            upstream = "success" if u not in expanded else _state(*final[expanded[u][k]])
            if upstream == "success":
                final[instance] = end_of[ends.get(instance, "success")]
            else:
                final[instance] = (SKIPPED, _reference_cause(TriggerRule.ALL_SUCCESS, (upstream,)))  # type: ignore[assignment]
        statuses = [final[instance] for instance in items]
        if any(s is FAILED for s, _ in statuses):
            final[task_id] = (FAILED, None)
        elif (SKIPPED, SkipCause.UPSTREAM_FAILED) in statuses:
            final[task_id] = (SKIPPED, SkipCause.UPSTREAM_FAILED)
        else:
            final[task_id] = (SUCCEEDED, None)
    return final


@settings(max_examples=800, deadline=None, derandomize=True)
@given(seed=st.integers(0, 2**64 - 1))
def test_random_graphs_with_mapped_tasks_end_as_the_reference_says(seed: int) -> None:
    """Tasks and instances finish in a random order; mapped tasks expand when handed over. At
    the end every status and cause is the reference's, every instance ran only once its
    upstream instance succeeded (streaming), and nothing is left counted as ready or running."""
    rng = random.Random(seed)
    graph, counts, ends = mapped_plan(rng)
    scheduler = Scheduler(graph, max_concurrency=4)
    ids = scheduler.graph.ids

    def follow(decided: list[int]) -> None:
        for d in decided:
            if scheduler.status[d] is RUNNING:  # a mapped task, handed over to expand
                upstream = scheduler.instances(graph.map_over[d])
                count = len(upstream) if upstream is not None else counts[d]
                follow(scheduler.expand(d, count))

    follow(scheduler.start())
    running: list[int] = []
    while not scheduler.finished:
        while (i := scheduler.take()) is not None:
            if i >= graph.size:  # an instance: its upstream instance, if any, succeeded
                assert all(
                    scheduler.status[d] is SUCCEEDED for d in scheduler.graph.dependencies[i]
                )
            running.append(i)
        assert running, "nothing runs, yet the run is not finished"
        i = running.pop(rng.randrange(len(running)))
        end = ends[ids[i]]
        report = {"success": scheduler.succeed, "failed": scheduler.fail, "skip": scheduler.skip}
        follow(report[end](i))
    expected = mapped_reference(graph, counts, ends)
    got = {
        ids[i]: (status, cause)
        for i, (status, cause) in enumerate(
            zip(scheduler.status, scheduler.skip_cause, strict=True)
        )
    }
    assert got == expected
    assert (scheduler.ready, scheduler.running, scheduler.waiting) == (0, 0, 0)
