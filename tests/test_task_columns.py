"""How a workflow keeps its tasks: columns the garbage collector does not walk, the live
``wf.tasks`` view over them, and a graph's TaskSpecs made by index."""

import gc
from itertools import repeat
from operator import is_
from typing import Any, get_type_hints

import pytest

from plait import RetryPolicy, TaskSpec, TriggerRule, Workflow
from plait._task_columns import DEFAULT_OPTIONS, TaskOptions


def one() -> int:
    return 1


def gather(**upstream: Any) -> int:
    return len(upstream)


async def agather(**upstream: Any) -> int:
    return len(upstream)


def item(numbers: int) -> int:
    return numbers


def square(c: int) -> int:
    return c * c


def tracked_tuples_holding(fn: Any) -> int:
    """How many tuples the garbage collector tracks (TaskSpecs among them) that hold ``fn``:
    counted this way, not as all tracked objects, so that other threads' objects do not
    count."""
    gc.collect()  # untracks the tuples of untracked objects it finds
    tuples = (o for o in gc.get_objects() if isinstance(o, tuple))
    return sum(1 for o in tuples if any(map(is_, o, repeat(fn))))


def test_tasks_added_without_options_add_no_object_for_the_collector() -> None:
    wf = Workflow("w")
    wf.add_task("first", gather)
    before = tracked_tuples_holding(gather)
    for i in range(2000):
        wf.add_task(f"t{i}", gather, depends_on=["first", f"t{i - 1}"] if i else ["first"])
    # A TaskSpec kept per task would be 2000 more; the columns are lists that grow in place.
    assert tracked_tuples_holding(gather) == before
    assert len(list(wf.tasks.values())) == 2001  # made when read, and kept
    assert tracked_tuples_holding(gather) == before + 2001


def test_tasks_added_alike_share_their_options() -> None:
    wf = Workflow("w")
    wf.add_task("a", gather)
    wf.add_task("b", gather, depends_on=["a"])
    wf.add_task("c", agather, depends_on=["a", "b"])
    wf.add_task("d", one, retry=RetryPolicy(max_retries=1))
    options = wf.graph().options
    assert options[0] is DEFAULT_OPTIONS[False][0]
    assert options[1] is DEFAULT_OPTIONS[False][1]
    assert options[2] is DEFAULT_OPTIONS[True][1]
    assert options[3].retry == RetryPolicy(max_retries=1)


def test_options_name_the_fields_of_a_task_spec() -> None:
    assert TaskOptions._fields == TaskSpec._fields[3:]
    spec_hints = get_type_hints(TaskSpec)
    assert get_type_hints(TaskOptions) == {name: spec_hints[name] for name in TaskOptions._fields}


def test_specs_made_from_columns_equal_the_specs_add_task_returns() -> None:
    wf = Workflow("w")
    returned = [
        wf.add_task("a", gather),
        wf.add_task("b", gather, depends_on=["a"], params={"x": 1}),
        wf.add_task("c", one, depends_on=["b"], trigger="all_done", priority=3, pool="p"),
        wf.add_task("d", square, depends_on=["c"], map_over="c", timeout=2.0),
    ]
    assert list(wf.tasks.values()) == returned
    assert [tuple(spec) for spec in wf.tasks.values()] == [tuple(spec) for spec in returned]
    assert list(wf.graph().specs) == returned
    assert wf.tasks["c"].trigger is TriggerRule.ALL_DONE


def test_the_tasks_view_keeps_the_specs_it_made() -> None:
    wf = Workflow("w")
    wf.add_task("a", one)
    first = wf.tasks["a"]
    wf.add_task("b", one)
    assert wf.tasks["a"] is first
    assert list(wf.tasks.items()) == [("a", first), ("b", wf.tasks["b"])]


def test_the_tasks_view_is_live_and_read_only() -> None:
    wf = Workflow("w")
    view, values, items = wf.tasks, wf.tasks.values(), wf.tasks.items()
    wf.add_task("a", one)
    assert list(view) == ["a"] and len(view) == 1 and "a" in view and "b" not in view
    assert [spec.id for spec in values] == ["a"]
    assert [task_id for task_id, _ in items] == ["a"]
    assert view.get("b") is None
    with pytest.raises(KeyError, match="b"):
        view["b"]
    with pytest.raises(TypeError):
        view["b"] = view["a"]  # type: ignore[index]
    assert view == {"a": view["a"]}
    wf.add_task("b", one)
    assert list(reversed(view)) == ["b", "a"]
    copy = view.copy()
    assert copy == {"a": view["a"], "b": view["b"]} and type(copy) is dict
    assert list(view | {"c": view["a"]}) == ["a", "b", "c"]
    assert list({"c": view["a"]} | view) == ["c", "a", "b"]
    assert repr(view).startswith("TaskView({'a': TaskSpec(id='a'")
    del copy["a"]
    assert "a" in view


def test_graph_specs_by_index_with_instances() -> None:
    wf = Workflow("w")
    wf.add_task("numbers", one)
    mapped = wf.add_task("total", item, depends_on=["numbers"], map_over="numbers")
    graph = wf.graph().for_run()
    graph.add_instances(1, 2)
    specs = graph.specs
    assert len(specs) == 4
    assert specs[1] == mapped
    assert specs[2] == mapped and specs[-1] == mapped  # an instance has its task's spec
    assert specs[0:2] == [wf.tasks["numbers"], mapped]
    assert list(specs) == [wf.tasks["numbers"], mapped, mapped, mapped]
    assert graph.fns[3] is item and graph.options[3] is graph.options[1]
    with pytest.raises(IndexError, match=r"^task index 4 out of range: the graph has 4 tasks$"):
        specs[4]
    with pytest.raises(IndexError):
        specs[-5]


def test_a_graph_keeps_the_tasks_it_was_compiled_with() -> None:
    wf = Workflow("w")
    wf.add_task("a", one)
    graph = wf.graph()
    wf.add_task("b", one)
    assert graph.ids == ["a"] and len(graph.specs) == 1 and graph.fns == [one]
    assert wf.graph().ids == ["a", "b"]
