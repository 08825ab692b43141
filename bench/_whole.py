"""Part 5: what a user pays for the whole call -- build the workflow, run it, read the results.

Part 1 times ``plait.run`` on a workflow built before the clock starts. A user pays for more: here
every contender is timed from a plain ``{node: [dependencies]}`` dict in memory to every task's
result in hand, its own graph building included. The tasks are no-ops that take their
dependencies' results (plait: a ``**upstream`` parameter; the others: positional arguments);
``max_concurrency`` is 2 (this machine's cores); each figure is the median of its runs.

Contenders: bare asyncio (a Task per node awaiting its parents' Tasks, a Semaphore), graphlib +
``ThreadPoolExecutor``, plait with sync and with async tasks, Dask's threaded scheduler (10k
only: see Part 1 on ``dask.order``), and a variant of asyncio and plait async whose tasks
``await asyncio.sleep(0)`` (a task that really suspends).

How each is timed: the garbage collector stays on, as users run it; every measurement starts
after a ``gc.collect()``, so one engine's garbage is not collected on another's clock; the
contenders run interleaved, repetition by repetition, so drifts of the machine hit them alike.
plait's figure is split into build (``Workflow`` + ``add_task``), run (``plait.run``) and read
(``result.outputs``). Reading ``result.tasks[id].output`` for every task is timed on results of
separate runs, since ``outputs`` builds the same per-task objects. The ratios are given, and
held to their targets, in wall time and again in CPU time (the process's, all threads): on a
loaded machine wall time also counts the waits for a core. Peak memory at 100k layered is
each contender's own peak (``VmHWM``) in a fresh interpreter (``python _whole.py memory NAME N``).
"""

from __future__ import annotations

import asyncio
import gc
import graphlib
import json
import statistics
import subprocess
import sys
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))  # sibling modules, run as a script

from _graphs import SHAPES, task_id
from _report import Ledger, heading, num, ratio, table, verdict

import plait

Graph = dict[str, list[str]]

CONCURRENCY = 2
WIDE = "independent"  # the issue calls it "wide"

# Targets from the issue ("the cost a user pays").
ADD_TASK_US = 2.5
ADD_TASK_SCALING = 1.3
ASYNC_VS_ASYNCIO = 2.0
SYNC_VS_GRAPHLIB = {"wide": 1.0, "chain": 1.0, "layered": 1.3}
OUTPUTS_US = 0.5
TASK_OUTPUT_US = 1.0
MEMORY_VS_ASYNCIO = 1.2


@dataclass(frozen=True, slots=True)
class Settings:
    """What Part 5 runs."""

    cases: tuple[tuple[str, int], ...]  # (shape, n)
    repeats: int
    dask_max: int  # Dask runs only up to this size
    memory_n: int


FULL = Settings(
    cases=tuple((shape, n) for n in (10_000, 100_000) for shape in ("wide", "chain", "layered")),
    repeats=3,
    dask_max=10_000,
    memory_n=100_000,
)
QUICK = Settings(
    cases=(("wide", 2_000), ("chain", 2_000), ("layered", 2_000), ("layered", 5_000)),
    repeats=2,
    dask_max=2_000,
    memory_n=20_000,
)


def make_graph(shape: str, n: int) -> Graph:
    """The graph as a user would hold it: node -> its dependencies, in topological order."""
    parents = SHAPES[WIDE if shape == "wide" else shape](n)
    return {task_id(i): [task_id(p) for p in deps] for i, deps in enumerate(parents)}


# -- the task bodies ---------------------------------------------------------------------------


def noop(*_inputs: Any) -> int:
    """A sync no-op that takes its dependencies' results (graphlib, Dask)."""
    return 1


async def anoop(*_inputs: Any) -> int:
    """An async no-op that never suspends."""
    return 1


async def asleep(*_inputs: Any) -> int:
    """An async no-op that suspends once, as a task doing real I/O would."""
    await asyncio.sleep(0)
    return 1


def plait_noop(**_upstream: Any) -> int:
    """plait's sync no-op: ``**upstream`` receives every dependency's output."""
    return 1


async def plait_anoop(**_upstream: Any) -> int:
    """plait's async no-op."""
    return 1


async def plait_asleep(**_upstream: Any) -> int:
    """plait's async task that suspends once."""
    await asyncio.sleep(0)
    return 1


# -- the contenders: each takes the graph and returns every task's result ----------------------


