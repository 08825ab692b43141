"""The store conformance suite: what every backend must do, run once per backend.

The backends are listed in ``conftest.BACKENDS``; the memory store is the reference. The tests
at the end (durability, several processes, migrations) run on the durable backends only.
"""

from __future__ import annotations

import itertools
import random
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import plait
from plait import RunStatus, SkipCause, TaskError, TaskStatus
from plait._logs import LogLine
from plait.stores import (
    EventRecord,
    EventRecordColumns,
    InputRequest,
    LeaseHeldError,
    LeaseLostError,
    RunExistsError,
    RunNotFoundError,
    RunRecord,
    RunUpdate,
    Store,
    StoreError,
    TaskDuration,
    TaskHistory,
    TaskLog,
    TaskRecord,
    TaskRecordColumns,
    WriteBatch,
    open_store,
)

from .conftest import Backend, ProcessPair

LEASE = 60.0

_run_ids = itertools.count()


def make_run(
    run_id: str = "run-1",
    *,
    owner: str | None = "alice",
    lease: float | None = LEASE,
    created_at: float = 1_700_000_000.0,
    status: RunStatus = RunStatus.RUNNING,
) -> RunRecord:
    return RunRecord(
        run_id=run_id,
        workflow="etl",
        fingerprint="sha256:0123abcd",
        definition=[
            {"id": "extract", "depends_on": [], "function": "etl:extract"},
            {"id": "load", "depends_on": ["extract"], "function": "etl:load"},
        ],
        config={"max_workers": 4, "fail_fast": False, "limits": {"db": 2}, "ratio": 0.5},
        status=status,
        created_at=created_at,
        updated_at=created_at,
        owner=owner,
        lease_expires_at=None if owner is None or lease is None else time.time() + lease,
    )


def new_run(store: Store, owner: str = "alice") -> str:
    """Create a run owned by ``owner`` with a fresh id; return the id."""
    run_id = f"run-{next(_run_ids)}"
    store.create_run(make_run(run_id, owner=owner))
    return run_id


def task(task_id: str = "extract", **changes: Any) -> TaskRecord:
    fields: dict[str, Any] = {
        "task_id": task_id,
        "status": TaskStatus.SUCCEEDED,
        "attempts": 1,
        "output": b"\x80\x04K\x01.",
        "started_at": 1_700_000_001.25,
        "finished_at": 1_700_000_002.5,
    }
    return TaskRecord(**(fields | changes))


def request(task_id: str = "review", key: str = "", **changes: Any) -> InputRequest:
    fields: dict[str, Any] = {
        "task_id": task_id,
        "key": key,
        "prompt": "Approve the load?",
        "schema": {"type": "boolean"},
        "requested_at": 1_700_000_003.0,
        "deadline": 1_700_003_600.0,
    }
    return InputRequest(**(fields | changes))


def event(kind: str = "task_succeeded", n: int = 0, task_id: str | None = "extract") -> EventRecord:
    return EventRecord(kind=kind, time=1_700_000_000.0 + n, task_id=task_id, data={"n": n})


# -- creating, reading and listing runs ------------------------------------------------------


def test_a_created_run_reads_back_equal(store: Store) -> None:
    run = make_run()
    store.create_run(run)
    assert store.get_run("run-1") == run


def test_a_run_with_every_optional_field_reads_back_equal(store: Store) -> None:
    run = replace(
        make_run(status=RunStatus.FAILED),
        finished_at=1_700_000_100.0,
        error="task 'load' failed: ValueError: bad row",
    )
    store.create_run(run)
    assert store.get_run("run-1") == run


def test_a_run_with_a_target_reads_back_equal(store: Store) -> None:
    run = replace(make_run(), target="pkg.flows:wf")
    store.create_run(run)
    assert store.get_run("run-1") == run
    assert store.list_runs().runs[0].target == "pkg.flows:wf"


def test_a_run_without_an_owner_reads_back_equal(store: Store) -> None:
    run = make_run(owner=None)
    store.create_run(run)
    loaded = store.get_run("run-1")
    assert loaded == run
    assert loaded is not None
    assert loaded.owner is None
    assert loaded.lease_expires_at is None


def test_an_unknown_run_is_none(store: Store) -> None:
    assert store.get_run("nope") is None


def test_creating_a_run_twice_raises_run_exists_and_keeps_the_first(store: Store) -> None:
    first = make_run()
    store.create_run(first)
    with pytest.raises(RunExistsError, match=r"^run 'run-1' already exists$"):
        store.create_run(replace(first, workflow="other", owner="bob"))
    assert store.get_run("run-1") == first


def test_list_runs_is_newest_first(store: Store) -> None:
    for run_id, created_at in [("b", 2.0), ("c", 3.0), ("a", 1.0)]:
        store.create_run(make_run(run_id, created_at=created_at))
    assert [run.run_id for run in store.list_runs().runs] == ["c", "b", "a"]


def test_list_runs_filters_by_status(store: Store) -> None:
    statuses = [RunStatus.RUNNING, RunStatus.PAUSED, RunStatus.RUNNING, RunStatus.FAILED]
    for n, status in enumerate(statuses):
        store.create_run(make_run(f"run-{n}", created_at=float(n), status=status))
    assert [run.run_id for run in store.list_runs(status=RunStatus.RUNNING).runs] == [
        "run-2",
        "run-0",
    ]
    assert [run.run_id for run in store.list_runs(status=RunStatus.PAUSED).runs] == ["run-1"]
    assert store.list_runs(status=RunStatus.SUCCEEDED).runs == []


def test_list_runs_keeps_the_newest_up_to_the_limit(store: Store) -> None:
    for n in range(5):
        store.create_run(make_run(f"run-{n}", created_at=float(n)))
    assert [run.run_id for run in store.list_runs(limit=2).runs] == ["run-4", "run-3"]
    assert store.list_runs(limit=0).runs == []
    assert len(store.list_runs().runs) == 5


def test_list_runs_returns_full_records(store: Store) -> None:
    run = make_run()
    store.create_run(run)
    assert store.list_runs().runs == [run]


def test_an_empty_store_lists_nothing(store: Store) -> None:
    assert store.list_runs().runs == []


# -- claiming, renewing and releasing -----------------------------------------------------------


def test_claim_takes_a_run_without_an_owner(store: Store) -> None:
    store.create_run(make_run(owner=None))
    before = time.time()
    claimed = store.claim("run-1", "bob", lease_seconds=30)
    assert claimed.owner == "bob"
    assert claimed.lease_expires_at is not None
    assert before + 30 <= claimed.lease_expires_at <= time.time() + 30
    assert store.get_run("run-1") == claimed


def test_claim_returns_the_whole_record(store: Store) -> None:
    run = make_run(owner=None)
    store.create_run(run)
    claimed = store.claim("run-1", "bob", lease_seconds=30)
    assert replace(claimed, owner=None, lease_expires_at=None) == run


def test_claim_by_the_owner_extends_its_lease(store: Store) -> None:
    store.create_run(make_run(owner="alice", lease=5))
    claimed = store.claim("run-1", "alice", lease_seconds=LEASE)
    assert claimed.owner == "alice"
    assert claimed.lease_expires_at is not None
    assert claimed.lease_expires_at > time.time() + 30


