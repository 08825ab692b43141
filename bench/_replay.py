"""Part 2: scheduling quality -- replay real task graphs as timed sleeps and compare makespans.

STG cases are compared with their proven optimum; WfCommons traces with the lower bound
max(critical path, total work / P). Beside plait's measured makespan the tables show, as
references that have no overhead at all:

- ``hlfet/opt``: the CSV's plain highest-level-first list schedule (STG only);
- ``sim``: a zero-overhead list schedule with plait's queue order (priority, then
  estimate-weighted rank, then definition order), all tasks ending at one instant seen at once;
- ``eager``: the same, but refilling a slot as soon as *one* task ends, before the others that
  end at the same instant are seen -- which is what plait's engine does (it settles and
  dispatches per completion). ``eager`` > ``sim`` is a cost of that eagerness;
- ``slack``: how much longer than nominal the tasks took on average, as plait measured them
  (``finished_at - started_at - cost * unit``). asyncio's timers are coarse: the loop waits in
  ``epoll`` with a timeout rounded up to whole milliseconds, so sleeps overshoot by up to 1 ms
  whatever plait does. The gap between plait and ``eager`` is mostly this slack;
- ``asyncio`` (WfCommons): the same sleeps as bare asyncio Tasks under a FIFO semaphore -- the
  floor with unlimited concurrency (at P=4 its FIFO order is a different, worse policy).

Part 2c asks what plait's order is worth when only some estimates are given: every second task
(by definition order) loses its ``estimate``, and the ``sim`` schedule is computed with the ranks
plait's compiled graph gives -- an unknown estimate counting as the median of the known ones --
beside the ranks the old rule gave (an unknown estimate as one unit, i.e. 1 s or 1 STG unit) and
those with every estimate known. Simulated, so free of timing noise.

Tasks are async functions that ``await asyncio.sleep(cost * unit)``, with ``estimate=cost``. The
makespan is measured from the first task's start to the last task's end (``started_at`` /
``finished_at`` of the result), which excludes validation and event-loop start-up.
"""

from __future__ import annotations

import asyncio
import csv
import graphlib
import heapq
import json
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from _graphs import Parents, run_plait, to_workflow
from _report import Ledger, heading, num, ratio, table, verdict

import plait

STG_UNIT = 0.005  # seconds per STG time unit
WFC_SCALE = 0.001  # a trace's 1 s becomes 1 ms
WFC_PROCS = (4, 1000)
REPEATS = 2  # best of: interference from other processes only ever adds time
STG_MEAN = 1.03
STG_WORST = 1.08


def data_dir() -> Path:
    """``../shared/bench-data`` relative to the repo root (``PLAIT_BENCH_DATA`` overrides it)."""
    override = os.environ.get("PLAIT_BENCH_DATA")
    if override:
        return Path(override)
    return Path(__file__).resolve().parent.parent.parent / "shared" / "bench-data"


@dataclass(frozen=True, slots=True)
class Dag:
    """A task graph to replay: ids, parents by index, and each task's cost in its own units."""

    ids: list[str]
    parents: Parents
    costs: list[float]

    def critical_path(self) -> float:
        """The longest cost-weighted path; parents may come after children in the lists."""
        finish = [0.0] * len(self.ids)
        for i in _topological_order(self.parents):
            finish[i] = self.costs[i] + max((finish[p] for p in self.parents[i]), default=0.0)
        return max(finish, default=0.0)

    def total_work(self) -> float:
        """The sum of all costs."""
        return sum(self.costs)


def _topological_order(parents: Parents) -> list[int]:
    sorter = graphlib.TopologicalSorter(dict(enumerate(parents)))
    return list(sorter.static_order())


async def sleep_for(seconds: float) -> None:
    """The replay task body: hold a slot for ``seconds`` without using the CPU."""
    await asyncio.sleep(seconds)


@dataclass(frozen=True, slots=True)
class Replay:
    """What one replay measured: makespan in units, and the mean per-task overshoot in s."""

    span: float
    slack: float


