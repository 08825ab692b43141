"""Task functions of the executor semantics suite: module-level, so that they pickle by reference
and run in a worker process or on a Dask worker as they do in a thread. They share no state with
the test but their arguments, outputs, files and logs."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import plait
from plait import Context
from plait.stores import SQLiteStore


def one() -> int:
    return 1


def add(one: int, two: int) -> int:
    return one + two


def double(one: int) -> int:
    return 2 * one


def flaky(ctx: Context, until: int) -> int:
    """Fails until attempt ``until``, then returns the attempt's number."""
    if ctx.attempt < until:
        raise RuntimeError(f"attempt {ctx.attempt} fails")
    return ctx.attempt


def fail() -> None:
    raise ValueError("bad input")


def wait_for_cancel(ctx: Context, limit: float = 30.0) -> str:
    """Loops until cancelled (at most ``limit`` seconds); returns what stopped it."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if ctx.cancelled:
            return "cancelled"
        time.sleep(0.01)
    return "not cancelled"


def note_cancel(ctx: Context, marker: str) -> None:
    """Waits (at most 30 s) until cancelled, then writes what it saw to ``marker``."""
    Path(marker).write_text(wait_for_cancel(ctx))


def ask(ctx: Context, marker: str) -> str:
    """Asks for a colour; writes ``marker`` first, each time it runs (the re-run is visible)."""
    with Path(marker).open("a") as file:
        file.write("ran\n")
    colour = ctx.request_input("colour?")
    return f"colour={colour}"


def talk(ctx: Context) -> str:
    ctx.logger.info("attempt %d", ctx.attempt)
    logging.getLogger("app").warning("careful")
    print("printed", ctx.attempt)
    return "said"


def needs_file(path: str) -> str:
    """Fails until ``path`` exists."""
    if not Path(path).exists():
        raise FileNotFoundError(path)
    return Path(path).read_text()


def count_runs(marker: str) -> int:
    """Appends a line to ``marker``; returns how many times it ran."""
    with Path(marker).open("a") as file:
        file.write("ran\n")
    return len(Path(marker).read_text().splitlines())


async def async_double(one: int) -> int:
    return 2 * one


def identity(**inputs: Any) -> Any:
    return inputs


def planned(ctx: Context, i: int, fail_first: int, **inputs: int) -> int:
    """Task ``i`` of a random plan: fails its first ``fail_first`` attempts, then returns ``i``
    plus its inputs' outputs (so a wrong input shows in every output downstream)."""
    if ctx.attempt <= fail_first:
        raise RuntimeError(f"task {i} fails attempt {ctx.attempt}")
    return i + sum(inputs.values())


async def planned_async(ctx: Context, i: int, fail_first: int, **inputs: int) -> int:
    return planned(ctx, i, fail_first, **inputs)


def wait_to_be_seen(store: str, ctx: Context) -> bool:
    """Log a line, then wait (at most 20 s) until the run's store holds it: whether it did
    while this attempt still ran (so the line came back before the outcome)."""
    ctx.logger.info("waiting to be seen")
    deadline = time.monotonic() + 20
    # Another connection, as `plait logs --follow` has; ``store`` is a sqlite:/// URL.
    with SQLiteStore(store.removeprefix("sqlite://")) as reader:
        while time.monotonic() < deadline:
            lines = plait.get_logs(ctx.run_id, ctx.task_id, attempt=ctx.attempt, store=reader)
            if any(line.text == "INFO plait.task: waiting to be seen" for line in lines):
                return True
            time.sleep(0.02)
    return False
