"""Part 1: plait's per-task overhead against floors (bare asyncio, graphlib + threads) and Dask.

Every contender runs the identical graph, in the same process, interleaved repetition by
repetition so that drifts of the machine hit them all alike; the best time of each is kept.
plait's Workflow is rebuilt before each repetition, outside the timed region, so that every timed
``plait.run`` pays for validation and graph compilation (a Workflow caches its compiled graph).
"""

from __future__ import annotations

import asyncio
import functools
import gc
import json
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from _baselines import dask_graph, run_bare_asyncio, run_dask_threaded, run_graphlib_threads
from _graphs import SHAPES, anoop, independent, noop, run_plait, to_workflow
from _report import Ledger, heading, num, ratio, table, verdict

import plait

T = TypeVar("T")

CONCURRENCY = 8
KINDS = ("sync", "async")

DASK_SKIP = (
    "Dask is not run on layered graphs above {limit:,} tasks: dask.order() alone takes\n"
    "   ~6 s and 0.8 GB at 20k tasks of this shape, and grows superlinearly (50k: ~45 s and\n"
    "   4.5 GB; 100k: ~90 s and an 18 GB peak on this 24 GB machine). It would dominate the\n"
    "   run and risk the OOM killer; its 10k layered figure already shows the trend."
)

# Targets from the brief.
ASYNC_VS_ASYNCIO = 2.5
SYNC_VS_GRAPHLIB = 1.0
DASK_FACTOR = 5.0
SCALING = 1.3
PEAK_MB = 300.0


@dataclass(frozen=True, slots=True)
class Settings:
    """What Part 1 runs: sizes, repetitions, and whether gc is off in timed regions."""

    sizes: tuple[int, ...]
    repeats: dict[int, int]  # size -> repetitions (best of)
    dask_repeats: dict[int, int]  # size -> repetitions for Dask, which is much slower
    gc_off: bool
    memory_n: int
    dask_layered_max: int = 20_000  # larger layered graphs blow up dask.order; see DASK_SKIP
    sleep_tasks: int = 64
    sleep_seconds: float = 0.020


@dataclass(frozen=True, slots=True)
class Row:
    """Best per-task wall times (µs) of one graph shape and task kind at one size."""

    n: int
    shape: str
    kind: str
    plait_us: float
    floor_us: float
    dask_us: float | None
    build_us: float
    plait_cpu_us: float
    floor_cpu_us: float
    dask_cpu_us: float | None

    @property
    def floor_name(self) -> str:
        """The floor contender for this kind of task."""
        return "asyncio" if self.kind == "async" else "graphlib"

    @property
    def vs_floor(self) -> float:
        """plait's time over the floor's: how much overhead plait adds."""
        return self.plait_us / self.floor_us

    @property
    def dask_over_plait(self) -> float | None:
        """How many times faster plait is than Dask threaded on the same graph."""
        return None if self.dask_us is None else self.dask_us / self.plait_us

    @property
    def cpu_vs_floor(self) -> float:
        """:attr:`vs_floor` in CPU time: what the process itself spent, whatever else runs."""
        return self.plait_cpu_us / self.floor_cpu_us

    @property
    def cpu_dask_over_plait(self) -> float | None:
        """:attr:`dask_over_plait` in CPU time."""
        return None if self.dask_cpu_us is None else self.dask_cpu_us / self.plait_cpu_us


def timed(fn: Callable[[], T], *, gc_off: bool) -> tuple[float, float, T]:
    """Wall and CPU seconds of ``fn()`` and its value; gc is collected first, and off inside if
    asked.

    CPU time is this process's, all threads included: on a shared machine it is what other
    processes disturb least. The value is returned, not dropped inside the timed region, so
    freeing it is not timed.
    """
    gc.collect()
    if gc_off:
        gc.disable()
    try:
        started, cpu = time.perf_counter(), time.process_time()
        value = fn()
        return time.perf_counter() - started, time.process_time() - cpu, value
    finally:
        if gc_off:
            gc.enable()