def run_asyncio(graph: Graph, fn: Callable[..., Any] = anoop) -> dict[str, Any]:
    """Bare asyncio: a Task per node that awaits its parents' Tasks, then runs under a Semaphore."""

    async def node(semaphore: asyncio.Semaphore, deps: list[asyncio.Task[Any]]) -> Any:
        inputs = [await dep for dep in deps]
        async with semaphore:
            return await fn(*inputs)

    async def main() -> dict[str, Any]:
        semaphore = asyncio.Semaphore(CONCURRENCY)
        tasks: dict[str, asyncio.Task[Any]] = {}
        create = asyncio.get_running_loop().create_task
        for name, deps in graph.items():
            tasks[name] = create(node(semaphore, [tasks[d] for d in deps]))
        await asyncio.gather(*tasks.values())
        return {name: task.result() for name, task in tasks.items()}

    return asyncio.run(main())


def run_graphlib(graph: Graph) -> dict[str, Any]:
    """graphlib's TopologicalSorter feeding a ThreadPoolExecutor (at most 2 futures per worker in
    flight: ``wait()`` scans every future it is given)."""
    sorter = graphlib.TopologicalSorter(graph)
    sorter.prepare()
    results: dict[str, Any] = {}
    ready: deque[str] = deque()
    in_flight: dict[Future[Any], str] = {}
    with ThreadPoolExecutor(CONCURRENCY) as pool:
        while sorter.is_active():
            ready.extend(sorter.get_ready())
            while ready and len(in_flight) < 2 * CONCURRENCY:
                name = ready.popleft()
                inputs = [results[d] for d in graph[name]]
                in_flight[pool.submit(noop, *inputs)] = name
            done, _ = wait(in_flight, return_when=FIRST_COMPLETED)
            for future in done:
                name = in_flight.pop(future)
                results[name] = future.result()
                sorter.done(name)
    return results


def run_dask(graph: Graph) -> dict[str, Any]:
    """Dask's threaded scheduler on the equivalent dask graph."""
    import dask.threaded  # noqa: PLC0415 - only this contender needs dask

    dsk = {name: (noop, *deps) for name, deps in graph.items()}
    keys = list(graph)
    return dict(zip(keys, dask.threaded.get(dsk, keys, num_workers=CONCURRENCY), strict=True))


def build_plait(graph: Graph, fn: Callable[..., Any]) -> plait.Workflow:
    """The user's side of plait: one ``add_task`` per node."""
    workflow = plait.Workflow("whole")
    add = workflow.add_task
    for name, deps in graph.items():
        add(name, fn, depends_on=deps)
    return workflow


def run_plait(workflow: plait.Workflow) -> plait.RunResult:
    """``plait.run`` with a memory store of its own (see ``_graphs.isolated_run_kwargs``)."""
    result = plait.run(workflow, max_concurrency=CONCURRENCY, store=plait.stores.MemoryStore())
    if result.status is not plait.RunStatus.SUCCEEDED:
        raise RuntimeError(f"plait ended {result.status}: {result.error}")
    return result


# -- timing ------------------------------------------------------------------------------------


def clocked(fn: Callable[[], Any]) -> tuple[float, float, Any]:
    """Wall and CPU seconds of ``fn()`` (after a ``gc.collect()``, gc on) and its value."""
    gc.collect()
    started, cpu = time.perf_counter(), time.process_time()
    value = fn()
    return time.perf_counter() - started, time.process_time() - cpu, value


@dataclass(slots=True)
class Case:
    """Every timing of one graph (shape, size): seconds per contender, over the repetitions."""

    shape: str
    n: int
    wall: dict[str, list[float]] = field(default_factory=dict)
    cpu: dict[str, list[float]] = field(default_factory=dict)

    def keep(self, name: str, wall: float, cpu: float) -> None:
        self.wall.setdefault(name, []).append(wall)
        self.cpu.setdefault(name, []).append(cpu)

    def us(self, name: str, *, cpu: bool = False) -> float | None:
        """The median µs per task of ``name``, or ``None`` if it did not run."""
        times = (self.cpu if cpu else self.wall).get(name)
        return None if not times else statistics.median(times) / self.n * 1e6


