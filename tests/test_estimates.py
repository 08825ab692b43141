"""Learned estimates: history in the store orders the next run's ready tasks."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import plait
from plait import Workflow
from plait._estimates import EstimateSource, estimate_tasks, learned_graph
from plait.cli._report import build_report
from plait.stores import MemoryStore, SQLiteStore, Store, TaskHistory


def _sleep(seconds: float) -> None:
    time.sleep(seconds)


def bad_order_workflow(estimates: dict[str, float] | None = None) -> Workflow:
    """Four short tasks defined before a long one: with no estimates (every rank equal) the long
    one starts last; the best schedule starts it first."""
    wf = Workflow("bad-order")
    for n in range(4):
        task_id = f"short{n}"
        wf.add_task(
            task_id, _sleep, params={"seconds": 0.02}, estimate=(estimates or {}).get(task_id)
        )
    wf.add_task("long", _sleep, params={"seconds": 0.3})
    return wf


def start_order(result: plait.RunResult) -> list[str]:
    tasks = result.tasks
    return sorted(tasks, key=lambda task_id: (tasks[task_id].started_at or 0.0, task_id))


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Store:
    if request.param == "memory":
        return MemoryStore()
    return SQLiteStore(tmp_path / "plait.db")


def test_a_bad_order_is_learned_away_on_the_second_run(store: Store) -> None:
    first = plait.run(bad_order_workflow(), store=store, max_concurrency=1)
    assert start_order(first) == ["short0", "short1", "short2", "short3", "long"]
    second = plait.run(bad_order_workflow(), store=store, max_concurrency=1)
    assert start_order(second)[0] == "long"


def test_a_second_run_is_closer_to_its_optimum(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "plait.db")
    first = plait.run(bad_order_workflow(), store=store, max_concurrency=2)
    second = plait.run(bad_order_workflow(), store=store, max_concurrency=2)
    # The optimum starts `long` at once, the shorts beside it: makespan = long's 0.3 s. The
    # first run starts it after two rounds of shorts, the second at once (by causality: it
    # starts before the third short).
    assert first.tasks["long"].started_at >= first.tasks["short2"].started_at  # type: ignore[operator]
    assert second.tasks["long"].started_at <= second.tasks["short2"].started_at  # type: ignore[operator]


def test_learning_can_be_turned_off(store: Store) -> None:
    plait.run(bad_order_workflow(), store=store, max_concurrency=1)
    again = plait.run(bad_order_workflow(), store=store, max_concurrency=1, learn_estimates=False)
    assert start_order(again)[-1] == "long"


def test_an_explicit_estimate_wins_over_history(store: Store) -> None:
    plait.run(bad_order_workflow(), store=store, max_concurrency=1)
    result = plait.run(bad_order_workflow({"short3": 100.0}), store=store, max_concurrency=1)
    assert start_order(result)[:2] == ["short3", "long"]


def test_the_order_is_the_same_for_the_same_history(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "plait.db")
    plait.run(bad_order_workflow(), store=store, max_concurrency=1)
    graph = bad_order_workflow().graph()
    orders = {tuple(learned_graph(store, graph).task_at_key) for _ in range(3)}
    assert len(orders) == 1


def test_no_history_leaves_the_graph_as_it_is() -> None:
    graph = bad_order_workflow().graph()
    assert learned_graph(MemoryStore(), graph) is graph


def _history(task_id: str, function: str, *seconds: float) -> list[TaskHistory]:
    return [TaskHistory(task_id, function, seconds)]


def test_estimates_by_rule() -> None:
    wf = Workflow("rules")
    wf.add_task("given", _sleep, params={"seconds": 0}, estimate=7.0)
    wf.add_task("seen", _sleep, params={"seconds": 0})
    wf.add_task("new", _sleep, params={"seconds": 0})
    wf.add_task("other", print)
    function = f"{__name__}:_sleep"
    history = [
        *_history("given", function, 1.0),
        *_history("seen", function, 3.0, 1.0, 2.0),
        *_history("gone", function, 10.0),
    ]
    estimates = estimate_tasks(wf.graph(), history)
    assert [(e.task_id, e.seconds, e.source, e.samples) for e in estimates] == [
        ("given", 7.0, EstimateSource.GIVEN, 0),
        ("seen", 2.0, EstimateSource.LEARNED, 3),
        ("new", 2.0, EstimateSource.FUNCTION, 5),  # median of 1, 3, 1, 2, 10
        ("other", None, EstimateSource.UNKNOWN, 0),
    ]


def test_a_retried_task_learns_its_attempt_not_its_backoff(tmp_path: Path) -> None:
    calls = []

    def flaky() -> None:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("first try fails")

    wf = Workflow("flaky")
    wf.add_task("flaky", flaky, retry=plait.RetryPolicy(max_retries=1, backoff=0.5, jitter=0))
    store = SQLiteStore(tmp_path / "plait.db")
    plait.run(wf, store=store)
    [learned] = store.task_history("flaky")
    assert learned.task_id == "flaky" and learned.seconds[0] < 0.4  # the backoff was 0.5 s


def test_learn_estimates_is_a_bool() -> None:
    with pytest.raises(
        plait.ConfigError, match=r"^learn_estimates must be True or False, not 'no'$"
    ):
        plait.EngineConfig(learn_estimates="no")  # type: ignore[arg-type]


def test_the_report_shows_each_task_estimate_beside_its_actual_time(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "plait.db")
    plait.run(bad_order_workflow({"short0": 2.0}), store=store)
    second = plait.run(bad_order_workflow({"short0": 2.0}), store=store)
    page = build_report(second.run_id, store=store)
    assert "estimate 2.00 s (given), actual" in page
    assert page.count("(learned), actual") == 4  # short1..3 and long, from the first run
    # and beside the task's name in the timeline: "estimate ->" before its actual time
    assert "title='estimate (given) \u2192 actual'>2.00 s \u2192</span>" in page
    assert page.count("title='estimate (learned) \u2192 actual'>") == 4
    stored = store.get_run(second.run_id)
    assert stored is not None
    assert stored.config["estimates"]["from"] == "gllll"  # short0 given; short1-3, long
    assert stored.config["estimates"]["seconds"][0] == 2.0


class _Remembers(MemoryStore):
    """A memory store whose history is the one given."""

    def __init__(self, history: list[TaskHistory]) -> None:
        super().__init__()
        self.history = history

    def task_history(self, workflow: str) -> list[TaskHistory]:
        return self.history


def test_no_new_ranks_when_every_task_weighs_the_same_as_before() -> None:
    graph = bad_order_workflow().graph()
    function = f"{__name__}:_sleep"
    same = [TaskHistory(task_id, function, (0.5, 0.5)) for task_id in graph.ids]
    assert learned_graph(_Remembers(same), graph) is graph
    # an explicit estimate equal to the learned ones: alike too
    given = bad_order_workflow({"short0": 0.5}).graph()
    assert learned_graph(_Remembers(same), given) is given
    differs = [*same[:-1], TaskHistory("long", function, (0.3,))]
    assert learned_graph(_Remembers(differs), graph) is not graph


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.lists(st.integers(0, 6), max_size=2), min_size=1, max_size=7),
    st.lists(st.one_of(st.none(), st.sampled_from([1.0, 2.0])), min_size=7, max_size=7),
    st.lists(st.lists(st.sampled_from([1.0, 2.0]), max_size=3), min_size=7, max_size=7),
)
def test_skipping_the_new_ranks_never_changes_the_order(
    parents: list[list[int]], estimates: list[float | None], seconds: list[list[float]]
) -> None:
    """Whatever the history, the order of ready tasks (at max_concurrency=1, the order tasks
    start in) is the one the learned estimates rank them in, re-ranked or not."""
    wf = Workflow("skip")
    for i, deps in enumerate(parents):
        wf.add_task(
            f"t{i}",
            _sleep,
            params={"seconds": 0},
            depends_on=sorted({f"t{d}" for d in deps if d < i}),
            estimate=estimates[i],
        )
    graph = wf.graph()
    function = f"{__name__}:_sleep"
    history = [TaskHistory(f"t{i}", function, tuple(s)) for i, s in enumerate(seconds) if s]
    learned = learned_graph(_Remembers(history), graph)
    ranked = graph.reranked([e.seconds for e in estimate_tasks(graph, history)])
    assert learned.task_at_key == ranked.task_at_key


def test_the_memory_store_teaches_a_run_the_durations_of_those_before() -> None:
    def quick() -> Workflow:
        wf = Workflow("quick")
        for task_id in ("a", "b", "c"):
            wf.add_task(task_id, _sleep, params={"seconds": 0})
        return wf

    store = MemoryStore()
    runs = [plait.run(quick(), store=store) for _ in range(2)]
    estimates = estimate_tasks(quick().graph(), store.task_history("quick"))
    assert [(e.source, e.samples) for e in estimates] == [(EstimateSource.LEARNED, 2)] * 3
    durations = [run.tasks["c"].duration or 0.0 for run in runs]
    assert estimates[-1].seconds == pytest.approx(sum(durations) / 2)