def replay(dag: Dag, unit: float, procs: int) -> Replay:
    """Run ``dag`` with plait as sleeps of ``cost * unit`` s, ``max_concurrency=procs``."""
    workflow = to_workflow(
        dag.parents,
        sleep_for,
        name="replay",
        ids=dag.ids,
        estimates=dag.costs,
        params=[{"seconds": cost * unit} for cost in dag.costs],
    )
    result = run_plait(workflow, procs)
    if result.status is not plait.RunStatus.SUCCEEDED:
        raise RuntimeError(f"replay ended {result.status}: {result.error}")
    starts = []
    ends = []
    for task_id in dag.ids:
        task = result.tasks[task_id]
        assert task.started_at is not None and task.finished_at is not None
        starts.append(task.started_at)
        ends.append(task.finished_at)
    slack = (sum(ends) - sum(starts) - dag.total_work() * unit) / len(dag.ids)
    return Replay((max(ends) - min(starts)) / unit, slack)


def best_replay(dag: Dag, unit: float, procs: int, repeats: int) -> Replay:
    """The replay with the shortest makespan out of ``repeats``."""
    return min((replay(dag, unit, procs) for _ in range(repeats)), key=lambda r: r.span)


def replay_asyncio(dag: Dag, unit: float, procs: int) -> float:
    """The same sleeps as bare asyncio Tasks under a FIFO semaphore; makespan in units."""
    n = len(dag.ids)
    starts = [0.0] * n
    ends = [0.0] * n

    async def node(i: int, semaphore: asyncio.Semaphore, deps: list[asyncio.Task[None]]) -> None:
        for dep in deps:
            await dep
        async with semaphore:
            starts[i] = time.time()
            await asyncio.sleep(dag.costs[i] * unit)
            ends[i] = time.time()

    async def main() -> None:
        semaphore = asyncio.Semaphore(procs)
        tasks: dict[int, asyncio.Task[None]] = {}
        for i in _topological_order(dag.parents):
            deps = [tasks[p] for p in dag.parents[i]]
            tasks[i] = asyncio.create_task(node(i, semaphore, deps))
        await asyncio.gather(*tasks.values())

    asyncio.run(main())
    return (max(ends) - min(starts)) / unit


def simulate(
    dag: Dag, procs: int, *, eager: bool = False, rank: Sequence[float] | None = None
) -> float:
    """Zero-overhead list schedule with plait's queue order; returns its makespan in units.

    Free slots take the ready tasks of highest rank (estimate-weighted path to the end; by
    default with every estimate known, else ``rank`` by task index), ties by definition order.
    Without ``eager``, all tasks ending at an instant free their slots before any slot is
    refilled (classic list scheduling); with ``eager``, each ending refills its slot at once, in
    start order, as plait's engine does.
    """
    n = len(dag.ids)
    children: list[list[int]] = [[] for _ in range(n)]
    for i, deps in enumerate(dag.parents):
        for p in deps:
            children[p].append(i)
    if rank is None:
        computed = [0.0] * n
        for i in reversed(_topological_order(dag.parents)):
            computed[i] = dag.costs[i] + max((computed[c] for c in children[i]), default=0.0)
        rank = computed
    missing = [len(deps) for deps in dag.parents]
    ready = [(-rank[i], i) for i in range(n) if missing[i] == 0]
    heapq.heapify(ready)
    running: list[tuple[float, int, int]] = []  # (end, start sequence, task)
    sequence = 0
    now = 0.0
    free = procs
    while ready or running:
        while free and ready:
            _, i = heapq.heappop(ready)
            heapq.heappush(running, (now + dag.costs[i], sequence, i))
            sequence += 1
            free -= 1
        now = running[0][0]
        while running and running[0][0] <= now:
            _, _, i = heapq.heappop(running)
            free += 1
            for c in children[i]:
                missing[c] -= 1
                if missing[c] == 0:
                    heapq.heappush(ready, (-rank[c], c))
            if eager:
                break
    return now


# -- STG ------------------------------------------------------------------------------------


