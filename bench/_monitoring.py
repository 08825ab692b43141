"""Part 11: what monitoring costs the engine -- tracing and metrics, per task.

``tracing=True`` builds spans on a thread of its own; what the engine's threads pay is putting
each event's fields on the tracer's queue and making each attempt's span current around its
function. CPU* is the process's CPU time during ``plait.run`` less the tracer thread's own (its
thread CPU clock, summed around its loop): what every other thread spent, against the same
run with tracing off -- less sensitive than wall time to other processes; CPU is the whole
process's, the tracer's thread included (what tracing costs the machine). The wall time shows
the whole cost: the tracer's thread shares the GIL, so the run slows while spans are built
(span building per attempt is shown apart). ``metrics=True`` is shown too: its journal notes
each event on the engine's threads and hands what it noted to prometheus_client in batches, so
its whole cost is in CPU*.

Tasks are no-ops, ``max_concurrency`` 8, the memory store; best of 5, interleaved; gc off in
timed regions. A tracer provider from the SDK with a span processor that drops every span.
"""

from __future__ import annotations

import gc
import threading
import time
from collections.abc import Callable
from typing import Any

from _graphs import anoop, independent, noop, to_workflow
from _report import Ledger, heading, num, table, verdict
from opentelemetry import trace
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from prometheus_client import CollectorRegistry

import plait
from plait import _tracing, _tracing_spans
from plait._events import RunFinished, RunStarted, TaskStarted, TaskSucceeded
from plait.stores import MemoryStore, RunRecord

N = 20_000
REPEATS = 5
TARGET_US = {"sync": 2.0, "async": 5.0}


class _Drop(SpanProcessor):
    """A span processor that does nothing with the spans it is given."""


def _provider() -> None:
    if not isinstance(trace.get_tracer_provider(), TracerProvider):
        provider = TracerProvider()
        provider.add_span_processor(_Drop())
        trace.set_tracer_provider(provider)


class _TracerClock:
    """While in force, the CPU time of every RunTracer's thread is added up (patched around
    its ``SpanBuilder.run``): the process's CPU time less this is what the run's other threads
    spent."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self._lock = threading.Lock()

    def __enter__(self) -> _TracerClock:
        build = self._build = _tracing_spans.SpanBuilder.run

        def timed_build(builder: _tracing_spans.SpanBuilder) -> None:
            started = time.thread_time()
            try:
                build(builder)
            finally:
                with self._lock:
                    self.seconds += time.thread_time() - started

        _tracing_spans.SpanBuilder.run = timed_build  # type: ignore[method-assign]
        return self

    def __exit__(self, *exc_info: object) -> None:
        _tracing_spans.SpanBuilder.run = self._build  # type: ignore[method-assign]


def _timed(kind: str, mode: str, clock: _TracerClock) -> tuple[float, float, float]:
    """CPU (less the tracer thread's), CPU (the whole process's) and wall seconds of
    ``plait.run`` of N no-op tasks in ``mode``."""
    workflow = to_workflow(independent(N), noop if kind == "sync" else anoop, name="cost")
    settings: dict[str, Any] = {}
    if mode == "tracing":
        settings["tracing"] = True
    if mode == "metrics":
        settings.update(metrics=True, metrics_registry=CollectorRegistry())
    gc.collect()
    gc.disable()
    try:
        clock.seconds = 0.0
        cpu, wall = time.process_time(), time.perf_counter()
        plait.run(workflow, store=MemoryStore(), max_concurrency=8, **settings)
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    finally:
        gc.enable()
    return cpu - clock.seconds, cpu, wall


def _span_cost() -> float:
    """Seconds the tracer's thread takes per attempt span (built from queued events)."""
    store = MemoryStore()
    store.create_run(
        RunRecord(
            run_id="r",
            workflow="w",
            fingerprint="-",
            definition=[],
            config={},
            status=plait.RunStatus.RUNNING,
            created_at=0.0,
            updated_at=0.0,
        )
    )
    tracer = _tracing.RunTracer("w", "r", store)
    now = time.time()
    tracer(RunStarted(run_id="r", time=now, workflow="w", tasks=N))
    for i in range(N):
        tracer(TaskStarted(run_id="r", time=now, task_id=f"t{i}", attempt=1))
        tracer(TaskSucceeded(run_id="r", time=now, task_id=f"t{i}", attempt=1))
    started = time.perf_counter()
    tracer(RunFinished(run_id="r", time=now, status=plait.RunStatus.SUCCEEDED))
    tracer.close()
    return (time.perf_counter() - started) / N


def run_part11(ledger: Ledger, log: Callable[[str], None], *, quick: bool = False) -> None:
    """Print Part 11 and record its targets."""
    print(heading("Part 11 - monitoring: the engine's cost of tracing and metrics, per task"))
    print(__doc__.split("\n\n", 1)[1].strip())
    _provider()
    n_repeats = 2 if quick else REPEATS
    modes = ("off", "tracing", "metrics")
    cpu: dict[tuple[str, str], float] = {}
    whole: dict[tuple[str, str], float] = {}
    wall: dict[tuple[str, str], float] = {}
    with _TracerClock() as clock:
        for kind in ("sync", "async"):
            for repeat in range(n_repeats):
                log(f"part 11: {kind} repeat {repeat + 1}/{n_repeats}")
                for mode in modes:
                    used, all_threads, took = _timed(kind, mode, clock)
                    key = (kind, mode)
                    cpu[key] = min(cpu.get(key, float("inf")), used)
                    whole[key] = min(whole.get(key, float("inf")), all_threads)
                    wall[key] = min(wall.get(key, float("inf")), took)
    span = _span_cost()
    body = []
    for kind in ("sync", "async"):
        for name, best in (("CPU*", cpu), ("CPU", whole), ("wall", wall)):
            off = best[kind, "off"] / N * 1e6
            row = [kind, name, num(off, 2)]
            row += [f"{best[kind, mode] / N * 1e6 - off:+.2f}" for mode in modes[1:]]
            body.append(row)
    print(table(["tasks", "time", "off µs/task", *(f"{mode} µs" for mode in modes[1:])], body))
    print(f"  span building on the tracer's thread: {span * 1e6:.1f} µs per attempt span")
    for kind in ("sync", "async"):
        added = (cpu[kind, "tracing"] - cpu[kind, "off"]) / N * 1e6
        target = TARGET_US[kind]
        print(
            f"  target: tracing's engine-side CPU per {kind} task <= {target:g} µs: "
            f"{added:.2f} µs {verdict(added <= target)}"
        )
        ledger.add(
            f"tracing: engine-side CPU per {kind} task ({N:,} no-op tasks)",
            f"<= {target:g} µs",
            f"{added:.2f} µs",
            added <= target,
        )
