"""The compiled graph: validation (unknown ids, cycles) and what it precomputes for scheduling."""

from __future__ import annotations

import asyncio
import graphlib
import itertools
import math
import statistics
from collections.abc import Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import plait
from plait import CycleError, UnknownDependencyError, Workflow
from plait._graph import Graph


def noop() -> None:
    return None


def workflow(
    deps: dict[str, Sequence[str]],
    *,
    estimates: dict[str, float] | None = None,
    priorities: dict[str, int] | None = None,
    pools: dict[str, str] | None = None,
    name: str = "w",
) -> Workflow:
    """A workflow of no-op tasks, added in the order of ``deps``: task id -> its dependencies."""
    wf = Workflow(name)
    for task_id, dependencies in deps.items():
        wf.add_task(
            task_id,
            noop,
            depends_on=dependencies,
            estimate=(estimates or {}).get(task_id),
            priority=(priorities or {}).get(task_id, 0),
            pool=(pools or {}).get(task_id),
        )
    return wf


def recording_workflow(deps: dict[str, Sequence[str]], ran: list[str]) -> Workflow:
    """A workflow whose tasks append their id to ``ran`` when they run."""

    def record(task_id: str) -> None:
        ran.append(task_id)

    wf = Workflow("w")
    for task_id, dependencies in deps.items():
        wf.add_task(task_id, record, depends_on=dependencies, params={"task_id": task_id})
    return wf


def assert_is_cycle_in_work_direction(wf: Workflow, cycle: Sequence[str]) -> None:
    """``cycle`` ends where it starts, and each step goes from a dependency to its dependent."""
    assert len(cycle) >= 2
    assert cycle[0] == cycle[-1]
    assert len(set(cycle[:-1])) == len(cycle) - 1, f"{cycle} repeats a task inside the loop"
    for dependency, dependent in itertools.pairwise(cycle):
        assert dependency in wf.tasks[dependent].depends_on, f"{dependency} -> {dependent}"


def ids_in_order(graph: Graph, indexes: Sequence[int]) -> list[str]:
    return [graph.ids[i] for i in indexes]


# -- validation ---------------------------------------------------------------------------------


def test_a_valid_workflow_validates() -> None:
    wf = workflow({"a": [], "b": ["a"], "c": ["a", "b"]})
    assert wf.validate() is None


def test_an_empty_workflow_is_valid() -> None:
    wf = Workflow("empty")
    wf.validate()
    assert len(wf.graph()) == 0
    assert wf.graph().critical_path() == []


def test_an_unknown_dependency_suggests_a_close_id() -> None:
    wf = workflow({"fetch_data": [], "parse": ["fetch_dta"]}, name="etl")
    with pytest.raises(
        UnknownDependencyError,
        match=r"^task 'parse' depends on 'fetch_dta', which is not a task of workflow 'etl'; "
        r"did you mean 'fetch_data'\?$",
    ):
        wf.validate()


def test_an_unknown_dependency_without_a_close_id_says_to_define_or_remove_it() -> None:
    wf = workflow({"fetch": [], "parse": ["zzzzzz"]}, name="etl")
    with pytest.raises(
        UnknownDependencyError,
        match=r"^task 'parse' depends on 'zzzzzz', which is not a task of workflow 'etl'; "
        r"define it or remove it$",
    ):
        wf.validate()


def test_graph_raises_the_same_validation_errors_as_validate() -> None:
    wf = workflow({"a": ["b"]})
    with pytest.raises(UnknownDependencyError, match=r"^task 'a' depends on 'b'"):
        wf.graph()


def test_a_self_dependency_is_a_cycle_of_one_task() -> None:
    wf = workflow({"a": [], "b": ["a", "b"]})
    with pytest.raises(
        CycleError, match=r"^task 'b' depends on itself; remove 'b' from its depends_on$"
    ) as info:
        wf.validate()
    assert info.value.cycle == ["b", "b"]


def test_a_cycle_is_reported_as_a_path_in_the_direction_work_flows() -> None:
    # b needs a, c needs b, a needs c: work would flow a -> b -> c -> a.
    wf = workflow({"d": ["c"], "a": ["c"], "b": ["a"], "c": ["b"]}, name="loop")
    with pytest.raises(
        CycleError,
        match=r"^the dependencies of workflow 'loop' form a cycle: a -> b -> c -> a; "
        r"remove one of these dependencies$",
    ) as info:
        wf.validate()
    assert info.value.cycle == ["a", "b", "c", "a"]
    assert_is_cycle_in_work_direction(wf, info.value.cycle)