def test_claim_of_a_live_lease_raises_lease_held_naming_owner_and_until(store: Store) -> None:
    run = make_run(owner="alice")
    store.create_run(run)
    with pytest.raises(LeaseHeldError) as caught:
        store.claim("run-1", "bob", lease_seconds=LEASE)
    assert caught.value.owner == "alice"
    assert caught.value.until == run.lease_expires_at
    assert "run-1" in str(caught.value)
    assert "alice" in str(caught.value)
    assert store.get_run("run-1") == run


def test_claim_takes_a_run_whose_lease_expired(store: Store) -> None:
    store.create_run(make_run(owner="alice", lease=-1))
    assert store.claim("run-1", "bob", lease_seconds=LEASE).owner == "bob"


def test_claim_takes_a_run_whose_owner_has_no_lease_time(store: Store) -> None:
    store.create_run(make_run(owner="alice", lease=None))
    assert store.claim("run-1", "bob", lease_seconds=LEASE).owner == "bob"


def test_claim_with_force_takes_a_live_lease(store: Store) -> None:
    store.create_run(make_run(owner="alice"))
    claimed = store.claim("run-1", "bob", lease_seconds=LEASE, force=True)
    assert claimed.owner == "bob"
    assert store.get_run("run-1") == claimed


def test_claim_of_an_unknown_run_raises_run_not_found(store: Store) -> None:
    with pytest.raises(RunNotFoundError, match="'nope'"):
        store.claim("nope", "bob", lease_seconds=LEASE)
    with pytest.raises(RunNotFoundError):
        store.claim("nope", "bob", lease_seconds=LEASE, force=True)


def test_renew_extends_the_owners_lease(store: Store) -> None:
    store.create_run(make_run(owner="alice", lease=5))
    store.renew("run-1", "alice", lease_seconds=LEASE)
    run = store.get_run("run-1")
    assert run is not None
    assert run.owner == "alice"
    assert run.lease_expires_at is not None
    assert run.lease_expires_at > time.time() + 30


def test_renew_by_the_owner_works_after_its_lease_expired_if_no_one_took_it(store: Store) -> None:
    store.create_run(make_run(owner="alice", lease=-1))
    store.renew("run-1", "alice", lease_seconds=LEASE)
    assert store.claim("run-1", "alice", lease_seconds=LEASE).owner == "alice"


def test_renew_by_another_raises_lease_lost(store: Store) -> None:
    run = make_run(owner="alice")
    store.create_run(run)
    with pytest.raises(LeaseLostError, match="'run-1'"):
        store.renew("run-1", "bob", lease_seconds=LEASE)
    assert store.get_run("run-1") == run


def test_renew_after_a_takeover_raises_lease_lost(store: Store) -> None:
    store.create_run(make_run(owner="alice"))
    store.claim("run-1", "bob", lease_seconds=LEASE, force=True)
    with pytest.raises(LeaseLostError):
        store.renew("run-1", "alice", lease_seconds=LEASE)


def test_renew_of_an_unknown_run_raises_run_not_found(store: Store) -> None:
    with pytest.raises(RunNotFoundError):
        store.renew("nope", "alice", lease_seconds=LEASE)


def test_release_frees_the_run_for_anyone(store: Store) -> None:
    store.create_run(make_run(owner="alice"))
    store.release("run-1", "alice")
    run = store.get_run("run-1")
    assert run is not None
    assert (run.owner, run.lease_expires_at) == (None, None)
    assert store.claim("run-1", "bob", lease_seconds=LEASE).owner == "bob"


def test_release_by_another_does_nothing(store: Store) -> None:
    run = make_run(owner="alice")
    store.create_run(run)
    store.release("run-1", "bob")
    assert store.get_run("run-1") == run


def test_release_of_a_released_or_unknown_run_does_nothing(store: Store) -> None:
    store.create_run(make_run(owner="alice"))
    store.release("run-1", "alice")
    store.release("run-1", "alice")
    store.release("nope", "alice")
    assert store.list_runs().runs[0].owner is None


# -- writing, and fencing -------------------------------------------------------------------


def test_write_records_tasks_requests_and_events(store: Store) -> None:
    store.create_run(make_run())
    tasks = [task("extract"), task("load", status=TaskStatus.RUNNING, output=None)]
    requests = [request("review", ""), request("review", "0", schema=None)]
    events = [event(n=n) for n in range(3)]
    store.write("run-1", "alice", WriteBatch(tasks=tasks, requests=requests, events=events))
    assert store.load_tasks("run-1") == {"extract": tasks[0], "load": tasks[1]}
    assert store.load_requests("run-1") == requests
    assert store.load_events("run-1") == events


def test_write_applies_the_run_update_and_touches_updated_at(store: Store) -> None:
    run = make_run()
    store.create_run(run)
    before = time.time()
    update = RunUpdate(status=RunStatus.FAILED, finished_at=1_700_000_500.0, error="it broke")
    store.write("run-1", "alice", WriteBatch(run=update))
    after = store.get_run("run-1")
    assert after is not None
    assert (after.status, after.finished_at, after.error) == (
        RunStatus.FAILED,
        1_700_000_500.0,
        "it broke",
    )
    assert before <= after.updated_at <= time.time()
    unchanged = replace(after, status=run.status, finished_at=None, error=None)
    assert unchanged == replace(run, updated_at=after.updated_at)


def test_a_run_update_replaces_the_earlier_one(store: Store) -> None:
    store.create_run(make_run())
    store.write("run-1", "alice", WriteBatch(run=RunUpdate(status=RunStatus.PAUSED, error="x")))
    store.write("run-1", "alice", WriteBatch(run=RunUpdate(status=RunStatus.RUNNING)))
    run = store.get_run("run-1")
    assert run is not None
    assert (run.status, run.finished_at, run.error) == (RunStatus.RUNNING, None, None)


def test_a_write_without_a_run_update_leaves_the_status(store: Store) -> None:
    store.create_run(make_run(status=RunStatus.PAUSED))
    store.write("run-1", "alice", WriteBatch(tasks=[task()]))
    run = store.get_run("run-1")
    assert run is not None
    assert run.status is RunStatus.PAUSED


def test_a_run_update_with_a_definition_replaces_the_runs_definition(store: Store) -> None:
    run = make_run()
    store.create_run(run)
    definition = [*run.definition, {"id": "report", "depends_on": ["load"], "function": "x:y"}]
    update = RunUpdate(status=RunStatus.RUNNING, definition=definition, fingerprint="sha256:new")
    store.write("run-1", "alice", WriteBatch(run=update))
    after = store.get_run("run-1")
    assert after is not None
    assert (list(after.definition), after.fingerprint) == (definition, "sha256:new")
    store.write("run-1", "alice", WriteBatch(run=RunUpdate(status=RunStatus.PAUSED)))
    again = store.get_run("run-1")
    assert again is not None
    assert (list(again.definition), again.fingerprint) == (definition, "sha256:new")