def measure_shape(settings: Settings, n: int, shape: str) -> list[Row]:
    """Time every contender on one shape at size ``n``; one row per task kind."""
    parents = SHAPES[shape](n)
    dsk = dask_graph(parents)
    keys = list(dsk)
    best: dict[str, float] = {}
    best_cpu: dict[str, float] = {}
    build: dict[str, float] = {}

    def keep(name: str, seconds: float, cpu: float) -> None:
        best[name] = min(best.get(name, float("inf")), seconds)
        best_cpu[name] = min(best_cpu.get(name, float("inf")), cpu)

    for rep in range(settings.repeats[n]):
        for kind, fn in (("sync", noop), ("async", anoop)):
            started = time.perf_counter()
            workflow = to_workflow(parents, fn)
            build[kind] = min(build.get(kind, float("inf")), time.perf_counter() - started)
            seconds, cpu, result = timed(
                functools.partial(run_plait, workflow, CONCURRENCY), gc_off=settings.gc_off
            )
            if result.status is not plait.RunStatus.SUCCEEDED:
                raise RuntimeError(f"plait {kind} {shape} n={n} ended {result.status}")
            keep(f"plait-{kind}", seconds, cpu)
            del workflow, result
            if kind == "sync":
                seconds, cpu, _ = timed(
                    lambda: run_graphlib_threads(parents, noop, CONCURRENCY),
                    gc_off=settings.gc_off,
                )
                keep("graphlib", seconds, cpu)
                skip_dask = shape == "layered" and n > settings.dask_layered_max
                if rep < settings.dask_repeats[n] and not skip_dask:
                    seconds, cpu, _ = timed(
                        lambda: run_dask_threaded(dsk, keys, CONCURRENCY), gc_off=settings.gc_off
                    )
                    keep("dask", seconds, cpu)
            else:
                seconds, cpu, _ = timed(
                    lambda: run_bare_asyncio(parents, anoop, CONCURRENCY), gc_off=settings.gc_off
                )
                keep("asyncio", seconds, cpu)
    per_task = {name: seconds / n * 1e6 for name, seconds in best.items()}
    per_task_cpu = {name: seconds / n * 1e6 for name, seconds in best_cpu.items()}
    return [
        Row(
            n=n,
            shape=shape,
            kind=kind,
            plait_us=per_task[f"plait-{kind}"],
            floor_us=per_task["asyncio" if kind == "async" else "graphlib"],
            dask_us=per_task.get("dask"),
            build_us=build[kind] / n * 1e6,
            plait_cpu_us=per_task_cpu[f"plait-{kind}"],
            floor_cpu_us=per_task_cpu["asyncio" if kind == "async" else "graphlib"],
            dask_cpu_us=per_task_cpu.get("dask"),
        )
        for kind in KINDS
    ]


def measure_memory(n: int) -> list[dict[str, Any]]:
    """Run the memory child (a fresh interpreter) once per task kind; return its reports."""
    child = Path(__file__).resolve().parent / "_memory_child.py"
    reports = []
    for kind in KINDS:
        out = subprocess.run(
            [sys.executable, str(child), str(n), kind],
            check=True,
            capture_output=True,
            text=True,
        )
        reports.append(json.loads(out.stdout.strip().splitlines()[-1]))
    return reports


