"""Tasks queued behind running ones (``_scheduler_behind``): slots handed over, never doubled."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_scheduler import CheckedStatus, make_graph

from plait import Workflow
from plait._graph import Graph
from plait._scheduler import Scheduler
from plait._state import TaskStatus

PENDING = TaskStatus.PENDING
RUNNING = TaskStatus.RUNNING
CANCELLED = TaskStatus.CANCELLED


def _lane(
    graph: Graph, max_concurrency: int, limit: int, pool_limits: dict[str, int] | None = None
) -> Scheduler:
    """Every task in lane 1 (one executor), with ``limit`` slots; every status change checked
    (but a mapped task's instances')."""
    scheduler = Scheduler(
        graph, max_concurrency, pool_limits, lanes=[1] * len(graph), lane_limits=[limit]
    )
    if not graph.mapped:
        scheduler.status = CheckedStatus(scheduler.status, graph.ids)
    scheduler.start()
    return scheduler


def _ids(graph: Graph, *names: str) -> list[int]:
    return [graph.index[name] for name in names]


def test_a_queued_task_is_pending_holds_no_slot_and_takes_over_when_the_one_ahead_ends() -> None:
    graph = make_graph([(name, []) for name in "abcd"])
    a, b, c, d = _ids(graph, *"abcd")
    scheduler = _lane(graph, 2, 2)
    assert [scheduler.take(), scheduler.take(), scheduler.take()] == [a, b, None]
    assert scheduler.take_behind(a) == c
    assert scheduler.status[c] is PENDING
    assert (scheduler.running, scheduler.ready, scheduler.queued_behind) == (2, 1, 1)
    assert scheduler.ahead_of(c) == a
    assert scheduler.take() is None  # c does not free a slot, nor take one
    scheduler.succeed(a)
    assert scheduler.status[c] is RUNNING
    assert (scheduler.running, scheduler.queued_behind) == (2, 0)
    assert scheduler.take() is None  # the running count never dropped: d still waits
    scheduler.succeed(b)
    assert scheduler.take() == d


@pytest.mark.parametrize("report", ["succeed", "fail", "retry", "suspend", "skip", "cancel"])
def test_whatever_ends_the_task_ahead_the_queued_one_runs_in_its_slot(report: str) -> None:
    graph = make_graph([(name, []) for name in "abc"])
    a, b, c = _ids(graph, *"abc")
    scheduler = _lane(graph, 1, 1)
    assert scheduler.take() == a
    assert scheduler.take_behind(a) == b
    getattr(scheduler, report)(a)
    assert scheduler.status[b] is RUNNING
    assert scheduler.running == 1
    assert scheduler.take() is None
    scheduler.succeed(b)
    assert scheduler.take() in (a, c)


def test_the_queued_task_is_the_best_ready_one_of_the_same_pool_and_lane() -> None:
    graph = make_graph(
        [("a", []), ("p1", []), ("x", []), ("x2", ["x"]), ("p2", [])],
        {"a": {"pool": "db"}, "p1": {"pool": "db"}, "p2": {"pool": "db"}},
    )
    a, p1, x = _ids(graph, "a", "p1", "x")
    scheduler = _lane(graph, 2, 2, pool_limits={"db": 1})
    assert scheduler.take() == x  # the critical path first
    assert scheduler.take() == a
    assert scheduler.take_behind(a) == p1  # in db, as a is: x2 is not ready, x's pool differs
    scheduler.succeed(a)
    assert scheduler.statistics().pools["db"].running == 1


def test_cancelling_a_queued_task_unlinks_it_and_the_one_ahead_frees_its_slot() -> None:
    graph = make_graph(
        [("a", []), ("b", []), ("c", []), ("after_b", ["b"]), ("a2", ["a"]), ("a3", ["a2"])]
    )
    a, b, after_b = _ids(graph, "a", "b", "after_b")
    scheduler = _lane(graph, 1, 1)
    assert scheduler.take() == a
    assert scheduler.take_behind(a) == b
    assert scheduler.cancel(b) == [after_b]  # its dependents are skipped, as for any cancel
    assert scheduler.queued_behind == 0
    scheduler.succeed(a)
    assert scheduler.status[b] is CANCELLED
    assert scheduler.running == 0  # a's slot was freed, not handed to b
    assert scheduler.take() == graph.index["a2"]


def test_halt_cancels_a_queued_task_unless_it_is_a_cleanup_task() -> None:
    graph = make_graph([("a", []), ("tidy", []), ("b", [])], {"tidy": {"cleanup": True}})
    a, b, tidy = _ids(graph, "a", "b", "tidy")
    scheduler = _lane(graph, 2, 2)
    assert {scheduler.take(), scheduler.take()} == {a, tidy}
    assert scheduler.take_behind(a) == b
    assert b in scheduler.halt()
    scheduler.succeed(a)
    assert scheduler.status[b] is CANCELLED
    assert scheduler.running == 1

    scheduler = _lane(graph, 1, 1)
    assert scheduler.take() == a
    assert scheduler.take_behind(a) == tidy
    assert scheduler.halt() == [b]
    scheduler.fail(a)
    assert scheduler.status[tidy] is RUNNING  # a cleanup task still runs after a halt


def test_a_queued_task_is_not_requeued() -> None:
    graph = make_graph([("a", []), ("b", [])])
    a, b = _ids(graph, "a", "b")
    scheduler = _lane(graph, 1, 1)
    assert scheduler.take() == a
    assert scheduler.take_behind(a) == b
    assert scheduler.requeue(b) is False
    assert scheduler.ready == 0


def test_take_behind_returns_none_when_the_queue_is_empty() -> None:
    graph = make_graph([("a", []), ("b", ["a"])])
    (a,) = _ids(graph, "a")
    scheduler = _lane(graph, 2, 2)
    assert scheduler.take() == a
    assert scheduler.take_behind(a) is None
    assert scheduler.queued_behind == 0


def _misuse() -> tuple[Scheduler, Graph]:
    graph = make_graph([(name, []) for name in "abcd"])
    scheduler = _lane(graph, 1, 1)
    assert scheduler.take() == graph.index["a"]
    assert scheduler.take_behind(graph.index["a"]) == graph.index["b"]
    return scheduler, graph


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (
            lambda s, g: s.take_behind(g.index["a"]),
            "task 'a' already has task 'b' queued behind it; queue another once that one runs",
        ),
        (lambda s, g: s.take_behind(g.index["c"]), "task 'c' is not running (it is pending)"),
        (
            lambda s, g: s.take_behind(g.index["b"]),
            "task 'b' is not running (it is pending, queued behind 'a')",
        ),
        (
            lambda s, g: s.succeed(g.index["b"]),
            "task 'b' is not running (it is pending, queued behind 'a')",
        ),
        (lambda s, g: s.take_behind(9), "no task has index 9; the graph's tasks are 0 to 3"),
    ],
)
def test_misuse_is_refused_naming_the_tasks_and_changes_nothing(call: object, message: str) -> None:
    scheduler, graph = _misuse()
    before = (list(scheduler.status), repr(scheduler), scheduler.queued_behind)
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        call(scheduler, graph)  # type: ignore[operator]
    assert (list(scheduler.status), repr(scheduler), scheduler.queued_behind) == before


def test_a_task_in_no_lane_cannot_have_one_queued_behind_it() -> None:
    graph = make_graph([("a", []), ("b", [])])
    scheduler = Scheduler(graph, 2)
    scheduler.start()
    a = scheduler.take()
    assert a is not None
    with pytest.raises(ValueError, match=r"^task 'a' runs in no executor lane: "):
        scheduler.take_behind(a)


def test_a_mapped_task_s_instances_can_be_queued_behind_each_other() -> None:
    wf = Workflow("mapped")
    wf.add_task("items", _items)
    wf.add_task("each", _double, depends_on=["items"], map_over="items")
    graph = wf.graph()
    scheduler = _lane(graph, 1, 1)
    items = scheduler.take()
    assert items == graph.index["items"]
    scheduler.succeed(items)
    each = graph.index["each"]
    instances = scheduler.expand(each, 3)
    first = scheduler.take()
    assert first == instances[0]
    assert scheduler.take_behind(first) == instances[1]
    scheduler.succeed(first)
    assert scheduler.status[instances[1]] is RUNNING


def _items() -> list[int]:
    return [1, 2, 3]


def _double(items: int) -> int:
    return 2 * items


# -- random operations: the limits always hold --------------------------------------------------


@st.composite
def _setups(draw: st.DrawFn) -> tuple[Graph, int, list[int], list[int], dict[str, int]]:
    n = draw(st.integers(1, 14))
    wf = Workflow("behind")
    for i in range(n):
        deps = (
            draw(st.lists(st.integers(0, max(i - 1, 0)), max_size=min(i, 2), unique=True))
            if draw(st.booleans())
            else []
        )
        wf.add_task(
            f"t{i}",
            _noop,
            depends_on=[f"t{d}" for d in deps],
            pool=draw(st.sampled_from([None, None, "p"])),
            cleanup=draw(st.integers(0, 6)) == 6,
        )
    graph = wf.graph()
    lane_limits = draw(st.lists(st.integers(1, 3), min_size=1, max_size=2))
    lane = st.sampled_from([1, 1, 1, 0, len(lane_limits)])  # mostly an executor's lane
    lanes = [draw(lane) for _ in range(n)]
    pools = {"p": draw(st.integers(1, 2))} if draw(st.booleans()) else {}
    return graph, draw(st.integers(1, 4)), lanes, lane_limits, pools


def _noop() -> None:
    pass


@settings(max_examples=200, deadline=None, derandomize=True)
@given(setup=_setups(), data=st.data())
def test_with_tasks_queued_behind_the_limits_hold_and_every_run_finishes(
    setup: tuple[Graph, int, list[int], list[int], dict[str, int]], data: st.DataObject
) -> None:
    """Random takes, queueing behind, reports and halts: never more than max_concurrency (or a
    pool's or a lane's limit) running, queued tasks pending and paired one to one with running
    ones of their pool and lane, every status change allowed, and the run always finishes."""
    graph, max_concurrency, lanes, lane_limits, pools = setup
    scheduler = Scheduler(graph, max_concurrency, pools, lanes=lanes, lane_limits=lane_limits)
    scheduler.status = CheckedStatus(scheduler.status, graph.ids)
    scheduler.start()
    behind: dict[int, int] = {}  # running task -> the task queued behind it, as we were told
    retried: set[int] = set()
    for _ in range(30 * len(graph) + 10):
        if scheduler.finished:
            break
        status = scheduler.status
        running = [i for i, s in enumerate(status) if s is RUNNING]
        operations = ["take"] * 4 + ["halt"]  # (a halt ends most of a run: a rare one)
        if running:
            operations += ["succeed"] * 3 + ["fail", "retry", "skip", "cancel"] + ["behind"] * 4
        if behind:
            operations.append("cancel queued")
        if retried:
            operations.append("requeue")
        operation = data.draw(st.sampled_from(operations), label="operation")
        if operation == "take":
            scheduler.take()
        elif operation == "halt":
            for j in scheduler.halt(cleanup=data.draw(st.booleans())):
                behind = {i: q for i, q in behind.items() if q != j}
                retried.discard(j)
        elif operation == "requeue":
            i = data.draw(st.sampled_from(sorted(retried)), label="requeued")
            retried.discard(i)
            scheduler.requeue(i)
        elif operation == "cancel queued":
            i, j = data.draw(st.sampled_from(sorted(behind.items())), label="queued")
            del behind[i]
            scheduler.cancel(j)
        else:
            i = data.draw(st.sampled_from(running), label="task")
            if operation == "behind":
                if i in behind or lanes[i] == 0:
                    with pytest.raises(ValueError):
                        scheduler.take_behind(i)
                else:
                    j = scheduler.take_behind(i)
                    if j is not None:
                        assert status[j] is PENDING
                        assert (lanes[j], graph.pool_of[j]) == (lanes[i], graph.pool_of[i])
                        behind[i] = j
            else:
                if operation == "retry":
                    if not scheduler.may_retry(i):
                        continue
                    retried.add(i)
                getattr(scheduler, operation)(i)
                if i in behind:
                    assert status[behind.pop(i)] is RUNNING
        # the limits hold, counting only what runs
        running = [i for i, s in enumerate(status) if s is RUNNING]
        assert scheduler.running == len(running) <= max_concurrency
        for lane, limit in enumerate(lane_limits, start=1):
            assert sum(1 for i in running if lanes[i] == lane) <= limit
        for pool, limit in pools.items():
            assert sum(1 for i in running if graph.specs[i].pool == pool) <= limit
        assert scheduler.queued_behind == len(behind)
        for i, j in behind.items():
            assert status[i] is RUNNING and status[j] is PENDING
            assert scheduler.ahead_of(j) == i
    # Out of steps or finished: stop the run, and end what still runs (and what takes over).
    scheduler.halt(cleanup=False)
    while running := [i for i, s in enumerate(scheduler.status) if s is RUNNING]:
        for i in running:
            scheduler.succeed(i)
    assert scheduler.finished
    assert scheduler.queued_behind == 0