def test_dropped_tasks_lose_their_records_and_requests_before_the_batch_applies(
    store: Store,
) -> None:
    store.create_run(make_run())
    store.write(
        "run-1",
        "alice",
        WriteBatch(
            tasks=columns_of(task("extract"), task("load")),
            requests=[request("load", ""), request("load", "0"), request("extract", "")],
        ),
    )
    fresh = task("load", status=TaskStatus.PENDING, output=None, attempts=1)
    store.write("run-1", "alice", WriteBatch(dropped=["load"], tasks=[fresh]))
    assert store.load_tasks("run-1") == {"extract": task("extract"), "load": fresh}
    assert store.load_requests("run-1") == [request("extract", "")]
    store.write("run-1", "alice", WriteBatch(dropped=["extract", "unknown"]))
    assert store.load_tasks("run-1") == {"load": fresh}
    assert store.load_requests("run-1") == []
    assert WriteBatch(dropped=["x"])  # a batch that only drops is not empty


def test_an_empty_write_by_the_owner_succeeds(store: Store) -> None:
    store.create_run(make_run())
    store.write("run-1", "alice", WriteBatch())
    assert store.load_tasks("run-1") == {}


def _assert_nothing_written(store: Store, run: RunRecord) -> None:
    assert store.get_run(run.run_id) == run
    assert store.load_tasks(run.run_id) == {}
    assert store.load_requests(run.run_id) == []
    assert store.load_events(run.run_id) == []
    assert store.load_logs(run.run_id) == []


def _full_batch() -> WriteBatch:
    return WriteBatch(
        run=RunUpdate(status=RunStatus.SUCCEEDED, finished_at=1_700_000_900.0),
        tasks=[task("extract"), task("load")],
        requests=[request()],
        events=[event(n=n) for n in range(3)],
        logs=[log("extract", 1, "a", "b")],
    )


def test_write_by_another_raises_lease_lost_and_writes_nothing(store: Store) -> None:
    run = make_run(owner="alice")
    store.create_run(run)
    with pytest.raises(LeaseLostError, match=r"'run-1'.*bob"):
        store.write("run-1", "bob", _full_batch())
    _assert_nothing_written(store, run)


def test_write_after_a_takeover_raises_lease_lost_and_writes_nothing(store: Store) -> None:
    store.create_run(make_run(owner="alice"))
    taken = store.claim("run-1", "bob", lease_seconds=LEASE, force=True)
    with pytest.raises(LeaseLostError):
        store.write("run-1", "alice", _full_batch())
    _assert_nothing_written(store, taken)
    store.write("run-1", "bob", WriteBatch(tasks=[task()]))
    assert list(store.load_tasks("run-1")) == ["extract"]


def test_write_after_release_raises_lease_lost(store: Store) -> None:
    store.create_run(make_run(owner="alice"))
    store.release("run-1", "alice")
    with pytest.raises(LeaseLostError):
        store.write("run-1", "alice", _full_batch())


def test_write_to_an_unknown_run_raises_run_not_found(store: Store) -> None:
    with pytest.raises(RunNotFoundError, match="'nope'"):
        store.write("nope", "alice", _full_batch())


def test_lease_lost_names_the_run_and_its_new_owner(store: Store) -> None:
    store.create_run(make_run(owner="alice"))
    store.claim("run-1", "bob", lease_seconds=LEASE, force=True)
    with pytest.raises(LeaseLostError) as lost:
        store.write("run-1", "alice", WriteBatch(tasks=[task()]))
    assert (lost.value.run_id, lost.value.owner) == ("run-1", "bob")
    with pytest.raises(LeaseLostError) as lost:
        store.renew("run-1", "alice", lease_seconds=LEASE)
    assert (lost.value.run_id, lost.value.owner) == ("run-1", "bob")


# -- batch keys: a batch written again is applied once --------------------------------------


def test_a_batch_written_twice_with_its_key_is_applied_once(store: Store) -> None:
    store.create_run(make_run())
    batch = replace(_full_batch(), key="alice#1")
    store.write("run-1", "alice", batch)
    store.write("run-1", "alice", batch)
    assert store.load_events("run-1") == list(batch.events)
    assert store.load_tasks("run-1") == {t.task_id: t for t in batch.tasks}


def test_batches_with_other_keys_or_none_are_all_applied(store: Store) -> None:
    store.create_run(make_run())
    for key in ("alice#1", "alice#2", None, None, "alice#1"):
        store.write("run-1", "alice", WriteBatch(events=[event(n=1)], key=key))
    assert len(store.load_events("run-1")) == 5


def test_a_replayed_batch_after_a_takeover_raises_lease_lost(store: Store) -> None:
    store.create_run(make_run())
    batch = WriteBatch(events=[event(n=1)], key="alice#1")
    store.write("run-1", "alice", batch)
    store.claim("run-1", "bob", lease_seconds=LEASE, force=True)
    with pytest.raises(LeaseLostError):
        store.write("run-1", "alice", batch)
    store.write("run-1", "bob", replace(batch, key="bob#1"))
    assert len(store.load_events("run-1")) == 2


# -- text a store cannot hold as it is --------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "kept"),
    [
        ("a\x00b", "a\\x00b"),
        ("bad byte \udcff here", "bad byte \\udcff here"),
        ("caf\u00e9 \u2603", "caf\u00e9 \u2603"),
    ],
)
def test_free_text_the_store_cannot_hold_is_escaped(store: Store, text: str, kept: str) -> None:
    store.create_run(make_run())
    update = RunUpdate(status=RunStatus.FAILED, error=text)
    store.write("run-1", "alice", WriteBatch(run=update, requests=[request(prompt=text)]))
    run = store.get_run("run-1")
    assert run is not None
    expected = text if not store.durable else kept  # the memory store keeps objects as they are
    assert run.error == expected
    assert store.load_requests("run-1")[0].prompt == expected


# -- keys: replayed writes replace ---------------------------------------------------------


def test_a_task_written_twice_keeps_one_record_with_the_latest_values(store: Store) -> None:
    store.create_run(make_run())
    first = task("extract", status=TaskStatus.RUNNING, attempts=1, output=None, finished_at=None)
    second = task(
        "extract", status=TaskStatus.FAILED, attempts=2, error=TaskError("ValueError", "bad")
    )
    store.write("run-1", "alice", WriteBatch(tasks=[first]))
    store.write("run-1", "alice", WriteBatch(tasks=[second]))
    assert store.load_tasks("run-1") == {"extract": second}


def test_a_task_written_twice_in_one_batch_keeps_the_latest(store: Store) -> None:
    store.create_run(make_run())
    first = task("extract", status=TaskStatus.RUNNING, output=None)
    second = task("extract", status=TaskStatus.SUCCEEDED, output=b"done")
    store.write("run-1", "alice", WriteBatch(tasks=[first, task("load"), second]))
    assert store.load_tasks("run-1") == {"extract": second, "load": task("load")}


