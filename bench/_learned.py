"""Part 2d: learned estimates -- what a first run's durations teach the next run's order.

The replays of Part 2 give every task ``estimate=cost``; few users write estimates. Here the
tasks have none. A first run (no history: every rank counts tasks, "unit ranks") records how
long each task took; the next run learns its estimates from that history (``plait._estimates``)
and orders its ready tasks by them. Shown, per suite (STG at each case's P against the proven
optimum; WfCommons at P=8 against LB = max(CP, W/P)):

- ``unit``: the simulated schedule (``sim`` of Part 2a) with unit ranks -- today's order for a
  workflow without estimates;
- ``learned``: the simulated schedule with the ranks learned from the first run's measured
  durations;
- ``noisy``: the same, from a badly noisy history -- each duration times e^N(0,1), seeds 0-4;
- ``plait``, for WfCommons: the second run itself, measured (best of 2), learning from its store.

And the cost of learning: reading 1,000 tasks x 20 runs of history from SQLite and ordering the
graph by it, as a run does at its start.
"""

from __future__ import annotations

import math
import random
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from _graphs import noop, to_workflow
from _replay import (
    STG_UNIT,
    WFC_SCALE,
    Dag,
    _mean,
    parse_stg,
    parse_wfcommons,
    select_stg_cases,
    simulate,
    sleep_for,
    wfcommons_traces,
)
from _report import Ledger, heading, ratio, table, verdict

import plait
from plait._estimates import estimate_tasks, learned_graph
from plait.stores import MemoryStore, SQLiteStore, Store, TaskDuration, TaskHistory

WFC_PROCS = 8
WFC_MEAN, WFC_WORST = 1.15, 1.40
STG_MEAN = 1.015
NOISE_MARGIN = 1.01  # noisy history: mean no more than 1 % worse than unit ranks
NOISE_SEEDS = range(5)
HISTORY_TASKS, HISTORY_RUNS = 1_000, 20
HISTORY_SECONDS = 0.020
REPEATED_TASKS = 10_000


def _workflow(dag: Dag, unit: float) -> plait.Workflow:
    """``dag`` as sleeps of ``cost * unit`` s, with no estimates (as most users write them)."""
    return to_workflow(
        dag.parents,
        sleep_for,
        name="learned",
        ids=dag.ids,
        params=[{"seconds": cost * unit} for cost in dag.costs],
    )


def _first_run(dag: Dag, unit: float, procs: int) -> tuple[Store, plait.RunResult]:
    """A first run with no history, in a store of its own that keeps its durations."""
    store = MemoryStore()
    result = plait.run(_workflow(dag, unit), store=store, max_concurrency=procs)
    if result.status is not plait.RunStatus.SUCCEEDED:
        raise RuntimeError(f"replay ended {result.status}: {result.error}")
    return store, result


def _ranks(dag: Dag, history: Sequence[TaskHistory]) -> list[float]:
    graph = _workflow(dag, 0.0).graph()
    ordered = graph.reranked([e.seconds for e in estimate_tasks(graph, history)])
    return [ordered.rank[graph.index[task_id]] for task_id in dag.ids]


def _noisy(history: Sequence[TaskHistory], seed: int) -> list[TaskHistory]:
    rng = random.Random(seed)
    return [
        task._replace(seconds=tuple(s * math.exp(rng.gauss(0.0, 1.0)) for s in task.seconds))
        for task in history
    ]


def _span(result: plait.RunResult) -> float:
    starts = [t.started_at for t in result.tasks.values() if t.started_at is not None]
    ends = [t.finished_at for t in result.tasks.values() if t.finished_at is not None]
    return max(ends) - min(starts)


