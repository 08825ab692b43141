"""Part 10v (mapped tasks, how they look): what ``plait report`` costs for a mapped run.

A task mapped over N items (one instance of N fails, so the page has a failure, an open group
and a skip to show) runs on a fresh SQLite store, as users run it; then the report of that run is
built ``REPEATS`` times (``build_report``: the store read, the view, the HTML), in the same
process, right after the run, so the two are measured side by side on the same machine state.

Targets (issue 12: "the report must render a 100k-instance run in reasonable time and size"):

- **Size**: the HTML of a 100,000-instance run under 1 MB: a mapped task is one group with at
  most ``INSTANCE_ROWS`` instance rows, so the page grows with the tasks, not the instances.
- **Time**: the median build of the 100,000-instance report at most the run's own wall time
  (``1.0x``): showing a run costs less than making it. What remains is linear in the instances
  (reading their records and events, one segment each); nothing is quadratic.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from _report import Ledger, heading, num, ratio, table

SIZES = (10_000, 100_000)
QUICK_SIZES = (2_000, 20_000)
REPEATS = 3
MAX_BYTES = 1_000_000
MAX_RATIO = 1.0


def _measure(n: int, directory: Path) -> tuple[float, list[float], int]:
    """(run seconds, report build seconds each time, HTML bytes) for ``n`` instances."""
    import plait  # noqa: PLC0415
    from plait.cli._report import build_report  # noqa: PLC0415
    from plait.stores import SQLiteStore  # noqa: PLC0415

    wf = plait.Workflow("mapped-report")
    wf.add_task("items", lambda: list(range(n)))

    def work(items: int) -> int:
        if items == 7:
            raise ValueError("seven")
        return items

    wf.add_task("work", work, depends_on=["items"], map_over="items")
    wf.add_task("total", lambda work=None: sum(work or []), depends_on=["work"], trigger="all_done")
    wf.add_task("publish", lambda: None, depends_on=["work"])
    store = SQLiteStore(directory / f"mapped-{n}.db")
    started = time.perf_counter()
    result = plait.run(wf, store=store, max_retries=0)
    ran = time.perf_counter() - started
    builds = []
    html = ""
    for _ in range(REPEATS):
        started = time.perf_counter()
        html = build_report(result.run_id, store=store)
        builds.append(time.perf_counter() - started)
    store.close()
    return ran, builds, len(html.encode())


def run_mapped_views(ledger: Ledger, log: Callable[[str], None], *, quick: bool) -> None:
    print(heading("Part 10v: the report of a mapped run (SQLite, one failed instance)"))
    rows = []
    measured: dict[int, tuple[float, float, int]] = {}
    with tempfile.TemporaryDirectory() as directory:
        for n in QUICK_SIZES if quick else SIZES:
            log(f"part 10v: {n:,} instances")
            ran, builds, size = _measure(n, Path(directory))
            median = statistics.median(builds)
            measured[n] = (ran, median, size)
            rows.append(
                [
                    f"{n:,}",
                    num(ran, 2),
                    num(median, 2),
                    num(min(builds), 2),
                    ratio(median / ran),
                    f"{size:,}",
                ]
            )
    print(
        table(
            ["instances", "run s", "report s (median)", "report s (best)", "report/run", "bytes"],
            rows,
        )
    )
    n = max(measured)
    ran, median, size = measured[n]
    ledger.add(
        f"report of {n:,} instances: size",
        f"< {MAX_BYTES:,} bytes",
        f"{size:,} bytes",
        size < MAX_BYTES,
    )
    ledger.add(
        f"report of {n:,} instances: build time",
        f"<= {MAX_RATIO:.1f}x the run",
        f"{median:.2f} s vs {ran:.2f} s ({median / ran:.2f}x)",
        median <= MAX_RATIO * ran,
    )