def test_a_later_record_clears_fields_the_earlier_one_had(store: Store) -> None:
    store.create_run(make_run())
    failed = task("extract", status=TaskStatus.FAILED, error=TaskError("E", "m", "tb"))
    retried = task("extract", status=TaskStatus.PENDING, output=None, finished_at=None)
    store.write("run-1", "alice", WriteBatch(tasks=[failed]))
    store.write("run-1", "alice", WriteBatch(tasks=[retried]))
    assert store.load_tasks("run-1") == {"extract": retried}


def test_large_batches_replace_and_keep_order_like_small_ones(store: Store) -> None:
    # Backends may write large batches another way (PostgreSQL copies them); same results.
    store.create_run(make_run())
    first = [task(f"t{n}", status=TaskStatus.RUNNING, output=None) for n in range(500)]
    store.write("run-1", "alice", WriteBatch(tasks=first, events=[event(n=n) for n in range(500)]))
    second = [task(f"t{n}", attempts=2, output=bytes([n % 256])) for n in range(0, 1000, 2)]
    again = [task(f"t{n}", attempts=3, output=b"") for n in range(0, 100)]  # some twice
    events = [event("later", n) for n in range(300)]
    store.write("run-1", "alice", WriteBatch(tasks=second + again, events=events))
    expected = {t.task_id: t for t in first + second + again}
    assert store.load_tasks("run-1") == expected
    assert len(expected) == 750
    assert store.load_events("run-1") == [event(n=n) for n in range(500)] + events


def test_a_request_written_twice_keeps_one_record_and_its_first_place(store: Store) -> None:
    store.create_run(make_run())
    asked = [request("review", "0"), request("review", "1"), request("other", "")]
    store.write("run-1", "alice", WriteBatch(requests=asked))
    answered = replace(asked[0], answered=True, value=b'"yes"', answered_at=1_700_000_010.0)
    store.write("run-1", "alice", WriteBatch(requests=[answered]))
    assert store.load_requests("run-1") == [answered, asked[1], asked[2]]


def test_requests_keep_the_order_they_were_first_made_in(store: Store) -> None:
    store.create_run(make_run())
    keys = ["b", "a", "c", "0", "10", "2"]
    for key in keys:
        store.write("run-1", "alice", WriteBatch(requests=[request("review", key)]))
    assert [r.key for r in store.load_requests("run-1")] == keys


def test_requests_are_keyed_by_task_and_key(store: Store) -> None:
    store.create_run(make_run())
    requests = [request("a", ""), request("b", ""), request("a", "x")]
    store.write("run-1", "alice", WriteBatch(requests=requests))
    assert store.load_requests("run-1") == requests


def columns_of(*records: TaskRecord) -> TaskRecordColumns:
    return TaskRecordColumns.of(list(records))


def test_task_records_given_as_columns_replace_those_of_their_tasks_only(store: Store) -> None:
    store.create_run(make_run())
    running = task("load", status=TaskStatus.RUNNING, output=None, finished_at=None)
    store.write("run-1", "alice", WriteBatch(tasks=columns_of(task("extract"), running)))
    assert store.load_tasks("run-1") == {"extract": task("extract"), "load": running}
    failed = task(
        "load", status=TaskStatus.FAILED, output=None, error=TaskError("E", "no", "tb"), attempts=2
    )
    store.write("run-1", "alice", WriteBatch(tasks=columns_of(failed)))  # some tasks only
    assert store.load_tasks("run-1") == {"extract": task("extract"), "load": failed}
    store.write("run-1", "alice", WriteBatch(tasks=columns_of(task("extract", attempts=3))))
    assert store.load_tasks("run-1") == {"extract": task("extract", attempts=3), "load": failed}


# -- durations (the history learned estimates read) ----------------------------------------


def duration(task_id: str, n: int, function: str = "etl:extract") -> TaskDuration:
    return TaskDuration(
        task_id=task_id, function=function, seconds=0.5 + n, finished_at=1_700_000_000.0 + n
    )


def _by_task(store: Store, workflow: str = "etl") -> dict[str, TaskHistory]:
    return {task.task_id: task for task in store.task_history(workflow)}


def _seconds(*ns: int) -> tuple[float, ...]:
    return tuple(0.5 + n for n in ns)


def test_no_history_is_an_empty_list(store: Store) -> None:
    assert store.task_history("etl") == []
    store.create_run(make_run())
    assert store.task_history("etl") == []


def test_task_history_is_the_latest_five_of_each_task_across_runs(store: Store) -> None:
    first, second = new_run(store), new_run(store)
    # Over two runs of the workflow, out of order within each batch: the latest count.
    store.write(first, "alice", WriteBatch(durations=[duration("extract", n) for n in (5, 1, 3)]))
    store.write(
        second,
        "alice",
        WriteBatch(
            durations=[*(duration("extract", n) for n in (9, 6, 8, 7)), duration("load", 4, "l")]
        ),
    )
    assert _by_task(store) == {
        "extract": TaskHistory("extract", "etl:extract", _seconds(9, 8, 7, 6, 5)),
        "load": TaskHistory("load", "l", _seconds(4)),
    }


def test_the_history_names_the_latest_function(store: Store) -> None:
    run_id = new_run(store)
    store.write(run_id, "alice", WriteBatch(durations=[duration("extract", 1, "old:f")]))
    store.write(run_id, "alice", WriteBatch(durations=[duration("extract", 2, "new:f")]))
    assert _by_task(store)["extract"] == TaskHistory("extract", "new:f", _seconds(2, 1))


def test_task_history_belongs_to_its_workflow(store: Store) -> None:
    new_run(store)
    store.create_run(replace(make_run("other-run"), workflow="reports"))
    store.write("other-run", "alice", WriteBatch(durations=[duration("extract", 1, "r:x")]))
    assert store.task_history("etl") == []
    assert store.task_history("reports") == [TaskHistory("extract", "r:x", _seconds(1))]


def test_durations_are_fenced_and_written_once_per_key(store: Store) -> None:
    run_id = new_run(store)
    with pytest.raises(LeaseLostError):
        store.write(run_id, "mallory", WriteBatch(durations=[duration("extract", 1)]))
    batch = WriteBatch(durations=[duration("extract", 1)], key="alice#1")
    store.write(run_id, "alice", batch)
    store.write(run_id, "alice", batch)
    assert store.task_history("etl") == [TaskHistory("extract", "etl:extract", _seconds(1))]


def test_a_large_batch_of_durations_in_no_order_keeps_each_tasks_latest_first(
    store: Store,
) -> None:
    # More rows than one statement holds, tasks out of id order, each task twice: whatever
    # order a backend writes them in, a task's later duration is its newest.
    run_id = new_run(store)
    durations = [duration(f"t{n % 600}", n) for n in range(1200)]
    random.Random(7).shuffle(durations)
    store.write(run_id, "alice", WriteBatch(durations=durations))
    assert _by_task(store) == {
        f"t{n}": TaskHistory(f"t{n}", "etl:extract", _seconds(n + 600, n)) for n in range(600)
    }