def test_a_two_task_cycle_is_reported() -> None:
    wf = workflow({"x": ["y"], "y": ["x"]})
    with pytest.raises(CycleError) as info:
        wf.validate()
    assert_is_cycle_in_work_direction(wf, info.value.cycle)
    assert sorted(info.value.cycle[:-1]) == ["x", "y"]
    assert " -> ".join(info.value.cycle) in str(info.value)


def test_tasks_downstream_of_a_cycle_are_not_part_of_the_reported_cycle() -> None:
    wf = workflow({"tail2": ["tail1"], "tail1": ["p"], "p": ["q"], "q": ["p"], "free": []})
    with pytest.raises(CycleError) as info:
        wf.validate()
    assert set(info.value.cycle) == {"p", "q"}
    assert_is_cycle_in_work_direction(wf, info.value.cycle)


def test_a_cycle_is_reported_even_when_every_task_is_in_it() -> None:
    wf = workflow({f"t{i}": [f"t{(i - 1) % 5}"] for i in range(5)})
    with pytest.raises(CycleError) as info:
        wf.validate()
    assert len(info.value.cycle) == 6
    assert_is_cycle_in_work_direction(wf, info.value.cycle)


@given(
    st.integers(min_value=1, max_value=7).flatmap(
        lambda n: st.lists(
            st.sets(st.integers(min_value=0, max_value=n - 1), max_size=3), min_size=n, max_size=n
        )
    )
)
@settings(max_examples=150, deadline=None)
def test_random_graphs_are_sorted_or_their_reported_cycle_is_real(
    dependencies: list[set[int]],
) -> None:
    deps = {f"t{i}": [f"t{d}" for d in sorted(ds)] for i, ds in enumerate(dependencies)}
    wf = workflow(deps)
    try:
        list(graphlib.TopologicalSorter(deps).static_order())
    except graphlib.CycleError:
        with pytest.raises(CycleError) as info:
            wf.validate()
        assert_is_cycle_in_work_direction(wf, info.value.cycle)
        return
    graph = wf.graph()
    order = ids_in_order(graph, graph.topological_order)
    assert sorted(order) == sorted(deps)
    position = {task_id: n for n, task_id in enumerate(order)}
    for task_id, task_deps in deps.items():
        for dependency in task_deps:
            assert position[dependency] < position[task_id]


@given(
    st.integers(min_value=1, max_value=8).flatmap(
        lambda n: st.tuples(
            st.tuples(*(st.sets(st.integers(0, max(i - 1, 0)), max_size=3) for i in range(n))),
            st.permutations(range(n)),
        )
    )
)
@settings(max_examples=150, deadline=None)
def test_a_graph_compiles_alike_whatever_order_its_tasks_are_defined_in(
    graph_and_order: tuple[tuple[set[int], ...], list[int]],
) -> None:
    # In definition order, every dependency comes first (the compiler's fast path); shuffled,
    # it does not (Kahn's algorithm). Ranks and edges must not tell the two apart.
    dependencies, order = graph_and_order
    deps = {f"t{i}": [f"t{d}" for d in sorted(ds) if d < i] for i, ds in enumerate(dependencies)}
    in_order = workflow(deps).graph()
    shuffled = workflow({f"t{i}": deps[f"t{i}"] for i in order}).graph()
    for task_id in deps:
        a, b = in_order.index[task_id], shuffled.index[task_id]
        assert in_order.rank[a] == shuffled.rank[b]
        assert ids_in_order(in_order, in_order.dependents[a]) == sorted(
            ids_in_order(shuffled, shuffled.dependents[b]), key=in_order.index.__getitem__
        )
    for graph in (in_order, shuffled):
        position = {i: n for n, i in enumerate(graph.topological_order)}
        assert sorted(position) == list(range(len(deps)))
        for i, task_dependencies in enumerate(graph.dependencies):
            assert all(position[d] < position[i] for d in task_dependencies)


def test_a_self_dependency_is_reported_before_a_later_unknown_dependency() -> None:
    wf = workflow({"a": [], "b": ["b"], "c": ["nope"]})
    with pytest.raises(CycleError, match=r"^task 'b' depends on itself"):
        wf.validate()


# -- nothing runs when the workflow is invalid --------------------------------------------------


