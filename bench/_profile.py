"""``run.py --profile``: cProfile of plait on the 10k sync chain and the 10k async layered DAG.

cProfile only sees the thread that enables it, and plait's sync tasks settle and dispatch on
worker threads, so for the sync case every worker thread gets its own profiler (by wrapping the
thread executor's worker loop at runtime -- plait's source is not touched) and the stats of all
threads are merged. Numbers are inflated by the profiler; read them as proportions.
"""

from __future__ import annotations

import cProfile
import functools
import gc
import io
import pstats
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from _graphs import anoop, chain, layered, noop, run_plait, to_workflow

import plait

TOP = 15


@contextmanager
def _profile_worker_threads(profiles: list[cProfile.Profile]) -> Iterator[str]:
    """Give each plait worker thread its own profiler; yields a note on what is covered."""
    try:
        from plait.executors import _thread  # noqa: PLC0415 - private, may move

        original = _thread.ThreadExecutor._work
    except (ImportError, AttributeError):
        yield "worker threads NOT profiled (ThreadExecutor._work not found)"
        return

    @functools.wraps(original)
    def work(self: Any, *args: Any, **kwargs: Any) -> Any:
        profile = cProfile.Profile()
        profiles.append(profile)
        profile.enable()
        try:
            return original(self, *args, **kwargs)
        finally:
            profile.disable()

    _thread.ThreadExecutor._work = work  # type: ignore[method-assign]
    try:
        yield "main thread + every worker thread, merged"
    finally:
        _thread.ThreadExecutor._work = original  # type: ignore[method-assign]


def profile_case(name: str, build: Callable[[], plait.Workflow]) -> str:
    """Profile one ``plait.run`` (gc off, like the timings); return the top lines by tottime."""
    workflow = build()
    run_plait(build(), 8)  # warm up imports and caches
    profiles: list[cProfile.Profile] = []
    with _profile_worker_threads(profiles) as coverage:
        main = cProfile.Profile()
        gc.collect()
        gc.disable()
        try:
            main.enable()
            run_plait(workflow, 8)
            main.disable()
        finally:
            gc.enable()
    out = io.StringIO()
    stats = pstats.Stats(main, stream=out)
    for profile in profiles:
        stats.add(profile)
    stats.strip_dirs().sort_stats("tottime").print_stats(TOP)
    text = out.getvalue().strip()
    return f"--- {name} ({coverage}) ---\n{text}"


def run_profiles() -> None:
    """Print the two profiles the brief asks for."""
    n = 10_000
    print(profile_case("10k sync chain", lambda: to_workflow(chain(n), noop)))
    print()
    print(profile_case("10k async layered", lambda: to_workflow(layered(n), anoop)))