def parse_stg(path: Path) -> Dag:
    """Read an ``.stg`` file; the zero-cost dummy entry (0) and exit (N+1) tasks are dropped."""
    lines = [line.split() for line in path.read_text().splitlines()]
    lines = [fields for fields in lines if fields and not fields[0].startswith("#")]
    n = int(lines[0][0])
    rows = lines[1 : n + 3]
    if len(rows) != n + 2:
        raise ValueError(f"{path}: expected {n + 2} task lines, found {len(rows)}")
    if int(rows[0][1]) != 0 or int(rows[-1][1]) != 0:
        raise ValueError(f"{path}: the dummy entry/exit tasks should cost 0")
    ids, parents, costs = [], [], []
    for fields in rows[1:-1]:
        task, cost, count = int(fields[0]), int(fields[1]), int(fields[2])
        preds = [int(p) for p in fields[3 : 3 + count]]
        ids.append(f"t{task}")
        costs.append(float(cost))
        parents.append(tuple(p - 1 for p in preds if p != 0))  # STG id k -> index k - 1
    return Dag(ids, parents, costs)


@dataclass(frozen=True, slots=True)
class StgCase:
    """One (graph, P) row of the consolidated CSV."""

    graph: str
    procs: int
    tasks: int
    cp: int
    total_work: int
    opt: int
    hlfet: int

    @property
    def trivial_bound(self) -> int:
        """max(critical path, ceil(total work / P)), which most optima equal."""
        return max(self.cp, math.ceil(self.total_work / self.procs))

    @property
    def informative(self) -> bool:
        """Whether the optimum lies above the trivial bound (17 such cases)."""
        return self.opt > self.trivial_bound


def select_stg_cases(root: Path, quick: bool) -> list[StgCase]:
    """The 17 informative cases, plus 5 evenly spaced exact graphs per (size, P) -- 40 more.

    Deterministic: the others are the exact, non-informative rows of each of 50/ and 100/ at
    P = 2, 4, 8, 16, sorted by graph name, taken at positions (k + 0.5) * len / 5.
    """
    with open(root / "stg" / "stg_optimal_consolidated.csv", newline="") as handle:
        rows = [
            StgCase(
                graph=r["graph"],
                procs=int(r["procs"]),
                tasks=int(r["tasks"]),
                cp=int(r["cp_length"]),
                total_work=int(r["total_work"]),
                opt=int(r["opt_or_lb"]),
                hlfet=int(r["hlfet_makespan"]),
            )
            for r in csv.DictReader(handle)
            if r["exact"] == "True"
        ]
    informative = [c for c in rows if c.informative]
    others: list[StgCase] = []
    for size in ("50", "100"):
        for procs in (2, 4, 8, 16):
            pool = sorted(
                (
                    c
                    for c in rows
                    if not c.informative and c.procs == procs and c.graph.startswith(size + "/")
                ),
                key=lambda c: c.graph,
            )
            others.extend(pool[int((k + 0.5) * len(pool) / 5)] for k in range(5))
    if quick:
        return informative[::6] + others[::10]
    return informative + others