@pytest.mark.parametrize(
    ("deps", "error"),
    [
        ({"a": [], "b": ["a"], "c": ["nope"]}, UnknownDependencyError),
        ({"a": [], "b": ["a", "c"], "c": ["b"]}, CycleError),
        ({"a": [], "b": ["b"]}, CycleError),
    ],
    ids=["unknown dependency", "cycle", "self-dependency"],
)
def test_run_on_an_invalid_workflow_raises_before_any_task_runs(
    deps: dict[str, Sequence[str]], error: type[Exception]
) -> None:
    ran: list[str] = []
    wf = recording_workflow(deps, ran)
    with pytest.raises(error):
        plait.run(wf)
    assert ran == []


def test_arun_on_an_invalid_workflow_raises_before_any_task_runs() -> None:
    ran: list[str] = []
    wf = recording_workflow({"a": [], "b": ["a", "c"], "c": ["b"]}, ran)
    with pytest.raises(CycleError):
        asyncio.run(plait.arun(wf))
    assert ran == []


def test_the_recording_workflow_does_run_when_valid() -> None:
    ran: list[str] = []
    plait.run(recording_workflow({"a": [], "b": ["a"]}, ran), max_concurrency=1)
    assert ran == ["a", "b"]


# -- what the graph precomputes -----------------------------------------------------------------


def test_dependencies_and_dependents_are_task_indexes() -> None:
    graph = workflow({"a": [], "b": ["a"], "c": ["a", "b"]}).graph()
    assert graph.ids == ["a", "b", "c"]
    assert graph.index == {"a": 0, "b": 1, "c": 2}
    assert graph.dependencies == [(), (0,), (0, 1)]
    assert graph.dependents == [(1, 2), (2,), ()]
    assert len(graph) == 3


def test_topological_order_follows_definition_order_among_ready_tasks() -> None:
    graph = workflow({"d": ["b", "c"], "b": ["a"], "c": ["a"], "a": [], "e": []}).graph()
    assert ids_in_order(graph, graph.topological_order) == ["a", "e", "b", "c", "d"]


def test_rank_is_the_longest_estimate_weighted_path_to_the_end() -> None:
    wf = workflow(
        {"a": [], "slow": ["a"], "fast": ["a"], "end": ["slow", "fast"], "alone": []},
        estimates={"a": 2.0, "slow": 5.0, "fast": 0.5, "end": 1.5, "alone": 0.0},
    )
    graph = wf.graph()
    assert dict(zip(graph.ids, graph.rank, strict=True)) == {
        "a": 2.0 + 5.0 + 1.5,
        "slow": 5.0 + 1.5,
        "fast": 0.5 + 1.5,
        "end": 1.5,
        "alone": 0.0,
    }


def test_an_unknown_estimate_counts_as_the_median_of_the_known_ones() -> None:
    graph = workflow(
        {"a": [], "b": ["a"], "c": ["b"], "d": [], "e": []},
        estimates={"b": 3.0, "d": 0.5, "e": 0.25},
    ).graph()
    assert graph.rank == [0.5 + 3.0 + 0.5, 3.0 + 0.5, 0.5, 0.5, 0.25]
    even = workflow({"a": [], "b": [], "c": []}, estimates={"a": 0.5, "b": 2.5}).graph()
    assert even.rank[2] == 1.5  # the mean of the two middle ones


def test_an_unknown_estimate_counts_as_one_when_none_is_known() -> None:
    graph = workflow({"a": [], "b": ["a"], "c": ["b"]}).graph()
    assert graph.rank == [3.0, 2.0, 1.0]


def test_small_known_estimates_do_not_make_unknown_ones_look_100_times_longer() -> None:
    # Two branches of quick tasks (0.01 s each): a chain of three known ones, and one task
    # with no estimate. The chain is the longer path and goes first; with "one unit" for the
    # unknown task, that task looked like 1 s and went first instead.
    wf = workflow(
        {"c1": [], "c2": ["c1"], "c3": ["c2"], "unknown": []},
        estimates={"c1": 0.01, "c2": 0.01, "c3": 0.01},
    )
    graph = wf.graph()
    assert ids_in_order(graph, graph.task_at_key) == ["c1", "c2", "c3", "unknown"]
    assert graph.critical_path() == ["c1", "c2", "c3"]


def test_queue_key_orders_by_priority_first() -> None:
    wf = workflow(
        {"long1": [], "long2": ["long1"], "urgent": []},
        priorities={"urgent": 1},
    )
    graph = wf.graph()
    assert ids_in_order(graph, graph.task_at_key) == ["urgent", "long1", "long2"]