def time_plait(case: Case, graph: Graph, kind: str, fn: Callable[..., Any]) -> None:
    """One whole plait call, its three phases timed apart; kept as ``plait-<kind>`` and parts."""
    gc.collect()
    wall0, cpu0 = time.perf_counter(), time.process_time()
    workflow = build_plait(graph, fn)
    wall1, cpu1 = time.perf_counter(), time.process_time()
    result = run_plait(workflow)
    wall2, cpu2 = time.perf_counter(), time.process_time()
    outputs = result.outputs
    wall3, cpu3 = time.perf_counter(), time.process_time()
    if len(outputs) != len(graph):
        raise RuntimeError(f"plait {kind} returned {len(outputs)} outputs for {len(graph)} tasks")
    case.keep(f"plait-{kind}", wall3 - wall0, cpu3 - cpu0)
    case.keep(f"build-{kind}", wall1 - wall0, cpu1 - cpu0)
    case.keep(f"run-{kind}", wall2 - wall1, cpu2 - cpu1)
    case.keep(f"outputs-{kind}", wall3 - wall2, cpu3 - cpu2)


def time_task_reads(case: Case, graph: Graph, kind: str, fn: Callable[..., Any]) -> None:
    """``result.tasks[id].output`` for every task, on a fresh result."""
    result = run_plait(build_plait(graph, fn))
    tasks = result.tasks

    def read() -> int:
        return sum(tasks[name].output for name in graph)

    wall, cpu, total = clocked(read)
    if total != len(graph):
        raise RuntimeError(f"read {total} outputs of {len(graph)}")
    case.keep(f"task-output-{kind}", wall, cpu)


def measure_case(settings: Settings, shape: str, n: int) -> Case:
    """Time every contender on one graph, interleaved repetition by repetition."""
    graph = make_graph(shape, n)
    case = Case(shape, n)
    contenders: list[tuple[str, Callable[[], Any]]] = [
        ("asyncio", lambda: run_asyncio(graph)),
        ("asyncio-sleep0", lambda: run_asyncio(graph, asleep)),
        ("graphlib", lambda: run_graphlib(graph)),
    ]
    if n <= settings.dask_max:
        contenders.append(("dask", lambda: run_dask(graph)))
    for _ in range(settings.repeats):
        for name, contender in contenders:
            wall, cpu, results = clocked(contender)
            if len(results) != n:
                raise RuntimeError(f"{name} returned {len(results)} results for {n} tasks")
            case.keep(name, wall, cpu)
            del results
        time_plait(case, graph, "sync", plait_noop)
        time_plait(case, graph, "async", plait_anoop)
        time_plait(case, graph, "async-sleep0", plait_asleep)
        time_task_reads(case, graph, "sync", plait_noop)
        time_task_reads(case, graph, "async", plait_anoop)
    return case


