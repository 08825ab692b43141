"""The history of durations as columns: folding batches, newest first, the latest 5 per task."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

import plait
from plait.stores import MemoryStore, TaskDuration, TaskHistory
from plait.stores._history import HistoryColumns, history_of, merge_histories

TASKS = ["a", "b", "c", "d"]

# A batch: for each task, its seconds (newest first, () for none) and its function.
batches_strategy = st.lists(
    st.lists(
        st.tuples(
            st.lists(st.integers(0, 99).map(float), max_size=3).map(tuple),
            st.sampled_from(["m:f", "m:g"]),
        ),
        min_size=len(TASKS),
        max_size=len(TASKS),
    ),
    min_size=1,
    max_size=7,
)


def expected(batches: list[list[tuple[tuple[float, ...], str]]]) -> dict[str, TaskHistory]:
    """Each task's latest 5 seconds across ``batches`` (newest first), with the function of the
    newest batch that has seconds of it: the rule every store follows, written plainly."""
    out: dict[str, TaskHistory] = {}
    for task_id in TASKS:
        i = TASKS.index(task_id)
        having = [batch[i] for batch in batches if batch[i][0]]
        if having:
            seconds = tuple(s for kept, _ in having for s in kept)[:5]
            out[task_id] = TaskHistory(task_id, having[0][1], seconds)
    return out


@settings(max_examples=60, deadline=None)
@given(batches_strategy, st.randoms(use_true_random=False))
def test_folding_batches_keeps_each_task_latest_five(
    batches: list[list[tuple[tuple[float, ...], str]]], rng: random.Random
) -> None:
    aligned = [
        HistoryColumns(TASKS, [s for s, _ in batch], [f for _, f in batch]) for batch in batches
    ]
    shuffled = []  # the same batches with their tasks in other orders: folded by task id
    for batch in batches:
        rows = [(task_id, *row) for task_id, row in zip(TASKS, batch, strict=True)]
        rng.shuffle(rows)
        shuffled.append(HistoryColumns(*map(list, zip(*rows, strict=True))))  # type: ignore[arg-type]
    want = expected(batches)
    for columns in (aligned, shuffled):
        merged = merge_histories(columns)
        assert {task.task_id: task for task in merged} == want
        # folded one batch at a time, as the memory store does at each run's start
        folded = columns[-1]
        for batch in reversed(columns[:-1]):
            folded = merge_histories([batch, folded])
        assert {task.task_id: task for task in folded} == want


def test_a_batch_of_records_is_ordered_by_when_each_finished() -> None:
    durations = [TaskDuration("a", "m:old", float(n), 100.0 + n) for n in (3, 1, 6, 2, 5, 4)]
    durations.append(TaskDuration("a", "m:new", 9.0, 200.0))
    assert list(history_of(durations)) == [TaskHistory("a", "m:new", (9.0, 6.0, 5.0, 4.0, 3.0))]


def test_columns_are_the_records_of_the_tasks_with_seconds() -> None:
    columns = HistoryColumns(["a", "b", "c"], [(1.0,), (), (2.0, 3.0)], ["m:f", "m:g", "m:h"])
    records = [TaskHistory("a", "m:f", (1.0,)), TaskHistory("c", "m:h", (2.0, 3.0))]
    assert columns == records and len(columns) == 2 and columns[1] == records[1]
    assert HistoryColumns.of(records) == records
    assert HistoryColumns.of(columns) is columns


def _noop() -> None:
    pass


def _workflow(*task_ids: str) -> plait.Workflow:
    wf = plait.Workflow("hist")
    for task_id in task_ids:
        wf.add_task(task_id, _noop)
    return wf


def test_the_memory_store_folds_each_run_into_the_history() -> None:
    store = MemoryStore()
    for _ in range(7):  # more runs than a task keeps durations of
        plait.run(_workflow("a", "b"), store=store)
        history = {task.task_id: task for task in store.task_history("hist")}
    assert sorted(history) == ["a", "b"]
    assert all(len(task.seconds) == 5 for task in history.values())
    assert history["a"].function == f"{__name__}:_noop"
    # A run of other tasks, in another order: those it ran are added, the others kept.
    result = plait.run(_workflow("c", "a"), store=store)
    after = {task.task_id: task for task in store.task_history("hist")}
    assert sorted(after) == ["a", "b", "c"] and after["b"] == history["b"]
    assert after["c"].seconds == (result.tasks["c"].duration,)
    assert after["a"].seconds == (result.tasks["a"].duration, *history["a"].seconds[:4])
    assert store.task_history("hist") == list(after.values())  # reading again: the same


def test_columns_tell_whether_they_hold_any_history_without_making_records() -> None:
    assert not HistoryColumns(["a", "b"], [(), ()], ["m:f", "m:f"])
    columns = HistoryColumns(["a", "b"], [(), (1.0,)], ["m:f", "m:f"])
    assert columns and columns._records is None