def test_queue_key_orders_by_rank_among_equal_priorities() -> None:
    wf = workflow(
        {"short": [], "long": [], "after_long": ["long"]},
        estimates={"short": 1.0, "long": 2.0, "after_long": 2.0},
    )
    graph = wf.graph()
    assert ids_in_order(graph, graph.task_at_key) == ["long", "after_long", "short"]


def test_queue_key_orders_by_definition_order_among_equal_priority_and_rank() -> None:
    graph = workflow({"c": [], "a": [], "b": []}).graph()
    assert ids_in_order(graph, graph.task_at_key) == ["c", "a", "b"]


def test_lower_priority_goes_after_everything_else() -> None:
    wf = workflow(
        {"late": [], "x": [], "y": ["x"]},
        priorities={"late": -1},
        estimates={"late": 100.0},
    )
    graph = wf.graph()
    assert ids_in_order(graph, graph.task_at_key) == ["x", "y", "late"]


def test_queue_key_and_task_at_key_are_inverse_permutations() -> None:
    wf = workflow(
        {"a": [], "b": ["a"], "c": [], "d": ["b", "c"], "e": []},
        priorities={"c": 2, "e": -1},
        estimates={"a": 0.5, "d": 4.0},
    )
    graph = wf.graph()
    assert sorted(graph.queue_key) == list(range(len(graph)))
    for i, key in enumerate(graph.queue_key):
        assert graph.task_at_key[key] == i
    keys = [(-graph.specs[i].priority, -graph.rank[i], i) for i in range(len(graph))]
    assert sorted(range(len(graph)), key=keys.__getitem__) == graph.task_at_key


def test_critical_path_follows_the_heaviest_branch() -> None:
    wf = workflow(
        {"a": [], "slow": ["a"], "fast": ["a"], "end": ["slow", "fast"], "other": []},
        estimates={"slow": 5.0, "fast": 0.5, "other": 3.0},
    )
    assert wf.graph().critical_path() == ["a", "slow", "end"]


def test_critical_path_starts_at_the_heaviest_root() -> None:
    wf = workflow(
        {"light": [], "heavy": [], "tail": ["heavy"]},
        estimates={"light": 2.0, "heavy": 1.5, "tail": 1.0},
    )
    assert wf.graph().critical_path() == ["heavy", "tail"]


def test_critical_path_breaks_ties_by_definition_order() -> None:
    wf = workflow({"a": [], "b": [], "c": ["a", "b"], "d": ["a", "b"]})
    assert wf.graph().critical_path() == ["a", "c"]


def _longest_path(deps: dict[str, list[str]], weight: dict[str, float]) -> float:
    dependents: dict[str, list[str]] = {task_id: [] for task_id in deps}
    for task_id, task_deps in deps.items():
        for d in task_deps:
            dependents[d].append(task_id)

    def from_task(task_id: str) -> float:
        return weight[task_id] + max((from_task(d) for d in dependents[task_id]), default=0.0)

    return max((from_task(task_id) for task_id in deps), default=0.0)


@given(
    st.integers(min_value=1, max_value=7).flatmap(
        lambda n: st.tuples(
            st.lists(
                st.sets(st.integers(min_value=0, max_value=n - 1), max_size=3),
                min_size=n,
                max_size=n,
            ),
            st.lists(
                st.none() | st.floats(min_value=0, max_value=10, allow_nan=False),
                min_size=n,
                max_size=n,
            ),
        )
    )
)
@settings(max_examples=150, deadline=None)
def test_critical_path_is_a_heaviest_path_from_a_root_to_a_leaf(
    graph_and_estimates: tuple[list[set[int]], list[float | None]],
) -> None:
    dependencies, estimates = graph_and_estimates
    # Only edges to earlier tasks: always acyclic.
    deps = {f"t{i}": [f"t{d}" for d in sorted(ds) if d < i] for i, ds in enumerate(dependencies)}
    estimate = {f"t{i}": e for i, e in enumerate(estimates) if e is not None}
    median = statistics.median(estimate.values()) if estimate else 1.0
    weight = {task_id: estimate.get(task_id, median) for task_id in deps}
    wf = workflow(deps, estimates=estimate)
    path = wf.graph().critical_path()
    assert deps[path[0]] == []
    assert not any(path[-1] in task_deps for task_deps in deps.values())
    for dependency, dependent in itertools.pairwise(path):
        assert dependency in deps[dependent]
    assert math.isclose(sum(weight[t] for t in path), _longest_path(deps, weight), abs_tol=1e-9)