def measure_add_task(sizes: list[int], repeats: int) -> dict[int, tuple[float, float]]:
    """Median wall and CPU µs per ``add_task`` building the layered graph of each size.

    The sizes are built in turn, round by round, and a smaller size more times per round (as
    many as make up the largest's tasks, at most 10): timed apart, three back-to-back builds of
    10,000 tasks (~30 ms) all fell in one slow spell of this shared machine, and the 10k figure
    came out above the 100k one, though a task costs the same instructions at both (callgrind:
    13.1k per task at 10k and at 100k).
    """
    graphs = {n: make_graph("layered", n) for n in sizes}
    times: dict[int, list[tuple[float, float]]] = {n: [] for n in sizes}
    for _ in range(repeats):
        for n, graph in graphs.items():
            for _ in range(min(10, max(1, max(sizes) // n))):
                wall, cpu, workflow = clocked(lambda graph=graph: build_plait(graph, plait_noop))
                times[n].append((wall, cpu))
                del workflow
    return {
        n: (
            statistics.median(wall for wall, _ in runs) / n * 1e6,
            statistics.median(cpu for _, cpu in runs) / n * 1e6,
        )
        for n, runs in times.items()
    }


# -- peak memory, each contender in a fresh interpreter ----------------------------------------


def own_peak_mb() -> float:
    """This process's own peak RSS (``VmHWM``; ``ru_maxrss`` elsewhere)."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource  # noqa: PLC0415 - the fallback only

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


MEMORY_CONTENDERS: dict[str, Callable[[Graph], Any]] = {
    "asyncio": run_asyncio,
    "plait-sync": lambda graph: run_plait(build_plait(graph, plait_noop)).outputs,
    "plait-async": lambda graph: run_plait(build_plait(graph, plait_anoop)).outputs,
}


def memory_child(name: str, n: int) -> None:
    """Build the layered graph, run ``name`` on it with every result in hand, print the peak."""
    graph = make_graph("layered", n)
    results = MEMORY_CONTENDERS[name](graph)
    if len(results) != n:
        raise RuntimeError(f"{name} returned {len(results)} results")
    print(json.dumps({"name": name, "n": n, "peak_mb": own_peak_mb()}))


def measure_memory(n: int) -> dict[str, float]:
    """Each memory contender's peak MB, from a fresh interpreter."""
    peaks = {}
    for name in MEMORY_CONTENDERS:
        out = subprocess.run(
            [sys.executable, __file__, "memory", name, str(n)],
            check=True,
            capture_output=True,
            text=True,
        )
        peaks[name] = json.loads(out.stdout.strip().splitlines()[-1])["peak_mb"]
    return peaks


# -- the report --------------------------------------------------------------------------------


def run_part5(settings: Settings, ledger: Ledger, log: Callable[[str], None]) -> list[Case]:
    """Measure and print Part 5; record its targets in ``ledger``."""
    print(heading("Part 5: the whole call (build + run + read), max_concurrency=2"))
    print(__doc__.split("\n\n", 1)[1].split("\n\nHow each", 1)[0])
    sizes = sorted({n for _, n in settings.cases})
    log(f"Part 5: add_task, {', '.join(f'{n:,}' for n in sizes)} tasks")
    add_task = measure_add_task(sizes, settings.repeats)
    cases = []
    for shape, n in settings.cases:
        log(f"Part 5: {shape} {n:,}")
        cases.append(measure_case(settings, shape, n))
    _print_whole(cases, ledger)
    _print_phases(cases, ledger)
    _print_add_task(add_task, ledger)
    log(f"Part 5: peak memory, layered {settings.memory_n:,}")
    _print_memory(settings.memory_n, measure_memory(settings.memory_n), ledger)
    print(
        "\nTimed with gc on, each measurement after gc.collect(); medians of "
        f"{settings.repeats} runs; CPU time is the process's, all threads included."
    )
    return cases


def _label(case: Case) -> str:
    return f"{case.n // 1000}k {case.shape}"


def _print_whole(cases: list[Case], ledger: Ledger) -> None:
    print("\nWhole call, µs per task (median wall time; CPU time in brackets)")
    names = [
        "asyncio",
        "graphlib",
        "plait-sync",
        "plait-async",
        "dask",
        "asyncio-sleep0",
        "plait-async-sleep0",
    ]
    rows = []
    for case in cases:
        row = [_label(case)]
        for name in names:
            wall, cpu = case.us(name), case.us(name, cpu=True)
            row.append("-" if wall is None else f"{num(wall)} ({num(cpu)})")
        rows.append(row)
    print(table(["graph", *names], rows))
    rows = []
    for case in cases:
        shape = case.shape
        a, s = case.us("plait-async"), case.us("plait-sync")
        floor_a, floor_s = case.us("asyncio"), case.us("graphlib")
        sleep_ratio = _ratio(case.us("plait-async-sleep0"), case.us("asyncio-sleep0"))
        assert a is not None and s is not None and floor_a is not None and floor_s is not None
        rows.append(
            [
                _label(case),
                ratio(a / floor_a),
                ratio(s / floor_s),
                ratio(a / s),
                ratio(sleep_ratio),
                ratio(_ratio(case.us("dask"), s)),
            ]
        )
        ledger.add(
            f"whole call async vs asyncio, {_label(case)}",
            f"<= {ASYNC_VS_ASYNCIO}x",
            ratio(a / floor_a),
            a / floor_a <= ASYNC_VS_ASYNCIO,
        )
        ledger.add(
            f"whole call sync vs graphlib, {_label(case)}",
            f"<= {SYNC_VS_GRAPHLIB[shape]}x",
            ratio(s / floor_s),
            s / floor_s <= SYNC_VS_GRAPHLIB[shape],
        )
        ledger.add(
            f"whole call async vs sync, {_label(case)}",
            "<= 1.0x",
            ratio(a / s),
            a <= s,
        )
    print()
    print(
        table(
            [
                "graph",
                "async/asyncio",
                "sync/graphlib",
                "async/sync",
                "sleep0: async/asyncio",
                "dask/sync",
            ],
            rows,
        )
    )
    _print_cpu_ratios(cases, ledger)


def _print_cpu_ratios(cases: list[Case], ledger: Ledger) -> None:
    """The same ratios in CPU time (the process's, all threads): on a loaded machine, wall time
    also counts the time the process waited for a core."""
    print("\nThe same ratios in CPU time")
    rows = []
    for case in cases:
        a, s = case.us("plait-async", cpu=True), case.us("plait-sync", cpu=True)
        floor_a, floor_s = case.us("asyncio", cpu=True), case.us("graphlib", cpu=True)
        sleep_ratio = _ratio(
            case.us("plait-async-sleep0", cpu=True), case.us("asyncio-sleep0", cpu=True)
        )
        assert a is not None and s is not None and floor_a is not None and floor_s is not None
        rows.append(
            [
                _label(case),
                ratio(a / floor_a),
                ratio(s / floor_s),
                ratio(a / s),
                ratio(sleep_ratio),
            ]
        )
        for name, value, limit in (
            ("async vs asyncio", a / floor_a, ASYNC_VS_ASYNCIO),
            ("sync vs graphlib", s / floor_s, SYNC_VS_GRAPHLIB[case.shape]),
            ("async vs sync", a / s, 1.0),
        ):
            ledger.add(
                f"whole call {name} (CPU time), {_label(case)}",
                f"<= {limit}x",
                ratio(value),
                value <= limit,
            )
    print(
        table(
            ["graph", "async/asyncio", "sync/graphlib", "async/sync", "sleep0: async/asyncio"],
            rows,
        )
    )


def _ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else a / b


def _print_phases(cases: list[Case], ledger: Ledger) -> None:
    print("\nplait's phases, µs per task (median wall time)")
    rows = []
    worst: dict[str, float] = {}
    for case in cases:
        row = [_label(case)]
        for kind in ("sync", "async"):
            for phase in ("build", "run", "outputs", "task-output"):
                value = case.us(f"{phase}-{kind}")
                row.append(num(value, 2))
                if phase in ("outputs", "task-output") and value is not None:
                    worst[phase] = max(worst.get(phase, 0.0), value)
        rows.append(row)
    headers = ["graph"] + [
        f"{kind} {phase}"
        for kind in ("sync", "async")
        for phase in ("build", "run", "outputs", "tasks[id].output")
    ]
    print(table(headers, rows))
    ledger.add(
        "result.outputs, per task (worst case)",
        f"<= {OUTPUTS_US} µs",
        f"{worst['outputs']:.2f} µs",
        worst["outputs"] <= OUTPUTS_US,
    )
    ledger.add(
        "result.tasks[id].output, per task (worst case)",
        f"<= {TASK_OUTPUT_US} µs",
        f"{worst['task-output']:.2f} µs",
        worst["task-output"] <= TASK_OUTPUT_US,
    )


def _print_add_task(add_task: dict[int, tuple[float, float]], ledger: Ledger) -> None:
    print("\nadd_task, µs per task (layered graph, the same function for every task, gc on)")
    rows = [[f"{n:,}", num(wall, 2), num(cpu, 2)] for n, (wall, cpu) in sorted(add_task.items())]
    print(table(["tasks", "wall", "cpu"], rows))
    smallest, largest = min(add_task), max(add_task)
    small, large = add_task[smallest][0], add_task[largest][0]
    ledger.add(
        f"add_task at {smallest:,} tasks",
        f"<= {ADD_TASK_US} µs",
        f"{small:.2f} µs",
        small <= ADD_TASK_US,
    )
    limit = ADD_TASK_US * ADD_TASK_SCALING
    ledger.add(
        f"add_task at {largest:,} tasks",
        f"<= {limit:.2f} µs ({ADD_TASK_SCALING}x)",
        f"{large:.2f} µs",
        large <= limit,
    )


def _print_memory(n: int, peaks: dict[str, float], ledger: Ledger) -> None:
    print(f"\nPeak memory, layered {n:,} tasks, every result in hand (fresh interpreter, VmHWM)")
    floor = peaks["asyncio"]
    rows = [[name, num(mb), ratio(mb / floor)] for name, mb in peaks.items()]
    print(table(["contender", "peak MB", "vs asyncio"], rows))
    worst = max(peaks["plait-sync"], peaks["plait-async"])
    ok = worst <= MEMORY_VS_ASYNCIO * floor
    ledger.add(
        f"peak memory, layered {n:,}, vs asyncio",
        f"<= {MEMORY_VS_ASYNCIO}x",
        ratio(worst / floor),
        ok,
    )
    print(f"  {verdict(ok)}: plait's worst peak is {ratio(worst / floor)} the asyncio floor's")


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "memory":
        memory_child(sys.argv[2], int(sys.argv[3]))
    else:
        sys.exit(f"usage: {sys.argv[0]} memory NAME N (Part 5 runs from bench/run.py)")
