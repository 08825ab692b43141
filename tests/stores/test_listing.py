"""Conformance tests for what a store lists across runs (``stores/_listing.py``): pages of runs
with their cursor, the inbox of open questions, tailing a run's events, and who answered.
Every test runs on every backend (see ``conftest.BACKENDS``)."""

from __future__ import annotations

import itertools
import time
from dataclasses import replace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from plait import RunStatus
from plait.stores import (
    InvalidCursorError,
    OpenQuestion,
    RunNotFoundError,
    Store,
    WriteBatch,
)
from plait.stores._listing import decode_cursor, encode_cursor

from .test_conformance import event, make_run, request


def ids(store: Store, **options: object) -> list[str]:
    """Every run id, newest first, read page by page (with the given options)."""
    found: list[str] = []
    before = None
    while True:
        page = store.list_runs(before=before, **options)  # type: ignore[arg-type]
        found += [run.run_id for run in page.runs]
        if page.next_cursor is None:
            return found
        before = page.next_cursor


# -- pages of runs ------------------------------------------------------------------------------


def test_pages_of_runs_follow_one_another_newest_first(store: Store) -> None:
    for n in range(7):
        store.create_run(make_run(f"run-{n}", created_at=float(n)))
    first = store.list_runs(limit=3)
    assert [r.run_id for r in first.runs] == ["run-6", "run-5", "run-4"]
    assert first.next_cursor is not None
    second = store.list_runs(limit=3, before=first.next_cursor)
    assert [r.run_id for r in second.runs] == ["run-3", "run-2", "run-1"]
    last = store.list_runs(limit=3, before=second.next_cursor)
    assert [r.run_id for r in last.runs] == ["run-0"]
    assert last.next_cursor is None


def test_a_page_that_ends_the_list_exactly_has_no_next_cursor(store: Store) -> None:
    for n in range(4):
        store.create_run(make_run(f"run-{n}", created_at=float(n)))
    assert store.list_runs(limit=4).next_cursor is None
    assert store.list_runs(limit=0).next_cursor is None


def test_runs_created_at_the_same_time_are_ordered_by_id_and_none_is_lost(store: Store) -> None:
    for run_id in ["b", "d", "a", "c", "e"]:
        store.create_run(make_run(run_id, created_at=5.0))
    assert ids(store, limit=2) == ["e", "d", "c", "b", "a"]


def test_pages_stay_stable_when_runs_are_created_meanwhile(store: Store) -> None:
    for n in range(6):
        store.create_run(make_run(f"run-{n}", created_at=float(n)))
    first = store.list_runs(limit=3)
    store.create_run(make_run("newer", created_at=100.0))
    second = store.list_runs(limit=3, before=first.next_cursor)
    assert [r.run_id for r in second.runs] == ["run-2", "run-1", "run-0"]


def test_pages_filter_by_workflow_and_status(store: Store) -> None:
    for n in range(6):
        run = make_run(
            f"run-{n}", created_at=float(n), status=[RunStatus.PAUSED, RunStatus.FAILED][n % 2]
        )
        store.create_run(replace(run, workflow="etl" if n < 4 else "report"))
    assert ids(store, workflow="etl", limit=1) == ["run-3", "run-2", "run-1", "run-0"]
    assert ids(store, workflow="report", status=RunStatus.FAILED) == ["run-5"]
    assert ids(store, workflow="nope") == []


@pytest.mark.parametrize("cursor", ["", "nope", "bm9wZQ", "aW5mOng", "!!!"])
def test_a_cursor_no_page_handed_out_is_refused(store: Store, cursor: str) -> None:
    with pytest.raises(InvalidCursorError, match=r"is not a cursor of a page of runs"):
        store.list_runs(before=cursor)


@pytest.mark.parametrize("limit", [-1, 1.5, True])
def test_a_page_size_that_is_not_a_whole_number_is_refused(store: Store, limit: object) -> None:
    with pytest.raises(ValueError, match=r"^limit must be a whole number >= 0, not "):
        store.list_runs(limit=limit)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"^limit must be a whole number >= 0, not "):
        store.open_questions(limit=limit)  # type: ignore[arg-type]


_examples = itertools.count()


@settings(
    max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    times=st.lists(st.sampled_from([0.0, 1.0, 1.5, 1e9 + 0.1]), min_size=0, max_size=12),
    limit=st.integers(min_value=1, max_value=5),
)
def test_paging_visits_every_run_once_in_order(
    store: Store, times: list[float], limit: int
) -> None:
    workflow = f"flow-{next(_examples)}"  # the store is shared by the examples: one workflow each
    runs = [
        replace(make_run(f"{workflow}-{n:02d}", created_at=t), workflow=workflow)
        for n, t in enumerate(times)
    ]
    for run in runs:
        store.create_run(run)
    newest_first = sorted(runs, key=lambda r: (r.created_at, r.run_id), reverse=True)
    assert ids(store, workflow=workflow, limit=limit) == [r.run_id for r in newest_first]


@given(created_at=st.floats(allow_nan=False, allow_infinity=False), run_id=st.text())
def test_a_cursor_reads_back_as_the_position_it_was_made_from(
    created_at: float, run_id: str
) -> None:
    run = replace(make_run(), created_at=created_at, run_id=run_id)
    assert decode_cursor(encode_cursor(run)) == (created_at, run_id)


# -- the inbox ----------------------------------------------------------------------------------