def test_many_durations_in_one_batch(store: Store) -> None:
    run_id = new_run(store)
    durations = [duration(f"t{n % 300}", n) for n in range(3000)]
    store.write(run_id, "alice", WriteBatch(durations=durations))
    tasks = _by_task(store)
    assert len(tasks) == 300 and all(len(task.seconds) == 5 for task in tasks.values())
    assert tasks["t7"].seconds == _seconds(2707, 2407, 2107, 1807, 1507)


def test_large_batches_of_durations_one_after_another_each_join_the_history(
    store: Store,
) -> None:
    # Large enough for a backend's bulk path (PostgreSQL: a staging table that must be empty
    # again for the next batch, also after a batch the fence refused).
    run_id = new_run(store)
    with pytest.raises(LeaseLostError):
        store.write(
            run_id, "mallory", WriteBatch(durations=[duration(f"t{n}", 0) for n in range(200)])
        )
    for batch in range(3):
        store.write(
            run_id,
            "alice",
            WriteBatch(durations=[duration(f"t{n}", batch) for n in range(200)]),
        )
    assert _by_task(store) == {
        f"t{n}": TaskHistory(f"t{n}", "etl:extract", _seconds(2, 1, 0)) for n in range(200)
    }


@pytest.mark.parametrize("size", [100, 1000])
def test_a_large_batch_of_durations_shifts_known_tasks_and_adds_new_ones(
    store: Store, size: int
) -> None:
    # PostgreSQL upserts a batch from its staging table, or from 1,000 rows updates the rows
    # there and inserts the others, in two statements.
    run_id = new_run(store)
    first = [duration(f"t{n}", 0) for n in range(size)]
    store.write(run_id, "alice", WriteBatch(durations=first))
    second = [duration(f"t{n}", 1) for n in range(size // 2, 2 * size)]
    store.write(run_id, "alice", WriteBatch(durations=second))
    only_first = {f"t{n}": _seconds(0) for n in range(size // 2)}
    both = {f"t{n}": _seconds(1, 0) for n in range(size // 2, size)}
    only_second = {f"t{n}": _seconds(1) for n in range(size, 2 * size)}
    assert _by_task(store) == {
        task_id: TaskHistory(task_id, "etl:extract", seconds)
        for task_id, seconds in {**only_first, **both, **only_second}.items()
    }


# -- trace context ----------------------------------------------------------------------------

TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


def test_a_run_has_no_trace_context_until_one_is_set(store: Store) -> None:
    store.create_run(make_run())
    assert store.get_trace_context("run-1") is None
    store.set_trace_context("run-1", TRACEPARENT)
    assert store.get_trace_context("run-1") == TRACEPARENT


def test_the_first_trace_context_stays(store: Store) -> None:
    store.create_run(make_run())
    store.set_trace_context("run-1", TRACEPARENT)
    store.set_trace_context("run-1", TRACEPARENT.replace("b7ad", "0000"))
    assert store.get_trace_context("run-1") == TRACEPARENT


def test_the_trace_context_of_an_unknown_run(store: Store) -> None:
    assert store.get_trace_context("nope") is None
    with pytest.raises(RunNotFoundError):
        store.set_trace_context("nope", TRACEPARENT)


def test_skip_causes_are_kept_with_records_and_columns_small_and_large_batches(
    store: Store,
) -> None:
    store.create_run(make_run())
    causes = [None, *SkipCause]
    records = [
        task(
            f"t{n}",
            status=TaskStatus.SKIPPED if causes[n % 5] else TaskStatus.SUCCEEDED,
            skip_cause=causes[n % 5],
            output=None,
        )
        for n in range(400)  # past the size from which PostgreSQL copies rows in bulk
    ]
    store.write("run-1", "alice", WriteBatch(tasks=records[:3]))
    store.write("run-1", "alice", WriteBatch(tasks=columns_of(*records)))
    loaded = store.load_tasks("run-1")
    assert loaded == {r.task_id: r for r in records}
    assert loaded["t2"].skip_cause is SkipCause.UPSTREAM_SKIPPED


# -- events ---------------------------------------------------------------------------------


def test_events_keep_their_order_across_batches(store: Store) -> None:
    store.create_run(make_run())
    batches = [[event("a", n) for n in range(k * 10, k * 10 + 10)] for k in range(5)]
    for batch in batches:
        store.write("run-1", "alice", WriteBatch(events=batch))
    assert store.load_events("run-1") == [e for batch in batches for e in batch]


def test_events_keep_their_order_within_a_large_batch(store: Store) -> None:
    store.create_run(make_run())
    # Times deliberately out of order: the log's order is the order of writing.
    events = [event(f"kind-{n % 7}", (n * 7919) % 1000, f"t{n % 13}") for n in range(1000)]
    store.write("run-1", "alice", WriteBatch(events=events))
    assert store.load_events("run-1") == events


def test_events_given_as_columns_are_kept_like_records(store: Store) -> None:
    store.create_run(make_run())
    events = [event("TaskSucceeded", n, f"t{n % 3}") for n in range(250)]
    events[7] = EventRecord(kind="RunStarted", time=1.5, data={"workflow": "w", "tasks": 3})
    events[8] = EventRecord(
        kind="TaskSucceeded", time=2.5, task_id="t0", data={"attempt": 2, "started": 2.25}
    )
    columns = EventRecordColumns(
        kinds=[e.kind for e in events],
        times=[e.time for e in events],
        task_ids=[e.task_id for e in events],
        data=[e.data for e in events],
    )
    assert list(columns) == events and columns[-2:] == events[-2:]
    store.write("run-1", "alice", WriteBatch(events=columns[:100]))
    store.write("run-1", "alice", WriteBatch(events=columns))
    assert store.load_events("run-1") == events[:100] + events


def test_identical_events_are_all_kept(store: Store) -> None:
    store.create_run(make_run())
    store.write("run-1", "alice", WriteBatch(events=[event(), event()]))
    store.write("run-1", "alice", WriteBatch(events=[event()]))
    assert store.load_events("run-1") == [event()] * 3


def test_event_data_round_trips_as_json(store: Store) -> None:
    store.create_run(make_run())
    data = {
        "text": 'naïve ☃ \U0001f600 "quoted" \\ \n\t\x01',
        "int": -(2**63),
        "big": 10**30,
        "float": 0.1,
        "tiny": 5e-324,
        "inf": float("inf"),
        "bool": True,
        "none": None,
        "list": [1, [2, {"k": []}], {}],
        "nested": {"a": {"b": {"c": "d"}}},
        "": "empty key",
    }
    events = [
        EventRecord(kind="custom", time=1.0, data=data),
        EventRecord(kind="empty", time=2.0),
    ]
    store.write("run-1", "alice", WriteBatch(events=events))
    assert store.load_events("run-1") == events


# -- task logs ------------------------------------------------------------------------------------


def log(task_id: str = "extract", attempt: int = 1, *texts: str, stream: str = "stdout") -> TaskLog:
    return TaskLog(
        task_id=task_id,
        attempt=attempt,
        lines=[
            LogLine(task_id, attempt, n, 1_700_000_000.25 + n, stream, text)
            for n, text in enumerate(texts, start=1)
        ],
    )


def test_logs_are_kept_per_attempt_and_read_back_equal(store: Store) -> None:
    run_id = new_run(store)
    logs = [log("load", 1, "a"), log("extract", 2, "b", "c"), log("extract", 1, "d")]
    store.write(run_id, "alice", WriteBatch(logs=logs))
    assert store.load_logs(run_id) == [logs[2], logs[1], logs[0]]  # by task, then attempt
    assert store.load_logs(run_id, task_id="extract") == [logs[2], logs[1]]
    assert store.load_logs(run_id, task_id="extract", attempt=2) == [logs[1]]
    assert store.load_logs(run_id, attempt=1) == [logs[2], logs[0]]
    assert store.load_logs(run_id, task_id="nope") == []


def test_a_log_written_again_replaces_the_attempts_earlier_one(store: Store) -> None:
    run_id = new_run(store)
    store.write(run_id, "alice", WriteBatch(logs=[log("extract", 1, "a")]))
    grown = log("extract", 1, "a", "b")
    store.write(run_id, "alice", WriteBatch(logs=[log("extract", 1, "x"), grown]))
    assert store.load_logs(run_id) == [grown]


def test_log_text_round_trips_exactly(store: Store) -> None:
    run_id = new_run(store)
    texts = ["", 'tab\tquote"back\\slash', "nul\x00byte", "é ✓ 😀", "lone \udc80 surrogate"]
    written = TaskLog(
        task_id="extract",
        attempt=1,
        lines=[
            LogLine("extract", 1, 7, 0.1, "stderr", texts[0]),
            *(LogLine("extract", 1, 8 + n, 1e9 + n / 3, "log", t) for n, t in enumerate(texts)),
            LogLine("extract", 1, 99, 2.5, "plait", "multi\nline\r\n"),
        ],
    )
    store.write(run_id, "alice", WriteBatch(logs=[written]))
    assert store.load_logs(run_id) == [written]


def test_a_log_write_is_fenced_like_the_rest(store: Store) -> None:
    run_id = new_run(store)
    with pytest.raises(LeaseLostError):
        store.write(run_id, "mallory", WriteBatch(logs=[log("extract", 1, "a")]))
    assert store.load_logs(run_id) == []


def test_logs_of_runs_are_separate(store: Store) -> None:
    first, second = new_run(store), new_run(store)
    store.write(first, "alice", WriteBatch(logs=[log("extract", 1, "a")]))
    assert store.load_logs(second) == []
    with pytest.raises(RunNotFoundError, match="'nope'"):
        store.load_logs("nope")


# -- values round-trip exactly ---------------------------------------------------------------


ODD_BYTES = [
    b"",
    b"\x00",
    b"\xff\xfe\xfd",  # not UTF-8
    b"\x00abc\x00",
    bytes(range(256)),
    b"\\x00 'quoted' \"too\"",
    b"\x80\x04\x95\x0b\x00\x00\x00\x00\x00\x00\x00\x8c\x07payload\x94.",  # a pickle
    bytes(100_000),
]


@pytest.mark.parametrize("output", ODD_BYTES, ids=lambda b: f"{len(b)}-bytes")
def test_output_bytes_round_trip_exactly(store: Store, output: bytes) -> None:
    store.create_run(make_run())
    store.write("run-1", "alice", WriteBatch(tasks=[task(output=output)]))
    loaded = store.load_tasks("run-1")["extract"].output
    assert type(loaded) is bytes
    assert loaded == output


@pytest.mark.parametrize("value", ODD_BYTES, ids=lambda b: f"{len(b)}-bytes")
def test_answer_bytes_round_trip_exactly(store: Store, value: bytes) -> None:
    store.create_run(make_run())
    answered = request(answered=True, value=value, answered_at=1_700_000_020.0)
    store.write("run-1", "alice", WriteBatch(requests=[answered]))
    loaded = store.load_requests("run-1")[0].value
    assert type(loaded) is bytes
    assert loaded == value


def test_empty_bytes_and_none_stay_apart(store: Store) -> None:
    store.create_run(make_run())
    tasks = [task("empty", output=b""), task("none", output=None)]
    store.write("run-1", "alice", WriteBatch(tasks=tasks))
    loaded = store.load_tasks("run-1")
    assert loaded["empty"].output == b""
    assert loaded["none"].output is None


def test_task_errors_round_trip(store: Store) -> None:
    store.create_run(make_run())
    try:
        raise KeyError("naïve ☃ key\nwith a newline")
    except KeyError as exc:
        captured = TaskError.from_exception(exc)
    tasks = [
        task("captured", status=TaskStatus.FAILED, error=captured),
        task("plain", status=TaskStatus.FAILED, error=TaskError("mod.Err", "")),
        task("json-ish", status=TaskStatus.FAILED, error=TaskError('{"a": 1}', "{}", "null")),
    ]
    store.write("run-1", "alice", WriteBatch(tasks=tasks))
    loaded = store.load_tasks("run-1")
    assert loaded == {t.task_id: t for t in tasks}
    error = loaded["captured"].error
    assert error is not None
    assert (error.type, error.message, error.traceback) == (
        captured.type,
        captured.message,
        captured.traceback,
    )
    assert "KeyError" in error.traceback


def test_none_fields_stay_none(store: Store) -> None:
    store.create_run(make_run())
    bare = TaskRecord(task_id="bare", status=TaskStatus.PENDING)
    question = InputRequest(task_id="bare", key="", prompt="", schema=None, requested_at=0.0)
    anonymous = EventRecord(kind="run_started", time=0.0)
    store.write("run-1", "alice", WriteBatch(tasks=[bare], requests=[question], events=[anonymous]))
    assert store.load_tasks("run-1") == {"bare": bare}
    assert store.load_requests("run-1") == [question]
    assert store.load_events("run-1") == [anonymous]


@pytest.mark.parametrize("status", list(TaskStatus))
def test_every_task_status_round_trips(store: Store, status: TaskStatus) -> None:
    store.create_run(make_run())
    store.write("run-1", "alice", WriteBatch(tasks=[task(status=status)]))
    assert store.load_tasks("run-1")["extract"].status is status


@pytest.mark.parametrize("status", list(RunStatus))
def test_every_run_status_round_trips(store: Store, status: RunStatus) -> None:
    store.create_run(make_run(status=status))
    run = store.get_run("run-1")
    assert run is not None
    assert run.status is status


def test_times_round_trip_exactly(store: Store) -> None:
    store.create_run(make_run())
    times = [0.0, 1e-9, 1_700_000_000.123456789, 2**53 + 0.0, 1 / 3]
    tasks = [task(f"t{n}", started_at=t, finished_at=t) for n, t in enumerate(times)]
    store.write("run-1", "alice", WriteBatch(tasks=tasks))
    loaded = store.load_tasks("run-1")
    assert [loaded[f"t{n}"].started_at for n in range(len(times))] == times


# -- runs are separate -------------------------------------------------------------------------


def test_runs_do_not_see_each_others_records(store: Store) -> None:
    store.create_run(make_run("run-1", owner="alice"))
    store.create_run(make_run("run-2", owner="bob"))
    store.write("run-1", "alice", WriteBatch(tasks=[task()], requests=[request()]))
    store.write("run-2", "bob", WriteBatch(events=[event()]))
    assert (store.load_tasks("run-2"), store.load_requests("run-2")) == ({}, [])
    assert store.load_events("run-1") == []
    assert list(store.load_tasks("run-1")) == ["extract"]


def test_a_new_run_has_no_records(store: Store) -> None:
    store.create_run(make_run())
    assert store.load_tasks("run-1") == {}
    assert store.load_requests("run-1") == []
    assert store.load_events("run-1") == []


@pytest.mark.parametrize("load", ["load_tasks", "load_requests", "load_events"])
def test_loading_an_unknown_run_raises_run_not_found(store: Store, load: str) -> None:
    with pytest.raises(RunNotFoundError, match="'nope'"):
        getattr(store, load)("nope")


# -- the invariant, for any sequence of batches -------------------------------------------------

_TIMES = st.floats(allow_nan=False) | st.none()
_TASKS = st.builds(
    TaskRecord,
    task_id=st.sampled_from(["a", "b", "c", "d"]),
    status=st.sampled_from(TaskStatus),
    attempts=st.integers(0, 1000),
    output=st.binary(max_size=16) | st.none(),
    error=st.builds(TaskError, st.text(max_size=5), st.text(max_size=5)) | st.none(),
    started_at=_TIMES,
    finished_at=_TIMES,
)
_REQUESTS = st.builds(
    InputRequest,
    task_id=st.sampled_from(["a", "b"]),
    key=st.sampled_from(["", "0", "1"]),
    prompt=st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\x00")),
    schema=st.none() | st.just({"type": "string"}),
    requested_at=st.floats(allow_nan=False),
    answered=st.booleans(),
    value=st.binary(max_size=8) | st.none(),
)
_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=6,
)
_EVENTS = st.builds(
    EventRecord,
    kind=st.sampled_from(["task_started", "task_succeeded"]),
    time=st.floats(allow_nan=False),
    task_id=st.sampled_from(["a", "b"]) | st.none(),
    data=st.dictionaries(st.text(max_size=4), _JSON, max_size=3),
)
_BATCHES = st.lists(
    st.builds(
        WriteBatch,
        tasks=st.lists(_TASKS, max_size=5),
        requests=st.lists(_REQUESTS, max_size=3),
        events=st.lists(_EVENTS, max_size=3),
    ),
    min_size=1,
    max_size=4,
)


@settings(
    max_examples=25,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(batches=_BATCHES)
def test_loads_give_the_latest_record_per_key_and_every_event_in_order(
    store: Store, batches: Sequence[WriteBatch]
) -> None:
    run_id = new_run(store)  # a fresh run per example: the store outlives the examples
    tasks: dict[str, TaskRecord] = {}
    requests: dict[tuple[str, str], InputRequest] = {}
    events: list[EventRecord] = []
    for batch in batches:
        store.write(run_id, "alice", batch)
        tasks.update((t.task_id, t) for t in batch.tasks)
        requests.update(((r.task_id, r.key), r) for r in batch.requests)
        events.extend(batch.events)
    assert store.load_tasks(run_id) == tasks
    assert store.load_requests(run_id) == list(requests.values())
    assert store.load_events(run_id) == events


# -- durable backends: the state outlives the store object ----------------------------------------


def test_everything_survives_closing_and_reopening(durable_backend: Backend) -> None:
    store = durable_backend.open()
    run = make_run()
    store.create_run(run)
    store.create_run(make_run("run-2", owner=None, created_at=5.0))
    batch = _full_batch()
    store.write("run-1", "alice", batch)
    expected = store.get_run("run-1")
    store.close()

    reopened = durable_backend.open()
    assert reopened.get_run("run-1") == expected
    assert [r.run_id for r in reopened.list_runs().runs] == ["run-1", "run-2"]
    assert reopened.load_tasks("run-1") == {t.task_id: t for t in batch.tasks}
    assert reopened.load_requests("run-1") == batch.requests
    assert reopened.load_events("run-1") == batch.events
    assert reopened.load_logs("run-1") == batch.logs
    assert reopened.claim("run-2", "bob", lease_seconds=LEASE).owner == "bob"


def test_a_closed_store_can_be_closed_again(durable_backend: Backend) -> None:
    store = durable_backend.open()
    store.close()
    store.close()


def test_a_store_works_as_a_context_manager(durable_backend: Backend) -> None:
    with durable_backend.open() as store:
        store.create_run(make_run())
    with durable_backend.open() as store:
        assert store.get_run("run-1") is not None


def test_a_write_that_fails_part_way_leaves_nothing_behind(durable_backend: Backend) -> None:
    store = durable_backend.open()
    run = make_run()
    store.create_run(run)
    broken = TaskRecord(task_id=None, status=TaskStatus.PENDING)  # type: ignore[arg-type]
    batch = _full_batch()
    batch.tasks.append(broken)  # the database refuses it after the rest was sent
    with pytest.raises(StoreError):
        store.write("run-1", "alice", batch)
    _assert_nothing_written(store, run)
    store.write("run-1", "alice", WriteBatch(tasks=[task()]))  # the store still works
    assert list(store.load_tasks("run-1")) == ["extract"]


# Jobs for the two worker processes; module-level so that the workers can import them.


def _claim_rounds(url: str, run_ids: list[str], *, owner: str, barrier: Any) -> list[str]:
    """Open the store, then at each barrier try to claim the next run; return the runs won."""
    with open_store(url) as store:
        won = []
        for run_id in run_ids:
            barrier.wait(timeout=60)
            try:
                store.claim(run_id, owner, lease_seconds=LEASE)
            except LeaseHeldError:
                continue
            won.append(run_id)
        return won


def _write_own_run(url: str, batches: int, *, owner: str, barrier: Any) -> int:
    """Write batches of 200 tasks and 200 events to the run ``run-<owner>``; return how many."""
    with open_store(url) as store:
        barrier.wait(timeout=60)
        for k in range(batches):
            tasks = [task(f"{owner}-{k}-{n}") for n in range(200)]
            events = [event(n=n, task_id=owner) for n in range(200)]
            store.write(f"run-{owner}", owner, WriteBatch(tasks=tasks, events=events))
        return batches


def _open_new(urls: list[str], *, owner: str, barrier: Any) -> list[int]:
    """At each barrier open the next new store (both processes the same one) and use it at
    once; return the schema versions found."""
    versions = []
    for url in urls:
        barrier.wait(timeout=60)
        with open_store(url) as store:
            versions.append(getattr(store, "schema_version", 0))
            store.create_run(make_run(f"run-{owner}"))
    return versions


def test_of_two_processes_claiming_at_once_exactly_one_wins(
    durable_backend: Backend, two_processes: ProcessPair
) -> None:
    store = durable_backend.open()
    run_ids = [f"contested-{n}" for n in range(10)]
    for run_id in run_ids:
        store.create_run(make_run(run_id, owner=None))
    wins = two_processes.run(_claim_rounds, durable_backend.url, run_ids)
    winners = Counter(run_id for won in wins.values() for run_id in won)
    assert winners == Counter(run_ids)  # each run won exactly once
    for owner, won in wins.items():
        for run_id in won:
            run = store.get_run(run_id)
            assert run is not None
            assert run.owner == owner


def test_two_processes_write_batches_to_their_own_runs_at_once(
    durable_backend: Backend, two_processes: ProcessPair
) -> None:
    store = durable_backend.open()
    for owner in ProcessPair.OWNERS:
        store.create_run(make_run(f"run-{owner}", owner=owner))
    reports = two_processes.run(_write_own_run, durable_backend.url, 10)
    assert reports == {"p1": 10, "p2": 10}
    for owner in ProcessPair.OWNERS:
        assert len(store.load_tasks(f"run-{owner}")) == 10 * 200
        events = store.load_events(f"run-{owner}")
        assert len(events) == 10 * 200
        assert {e.task_id for e in events} == {owner}


def test_two_processes_opening_a_new_store_at_once_both_succeed(
    durable_backend: Backend, two_processes: ProcessPair
) -> None:
    urls = [durable_backend.fresh_url(f"new{n}") for n in range(5)]
    reports = two_processes.run(_open_new, urls)
    latest = len(durable_backend.store_class._migrations)  # type: ignore[attr-defined]
    assert reports == {"p1": [latest] * 5, "p2": [latest] * 5}


# -- durable backends: schema migrations ---------------------------------------------------------


def test_a_new_store_is_at_the_latest_schema_version(durable_backend: Backend) -> None:
    store = durable_backend.open()
    latest = len(durable_backend.store_class._migrations)  # type: ignore[attr-defined]
    assert latest >= 1
    assert store.schema_version == latest  # type: ignore[attr-defined]


def test_opening_an_older_store_applies_the_missing_migrations(durable_backend: Backend) -> None:
    base: Any = durable_backend.store_class
    old = durable_backend.open(base)
    old.create_run(make_run())
    old.write("run-1", "alice", WriteBatch(tasks=[task()]))
    written = old.get_run("run-1")
    assert written is not None
    old.close()

    class Newer(base):  # type: ignore[misc]
        _migrations = (
            *base._migrations,
            "UPDATE runs SET workflow = workflow || '-v2'",
            "ALTER TABLE runs ADD COLUMN note TEXT; UPDATE runs SET note = 'x', error = 'v3'",
        )

    new = durable_backend.open(Newer)
    assert new.schema_version == len(base._migrations) + 2  # type: ignore[attr-defined]
    assert new.get_run("run-1") == replace(written, workflow="etl-v2", error="v3")
    assert new.load_tasks("run-1") == {"extract": task()}
    new.close()

    again = durable_backend.open(Newer)  # nothing left to apply: the data is not migrated twice
    assert again.get_run("run-1") == replace(written, workflow="etl-v2", error="v3")


def test_events_written_before_the_started_column_read_back_as_they_were(
    durable_backend: Backend,
) -> None:
    """The migration that gave events' folded starts a column of their own (SQLite 9,
    PostgreSQL 10) leaves older rows as they are: their start stays in the JSON, and reads as
    the same data as a start written since."""
    base: Any = durable_backend.store_class

    class Older(base):  # type: ignore[misc]
        _migrations = base._migrations[:-1]

    old = durable_backend.open(Older)
    old.create_run(make_run())
    with old._transaction() as db:  # a row as the older plait wrote it
        db.execute(
            old._q("INSERT INTO events (run_id, kind, task_id, time, data) VALUES (?, ?, ?, ?, ?)"),
            ("run-1", "TaskSucceeded", "extract", 2.0, '{"attempt":1,"started":1.25}'),
        )
    old.close()

    new = durable_backend.open(base)
    assert new.schema_version == len(base._migrations)  # type: ignore[attr-defined]
    new.write(
        "run-1",
        "alice",
        WriteBatch(
            events=[
                EventRecord(
                    kind="TaskSucceeded",
                    time=3.0,
                    task_id="load",
                    data={"attempt": 2, "started": 2.5},
                )
            ]
        ),
    )
    assert [(e.task_id, e.data) for e in new.load_events("run-1")] == [
        ("extract", {"attempt": 1, "started": 1.25}),
        ("load", {"attempt": 2, "started": 2.5}),
    ]


def test_a_store_written_by_a_newer_plait_is_refused(durable_backend: Backend) -> None:
    base: Any = durable_backend.store_class

    class Newer(base):  # type: ignore[misc]
        _migrations = (*base._migrations, "CREATE TABLE later (x INTEGER)")

    durable_backend.open(Newer).close()
    latest = len(base._migrations)
    with pytest.raises(
        StoreError, match=rf"has schema version {latest + 1}, newer than this plait knows "
    ):
        durable_backend.open(base)


# -- stale runs ----------------------------------------------------------------------------------


def test_a_running_run_whose_lease_expired_reads_back_stale_since_then(store: Store) -> None:
    store.create_run(make_run("live"))
    store.create_run(make_run("gone", lease=-5.0))
    store.create_run(make_run("unowned", owner=None))
    store.create_run(make_run("paused", lease=-5.0, status=RunStatus.PAUSED))
    runs = {r.run_id: r for r in store.list_runs().runs}
    assert {run_id for run_id, r in runs.items() if r.stale} == {"gone", "unowned"}
    gone = store.get_run("gone")
    assert gone is not None and gone.stale
    assert gone.stale_since == gone.lease_expires_at
    assert runs["unowned"].stale_since == runs["unowned"].updated_at
    assert runs["live"].stale_since is None and runs["paused"].stale_since is None
    store.claim("gone", "bob", lease_seconds=60)  # a new owner: live again
    again = store.get_run("gone")
    assert again is not None and not again.stale


# -- mapped tasks: instances are task records like any other -------------------------------------


def test_a_mapped_run_records_its_instances_and_resumes_only_those_that_did_not_succeed(
    store: Store,
) -> None:
    failing = {3, 250}
    ran: list[int] = []

    def each(items: int) -> int:
        ran.append(items)
        if items in failing:
            raise RuntimeError(f"item {items} failed")
        return items * 2

    wf = plait.Workflow("mapped")
    wf.add_task("items", lambda: list(range(300)))
    wf.add_task("each", each, depends_on=["items"], map_over="items")
    wf.add_task("total", lambda each: sum(each), depends_on=["each"])  # noqa: PLW0108
    first = plait.run(wf, store=store, run_id="m", retry_failed_tasks=False)
    assert first.tasks["each"].status is TaskStatus.FAILED
    stored = store.load_tasks("m")
    assert stored["each[3]"].status is TaskStatus.FAILED
    assert stored["each[299]"].status is TaskStatus.SUCCEEDED
    assert stored["each"].status is TaskStatus.FAILED  # the whole has a record too
    assert len(stored) == 1 + 1 + 300 + 1
    ran.clear()
    failing.clear()
    resumed = plait.resume("m", wf, store=store)
    assert sorted(ran) == [3, 250]
    assert resumed.outputs["total"] == sum(range(300)) * 2
    assert store.load_tasks("m")["each"].status is TaskStatus.SUCCEEDED
