"""The Dask executor's window and batches: how many attempts it lets on the cluster, how it
widens and narrows, attempts sent together as one graph with their own priorities, and an
attempt cancelled before it is sent never reaching the cluster."""

from __future__ import annotations

import asyncio
import threading
import uuid
from typing import Any

import pytest

import plait
from plait import TaskCancelledError
from plait.executors import DaskExecutor, Outcome
from plait.executors._dask_batch import batching, send
from plait.executors._dask_window import SHORT_ROUND_SECONDS, Window
from plait.executors._dask_worker import _run_attempt

from .conftest import dask_client
from .test_dask import FakeJob, add, make_call, wait_for_event

distributed = pytest.importorskip("distributed")

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def client() -> Any:
    """The tests' shared LocalCluster (see conftest.dask_client)."""
    return dask_client()


# -- the window, by itself ----------------------------------------------------------------------


def test_the_window_widens_by_one_per_short_attempt_up_to_its_widest() -> None:
    window = Window.for_threads(2)
    assert (window.size, window.narrowest, window.widest) == (4, 4, 16)
    sizes = []
    for _ in range(14):
        window.adapt(SHORT_ROUND_SECONDS / 2)
        sizes.append(window.size)
    assert sizes == [5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 16, 16]


def test_the_window_halves_on_a_long_attempt_down_to_its_narrowest() -> None:
    window = Window.for_threads(2)
    window.size = 16
    sizes = []
    for _ in range(3):
        window.adapt(SHORT_ROUND_SECONDS * 2)
        sizes.append(window.size)
    assert sizes == [8, 4, 4]
    assert repr(window) == "<Window 4 of 4..16>"


def test_attempts_go_at_once_unless_more_than_half_a_wide_window_is_out() -> None:
    window = Window.for_threads(2)  # 4..16
    assert [window.sends(out) for out in (0, 4, 5)] == [True, True, False]
    window.size = 16
    assert [window.sends(out) for out in (8, 9, 15)] == [True, False, False]


def test_a_capacity_given_is_a_window_that_never_moves(client: Any) -> None:
    executor = DaskExecutor(client, capacity=3)
    assert (executor.capacity, executor.widest) == (3, 3)
    window = Window.fixed(3)
    window.adapt(0)
    window.adapt(SHORT_ROUND_SECONDS * 2)
    assert window.size == 3


def test_by_default_the_window_is_two_to_eight_attempts_per_worker_thread(client: Any) -> None:
    executor = DaskExecutor(client)  # two single-threaded workers
    assert (executor.capacity, executor.widest) == (4, 16)


def test_each_run_starts_with_the_narrowest_window(client: Any) -> None:
    executor = DaskExecutor(client)
    assert executor.capacity == 4
    window = executor._window
    assert window is not None
    window.size = 16  # widened by a run before
    loop = asyncio.new_event_loop()
    try:
        executor.start(loop)
    finally:
        loop.close()
    assert executor.capacity == 4


# -- a run: the engine keeps within the window ----------------------------------------------------


def test_a_run_never_has_more_attempts_on_the_cluster_than_the_window_allows(client: Any) -> None:
    executor = DaskExecutor(client)
    most, over = [0], []
    submit = executor.submit

    def counting(job: Any) -> None:
        submit(job)
        out = len(executor._submitted)
        most[0] = max(most[0], out)
        if out > executor.capacity:  # the engine read the capacity before this submit
            over.append((out, executor.capacity))

    executor.submit = counting  # type: ignore[method-assign]
    wf = plait.Workflow("many")
    for n in range(60):
        wf.add_task(f"t{n}", add, params={"a": n, "b": 1})
    result = plait.run(
        wf, executors={"cluster": executor}, default_executor="cluster", max_concurrency=64
    )
    assert result.status is plait.RunStatus.SUCCEEDED, result.error
    assert [result.outputs[f"t{n}"] for n in range(60)] == [n + 1 for n in range(60)]
    assert over == []
    assert 1 <= most[0] <= executor.widest


# -- batches ------------------------------------------------------------------------------------


@pytest.mark.skipif(not batching(), reason="this Dask has no task spec: no batches")
def test_a_batch_is_one_graph_whose_attempts_keep_their_own_priorities(client: Any) -> None:
    calls: list[tuple[Any, tuple[Any, ...], int]] = [
        (("plait-batch", f"t{n}", 1, "s"), (make_call(add, a=n, b=n), {}, ("k", n), False), n)
        for n in (3, 5, 7)
    ]
    futures = send(client, _run_attempt, calls)
    assert [future.result() for future in futures] == [6, 10, 14]

    def priorities(dask_scheduler: Any) -> list[Any]:
        return [dask_scheduler.tasks[key].priority[0] for key, _, _ in calls]

    assert client.run_on_scheduler(priorities) == [-3, -5, -7]  # Dask: lower runs first
    for future in futures:
        future.release()


class Untokenized:
    """A number that counts how often Dask tokenizes it (hashes it to name a graph)."""

    tokenized = 0

    def __init__(self, value: int) -> None:
        self.value = value

    def __add__(self, other: int) -> int:
        return self.value + other

    def __dask_tokenize__(self) -> object:
        Untokenized.tokenized += 1
        return self.value


