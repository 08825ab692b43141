"""Part 10 (mapped tasks): what an instance of a mapped task costs, and what 100,000 weigh.

Two targets from issue 12:

- **CPU per instance**: ``plait.run`` of one task returning ``list(range(N))`` and a no-op mapped
  over it (N instances) against the same run with N *static* no-op tasks that depend on that one
  task (the same fan-out, written out). Both are measured in the same child process, one after
  the other, ``REPEATS`` times each (A B A B ...), the garbage collector off as in Part 10; a
  fresh child per round (``CHILDREN``). The part reports the best and the median CPU
  microseconds per task of each side, and judges the ratio of the bests: at most ``1.3x``.
  Building the static workflow (``add_task`` N times) is not timed: what is compared is running
  N tasks that exist against running N instances made at run time.
- **Peak memory**: a fresh child runs a task mapped over 100,000 items on the default store, as
  users run it, and reports its own peak RSS (``VmHWM``, see ``_memory_child``): under 300 MB.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from _report import Ledger, heading, table

CHILDREN = 3
REPEATS = 3
#: The issue's bound on an instance's cost against a static task's.
RATIO = 1.3
PEAK_MB = 300.0


def item_noop(ls: Any = None) -> None:
    """The task function of both sides: takes the item (or, static, the whole list)."""


def _workflows(n: int) -> tuple[Any, Any]:
    import plait  # noqa: PLC0415

    items = list(range(n))
    static = plait.Workflow("static")
    static.add_task("ls", lambda: items)
    for i in range(n):
        static.add_task(f"t{i}", item_noop, depends_on=["ls"])
    mapped = plait.Workflow("mapped")
    mapped.add_task("ls", lambda: items)
    mapped.add_task("each", item_noop, depends_on=["ls"], map_over="ls")
    return static, mapped


def _child_cpu(n: int) -> None:
    """In a child: the best CPU time per task of each side over ``REPEATS`` rounds, as JSON."""
    import gc  # noqa: PLC0415
    import time  # noqa: PLC0415

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from _graphs import run_plait  # noqa: PLC0415

    import plait  # noqa: PLC0415

    static, mapped = _workflows(n)
    static.graph()  # compiled once, outside the timing, as a second run of it would find it
    best = {"static": float("inf"), "mapped": float("inf")}
    for _ in range(REPEATS):
        for side, workflow in (("static", static), ("mapped", mapped)):
            gc.collect()
            gc.disable()
            cpu = time.process_time()
            result = run_plait(workflow, 8)
            best[side] = min(best[side], time.process_time() - cpu)
            gc.enable()
            if result.status is not plait.RunStatus.SUCCEEDED:
                raise RuntimeError(f"{side} ended {result.status}: {result.error}")
            if side == "mapped" and len(result.outputs["each"]) != n:
                raise RuntimeError("the mapped run did not make one instance per item")
            del result
    print(json.dumps({side: seconds / n * 1e6 for side, seconds in best.items()}))


def _child_memory(n: int) -> None:
    """In a child: run a task mapped over ``n`` items on the default store; report peak RSS."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from _memory_child import current_rss_mb, own_peak_mb, peak_rss_mb  # noqa: PLC0415

    import plait  # noqa: PLC0415

    baseline = current_rss_mb()
    _, mapped = _workflows(n)
    result = plait.run(mapped, max_concurrency=8)
    ok = result.status is plait.RunStatus.SUCCEEDED and len(result.outputs["each"]) == n
    hwm = own_peak_mb()
    print(
        json.dumps(
            {
                "ok": ok,
                "baseline_mb": baseline,
                "peak_mb": hwm if hwm is not None else peak_rss_mb(),
            }
        )
    )


def _child(*args: str) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, __file__, *args], check=True, capture_output=True, text=True
    ).stdout
    return json.loads(out.splitlines()[-1])  # type: ignore[no-any-return]


def run_mapped(
    ledger: Ledger, log: Callable[[str], None], *, n: int = 10_000, memory_n: int = 100_000
) -> None:
    """CPU per mapped instance against a static task, and the peak memory of ``memory_n``."""
    print(heading("Part 10 (mapped tasks): an instance against a static task; peak memory"))
    measured: dict[str, list[float]] = {"static": [], "mapped": []}
    for child in range(CHILDREN):
        log(f"part 10 mapped: CPU, n={n:,} ({child + 1}/{CHILDREN})")
        for side, value in _child("CPU", str(n)).items():
            measured[side].append(value)
    best_static, best_mapped = min(measured["static"]), min(measured["mapped"])
    median_static = statistics.median(measured["static"])
    median_mapped = statistics.median(measured["mapped"])
    print(
        f"plait.run of 1 task + {n:,} no-ops: static tasks that depend on it, or instances of one "
        f"task mapped over its list; CPU us per task, best of {REPEATS} runs per side in each of "
        f"{CHILDREN} child processes (sides alternating in each)"
    )
    print(
        table(
            ["side", "best", "median", "best ratio", "median ratio"],
            [
                ["static", f"{best_static:.2f}", f"{median_static:.2f}", "", ""],
                [
                    "mapped",
                    f"{best_mapped:.2f}",
                    f"{median_mapped:.2f}",
                    f"{best_mapped / best_static:.3f}",
                    f"{median_mapped / median_static:.3f}",
                ],
            ],
        )
    )
    ledger.add(
        f"mapped {n:,} instances: CPU/instance vs static task",
        f"<= {RATIO:.1f}x",
        f"{best_mapped / best_static:.3f}x ({best_mapped:.2f} vs {best_static:.2f} us)",
        best_mapped / best_static <= RATIO,
    )
    log(f"part 10 mapped: memory, n={memory_n:,}")
    report = _child("MEMORY", str(memory_n))
    print(
        f"\nA task mapped over {memory_n:,} items, default store, fresh child: peak RSS "
        f"{report['peak_mb']:.1f} MB (VmHWM; {report['baseline_mb']:.1f} MB after importing plait)"
    )
    ledger.add(
        f"peak RSS, {memory_n:,} mapped instances",
        f"< {PEAK_MB:.0f} MB",
        f"{report['peak_mb']:.1f} MB",
        report["ok"] and report["peak_mb"] < PEAK_MB,
    )


if __name__ == "__main__":
    mode, size = sys.argv[1], int(sys.argv[2])
    if mode == "CPU":
        _child_cpu(size)
    else:
        _child_memory(size)