def run_stg(root: Path, quick: bool, ledger: Ledger, log: Callable[[str], None]) -> None:
    """Replay the selected STG cases and print the per-case table and the summary."""
    cases = select_stg_cases(root, quick)
    print(heading("Part 2a - STG (Kasahara) graphs vs proven optimum"))
    print(
        f"{len(cases)} cases ({sum(c.informative for c in cases)} informative, marked *); "
        f"1 unit = {STG_UNIT * 1e3:g} ms async sleep; estimate=cost; max_concurrency=P;\n"
        "dummy entry/exit tasks dropped; makespan = first task start -> last task end, in units;\n"
        f"best of {1 if quick else REPEATS} replays per case (other load only ever adds time)."
    )
    body = []
    measured: list[float] = []
    hlfet: list[float] = []
    sims: list[float] = []
    eagers: list[float] = []
    slacks: list[float] = []
    for index, case in enumerate(cases, 1):
        log(f"part 2: STG {index}/{len(cases)} {case.graph} P={case.procs}")
        dag = parse_stg(root / "stg" / case.graph)
        run = best_replay(dag, STG_UNIT, case.procs, 1 if quick else REPEATS)
        measured.append(run.span / case.opt)
        hlfet.append(case.hlfet / case.opt)
        sims.append(simulate(dag, case.procs) / case.opt)
        eagers.append(simulate(dag, case.procs, eager=True) / case.opt)
        slacks.append(run.slack)
        body.append(
            [
                case.graph + (" *" if case.informative else ""),
                str(case.procs),
                str(case.tasks),
                str(case.cp),
                str(math.ceil(case.total_work / case.procs)),
                str(case.opt),
                ratio(hlfet[-1], 3),
                ratio(sims[-1], 3),
                ratio(eagers[-1], 3),
                num(run.slack * 1e6, 0),
                num(run.span, 1),
                ratio(measured[-1], 3),
            ]
        )
    print(
        table(
            [
                "graph",
                "P",
                "n",
                "cp",
                "ceil(W/P)",
                "opt",
                "hlfet/opt",
                "sim/opt",
                "eager/opt",
                "slack µs",
                "plait",
                "plait/opt",
            ],
            body,
        )
    )
    groups: list[tuple[str, list[int]]] = [("all cases", list(range(len(cases))))]
    informative = [i for i, c in enumerate(cases) if c.informative]
    if informative:
        groups.append(("informative only", informative))
    summary = []
    for name, chosen in groups:
        summary.append(
            [
                f"{name} ({len(chosen)})",
                ratio(_mean([measured[i] for i in chosen]), 3),
                ratio(max(measured[i] for i in chosen), 3),
                ratio(_mean([hlfet[i] for i in chosen]), 3),
                ratio(max(hlfet[i] for i in chosen), 3),
                ratio(_mean([sims[i] for i in chosen]), 3),
                ratio(max(sims[i] for i in chosen), 3),
                ratio(_mean([eagers[i] for i in chosen]), 3),
                ratio(max(eagers[i] for i in chosen), 3),
                num(_mean([slacks[i] for i in chosen]) * 1e6, 0),
            ]
        )
    print()
    print(
        table(
            [
                "cases",
                "plait mean",
                "plait worst",
                "hlfet mean",
                "hlfet worst",
                "sim mean",
                "sim worst",
                "eager mean",
                "eager worst",
                "slack µs",
            ],
            summary,
        )
    )
    mean, worst = _mean(measured), max(measured)
    print(
        f"  targets: mean <= {STG_MEAN} {verdict(mean <= STG_MEAN)}, "
        f"worst <= {STG_WORST} {verdict(worst <= STG_WORST)}"
    )
    ledger.add(
        f"STG makespan / optimum, mean ({len(cases)} cases)",
        f"<= {STG_MEAN:.2f}",
        f"{mean:.3f}",
        mean <= STG_MEAN,
    )
    case = cases[measured.index(worst)]
    ledger.add(
        f"STG makespan / optimum, worst ({len(cases)} cases)",
        f"<= {STG_WORST:.2f}",
        f"{worst:.3f} ({case.graph} P={case.procs})",
        worst <= STG_WORST,
    )


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values)


# -- WfCommons --------------------------------------------------------------------------------


def parse_wfcommons(path: Path) -> Dag:
    """Read a WfCommons 1.5 instance: specification tasks (id, parents), execution runtimes."""
    workflow = json.loads(path.read_text())["workflow"]
    spec = workflow["specification"]["tasks"]
    runtime = {t["id"]: float(t["runtimeInSeconds"]) for t in workflow["execution"]["tasks"]}
    ids = [t["id"] for t in spec]
    index = {task_id: i for i, task_id in enumerate(ids)}
    parents = [tuple(index[p] for p in t.get("parents", [])) for t in spec]
    return Dag(ids, parents, [runtime[task_id] for task_id in ids])


def wfcommons_traces(root: Path, quick: bool) -> list[Path]:
    """The trace files (the schema file excluded); ``quick`` keeps the 4 shortest by work."""
    paths = sorted(p for p in (root / "wfcommons").glob("*.json") if "schema" not in p.name)
    if quick:
        paths = sorted(paths, key=lambda p: parse_wfcommons(p).total_work())[:4]
    return paths


