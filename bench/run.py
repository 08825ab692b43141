"""plait's benchmark suite (``make bench``): engine overhead, then scheduling quality.

Part 1 times no-op tasks on synthetic graphs against bare asyncio, graphlib + threads and Dask,
measures peak memory in a child process and the parallel speedup of sleeping tasks. Part 2 replays
real task graphs (STG, WfCommons, from ``../shared/bench-data``) as sleeps and compares plait's
makespan with the optimum or a lower bound, and simulates the order plait gives when half the
estimates are unknown; 2d (``--part 2d`` alone) replays them with no estimates at all, the second
run ordered by estimates learned from the first. Part 3 measures what the durable stores (SQLite,
PostgreSQL) cost per task against the memory store, how fast an owner that lost its lease stops,
and (3c) how fast ``plait.cancel`` reaches a run live in another process through its store, and
(3d) how fast ``plait.answer`` does. Part 4 runs the build example against ``make -j`` on the same
graph. Part 5 times the whole call a user pays for (build the workflow, run it, read every result)
against the same floors. Part 6 times the start-up of the ``plait`` command against a bare Python
start. Part 7 measures the process executor: CPU-bound tasks against the thread executor, no-op
tasks against ``ProcessPoolExecutor``, and how fast a stuck task's worker is killed. Part 8 runs
plait on a Dask cluster (``DaskExecutor``) against Dask alone. Part 9 measures ``plait serve``:
event to screen with 20 live clients, the runs page over 10,000 runs, a 2,000-task run page in
Chromium. Part 10 compares the CPU time of default-rule runs with the commit before trigger
rules, and measures mapped tasks: an instance's CPU time against a static task's, and the peak
memory of 100,000 instances (``--part 10m`` runs only those), and what the report of a mapped
run costs against the run, at 10,000 and 100,000 instances (``--part 10v``).
Part 11 times what tracing and metrics add per task on the engine's threads. A PASS/FAIL summary
of the targets ends it.

Usage: ``python bench/run.py [--quick] [--gc-enabled] [--part 1|2|2d|3|4|5|6|7|8|9|10|11]
[--profile]``.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # sibling modules, run as a script

import _answer
import _cancel
import _dask
import _learned
import _lease
import _make
import _mapped
import _mapped_views
import _monitoring
import _overhead
import _process
import _replay
import _rules
import _serve
import _startup
import _stores
import _whole
from _report import Ledger, heading

import plait

FULL = _overhead.Settings(
    sizes=(10_000, 100_000),
    repeats={10_000: 5, 100_000: 3},
    dask_repeats={10_000: 3, 100_000: 1},
    gc_off=True,
    memory_n=100_000,
)
QUICK = _overhead.Settings(
    sizes=(1_000, 5_000),
    repeats={1_000: 3, 5_000: 2},
    dask_repeats={1_000: 1, 5_000: 1},
    gc_off=True,
    memory_n=20_000,
    sleep_tasks=16,
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line; see the module docstring."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, few graphs (smoke)")
    parser.add_argument(
        "--gc-enabled",
        action="store_true",
        help="leave the garbage collector on in timed regions (default: off for everyone)",
    )
    parser.add_argument(
        "--part",
        choices=("1", "2", "2d", "3", "4", "5", "6", "7", "8", "9", "10", "10m", "10v", "11"),
        help="run only this part",
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="only print cProfile top lines for the 10k sync chain and 10k async layered runs",
    )
    return parser.parse_args(argv)


def source_version() -> str:
    """The git commit of the checkout, ``-dirty`` if it has changes: plait is a moving target."""
    try:
        out = subprocess.run(
            ["git", "describe", "--always", "--dirty"],
            cwd=Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            check=True,
        )
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return out.stdout.strip()


def log(message: str) -> None:
    """Progress on stderr, so that stdout holds only the report."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    """Run the selected parts and print the target summary; exit status 0 even on FAIL."""
    args = parse_args(argv)
    if args.profile:
        import _profile  # noqa: PLC0415 - only this mode needs it

        _profile.run_profiles()
        return 0
    settings = QUICK if args.quick else FULL
    if args.gc_enabled:
        settings = dataclasses.replace(settings, gc_off=False)
    started = time.perf_counter()
    print(
        f"plait {plait.__version__} ({source_version()}) benchmark"
        f"{' (QUICK smoke run)' if args.quick else ''} -- "
        f"Python {platform.python_version()}, {platform.machine()}, "
        f"{os.cpu_count()} CPUs, {time.strftime('%Y-%m-%d %H:%M')}, {_load()}"
    )
    ledger = Ledger()
    if args.part in (None, "1"):
        _overhead.run_part1(settings, ledger, log)
    if args.part in (None, "2"):
        root = _replay.data_dir()
        if (root / "README.md").exists():
            _replay.run_stg(root, args.quick, ledger, log)
            _replay.run_wfcommons(root, args.quick, log)
            _replay.run_partial_estimates(root, args.quick)
        else:
            print(heading("Part 2 skipped"))
            print(f"no benchmark data at {root} (set PLAIT_BENCH_DATA to its location)")
    if args.part in (None, "2", "2d"):
        root = _replay.data_dir()
        if (root / "README.md").exists():
            _learned.run_learned(root, args.quick, ledger, log)
        elif args.part == "2d":
            print(heading("Part 2d skipped"))
            print(f"no benchmark data at {root} (set PLAIT_BENCH_DATA to its location)")
    if args.part in (None, "3"):
        _stores.run_part3(ledger, log, n=2_000 if args.quick else _stores.N)
        _lease.run_lease(log)
        _cancel.run_cancel(ledger, log, repeats=2 if args.quick else _cancel.REPEATS)
        _answer.run_answer(ledger, log, repeats=2 if args.quick else _answer.REPEATS)
    if args.part in (None, "4"):
        _make.run_part4(log)
    if args.part in (None, "5"):
        _whole.run_part5(_whole.QUICK if args.quick else _whole.FULL, ledger, log)
    if args.part in (None, "6"):
        _startup.run_part6(ledger, log, quick=args.quick)
    if args.part in (None, "7"):
        _process.run_part7(ledger, log, quick=args.quick)
    if args.part in (None, "8"):
        _dask.run_part8(ledger, log, quick=args.quick)
    if args.part in (None, "9"):
        _serve.run_part9(ledger, log)
    if args.part in (None, "10"):
        _rules.run_part10(ledger, log, n=2_000 if args.quick else 10_000)
    if args.part in (None, "10", "10m"):
        _mapped.run_mapped(
            ledger,
            log,
            n=2_000 if args.quick else 10_000,
            memory_n=20_000 if args.quick else 100_000,
        )
    if args.part in (None, "10", "10v"):
        _mapped_views.run_mapped_views(ledger, log, quick=args.quick)
    if args.part in (None, "11"):
        _monitoring.run_part11(ledger, log, quick=args.quick)
    print(heading("Summary of targets" + (" (QUICK sizes: indicative only)" if args.quick else "")))
    print(ledger.render())
    passed = sum(t.ok for t in ledger.targets)
    print(
        f"\n{passed}/{len(ledger.targets)} targets pass; "
        f"benchmark took {time.perf_counter() - started:.0f} s; {_load()} at the end"
    )
    return 0


def _load() -> str:
    """The load average: other processes on a small machine skew every timing here."""
    try:
        one, five, _ = os.getloadavg()
    except OSError:
        return "load average unknown"
    return f"load average {one:.2f} (1 min) / {five:.2f} (5 min)"


if __name__ == "__main__":
    sys.exit(main())
