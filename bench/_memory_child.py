"""Child process of the memory benchmark: build the layered DAG, run plait, report RSS as JSON.

Run in a fresh interpreter so that the parent's graphs and baselines do not pollute the peak
(``ru_maxrss`` is a high-water mark for the whole process). Usage:
``python _memory_child.py N sync|async``. The garbage collector stays on, as in real use.

Two peaks are reported. ``ru_maxrss`` is the classic measure, but Linux carries it over from the
parent across fork + exec, so in a child of a big parent it can show the *parent's* peak.
``VmHWM`` (``/proc/self/status``) belongs to the new address space only: it is the child's own
peak, and the one the target is checked against where it exists.
"""

from __future__ import annotations

import gc
import json
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _graphs import anoop, layered, noop, to_workflow

import plait

_PAGE = resource.getpagesize()


def current_rss_mb() -> float:
    """Resident set size right now (Linux ``/proc``; falls back to the peak elsewhere)."""
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * _PAGE / 2**20
    except OSError:
        return peak_rss_mb()


def peak_rss_mb() -> float:
    """The process's peak RSS so far; ``ru_maxrss`` is in KiB on Linux."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def own_peak_mb() -> float | None:
    """This address space's own peak RSS (``VmHWM``), or ``None`` off Linux."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def main() -> None:
    """Measure baseline, after-build and peak RSS for one plait run of the layered DAG."""
    n, kind = int(sys.argv[1]), sys.argv[2]
    baseline = peak_rss_mb()
    baseline_now = current_rss_mb()
    workflow = to_workflow(layered(n), anoop if kind == "async" else noop)
    built_now = current_rss_mb()
    started = time.perf_counter()
    result = plait.run(workflow, max_concurrency=8)  # the default store, as users run it
    seconds = time.perf_counter() - started
    after_now = current_rss_mb()
    hwm = own_peak_mb()
    ok = result.status is plait.RunStatus.SUCCEEDED
    del result, workflow
    gc.collect()
    kept_now = current_rss_mb()  # what plait holds on to once the caller has let go
    print(
        json.dumps(
            {
                "n": n,
                "kind": kind,
                "ok": ok,
                "baseline_maxrss_mb": baseline,
                "baseline_mb": baseline_now,
                "built_mb": built_now,
                "after_run_mb": after_now,
                "kept_mb": kept_now,
                "maxrss_mb": peak_rss_mb(),
                "hwm_mb": hwm,
                "run_seconds": seconds,
            }
        )
    )


if __name__ == "__main__":
    main()