def run_wfcommons(root: Path, quick: bool, log: Callable[[str], None]) -> None:
    """Replay every trace at P = 4 and 1000 and print makespan against the lower bound."""
    print(heading("Part 2b - WfCommons traces vs lower bound LB = max(CP, W/P)"))
    print(
        f"runtimes scaled 1 s -> {WFC_SCALE * 1e3:g} ms as async sleeps; estimate=runtime; "
        "makespan = first start -> last end.\nTimes in ms of replay (= seconds of the trace). "
        f"Best of {1 if quick else REPEATS} replays. sim/eager/slack/asyncio as in Part 2a."
    )
    body = []
    ratios: dict[int, list[float]] = {p: [] for p in WFC_PROCS}
    floors: dict[int, list[float]] = {p: [] for p in WFC_PROCS}
    for path in wfcommons_traces(root, quick):
        dag = parse_wfcommons(path)
        cp, work = dag.critical_path(), dag.total_work()
        name = path.stem.removesuffix("-chameleon").replace("-chameleon-", "-")
        for procs in WFC_PROCS:
            log(f"part 2: WfCommons {name} P={procs}")
            bound = max(cp, work / procs)
            repeats = 1 if quick else REPEATS
            run = best_replay(dag, WFC_SCALE, procs, repeats)  # span: trace s = replay ms
            floor = min(replay_asyncio(dag, WFC_SCALE, procs) for _ in range(repeats))
            ratios[procs].append(run.span / bound)
            floors[procs].append(floor / bound)
            body.append(
                [
                    name,
                    str(len(dag.ids)),
                    str(procs),
                    num(cp, 1),
                    num(work / procs, 1),
                    ratio(simulate(dag, procs) / bound, 3),
                    ratio(simulate(dag, procs, eager=True) / bound, 3),
                    ratio(floor / bound, 3),
                    num(run.slack * 1e6, 0),
                    num(run.span, 1),
                    ratio(run.span / bound, 3),
                ]
            )
    print(
        table(
            [
                "trace",
                "n",
                "P",
                "CP ms",
                "W/P ms",
                "sim/LB",
                "eager/LB",
                "asyncio/LB",
                "slack µs",
                "plait ms",
                "plait/LB",
            ],
            body,
        )
    )
    summary = [
        [
            str(p),
            ratio(_mean(r), 3),
            ratio(max(r), 3),
            ratio(_mean(floors[p]), 3),
            ratio(max(floors[p]), 3),
        ]
        for p, r in ratios.items()
        if r
    ]
    print()
    print(
        table(
            ["P", "plait/LB mean", "plait/LB worst", "asyncio/LB mean", "asyncio/LB worst"], summary
        )
    )


# -- partly known estimates -------------------------------------------------------------------


def plait_ranks(dag: Dag, estimates: Sequence[float | None]) -> list[float]:
    """The rank plait's compiled graph gives each task of ``dag`` (by index) with ``estimates``."""
    workflow = to_workflow(
        dag.parents,
        sleep_for,
        name="ranks",
        ids=dag.ids,
        estimates=estimates,
        params=[{"seconds": 0.0}] * len(dag.ids),
    )
    graph = workflow.graph()
    return [graph.rank[graph.index[task_id]] for task_id in dag.ids]


def run_partial_estimates(root: Path, quick: bool) -> None:
    """Simulate STG and WfCommons schedules with every second task's estimate unknown."""
    print(heading("Part 2c - half the estimates unknown (simulated sim/LB, LB = max(CP, W/P))"))
    print(
        "every second task has no estimate; its rank counts it as the median of the known "
        "ones (plait),\nas one unit (the rule before), or with its estimate (all known)."
    )
    suites = {
        "STG": [
            (parse_stg(root / "stg" / case.graph), case.procs)
            for case in select_stg_cases(root, quick)
        ],
        "WfCommons P=4": [(parse_wfcommons(path), 4) for path in wfcommons_traces(root, quick)],
    }
    body = []
    for name, cases in suites.items():
        by_rule: dict[str, list[float]] = {"median": [], "one unit": [], "all known": []}
        for dag, procs in cases:
            bound = max(dag.critical_path(), dag.total_work() / procs)
            half: list[float | None] = [None if i % 2 else c for i, c in enumerate(dag.costs)]
            estimates: dict[str, list[float | None]] = {
                "median": half,
                "one unit": [1.0 if e is None else e for e in half],
                "all known": list(dag.costs),
            }
            for rule, values in estimates.items():
                rank = plait_ranks(dag, values)
                by_rule[rule].append(simulate(dag, procs, rank=rank) / bound)
        body.append(
            [
                f"{name} ({len(cases)})",
                *(f"{ratio(_mean(v), 3)} / {ratio(max(v), 3)}" for v in by_rule.values()),
            ]
        )
    print(table(["cases", "median: mean / worst", "one unit", "all known"], body))