@pytest.mark.skipif(not batching(), reason="this Dask has no task spec: no batches")
def test_a_batch_is_sent_without_hashing_its_attempts_arguments(client: Any) -> None:
    # The graph's name is random, as client.submit's is: tokenizing it would hash every
    # argument of every attempt (and pickle functions sent by value once more).
    Untokenized.tokenized = 0
    calls: list[tuple[Any, tuple[Any, ...], int]] = [
        (
            ("plait-hash", f"t{n}", 1, "s"),
            (make_call(add, a=Untokenized(n), b=1), {}, ("h", n), False),
            0,
        )
        for n in (1, 2)
    ]
    futures = send(client, _run_attempt, calls)
    assert [future.result() for future in futures] == [2, 3]
    assert Untokenized.tokenized == 0
    for future in futures:
        future.release()


def test_attempts_submitted_together_all_come_back(client: Any) -> None:
    executor = DaskExecutor(client)
    jobs = [FakeJob(make_call(add, task_id=f"t{n}", a=n, b=2)) for n in range(12)]
    for job in jobs:
        executor.submit(job)
    assert [job.wait().output for job in jobs] == [n + 2 for n in range(12)]


def test_one_attempt_that_cannot_be_sent_fails_alone_in_its_batch(client: Any) -> None:
    executor = DaskExecutor(client)
    good = FakeJob(make_call(add, task_id="good", a=1, b=1))
    bad = FakeJob(make_call(add, task_id="bad", a=threading.Lock(), b=1))
    blocker = Blocker()
    executor._start_settler()
    executor._settling.put((blocker, Outcome()))  # both wait behind it: one batch
    executor.submit(good)
    executor.submit(bad)
    blocker.release.set()
    assert good.wait().output == 2
    error = bad.wait().error
    assert isinstance(error, TypeError)
    assert str(error).startswith("task 'bad': its function or arguments cannot be sent")


class Blocker(FakeJob):
    """An outcome on the settling queue whose settling waits until released: what is
    submitted meanwhile waits behind it."""

    def __init__(self) -> None:
        super().__init__(make_call(add, a=0, b=0))
        self.release = threading.Event()

    def complete(self, outcome: Outcome) -> None:
        assert self.release.wait(30)
        super().complete(outcome)


def test_an_attempt_cancelled_before_it_is_sent_never_reaches_the_cluster(client: Any) -> None:
    executor = DaskExecutor(client)
    blocker = Blocker()
    executor._start_settler()
    executor._settling.put((blocker, Outcome()))
    kept, cancelled = (
        FakeJob(make_call(add, task_id=task_id, a=1, b=2)) for task_id in ("kept", "cancelled")
    )
    executor.submit(kept)
    executor.submit(cancelled)
    (key,) = (s.key for s in executor._submitted.values() if s.task_id == "cancelled")
    cancelled.cancelled = True
    executor.cancel(cancelled)
    blocker.release.set()
    error = cancelled.wait().error
    assert isinstance(error, TaskCancelledError)
    assert str(error) == "task 'cancelled' (attempt 1) was cancelled"
    assert kept.wait().output == 3

    def known(dask_scheduler: Any) -> list[bool]:
        cancel_events = dask_scheduler.extensions["events"]._events
        return [key in dask_scheduler.tasks, any(str(key) in name for name in cancel_events)]

    assert client.run_on_scheduler(known) == [False, False]


def _settled_so_far(executor: DaskExecutor) -> None:
    """Wait until the settling thread has handled everything queued before this call."""
    marker = FakeJob(make_call(add, task_id="marker", a=0, b=0))
    executor._settling.put((marker, Outcome()))
    marker.wait()


def test_attempts_wait_to_go_together_while_more_than_half_a_wide_window_is_out(
    client: Any,
) -> None:
    executor = DaskExecutor(client)
    window = executor._size_window()
    window.size = window.widest  # 16 on the tests' two threads: sends while at most 8 are out
    gate = f"gate-{uuid.uuid4().hex}"
    out = [FakeJob(make_call(wait_for_event, task_id=f"out{n}", name=gate)) for n in range(9)]
    for job in out:
        executor.submit(job)
    _settled_so_far(executor)  # all nine sent: two run, seven wait on the cluster
    held, cancelled = (FakeJob(make_call(add, task_id=t, a=1, b=2)) for t in ("held", "cancelled"))
    executor.submit(held)
    executor.submit(cancelled)
    _settled_so_far(executor)
    assert [executor._submitted.get(job).future for job in (held, cancelled)] == [None, None]  # type: ignore[union-attr]
    cancelled.cancelled = True
    executor.cancel(cancelled)  # ends it now, not once the window has room
    assert isinstance(cancelled.wait().error, TaskCancelledError)
    assert not held.done.is_set()
    distributed.Event(gate, client=client).set()
    assert [job.wait().output for job in out] == ["went"] * 9
    assert held.wait().output == 3