def run_learned(root: Path, quick: bool, ledger: Ledger, log: Callable[[str], None]) -> None:
    """Print Part 2d: schedules from learned estimates, and the cost of learning them."""
    print(heading("Part 2d - learned estimates: a first run's durations order the next run"))
    print(
        "no task has an estimate. unit: simulated with unit ranks (no history); learned: "
        "simulated with the ranks\nlearned from a first run's measured durations; noisy: the "
        f"same history x e^N(0,1), seeds {NOISE_SEEDS.start}-{NOISE_SEEDS.stop - 1}; plait: "
        "the second run, measured (WfCommons)."
    )
    body = []
    unit_all: list[float] = []
    noisy_all: list[float] = []

    # STG, against the proven optimum.
    cases = select_stg_cases(root, quick)
    units, learned, noisy = [], [], []
    for index, case in enumerate(cases, 1):
        log(f"part 2d: STG {index}/{len(cases)} {case.graph} P={case.procs}")
        dag = parse_stg(root / "stg" / case.graph)
        store, _ = _first_run(dag, STG_UNIT, case.procs)
        history = store.task_history("learned")
        units.append(simulate(dag, case.procs, rank=_ranks(dag, [])) / case.opt)
        learned.append(simulate(dag, case.procs, rank=_ranks(dag, history)) / case.opt)
        noisy.extend(
            simulate(dag, case.procs, rank=_ranks(dag, _noisy(history, seed))) / case.opt
            for seed in NOISE_SEEDS
        )
    unit_all += [u for u in units for _ in NOISE_SEEDS]
    noisy_all += noisy
    stg_mean = _mean(learned)
    body.append(
        [
            f"STG vs opt ({len(cases)})",
            f"{ratio(_mean(units), 3)} / {ratio(max(units), 3)}",
            f"{ratio(stg_mean, 3)} / {ratio(max(learned), 3)}",
            f"{ratio(_mean(noisy), 3)} / {ratio(max(noisy), 3)}",
            "-",
        ]
    )

    # WfCommons at P=8, against max(CP, W/P); the second run measured too.
    traces = wfcommons_traces(root, quick)
    units, learned, noisy, measured, firsts = [], [], [], [], []
    for path in traces:
        log(f"part 2d: WfCommons {path.stem} P={WFC_PROCS}")
        dag = parse_wfcommons(path)
        bound = max(dag.critical_path(), dag.total_work() / WFC_PROCS)
        store, first = _first_run(dag, WFC_SCALE, WFC_PROCS)
        history = store.task_history("learned")
        units.append(simulate(dag, WFC_PROCS, rank=_ranks(dag, [])) / bound)
        learned.append(simulate(dag, WFC_PROCS, rank=_ranks(dag, history)) / bound)
        noisy.extend(
            simulate(dag, WFC_PROCS, rank=_ranks(dag, _noisy(history, seed))) / bound
            for seed in NOISE_SEEDS
        )
        firsts.append(_span(first) / WFC_SCALE / bound)
        second = min(
            _span(plait.run(_workflow(dag, WFC_SCALE), store=store, max_concurrency=WFC_PROCS))
            for _ in range(1 if quick else 2)
        )
        measured.append(second / WFC_SCALE / bound)
    unit_all += [u for u in units for _ in NOISE_SEEDS]
    noisy_all += noisy
    wfc_mean, wfc_worst = _mean(learned), max(learned)
    body.append(
        [
            f"WfCommons P={WFC_PROCS} vs LB ({len(traces)})",
            f"{ratio(_mean(units), 3)} / {ratio(max(units), 3)}",
            f"{ratio(wfc_mean, 3)} / {ratio(wfc_worst, 3)}",
            f"{ratio(_mean(noisy), 3)} / {ratio(max(noisy), 3)}",
            f"{ratio(_mean(firsts), 3)} -> {ratio(_mean(measured), 3)} / "
            f"{ratio(max(firsts), 3)} -> {ratio(max(measured), 3)}",
        ]
    )
    print(
        table(
            [
                "suite",
                "unit: mean / worst",
                "learned",
                "noisy",
                "plait first -> second: mean / worst",
            ],
            body,
        )
    )
    noisy_mean, unit_mean = _mean(noisy_all), _mean(unit_all)
    print(
        f"  targets: STG learned mean <= {STG_MEAN} {verdict(stg_mean <= STG_MEAN)}; "
        f"WfCommons learned mean <= {WFC_MEAN} {verdict(wfc_mean <= WFC_MEAN)}, worst <= "
        f"{WFC_WORST} {verdict(wfc_worst <= WFC_WORST)}; noisy mean {noisy_mean:.4f} <= "
        f"unit mean {unit_mean:.4f} x {NOISE_MARGIN} "
        f"{verdict(noisy_mean <= unit_mean * NOISE_MARGIN)}"
    )
    ledger.add(
        "STG sim / optimum, learned estimates, mean",
        f"<= {STG_MEAN}",
        f"{stg_mean:.3f}",
        stg_mean <= STG_MEAN,
    )
    ledger.add(
        f"WfCommons P={WFC_PROCS} sim / LB, learned estimates, mean",
        f"<= {WFC_MEAN}",
        f"{wfc_mean:.3f}",
        wfc_mean <= WFC_MEAN,
    )
    ledger.add(
        f"WfCommons P={WFC_PROCS} sim / LB, learned estimates, worst",
        f"<= {WFC_WORST}",
        f"{wfc_worst:.3f}",
        wfc_worst <= WFC_WORST,
    )
    ledger.add(
        "noisy history (x e^N(0,1)) vs unit ranks, mean sim ratio",
        f"<= unit x {NOISE_MARGIN}",
        f"{noisy_mean:.4f} vs {unit_mean:.4f}",
        noisy_mean <= unit_mean * NOISE_MARGIN,
    )
    _history_read(ledger, log)
    _repeated_runs(log, n=2_000 if quick else REPEATED_TASKS)