def measure_sleep_speedup(settings: Settings) -> list[list[str]]:
    """Independent sleeping tasks at max_concurrency 8 vs 1: does plait really run in parallel?"""
    seconds = settings.sleep_seconds

    def sleep_sync() -> None:
        time.sleep(seconds)

    async def sleep_async() -> None:
        await asyncio.sleep(seconds)

    rows = []
    tasks = settings.sleep_tasks
    for kind, fn in (("sync", sleep_sync), ("async", sleep_async)):
        times = {}
        for limit in (CONCURRENCY, 1):
            workflow = to_workflow(independent(tasks), fn)
            started = time.perf_counter()
            result = run_plait(workflow, limit)
            times[limit] = time.perf_counter() - started
            if result.status is not plait.RunStatus.SUCCEEDED:
                raise RuntimeError(f"sleep benchmark ({kind}) ended {result.status}")
        ideal_parallel = -(-tasks // CONCURRENCY) * seconds
        rows.append(
            [
                kind,
                num(times[1] * 1e3),
                num(times[CONCURRENCY] * 1e3),
                num(ideal_parallel * 1e3),
                ratio(times[1] / times[CONCURRENCY]),
                ratio(min(tasks, CONCURRENCY), 1),
            ]
        )
    return rows


def run_part1(settings: Settings, ledger: Ledger, log: Callable[[str], None]) -> list[Row]:
    """Run and print Part 1; record its targets in ``ledger``; return the rows for profiling."""
    print(heading("Part 1 - engine overhead on no-op tasks"))
    gc_note = (
        "gc disabled inside every timed region (all contenders alike; gc.collect() before each)"
        if settings.gc_off
        else "gc enabled throughout (gc.collect() before each timed region)"
    )
    print(
        f"max_concurrency={CONCURRENCY}; per-task wall time in µs = best run / N. {gc_note}.\n"
        "plait: whole plait.run() incl. validation + graph compile (Workflow built untimed, "
        "fresh per run).\n"
        "Floors: async -> bare asyncio (Task per node + Semaphore); sync -> graphlib + "
        "ThreadPoolExecutor\n(<= 2*8 futures in flight). Dask: dask.threaded.get, sync "
        "functions, compared with both plait kinds.\nlayered = layers of 100, each task "
        "depends on 1-3 random tasks of the previous layer (fixed seed)."
    )
    print(
        "Each plait.run gets its own MemoryStore (store=...): the default process-wide store "
        "keeps the\nlast 100 runs (200,000 tasks), so repeated big runs would keep earlier ones "
        "in the heap."
    )
    rows: list[Row] = []
    for n in settings.sizes:
        for shape in SHAPES:
            log(f"part 1: N={n:,} {shape}")
            rows.extend(measure_shape(settings, n, shape))
        reps = settings.repeats[n]
        dask_reps = settings.dask_repeats[n]
        print(
            f"\nN = {n:,} tasks (best of {reps}"
            + (f"; Dask best of {dask_reps}" if dask_reps != reps else "")
            + ")"
        )
        body = []
        for row in rows:
            if row.n != n:
                continue
            limit = ASYNC_VS_ASYNCIO if row.kind == "async" else SYNC_VS_GRAPHLIB
            dask_ok = row.dask_over_plait is not None and row.dask_over_plait >= DASK_FACTOR
            body.append(
                [
                    row.shape,
                    row.kind,
                    num(row.plait_us),
                    row.floor_name,
                    num(row.floor_us),
                    ratio(row.vs_floor),
                    f"<={limit:.1f}x {verdict(row.vs_floor <= limit)}",
                    num(row.dask_us),
                    ratio(row.dask_over_plait),
                    "skipped"
                    if row.dask_us is None
                    else f">={DASK_FACTOR:.0f}x {verdict(dask_ok)}",
                    num(row.build_us),
                    ratio(row.cpu_vs_floor),
                    ratio(row.cpu_dask_over_plait),
                ]
            )
        print(
            table(
                [
                    "shape",
                    "kind",
                    "plait µs",
                    "floor",
                    "floor µs",
                    "plait/floor",
                    "target",
                    "dask µs",
                    "dask/plait",
                    "target",
                    "build µs",
                    "cpu p/floor",
                    "cpu dask/p",
                ],
                body,
            )
        )
    print(
        "  (build µs: Workflow.add_task per task, untimed, for information. cpu p/floor and cpu\n"
        "   dask/p: the same ratios in CPU time of this process, all threads: the machine is\n"
        "   shared, and CPU time is what other processes disturb least; targets use wall time)"
    )
    if any(r.shape == "layered" and r.dask_us is None for r in rows):
        print("  (dask µs '-': " + DASK_SKIP.format(limit=settings.dask_layered_max) + ")")
    _print_scaling(settings, rows, ledger)
    _record_overhead_targets(rows, ledger)
    _print_memory(settings, ledger, log)
    log("part 1: sleep speedup")
    print(
        f"\nParallel speedup: {settings.sleep_tasks} independent tasks sleeping "
        f"{settings.sleep_seconds * 1e3:.0f} ms each (whole plait.run wall time)"
    )
    print(
        table(
            ["kind", "conc=1 ms", f"conc={CONCURRENCY} ms", "ideal ms", "speedup", "ideal"],
            measure_sleep_speedup(settings),
        )
    )
    return rows


def _print_scaling(settings: Settings, rows: list[Row], ledger: Ledger) -> None:
    if len(settings.sizes) < 2:
        return
    small, large = settings.sizes[0], settings.sizes[-1]
    print(f"\nScaling: plait per-task cost at N={large:,} / at N={small:,}")
    body = []
    worst: tuple[float, str] = (0.0, "")
    for shape in SHAPES:
        for kind in KINDS:
            a = next(r for r in rows if (r.n, r.shape, r.kind) == (small, shape, kind))
            b = next(r for r in rows if (r.n, r.shape, r.kind) == (large, shape, kind))
            growth = b.plait_us / a.plait_us
            worst = max(worst, (growth, f"{shape}/{kind}"))
            body.append(
                [
                    shape,
                    kind,
                    num(a.plait_us),
                    num(b.plait_us),
                    ratio(growth),
                    f"<={SCALING}x {verdict(growth <= SCALING)}",
                    a.floor_name,
                    ratio(b.floor_us / a.floor_us),
                ]
            )
    print(
        table(
            [
                "shape",
                "kind",
                f"µs @{small:,}",
                f"µs @{large:,}",
                "ratio",
                "target",
                "floor",
                "floor ratio",
            ],
            body,
        )
    )
    print(
        "  (floor ratio: the same growth for the floor contender -- how much of it is the machine\n"
        "   (caches, allocator, other load) rather than plait)"
    )
    ledger.add(
        f"per-task cost N={large:,} / N={small:,}",
        f"<= {SCALING}x",
        f"worst {worst[0]:.2f}x ({worst[1]})",
        worst[0] <= SCALING,
    )


def _record_overhead_targets(rows: list[Row], ledger: Ledger) -> None:
    async_rows = [r for r in rows if r.kind == "async"]
    sync_rows = [r for r in rows if r.kind == "sync"]
    for kind_rows, name, limit in (
        (async_rows, "plait async / bare asyncio", ASYNC_VS_ASYNCIO),
        (sync_rows, "plait sync / graphlib+threads", SYNC_VS_GRAPHLIB),
    ):
        worst = max(kind_rows, key=lambda r: r.vs_floor)
        ledger.add(
            name,
            f"<= {limit:.1f}x",
            f"worst {worst.vs_floor:.2f}x ({worst.shape}, N={worst.n:,})",
            worst.vs_floor <= limit,
        )
        worst = max(kind_rows, key=lambda r: r.cpu_vs_floor)
        ledger.add(
            f"{name} (CPU time)",
            f"<= {limit:.1f}x",
            f"worst {worst.cpu_vs_floor:.2f}x ({worst.shape}, N={worst.n:,})",
            worst.cpu_vs_floor <= limit,
        )
    for kind in KINDS:
        with_dask = [r for r in rows if r.kind == kind and r.dask_over_plait is not None]
        if not with_dask:
            continue
        worst = min(with_dask, key=lambda r: r.dask_over_plait or 0.0)
        factor = worst.dask_over_plait or 0.0
        ledger.add(
            f"Dask threaded / plait {kind}",
            f">= {DASK_FACTOR:.0f}x",
            f"worst {factor:.2f}x ({worst.shape}, N={worst.n:,})",
            factor >= DASK_FACTOR,
        )
        worst = min(with_dask, key=lambda r: r.cpu_dask_over_plait or 0.0)
        factor = worst.cpu_dask_over_plait or 0.0
        ledger.add(
            f"Dask threaded / plait {kind} (CPU time)",
            f">= {DASK_FACTOR:.0f}x",
            f"worst {factor:.2f}x ({worst.shape}, N={worst.n:,})",
            factor >= DASK_FACTOR,
        )


def _peak(report: dict[str, Any]) -> float:
    """The child's own peak RSS: VmHWM where /proc has it, else ru_maxrss."""
    hwm = report["hwm_mb"]
    return float(hwm if hwm is not None else report["maxrss_mb"])


def _print_memory(settings: Settings, ledger: Ledger, log: Callable[[str], None]) -> None:
    n = settings.memory_n
    log(f"part 1: memory (child processes, N={n:,})")
    reports = measure_memory(n)
    print(
        f"\nPeak memory: fresh child interpreter per kind; builds the {n:,}-task layered DAG, "
        "runs plait (gc on,\ndefault store, as a user would)"
    )
    body = [
        [
            r["kind"],
            num(r["baseline_mb"]),
            num(r["built_mb"]),
            num(r["after_run_mb"]),
            num(r["kept_mb"]),
            num(r["hwm_mb"]),
            num(_peak(r) - r["baseline_mb"]),
            f"{r['baseline_maxrss_mb']:.1f} -> {r['maxrss_mb']:.1f}",
            num(r["run_seconds"], 2),
            f"<{PEAK_MB:.0f} MB {verdict(r['ok'] and _peak(r) < PEAK_MB)}",
        ]
        for r in reports
    ]
    print(
        table(
            [
                "kind",
                "baseline",
                "after build",
                "after run",
                "kept after run",
                "peak (VmHWM)",
                "peak-baseline",
                "ru_maxrss start -> end",
                "run s",
                "target",
            ],
            body,
        )
    )
    print(
        "  (MiB. baseline = RSS after importing plait, before building. kept after run = RSS once\n"
        "   the result and the workflow are deleted and gc has run: what plait itself holds on to\n"
        "   (the run stays in the default store). ru_maxrss is inherited\n"
        "   from the parent across fork+exec on Linux, so it starts at the parent's size: the\n"
        "   child's own peak is VmHWM, which the target uses.)"
    )
    worst = max(reports, key=_peak)
    ledger.add(
        f"peak RSS, plait at N={n:,}",
        f"< {PEAK_MB:.0f} MB",
        f"{_peak(worst):.1f} MB ({worst['kind']})",
        all(r["ok"] and _peak(r) < PEAK_MB for r in reports),
    )
