"""Part 3: what durability costs -- plait's per-task overhead with each store.

The same 10,000 no-op tasks (chains of 10, so that tasks finish one after another and the
store's writer keeps up with a steady stream) run with the memory store (nothing written while
the run goes), the SQLite store (a file in a temporary folder, WAL) and the PostgreSQL store
(the server at ``$PLAIT_BENCH_POSTGRES_URL``, default ``postgresql://postgres@127.0.0.1:5432/test``,
in a schema of its own that is dropped afterwards). The stores take turns: each of the
:data:`REPEATS` rounds runs every store once, and each keeps its best, so a machine whose load
drifts during the part weighs on all of them alike. Each store records every task's state and
the event log, in batches, on its writer thread (a busy run is written every 0.1 s).

A second table times what the JSON serializer costs per output, against the ``json`` module
alone: plain data is written as plain JSON (found by one walk of the value), and a value with
tuples or int keys is tagged (see ``plait._tagged``).
"""

from __future__ import annotations

import functools
import gc
import json
import os
import tempfile
import time
import timeit
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from _graphs import anoop, noop, to_workflow
from _report import Ledger, heading, num, ratio, table, verdict

import plait
from plait.stores import MemoryStore, PostgresStore, SQLiteStore, Store

N = 10_000
CHAIN = 10
REPEATS = 5
SQLITE_FACTOR = 3.0
POSTGRES_FACTOR = 5.0
POSTGRES_URL = os.environ.get(
    "PLAIT_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)


def _parents(n: int) -> list[list[int]]:
    return [[i - 1] if i % CHAIN else [] for i in range(n)]


def _time(workflow: plait.Workflow, store: Store) -> tuple[float, float]:
    gc.collect()
    gc.disable()
    try:
        started, cpu = time.perf_counter(), time.process_time()
        result = plait.run(workflow, store=store, max_concurrency=8)
        wall, cpu = time.perf_counter() - started, time.process_time() - cpu
    finally:
        gc.enable()
    if result.status is not plait.RunStatus.SUCCEEDED:
        raise RuntimeError(f"store benchmark ended {result.status}: {result.error}")
    return wall, cpu


def run_part3(ledger: Ledger, log: Callable[[str], None], *, n: int = N) -> None:
    """Run and print Part 3; record its targets in ``ledger``."""
    print(heading("Part 3 - durable stores: per-task overhead"))
    print(
        f"{n:,} no-op tasks in chains of {CHAIN}, max_concurrency=8, best of {REPEATS} rounds "
        "(each runs every store once); wall and CPU µs per task.\nEvery store records each "
        "task's state and the event log, batched on its writer thread."
    )
    schema = f"plait_bench_{uuid.uuid4().hex[:8]}"
    folder = Path(tempfile.mkdtemp(prefix="plait-bench-"))
    makers: dict[str, Callable[[], Store]] = {
        "memory": MemoryStore,
        "sqlite": lambda: SQLiteStore(folder / f"{uuid.uuid4().hex}.db"),
        "postgres": lambda: PostgresStore(POSTGRES_URL, schema=schema),
    }
    rows = []
    cost: dict[tuple[str, str], tuple[float, float]] = {}
    try:
        for kind, fn in (("sync", noop), ("async", anoop)):
            # Round robin: each repeat runs every store once, so a drift of the machine (other
            # work starting or ending) hits all stores alike rather than the ones timed then.
            best = dict.fromkeys(makers, (float("inf"), float("inf")))
            for repeat in range(REPEATS):
                log(f"part 3: {kind}, round {repeat + 1} of {REPEATS}")
                for name, make in makers.items():
                    workflow = to_workflow(_parents(n), fn)
                    with make() as store:
                        wall, cpu = _time(workflow, store)
                    best[name] = (min(best[name][0], wall), min(best[name][1], cpu))
            for name, (wall, cpu) in best.items():
                cost[kind, name] = (wall / n * 1e6, cpu / n * 1e6)
    finally:
        _drop_schema(schema)
    for kind in ("sync", "async"):
        memory_wall, memory_cpu = cost[kind, "memory"]
        for name, limit in (
            ("memory", None),
            ("sqlite", SQLITE_FACTOR),
            ("postgres", POSTGRES_FACTOR),
        ):
            wall, cpu = cost[kind, name]
            rows.append(
                [
                    kind,
                    name,
                    num(wall),
                    num(cpu),
                    ratio(wall / memory_wall),
                    ratio(cpu / memory_cpu),
                    ""
                    if limit is None
                    else f"<={limit:.0f}x {verdict(wall / memory_wall <= limit)}",
                ]
            )
    print(
        table(
            ["kind", "store", "wall µs", "cpu µs", "wall / memory", "cpu / memory", "target"],
            rows,
        )
    )
    run_serializer_costs()
    for name, limit in (("sqlite", SQLITE_FACTOR), ("postgres", POSTGRES_FACTOR)):
        worst_kind = max(("sync", "async"), key=lambda k: cost[k, name][0] / cost[k, "memory"][0])
        factor = cost[worst_kind, name][0] / cost[worst_kind, "memory"][0]
        ledger.add(
            f"{name} store / memory store per task",
            f"<= {limit:.0f}x",
            f"worst {factor:.2f}x ({worst_kind})",
            factor <= limit,
        )


#: Outputs to time the serializer with: what most tasks return, then typical records.
SERIALIZED: dict[str, Any] = {
    "None": None,
    "small dict": {"id": 17, "name": "report.csv", "ok": True, "size": 2.5},
    "100 plain rows": [{"id": i, "name": f"row {i}", "tags": ["a", "b"]} for i in range(100)],
    "100 tagged rows": [{"id": i, "pair": (i, i), "counts": {i: 1}} for i in range(100)],
}


def run_serializer_costs() -> None:
    """Print µs per dumps and per loads: the JSON serializer beside the bare ``json`` module
    (which loses the tuples and int keys of the tagged rows)."""
    serializer = plait.JSONSerializer()
    encode = json.JSONEncoder(separators=(",", ":")).encode
    rows = []
    for name, value in SERIALIZED.items():
        payload = serializer.dumps(value)
        plain = encode(value).encode()
        figures = []
        for fn in (
            functools.partial(encode, value),
            functools.partial(serializer.dumps, value),
            functools.partial(json.loads, plain),
            functools.partial(serializer.loads, payload),
        ):
            count, _ = timeit.Timer(fn).autorange()
            figures.append(min(timeit.repeat(fn, number=count, repeat=3)) / count * 1e6)
        rows.append(
            [
                name,
                num(figures[0], 2),
                num(figures[1], 2),
                ratio(figures[1] / figures[0]),
                num(figures[2], 2),
                num(figures[3], 2),
                ratio(figures[3] / figures[2]),
            ]
        )
    print("\nThe JSON serializer per output (µs), beside the bare json module:")
    print(
        table(
            ["output", "json.dumps", "dumps", "ratio", "json.loads", "loads", "ratio"],
            rows,
        )
    )


def _drop_schema(schema: str) -> None:
    try:
        import psycopg  # noqa: PLC0415 - only the PostgreSQL part needs it

        with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    except Exception as error:  # the benchmark's numbers stand; say what was left behind
        print(f"  (could not drop the benchmark schema {schema!r}: {error})")