def _repeated_runs(log: Callable[[str], None], n: int) -> None:
    """CPU per task of runs of ``n`` independent no-op tasks run again and again on one memory
    store (the default store's case: each run learns from those before it), with learning on
    and off, interleaved; the median of 5 after one run to start the history."""
    log("part 2d: repeated runs on one memory store, learning on and off")
    parents: list[tuple[int, ...]] = [()] * n
    cpu: dict[bool, list[float]] = {True: [], False: []}
    stores = {learn: MemoryStore() for learn in cpu}
    for repeat in range(6):
        for learn, store in stores.items():
            workflow = to_workflow(parents, noop, name="repeated")
            started = time.process_time()
            plait.run(workflow, store=store, max_concurrency=8, learn_estimates=learn)
            if repeat:  # the first run has no history to learn from
                cpu[learn].append((time.process_time() - started) / n * 1e6)
    on, off = sorted(cpu[True])[2], sorted(cpu[False])[2]
    print(
        f"  {n:,} no-op tasks run again and again on one memory store: {on:.2f} µs of CPU per "
        f"task learning, {off:.2f} without ({ratio(on / off)}; medians of 5)"
    )


def _history_read(ledger: Ledger, log: Callable[[str], None]) -> None:
    """Time a run's learning at its start: 1,000 tasks x 20 runs of history in SQLite."""
    log("part 2d: reading history from SQLite")
    parents: list[tuple[int, ...]] = [() if i < 10 else (i - 10,) for i in range(HISTORY_TASKS)]
    graph = to_workflow(parents, noop, name="history").graph()
    functions = [f"jobs:step{i % 10}" for i in range(HISTORY_TASKS)]
    with tempfile.TemporaryDirectory() as directory:
        store = SQLiteStore(Path(directory) / "plait.db")
        rng = random.Random(0)
        for run in range(HISTORY_RUNS):
            run_id = f"history-{run}"
            now = time.time()
            store.create_run(
                plait.stores.RunRecord(
                    run_id=run_id,
                    workflow="history",
                    fingerprint="-",
                    definition=[],
                    config={},
                    status=plait.RunStatus.RUNNING,
                    created_at=now,
                    updated_at=now,
                    owner="bench",
                    lease_expires_at=now + 60,
                )
            )
            store.write(
                run_id,
                "bench",
                plait.stores.WriteBatch(
                    durations=[
                        TaskDuration(
                            task_id=task_id,
                            function=functions[i],
                            seconds=rng.expovariate(1.0),
                            finished_at=run * 1000.0 + i,
                        )
                        for i, task_id in enumerate(graph.ids)
                    ]
                ),
            )
        reads, learns = [], []
        for _ in range(7):
            started = time.perf_counter()
            store.task_history("history")
            reads.append(time.perf_counter() - started)
            started = time.perf_counter()
            learned_graph(store, graph)
            learns.append(time.perf_counter() - started)
        store.close()
    read, learn = min(reads), min(learns)
    print(
        f"\n  history of {HISTORY_TASKS:,} tasks x {HISTORY_RUNS} runs in SQLite: the query "
        f"{read * 1e3:.1f} ms, query + estimates + ranks {learn * 1e3:.1f} ms (best of 7); "
        f"target <= {HISTORY_SECONDS * 1e3:g} ms {verdict(learn <= HISTORY_SECONDS)}"
    )
    ledger.add(
        f"learning estimates at run start ({HISTORY_TASKS:,} tasks x {HISTORY_RUNS} runs, SQLite)",
        f"<= {HISTORY_SECONDS * 1e3:g} ms",
        f"{learn * 1e3:.1f} ms",
        learn <= HISTORY_SECONDS,
    )
