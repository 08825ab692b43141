"""The owner's side of the request channel (plait._requests.Inbox), on a memory store: each
request is handed over once, its outcome is written with a batch, unknown kinds are answered,
and requests that arrive as the run ends are not lost."""

from __future__ import annotations

import time

import pytest

from plait import InputValidationError, NotWaitingError, RunStatus
from plait._requests import (
    Inbox,
    RequestKind,
    RequestState,
    RunRequest,
    refusal,
    refused_with,
    send,
)
from plait.stores import LeaseLostError, MemoryStore, RunRecord, StoreError, WriteBatch


def live_run(store: MemoryStore, owner: str = "me") -> str:
    now = time.time()
    store.create_run(
        RunRecord(
            run_id="r",
            workflow="w",
            fingerprint="f",
            definition=[],
            config={},
            status=RunStatus.RUNNING,
            created_at=now,
            updated_at=now,
            owner=owner,
            lease_expires_at=now + 60,
        )
    )
    return "r"


def test_each_request_is_handed_to_its_handler_once_and_done_with_the_runs_end() -> None:
    store = MemoryStore()
    run_id = live_run(store)
    handed: list[RunRequest] = []
    inbox = Inbox(store, run_id, "me", {RequestKind.CANCEL: handed.append}, every=0.0)
    sent = send(store, run_id, "me", RequestKind.CANCEL)
    inbox.check(time.monotonic())
    inbox.check(time.monotonic())
    assert [r.request_id for r in handed] == [sent.request_id]
    assert handed[0].state is RequestState.TAKEN
    assert inbox.drain() == []  # not done until the run says how it ended
    inbox.finish("cancelled")
    (done,) = inbox.drain()
    assert (done.request_id, done.state, done.outcome) == (
        sent.request_id,
        RequestState.DONE,
        "cancelled",
    )
    store.write(run_id, "me", WriteBatch(requests_done=[done]))
    assert store.get_request(run_id, sent.request_id) == done


def test_a_handler_that_returns_an_outcome_has_its_request_done_at_once() -> None:
    store = MemoryStore()
    run_id = live_run(store)
    inbox = Inbox(store, run_id, "me", {RequestKind.ANSWER: lambda request: "answered"}, every=0)
    sent = send(store, run_id, "me", RequestKind.ANSWER, {"task_id": "t"})
    inbox.check(time.monotonic())
    (done,) = inbox.drain()
    assert (done.request_id, done.state, done.outcome) == (
        sent.request_id,
        RequestState.DONE,
        "answered",
    )
    inbox.finish("succeeded")
    assert inbox.drain() == []  # done once: the run's end does not touch it again


def test_an_answers_refusal_carries_the_error_to_the_sender() -> None:
    invalid = InputValidationError("too small", task_id="t", field="n", rule="minimum")
    back = refused_with(refusal(invalid), "t")
    assert isinstance(back, InputValidationError)
    assert (str(back), back.task_id, back.field, back.rule) == ("too small", "t", "n", "minimum")
    back = refused_with(refusal(NotWaitingError("not waiting")), "t")
    assert isinstance(back, NotWaitingError) and str(back) == "not waiting"
    assert refused_with("answered", "t") is None
    assert refused_with("refused: not json", "t") is None


def test_the_store_is_read_at_most_every_interval() -> None:
    store = MemoryStore()
    run_id = live_run(store)
    handed: list[RunRequest] = []
    inbox = Inbox(store, run_id, "me", {RequestKind.CANCEL: handed.append}, every=10.0)
    inbox.check(100.0)  # looks: nothing yet
    send(store, run_id, "me", RequestKind.CANCEL)
    inbox.check(105.0)  # too soon to look again
    assert handed == []
    inbox.check(110.0)
    assert len(handed) == 1


def test_a_kind_this_plait_does_not_know_is_answered_not_dropped() -> None:
    store = MemoryStore()
    run_id = live_run(store)
    handed: list[RunRequest] = []
    inbox = Inbox(store, run_id, "me", {RequestKind.CANCEL: handed.append}, every=0.0)
    store.send_request(
        run_id,
        RunRequest(request_id="x", kind="reticulate", owner="me", sent_at=1.0, sent_by="h:1"),
    )
    inbox.check(time.monotonic())
    assert handed == []
    (done,) = inbox.drain()
    assert done.state is RequestState.DONE
    assert done.outcome == "not understood: this plait knows no 'reticulate'"


def test_a_request_taken_as_the_run_ends_gets_the_runs_outcome() -> None:
    store = MemoryStore()
    run_id = live_run(store)
    handed: list[RunRequest] = []
    inbox = Inbox(store, run_id, "me", {RequestKind.CANCEL: handed.append}, every=0.0)
    inbox.finish("succeeded")
    sent = send(store, run_id, "me", RequestKind.CANCEL)
    inbox.check(time.monotonic())
    assert handed == []  # too late to act on
    (done,) = inbox.drain()
    assert (done.request_id, done.outcome) == (sent.request_id, "succeeded")


def test_a_look_the_store_refuses_is_made_again_later() -> None:
    class Flaky(MemoryStore):
        fail = True

        def take_requests(self, run_id: str, owner: str) -> list[RunRequest]:
            if self.fail:
                raise StoreError("database is locked")
            return super().take_requests(run_id, owner)

    store = Flaky()
    run_id = live_run(store)
    handed: list[RunRequest] = []
    inbox = Inbox(store, run_id, "me", {RequestKind.CANCEL: handed.append}, every=0.0)
    send(store, run_id, "me", RequestKind.CANCEL)
    inbox.check(time.monotonic())  # logged, not raised: the run goes on
    store.fail = False
    inbox.check(time.monotonic())
    assert len(handed) == 1
    store.claim(run_id, "thief", lease_seconds=60, force=True)
    with pytest.raises(LeaseLostError):
        inbox.check(time.monotonic())