def test_pools_are_indexed_in_order_of_first_use_with_zero_for_none() -> None:
    wf = workflow(
        {"a": [], "b": [], "c": [], "d": [], "e": []},
        pools={"a": "db", "c": "cpu", "d": "db"},
    )
    graph = wf.graph()
    assert graph.pool_names == [None, "db", "cpu"]
    assert graph.pool_of == [1, 0, 2, 1, 0]


def test_a_graph_without_pools_has_only_the_default_pool() -> None:
    graph = workflow({"a": [], "b": ["a"]}).graph()
    assert graph.pool_names == [None]
    assert graph.pool_of == [0, 0]


# -- caching ------------------------------------------------------------------------------------


def test_the_compiled_graph_is_cached() -> None:
    wf = workflow({"a": [], "b": ["a"]})
    graph = wf.graph()
    wf.validate()
    assert wf.graph() is graph


def test_adding_a_task_recompiles_the_graph() -> None:
    wf = workflow({"a": [], "b": ["a"]})
    before = wf.graph()
    wf.add_task("c", noop, depends_on=["b"])
    after = wf.graph()
    assert after is not before
    assert after.ids == ["a", "b", "c"]
    assert before.ids == ["a", "b"]


def test_adding_the_missing_task_makes_an_invalid_workflow_valid() -> None:
    wf = workflow({"b": ["a"]})
    with pytest.raises(UnknownDependencyError):
        wf.validate()
    wf.add_task("a", noop)
    wf.validate()
    assert wf.graph().ids == ["b", "a"]


def test_a_rejected_task_does_not_change_the_compiled_graph() -> None:
    wf = workflow({"a": []})
    graph = wf.graph()
    with pytest.raises(plait.DuplicateTaskError):
        wf.add_task("a", noop)
    assert wf.graph() is graph


def test_a_lazy_definition_is_built_only_when_read_and_equals_the_definition() -> None:
    from plait._definition import LazyDefinition  # noqa: PLC0415

    wf = Workflow("w")
    wf.add_task("a", lambda: 1)
    wf.add_task("b", lambda a: a, depends_on=["a"])
    graph = wf.graph()
    lazy = LazyDefinition(graph)
    assert len(lazy) == 2 and graph._definition is None
    assert graph.fingerprint() and graph._definition is None
    assert lazy == graph.definition() == list(lazy)
    assert lazy[1]["depends_on"] == ["a"] and lazy[1]["id"] == "b"
    assert lazy != [] and (lazy == 3) is False


def test_the_fingerprint_hashes_ids_dependencies_and_functions() -> None:
    import hashlib  # noqa: PLC0415

    wf = Workflow("w")
    wf.add_task("a", lambda: 1)
    wf.add_task("b", lambda a: a, depends_on=["a"])
    graph = wf.graph()
    text = "\n".join(
        "\x1f".join((task["id"], "\x1e".join(task["depends_on"]), task["function"]))
        for task in graph.definition()
    )
    assert graph.fingerprint() == hashlib.sha256(text.encode()).hexdigest()[:16]


def test_the_fingerprint_of_tasks_with_params_appends_their_json() -> None:
    import hashlib  # noqa: PLC0415
    import json  # noqa: PLC0415

    wf = Workflow("w")
    wf.add_task("a", noop)
    wf.add_task("b", lambda a, x, y: a, depends_on=["a"], params={"y": [1], "x": "two"})
    graph = wf.graph()
    a, b = graph.definition()
    text = "\n".join(
        [
            f"a\x1f\x1f{a['function']}",
            f"b\x1fa\x1f{b['function']}\x1f" + json.dumps({"x": "two", "y": [1]}).replace(" ", ""),
        ]
    )
    assert graph.fingerprint() == hashlib.sha256(text.encode()).hexdigest()[:16]


def test_a_lazy_definition_writes_the_json_the_encoder_would() -> None:
    import json  # noqa: PLC0415

    from plait._definition import LazyDefinition  # noqa: PLC0415

    wf = Workflow("w")
    wf.add_task('a "quoted" \\ id', lambda: 1)
    wf.add_task("ünïcode\n", lambda: 2)
    wf.add_task("c", lambda **inputs: 3, depends_on=['a "quoted" \\ id', "ünïcode\n"])
    lazy = LazyDefinition(wf.graph())
    text = lazy.json()
    assert text.isascii()
    assert json.loads(text) == wf.graph().definition()
    assert text == json.dumps(wf.graph().definition(), separators=(",", ":"))
