"""Mapped tasks in the report's view (and the run page's, which is the same): a group per mapped
task, with its counts; bounded rows, failures and logs however many instances it has; the
critical path through an instance; skip causes in words. (The live view's groups are tested with
the live view, in test_live.py; the report in a browser in test_report.py.)"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import plait
from plait.cli._mapped import (
    COLLAPSE_OVER,
    INSTANCE_ROWS,
    counts_text,
    deciding_task,
    figure_dependencies,
    group_look,
    instance_of,
    path_weights,
    shown_instances,
)
from plait.cli._report import build_report, render_page
from plait.cli._report_attention import FAILURES_SHOWN
from plait.cli._report_model import GroupView, RowView, RunView, load_view
from plait.cli._summary import figures_of
from plait.cli._timeline import _Run
from plait.stores import EventRecord, MemoryStore, SQLiteStore, Store

from .conftest import in_thread
from .mapped_runs import store_mapped_run


def view_of(store: Store, run_id: str = "mapped") -> RunView:
    record = store.get_run(run_id)
    assert record is not None
    return load_view(record, store)


def rows_by_id(view: RunView) -> dict[str, RowView | GroupView]:
    return {r.row.task_id if isinstance(r, GroupView) else r.task_id: r for r in view.timeline.rows}


@pytest.fixture
def store(tmp_path: Path) -> SQLiteStore:
    return SQLiteStore(tmp_path / "plait.db")


# -- the pieces ------------------------------------------------------------------------------------


def test_an_instance_is_known_by_its_id_alone() -> None:
    assert instance_of("convert[3]") == ("convert", 3)
    assert instance_of("a[b][12]") == ("a[b]", 12)
    for task_id in ("convert", "convert[]", "convert[x]", "[3]", "convert[3] ", "c[-1]"):
        assert instance_of(task_id) is None, task_id


class _Instance:
    def __init__(self, i: int, css: str) -> None:
        self.id, self.css = f"t[{i}]", css


def test_a_large_group_shows_what_did_not_succeed_then_the_slowest_in_item_order() -> None:
    instances = [_Instance(i, "succeeded") for i in range(50)]
    work = {f"t[{i}]": float(i % 10) for i in range(50)}
    instances[7] = _Instance(7, "failed")
    instances[31] = _Instance(31, "cancelled")
    shown = shown_instances(instances, work, most=6)
    assert [instances.index(i) for i in shown] == [7, 9, 19, 29, 31, 39]  # work 9: the slowest
    assert shown_instances(instances[:6], work, most=6) == instances[:6]
    failing = [_Instance(i, "failed") for i in range(10)]
    assert shown_instances(failing, work, most=4) == failing[:4]


@pytest.mark.parametrize(
    ("looks", "total", "look"),
    [
        ({"succeeded": 19, "failed": 1}, 20, "failed"),
        ({"succeeded": 5, "running": 2, "pending": 3}, 10, "running"),
        ({"succeeded": 3, "skipped": 1}, 4, "succeeded"),  # one skipped itself
        ({"skipped": 4}, 4, "skipped"),
        ({"succeeded": 4}, 4, "succeeded"),
        ({}, 0, "pending"),
    ],
)
def test_a_group_looks_as_its_instances_sum_up(
    looks: dict[str, int], total: int, look: str
) -> None:
    assert group_look(looks, total=total) == look


def test_a_task_after_a_mapped_task_was_decided_by_the_mapped_task_not_its_last_instance() -> None:
    assert deciding_task("publish", "convert[19]") == "convert"
    assert deciding_task("b[3]", "a[3]") == "a[3]"  # b maps over a: instance by instance
    assert deciding_task("publish", "load") == "load"
    assert deciding_task("parse", "parse[13]") == "parse[13]"  # skipped as a whole, for it


def test_counts_read_as_words() -> None:
    assert counts_text([("succeeded", 19_000), ("failed", 1), ("skipped", 0)]) == (
        "19,000 succeeded, 1 failed"
    )
    assert counts_text([]) == "no instances"


def test_the_critical_path_graph_grows_with_the_instances_not_their_product() -> None:
    declared = {"list": (), "a": ("list",), "b": ("a", "config"), "config": (), "total": ("b",)}
    instances = {"a": ["a[0]", "a[1]"], "b": ["b[0]", "b[1]"]}
    deps = figure_dependencies(declared, instances, {"a": "list", "b": "a"})
    assert deps["a"] == ("a[0]", "a[1]", "list") and deps["a[1]"] == ("list",)
    assert deps["b[1]"] == ("a[1]", "config")  # b maps over a: instance by instance
    assert deps["total"] == ("b",) and deps["list"] == ()


@settings(max_examples=30, deadline=None)
@given(
    a=st.lists(st.integers(0, 5), max_size=6),
    b=st.lists(st.integers(0, 5), max_size=6),
    c=st.lists(st.integers(0, 5), max_size=6),
    head=st.integers(0, 5),
    tail=st.integers(0, 5),
)
def test_weighing_a_mapped_task_as_its_heaviest_instance_finds_the_same_path(
    a: list[int], b: list[int], c: list[int], head: int, tail: int
) -> None:
    """``list -> a (mapped) -> b (mapped over a, instance by instance) -> end`` and
    ``list -> c (mapped) -> end``: ``c`` is weighed as one node, ``a`` and ``b`` stream."""
    b = b[: len(a)]
    declared = {"list": (), "a": ("list",), "b": ("a",), "c": ("list",), "end": ("b", "c")}
    instances = {
        name: [f"{name}[{i}]" for i in range(len(w))]
        for name, w in zip("abc", (a, b, c), strict=True)
    }
    work = {"list": float(head), "a": 0.0, "b": 0.0, "c": 0.0, "end": float(tail)}
    for name, weights in zip("abc", (a, b, c), strict=True):
        work.update((f"{name}[{i}]", float(w)) for i, w in enumerate(weights))
    spans = {task_id: [(0.0, w)] if w else [] for task_id, w in work.items()}
    deps = figure_dependencies(declared, instances, {"a": "list", "b": "a", "c": "list"})
    every_node = figures_of(spans, deps)
    weights, stands_for = path_weights(work, instances, {"a": "list", "b": "a", "c": "list"})
    assert set(stands_for) <= {"c"} and not any(i in weights for i in instances["c"])
    one_node = figures_of(spans, deps, weights=weights)
    assert one_node.critical_seconds == every_node.critical_seconds
    # As the report names it: a mapped task weighed as an instance is that instance; one that
    # only joins its instances is left out. (Ties may pick another path of the same weight.)
    named = [
        stands_for.get(t, t)
        for t in one_node.critical_path
        if t in stands_for or t not in instances
    ]
    assert sum(work[t] for t in named) == one_node.critical_seconds
    assert (one_node.makespan, one_node.task_time, one_node.tasks) == (
        every_node.makespan,
        every_node.task_time,
        every_node.tasks,
    )


# -- the report's view -----------------------------------------------------------------------------


def test_a_large_mapped_task_is_one_row_with_its_counts_opening_on_bounded_rows(
    store: SQLiteStore,
) -> None:
    n = INSTANCE_ROWS + 100
    store_mapped_run(store, n, failed={3, 150})
    view = view_of(store)
    rows = rows_by_id(view)
    assert list(rows) == ["list_files", "convert", "alert", "cleanup", "total"]
    group = rows["convert"]
    assert isinstance(group, GroupView)
    assert group.total == n and not group.open
    assert group.counts == [("succeeded", n - 2), ("failed", 2)]
    assert group.summary == f"convert [{n}]: {n - 2} succeeded, 2 failed"
    assert group.row.look == "failed" and group.row.critical
    (bar,) = group.row.bars  # one bar from the first instance's start to the last one's end
    assert bar.classes == "bar group status-failed" and group.summary in bar.title
    ids = [instance_of(r.task_id) for r in group.instances]
    assert len(ids) == INSTANCE_ROWS and ids == sorted(ids)  # type: ignore[type-var]
    assert {"convert[3]", "convert[150]"} <= {r.task_id for r in group.instances}
    assert group.shown.startswith(f"Showing {INSTANCE_ROWS} of {n} instances")
    assert view.timeline.count == 4 + 1 + INSTANCE_ROWS

    (tasks,) = [f for f in view.header.figures if f.name == "tasks"]
    assert tasks.value == f"{4 + n}"  # a mapped task counts as its instances
    assert dict(tasks.chips) == {"succeeded": n + 1, "failed": 2, "skipped": 1}
    assert [f.task_id for f in view.attention.failures] == ["convert[3]", "convert[150]"]
    assert view.attention.failed == 2

    assert view.graph is not None
    (node,) = [node for node in view.graph.nodes if node.task_id == "convert"]
    assert node.label == f"convert [{n}]" and f"{n - 2} succeeded, 2 failed" in node.title
    path = view.graph.critical_path
    assert path[0] == "list_files" and instance_of(path[1]) is not None and path[2] == "alert"
    assert sum(1 for classes, _ in view.graph.edges if classes == "edge critical") == 2


def test_a_small_mapped_task_shows_every_instance_open(store: SQLiteStore) -> None:
    store_mapped_run(store, COLLAPSE_OVER)
    group = rows_by_id(view_of(store))["convert"]
    assert isinstance(group, GroupView)
    assert group.open and group.shown == ""
    assert [r.task_id for r in group.instances] == [f"convert[{i}]" for i in range(COLLAPSE_OVER)]
    html = render_page("run/gantt.html", timeline=view_of(store).timeline)
    assert "<details class='group' id='group-convert' data-task-id='convert' open>" in html
    assert html.count(" instance' data-task-id='convert[") == COLLAPSE_OVER


def test_the_page_stays_the_same_size_however_many_instances(tmp_path: Path) -> None:
    sizes = []
    for n in (INSTANCE_ROWS + 50, 3 * INSTANCE_ROWS):
        store = SQLiteStore(tmp_path / f"{n}.db")
        store_mapped_run(store, n, failed={n - 1})
        html = build_report("mapped", store=store)
        assert html.count("class='row ") == 4 + 1 + INSTANCE_ROWS  # the group's own row too
        assert f"convert [{n:,}]: {n - 1:,} succeeded, 1 failed" in html
        sizes.append(len(html))
    assert abs(sizes[1] - sizes[0]) < 2_000, sizes


def test_failures_list_a_few_instances_and_count_the_rest(store: SQLiteStore) -> None:
    failed = set(range(0, 100, 3))
    store_mapped_run(store, 100, failed=failed)
    attention = view_of(store).attention
    assert [f.task_id for f in attention.failures] == [
        f"convert[{i}]" for i in sorted(failed)[:FAILURES_SHOWN]
    ]
    assert attention.failed == len(failed)
    assert attention.more_failures == [
        f"convert: {len(failed) - FAILURES_SHOWN} more failed instances, in the timeline's group "
        "(filter it by status)"
    ]
    html = render_page("run/failures.html", attention=attention)
    assert f"<span class='count'>{len(failed)}</span>" in html


def test_skipped_tasks_say_why_with_or_without_an_event_log(store: SQLiteStore) -> None:
    store_mapped_run(store, 3, failed={1})
    rows = rows_by_id(view_of(store))
    total = rows["total"]
    assert isinstance(total, RowView) and total.note == "'convert' did not succeed"
    (marker,) = total.bars
    assert "skipped: 'convert' did not succeed" in marker.title
    assert "class='why'" in build_report("mapped", store=store)

    memory = MemoryStore()  # no event log: the why comes from the task's record
    store_mapped_run(memory, 3, with_events=False)
    rows = rows_by_id(view_of(memory))
    alert = rows["alert"]
    assert isinstance(alert, RowView) and alert.note == "trigger rule not met"
    (marker,) = alert.bars
    assert "skipped: trigger rule not met" in marker.title


def test_a_mapped_task_with_no_record_looks_as_its_instances(store: SQLiteStore) -> None:
    store_mapped_run(store, 4, failed={2})
    record = store.get_run("mapped")
    assert record is not None
    tasks = store.load_tasks("mapped")
    tasks.pop("convert")  # as a store holds it while the instances still run
    store.load_tasks = lambda run_id: tasks  # type: ignore[method-assign]
    run = _Run.load(record, store)
    assert run.tasks["convert"].status is plait.TaskStatus.FAILED
    assert [t.id for t in run.instances["convert"]] == [f"convert[{i}]" for i in range(4)]


def test_a_live_mapped_task_shows_the_instances_not_started_yet_as_pending(
    store: SQLiteStore,
) -> None:
    store_mapped_run(store, 3)
    record = store.get_run("mapped")
    assert record is not None
    events = store.load_events("mapped")
    at = next(e.time for e in events if e.task_id == "convert[0]")
    mapped = EventRecord(kind="TaskMapped", time=at, task_id="convert", data={"count": 10})
    store.load_events = lambda run_id, after=None: [*events, mapped]  # type: ignore[method-assign]
    run = _Run.load(record, store)
    looks = [t.css for t in run.instances["convert"]]
    assert looks == ["succeeded"] * 3 + ["pending"] * 7
    assert run.looks["convert"] == {"succeeded": 3, "pending": 7}


def test_a_task_mapped_over_a_mapped_task_streams_through_its_instances(store: SQLiteStore) -> None:
    wf = plait.Workflow("stream")
    wf.add_task("items", lambda: [1, 2, 3, 40])

    def slow(items: int) -> int:
        time.sleep(items / 1000)
        if items == 3:
            raise ValueError("three")
        return items

    wf.add_task("a", slow, depends_on=["items"], map_over="items", retry=plait.RetryPolicy(0))

    def after(a: int) -> int:  # its parameter is named after what it maps over
        return slow(a)

    wf.add_task("b", after, depends_on=["a"], map_over="a")
    result = in_thread(lambda: plait.run(wf, store=store))
    assert result.tasks["b"].status is plait.TaskStatus.SKIPPED
    view = view_of(store, result.run_id)
    rows = rows_by_id(view)
    a, b = rows["a"], rows["b"]
    assert isinstance(a, GroupView) and isinstance(b, GroupView)
    assert b.counts == [("succeeded", 3), ("skipped", 1)]
    assert b.row.note == "'b[2]' did not succeed"  # b skipped as a whole: for its instance
    assert view.graph is not None
    assert list(view.graph.critical_path) == ["items", "a[3]", "b[3]"]  # 40 ms each: a pair
