"""The store conformance suite, continued: requests to a live run (``plait._requests``), run once
per backend (the memory store is the reference), plus two processes taking at once and a store
from before requests existed on the durable ones."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from plait import RunStatus
from plait._requests import RequestKind, RequestState, RunRequest
from plait.stores import (
    LeaseLostError,
    RunNotFoundError,
    RunUpdate,
    Store,
    WriteBatch,
    open_store,
)

from .conftest import Backend, ProcessPair
from .test_conformance import make_run


def run_request(request_id: str = "r1", owner: str = "alice", **changes: Any) -> RunRequest:
    fields: dict[str, Any] = {
        "request_id": request_id,
        "kind": RequestKind.CANCEL,
        "owner": owner,
        "sent_at": 1_700_000_010.5,
        "sent_by": "ops-host:4242",
        "data": {"reason": "deploy", "nested": {"n": [1, 2.5, None]}},
    }
    return RunRequest(**(fields | changes))


def test_a_sent_request_reads_back_pending_and_equal(store: Store) -> None:
    store.create_run(make_run())
    store.send_request("run-1", run_request())
    assert store.get_request("run-1", "r1") == run_request()
    assert store.get_request("run-1", "other") is None


def test_sending_a_request_twice_keeps_the_first(store: Store) -> None:
    store.create_run(make_run())
    store.send_request("run-1", run_request())
    store.send_request("run-1", run_request(sent_by="someone-else:1"))
    assert store.get_request("run-1", "r1") == run_request()
    assert store.take_requests("run-1", "alice") == [
        replace(run_request(), state=RequestState.TAKEN, taken_at=_taken_at(store))
    ]


def _taken_at(store: Store) -> float | None:
    request = store.get_request("run-1", "r1")
    assert request is not None
    return request.taken_at


def test_the_owner_takes_its_pending_requests_once_in_the_order_sent(store: Store) -> None:
    store.create_run(make_run())
    for n in (3, 1, 2):  # ids that do not sort in the order sent
        store.send_request("run-1", run_request(f"r{n}", sent_at=1_700_000_000.0 + n))
    taken = store.take_requests("run-1", "alice")
    assert [r.request_id for r in taken] == ["r3", "r1", "r2"]
    assert all(r.state is RequestState.TAKEN and r.taken_at is not None for r in taken)
    assert store.take_requests("run-1", "alice") == []  # taken once
    store.send_request("run-1", run_request("r4"))
    assert [r.request_id for r in store.take_requests("run-1", "alice")] == ["r4"]
    stored = store.get_request("run-1", "r1")
    assert stored is not None and stored.state is RequestState.TAKEN


def test_a_request_is_taken_only_by_the_owner_it_is_addressed_to(store: Store) -> None:
    store.create_run(make_run())
    store.send_request("run-1", run_request("for-bob", owner="bob"))
    assert store.take_requests("run-1", "alice") == []
    # Bob takes the run over later: a request addressed to him before is his.
    store.claim("run-1", "bob", lease_seconds=60, force=True)
    assert [r.request_id for r in store.take_requests("run-1", "bob")] == ["for-bob"]


def test_an_owner_that_lost_the_run_takes_nothing(store: Store) -> None:
    store.create_run(make_run())
    store.send_request("run-1", run_request())
    store.claim("run-1", "bob", lease_seconds=60, force=True)
    with pytest.raises(LeaseLostError, match=r"^run 'run-1' is no longer owned by "):
        store.take_requests("run-1", "alice")
    request = store.get_request("run-1", "r1")
    assert request is not None and request.state is RequestState.PENDING


def test_requests_of_an_unknown_run_raise_run_not_found(store: Store) -> None:
    with pytest.raises(RunNotFoundError, match=r"'nope'"):
        store.send_request("nope", run_request())
    with pytest.raises(RunNotFoundError, match=r"'nope'"):
        store.take_requests("nope", "alice")
    with pytest.raises(RunNotFoundError, match=r"'nope'"):
        store.get_request("nope", "r1")


def test_an_outcome_is_written_with_the_batch_that_records_it(store: Store) -> None:
    store.create_run(make_run())
    store.send_request("run-1", run_request())
    (taken,) = store.take_requests("run-1", "alice")
    done = replace(taken, state=RequestState.DONE, done_at=1_700_000_020.0, outcome="cancelled")
    store.write(
        "run-1",
        "alice",
        WriteBatch(run=RunUpdate(status=RunStatus.CANCELLED), requests_done=[done]),
    )
    assert store.get_request("run-1", "r1") == done
    run = store.get_run("run-1")
    assert run is not None and run.status is RunStatus.CANCELLED


def test_an_outcome_is_fenced_like_every_write(store: Store) -> None:
    store.create_run(make_run())
    store.send_request("run-1", run_request())
    (taken,) = store.take_requests("run-1", "alice")
    store.claim("run-1", "bob", lease_seconds=60, force=True)
    done = replace(taken, state=RequestState.DONE, done_at=1.0, outcome="cancelled")
    with pytest.raises(LeaseLostError):
        store.write("run-1", "alice", WriteBatch(requests_done=[done]))
    assert store.get_request("run-1", "r1") == taken


def test_an_outcome_for_a_request_the_store_lacks_is_ignored(store: Store) -> None:
    store.create_run(make_run())
    ghost = run_request("ghost", state=RequestState.DONE, done_at=1.0, outcome="cancelled")
    store.write("run-1", "alice", WriteBatch(requests_done=[ghost]))
    assert store.get_request("run-1", "ghost") is None


def test_a_request_of_a_kind_this_plait_does_not_know_reads_back_as_text(store: Store) -> None:
    store.create_run(make_run())
    store.send_request("run-1", run_request(kind="reticulate"))
    (taken,) = store.take_requests("run-1", "alice")
    assert taken.kind == "reticulate"
    assert not isinstance(taken.kind, RequestKind)


def test_runs_do_not_see_each_others_requests(store: Store) -> None:
    store.create_run(make_run("run-1"))
    store.create_run(make_run("run-2"))
    store.send_request("run-1", run_request())
    assert store.take_requests("run-2", "alice") == []
    assert store.get_request("run-2", "r1") is None
    assert len(store.take_requests("run-1", "alice")) == 1


# -- durable backends ----------------------------------------------------------------------------


def _take_at_once(url: str, count: int, *, owner: str, barrier: Any) -> list[str]:
    """Both processes take the requests addressed to one owner, at the same moment."""
    taken: list[str] = []
    with open_store(url) as store:
        for _ in range(count):
            barrier.wait(timeout=60)
            taken += [r.request_id for r in store.take_requests("shared", "the-owner")]
            barrier.wait(timeout=60)
    return taken


def test_of_two_processes_taking_at_once_each_request_is_taken_once(
    durable_backend: Backend, two_processes: ProcessPair
) -> None:
    store = durable_backend.open()
    store.create_run(make_run("shared", owner="the-owner"))
    rounds = 8
    sent = []
    for n in range(rounds * 3):
        sent.append(f"r{n}")
        store.send_request("shared", run_request(f"r{n}", owner="the-owner"))
    reports = two_processes.run(_take_at_once, durable_backend.url, rounds)
    taken = reports["p1"] + reports["p2"]
    assert sorted(taken) == sorted(sent)  # every request once: none lost, none twice


def test_a_store_from_before_requests_gains_them_when_opened(durable_backend: Backend) -> None:
    base: Any = durable_backend.store_class

    adds_requests = next(
        i for i, sql in enumerate(base._migrations) if "CREATE TABLE run_requests" in sql
    )

    class Before(base):  # type: ignore[misc]
        _migrations = base._migrations[:adds_requests]

    old = durable_backend.open(Before)
    old.create_run(make_run())
    old.close()
    store = durable_backend.open()
    store.send_request("run-1", run_request())
    assert [r.request_id for r in store.take_requests("run-1", "alice")] == ["r1"]