def ask(
    store: Store, run_id: str, *questions: object, status: RunStatus = RunStatus.PAUSED
) -> None:
    store.create_run(make_run(run_id, status=status))
    store.write(run_id, "alice", WriteBatch(requests=list(questions)))  # type: ignore[arg-type]


def test_the_inbox_is_every_open_question_earliest_deadline_first(store: Store) -> None:
    now = 1_700_000_000.0
    ask(
        store,
        "run-a",
        request("later", requested_at=now, deadline=now + 600),
        request("never", requested_at=now - 50),
        request("done", answered=True, value=b"1", answered_at=now),
    )
    ask(
        store,
        "run-b",
        request("soon", requested_at=now + 10, deadline=now + 60),
        request("old", requested_at=now - 100),
        request("asks", key="second", requested_at=now + 1, deadline=now + 60),
    )
    inbox = store.open_questions()
    assert [(q.run_id, q.task_id, q.key) for q in inbox] == [
        ("run-b", "asks", "second"),
        ("run-b", "soon", ""),
        ("run-a", "later", ""),
        ("run-b", "old", ""),
        ("run-a", "never", ""),
    ]
    assert [q.task_id for q in store.open_questions(limit=2)] == ["asks", "soon"]
    assert store.open_questions(limit=0) == []


def test_an_open_question_carries_what_an_inbox_shows(store: Store) -> None:
    schema = {"type": "boolean", "default": False, "title": "Send it?"}
    asked = request("approve", prompt="Send invoice 42?", schema=schema, deadline=1_700_000_600.0)
    ask(store, "run-1", asked)
    (found,) = store.open_questions()
    assert found == OpenQuestion(
        run_id="run-1",
        workflow="etl",
        run_status=RunStatus.PAUSED,
        task_id="approve",
        key="",
        prompt="Send invoice 42?",
        schema=schema,
        asked_at=asked.requested_at,
        deadline=1_700_000_600.0,
        default=False,  # the schema's: the question has no default of its own
    )


@pytest.mark.parametrize(
    "status",
    [RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.CANCELLED],
)
def test_questions_of_finished_runs_are_not_in_the_inbox(store: Store, status: RunStatus) -> None:
    ask(store, "run-1", request("approve"), status=status)
    ask(store, "run-2", request("approve"), status=RunStatus.RUNNING)
    assert [(q.run_id, q.run_status) for q in store.open_questions()] == [
        ("run-2", RunStatus.RUNNING)
    ]


def test_an_empty_store_has_an_empty_inbox(store: Store) -> None:
    assert store.open_questions() == []


# -- tailing events -----------------------------------------------------------------------------


def test_events_after_a_seq_are_those_written_since(store: Store) -> None:
    store.create_run(make_run())
    store.write("run-1", "alice", WriteBatch(events=[event(n=n) for n in range(3)]))
    first = store.load_events("run-1")
    assert [e.data["n"] for e in first] == [0, 1, 2]
    seqs = [e.seq for e in first]
    assert all(isinstance(s, int) for s in seqs) and seqs == sorted(set(seqs))  # type: ignore[type-var]
    assert store.load_events("run-1", after=first[-1].seq) == []
    assert [e.data["n"] for e in store.load_events("run-1", after=first[0].seq)] == [1, 2]
    store.create_run(make_run("run-2"))
    store.write("run-2", "alice", WriteBatch(events=[event(n=9)]))
    store.write("run-1", "alice", WriteBatch(events=[event(n=n) for n in range(3, 5)]))
    tail = store.load_events("run-1", after=first[-1].seq)
    assert [e.data["n"] for e in tail] == [3, 4]
    assert tail[0].seq > first[-1].seq  # type: ignore[operator]


def test_tailing_an_unknown_run_raises(store: Store) -> None:
    with pytest.raises(RunNotFoundError):
        store.load_events("nope", after=3)


# -- who answered -------------------------------------------------------------------------------


def test_an_answer_keeps_who_gave_it_and_how(store: Store) -> None:
    store.create_run(make_run())
    answered = request(
        "approve",
        answered=True,
        value=b"true",
        answered_at=time.time(),
        answered_by="Ada <ada@example.com>",
        answered_via="web",
    )
    store.write("run-1", "alice", WriteBatch(requests=[answered]))
    assert store.load_requests("run-1") == [answered]


def test_a_question_keeps_its_default_and_the_inbox_shows_it(store: Store) -> None:
    store.create_run(make_run())
    schema = {"type": "string", "default": "from the schema"}
    asked = [
        request("own", default=b'"hold"', schema=schema),
        request("schema", schema=schema),
        request("none", default=b"not plait's JSON"),
        request("nothing"),
    ]
    store.write("run-1", "alice", WriteBatch(requests=asked))
    assert store.load_requests("run-1") == asked
    inbox = {q.task_id: q.default for q in store.open_questions()}
    assert inbox == {"own": "hold", "schema": "from the schema", "none": None, "nothing": None}


def test_a_pickled_runs_default_is_never_loaded(store: Store) -> None:
    import pickle  # noqa: PLC0415

    class Boom:
        def __reduce__(self) -> tuple[object, ...]:
            return (exec, ("raise SystemExit('loaded')",))

    run = make_run()
    store.create_run(replace(run, config={**run.config, "serializer": "pickle"}))
    store.write("run-1", "alice", WriteBatch(requests=[request("x", default=pickle.dumps(Boom()))]))
    assert [q.default for q in store.open_questions()] == [None]
