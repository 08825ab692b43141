"""The memory store's own rules: what it forgets, and when."""

from __future__ import annotations

from plait._state import RunStatus
from plait.stores import MemoryStore, RunRecord, RunUpdate, WriteBatch


def record(run_id: str, tasks: int, at: float) -> RunRecord:
    return RunRecord(
        run_id=run_id,
        workflow="w",
        fingerprint="f",
        definition=[{"id": f"t{i}", "depends_on": [], "function": "f"} for i in range(tasks)],
        config={},
        status=RunStatus.RUNNING,
        created_at=at,
        updated_at=at,
        owner="me",
    )


def finish(store: MemoryStore, run_id: str) -> None:
    store.write(run_id, "me", WriteBatch(run=RunUpdate(status=RunStatus.SUCCEEDED)))


def test_a_bounded_store_forgets_the_oldest_finished_runs_first() -> None:
    store = MemoryStore(max_runs=2)
    store.create_run(record("paused", 1, 1.0))  # never finished: kept
    store.create_run(record("old", 1, 2.0))
    finish(store, "old")
    store.create_run(record("new", 1, 3.0))
    finish(store, "new")
    store.create_run(record("newest", 1, 4.0))
    assert sorted(r.run_id for r in store.list_runs().runs) == ["newest", "paused"]


def test_a_store_bounded_by_tasks_keeps_the_newest_run_whatever_its_size() -> None:
    store = MemoryStore(max_tasks=10)
    store.create_run(record("small", 4, 1.0))
    finish(store, "small")
    store.create_run(record("huge", 50, 2.0))
    assert [r.run_id for r in store.list_runs().runs] == ["huge"]
