"""Sending attempts to the Dask scheduler: those that become ready together go as one graph.

``client.submit`` sends one ``update-graph`` message per task, and the scheduler handles each
on its own: it unpickles it, hands it to a thread to materialize, orders it, makes its task
state and transitions it. Submitting a batch as one graph pays that once: measured on the
benchmark's LocalCluster, 400 no-ops cost the scheduler and client about 0.3 ms of CPU per
task less as one graph than as 400 submits (load 4.6 on 2 CPUs) (``bench/_dask.py``, Part 8).

The batch is a low-level graph of ``dask._task_spec.Task`` nodes, sent with ``client.get(...,
sync=False)`` (what ``client.submit`` builds, one task at a time). Each attempt keeps its own
priority: Dask applies a callable annotation to each key of the graph, so the priority is
given as the ``get`` of a dict of priorities by key. Where Dask has no ``_task_spec`` (before
2024.12), :func:`batching` is False and the executor submits attempts one by one.

The graph goes as an expression with a token of its own (``LLGExpr(graph, _determ_token=...)``,
a random one, as ``client.submit`` gives each task): a plain dict makes the client tokenize the
whole graph to name it, hashing every argument of every attempt (and pickling its function
again when it travels by value), only for a name that must be unique anyway. Measured on the
benchmark's 400 no-ops (cProfile of the settling thread): tokenizing was half of what sending
cost.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import importlib
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Sequence
from typing import Any

from .._exceptions import TaskCancelledError
from ._base import Job, Outcome
from ._dask_output import _quietly, _Submitted, _SubmittedAttempts
from ._dask_worker import _cancel_name, _run_attempt

__all__ = ["batching", "send"]


@functools.cache
def _task_spec() -> Any:
    """``dask._task_spec``, or None; imported on first use (``dask`` loads what plait's start
    must not: its config, YAML)."""
    try:
        return importlib.import_module("dask._task_spec")
    except ImportError:  # pragma: no cover - a Dask older than the task spec
        return None


@functools.cache
def _graph_expression() -> Any:
    """``dask._expr.LLGExpr`` (a low-level graph as an expression), or None where this Dask has
    none: the graph then goes as a dict, which the client tokenizes."""
    try:
        return importlib.import_module("dask._expr").LLGExpr
    except (ImportError, AttributeError):  # pragma: no cover - a Dask before expressions
        return None


def batching() -> bool:
    """Whether this Dask can take several attempts as one graph (see the module docstring)."""
    return _task_spec() is not None


def send(
    client: Any, fn: Callable[..., Any], calls: Sequence[tuple[Any, tuple[Any, ...], int]]
) -> list[Any]:
    """Send ``fn(*args)`` for each ``(key, args, priority)`` of ``calls`` as one graph; return
    their futures, in order. Futures among ``args`` (at any depth a dict, list or tuple
    reaches) become dependencies, as with ``client.submit``.

    Raises:
        Exception: what pickling the graph raised (a value that cannot be sent): nothing was
            sent.
    """
    spec = _task_spec()
    parse, task = spec.parse_input, spec.Task
    graph: Any = {key: task(key, fn, *(parse(a) for a in args)) for key, args, _ in calls}
    expression = _graph_expression()
    if expression is not None:  # named at random, not by hashing it (see the module docstring)
        graph = expression(graph, _determ_token=uuid.uuid4().hex)
    priorities = {key: priority for key, _, priority in calls}
    try:
        futures = client.get(
            graph,
            [key for key, _, _ in calls],
            sync=False,
            priority=priorities.get,
            fifo_timeout="100 ms",  # client.submit's: the same generation within 100 ms
        )
    except Exception as error:
        _let_go(client, error)
        raise
    return list(futures)


def _let_go(client: Any, error: BaseException) -> None:
    """Make ``client`` forget the keys of a graph it failed to send.

    The client makes a future for each key before it pickles the graph; when pickling fails,
    those futures live on in the locals of the frames of ``error``'s traceback (a cycle: a
    frame holds the error), and while one lives, a ``submit`` of its key returns a future on
    it, never sent, which never ends. So: clear those frames (the futures are dropped, and
    ask the client's loop to release their keys), then wait for the loop to have done so."""
    seen: set[int] = set()
    cause: BaseException | None = error
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        traceback.clear_frames(cause.__traceback__)  # skips the frames still running
        cause = cause.__cause__ or cause.__context__
    client.sync(asyncio.sleep, 0)  # after the releases the futures queued on the loop


class _Sending:
    """How ``DaskExecutor`` sends the attempts submitted to it: in batches, on its settling
    thread (a part of ``DaskExecutor``, which sets what is declared here)."""

    _lock: threading.Lock
    _client: Any  # a distributed.Client
    _submitted: _SubmittedAttempts
    _pending: list[tuple[_Submitted, tuple[Any, ...]]]  # submitted, not sent yet
    _send_asked: bool  # a word to send them is on the settling queue
    _fetching: set[asyncio.Future[Any]]  # tasks on the client's loop
    _ended: Callable[[Job, Any], None]  # a future ended (on the client's loop)

    def _send(self) -> None:
        """Send every attempt submitted since the last send, as one graph (on the settling
        thread): those that the engine cancelled meanwhile never reach
        the cluster."""
        with self._lock:
            pending, self._pending = self._pending, []
            self._send_asked = False
        batch = []
        for submitted, args in pending:
            job = submitted.job
            if job.cancelled or job.abandoned:
                with self._lock:
                    self._submitted.pop(job)
                if not job.abandoned:
                    error = TaskCancelledError(f"{submitted.describe()} was cancelled")
                    job.complete(Outcome(error=error))
            else:
                batch.append((submitted, args))
        if not batch:
            return
        calls = [(s.key, args, int(getattr(s.job, "priority", 0))) for s, args in batch]
        futures = None
        if len(batch) > 1 and batching():
            with contextlib.suppress(Exception):  # one of them cannot be pickled: one by one
                futures = send(self._client, _run_attempt, calls)
        if futures is None:
            futures = [self._submit_one(s, call) for (s, _), call in zip(batch, calls, strict=True)]
        cancelled = []
        sent = time.monotonic()
        with self._lock:
            for (submitted, _), future in zip(batch, futures, strict=True):
                submitted.future = future
                submitted.sent = sent
                if future is not None and submitted.cancel_set:
                    cancelled.append(submitted)
        self._client.loop.add_callback(self._watch, [s for s, _ in batch])
        for submitted in cancelled:
            self._set_cancel(submitted)

    def _submit_one(self, submitted: _Submitted, call: tuple[Any, tuple[Any, ...], int]) -> Any:
        """Submit one attempt by itself; None when it cannot be sent (it has failed)."""
        _, args, priority = call
        try:
            return self._client.submit(
                _run_attempt,
                *args,
                key=submitted.key,
                pure=False,
                retries=0,
                priority=priority,
            )
        except Exception as error:  # the call cannot be pickled (a lock, a generator...)
            unsendable = TypeError(
                f"task {submitted.task_id!r}: its function or arguments cannot be sent to the "
                f"Dask cluster ({type(error).__name__}: {error}); pass plain, picklable data "
                "(or run this task on the thread executor)"
            )
            unsendable.__cause__ = error
            with self._lock:
                self._submitted.pop(submitted.job)
            submitted.job.complete(Outcome(error=unsendable))
            return None

    def _watch(self, sent: list[_Submitted]) -> None:
        """On the client's event loop: hear when each sent attempt's future ends."""
        from distributed.client import done_callback  # noqa: PLC0415 - the optional extra

        for submitted in sent:
            if submitted.future is not None:
                ended = functools.partial(self._ended, submitted.job)
                watch = asyncio.ensure_future(done_callback(submitted.future, ended))  # type: ignore[no-untyped-call]
                self._fetching.add(watch)  # asyncio keeps only a weak reference to a task
                watch.add_done_callback(self._fetching.discard)

    def _set_cancel(self, submitted: _Submitted) -> None:
        client = self._client
        client.loop.add_callback(_quietly, client.scheduler.event_set, _cancel_name(submitted.key))
